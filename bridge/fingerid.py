"""Which finger pressed the key: evidence from a hand-landmark stream (pure).

For a note-on at time t on a key, each fingertip of each hand is scored by how close it
is to that key (on the key surface, through the calibration) in the frames around t;
the scores become a probability over (hand, finger). `attribute` adds them to the
fingering model's CRF, so that continuity with the neighbouring notes decides what the
camera leaves open. `align` finds the camera clock's offset from the MIDI clock, and
the calibration's error along the keyboard, from the same evidence.
"""

from __future__ import annotations

import bisect

import numpy as np

from bridge.events import PlayedFinger, Ref
from bridge.keyboard import Calibration

TIPS = (4, 8, 12, 16, 20)
HANDS = ("left", "right")
WINDOW_S = 0.06  # frames this close to the onset show the press
ON_KEY_MM = 20.0  # a fingertip that pressed a key came this close to its middle (a white key is 23.5 mm)
HELD_FROM_S = 0.02  # frames from this long before the onset show the key held down
APPROACH_S = 0.12  # a fingertip comes to its key; one that was there this long before fits any moment
SCALE_MM = 9.0  # distance scale of the evidence
PALM = [0, 5, 9, 13, 17]  # wrist and knuckles: where a hand is, whatever its fingers do
TRACK_S = 0.25  # a hand unseen this long is found afresh
CLEAR = 1.0  # a fingertip this much nearer the key than the next (in SCALE_MM units) settles it
LABEL_MM = 15.0  # what the detector's handedness label is worth against the hand's motion
LABEL_MEMORY = 0.1  # weight of each new frame in a hand's running label disagreement


class LandmarkStream:
    """Frames of a landmark stream, with each hand's fingertips in keyboard millimetres.

    Which hand is which comes from tracking: a hand is the one whose palm was nearest a
    moment ago, with the detector's handedness label as a weaker vote. Labels alone swap
    now and then; position alone (the left one is the left hand) fails when the hands
    cross or play close together, as the left hand does over the right in many pieces."""

    def __init__(self, frames: list[dict], calibration: Calibration):
        self.shift_mm = 0.0  # along the keyboard: what the calibration is off by (see `align`)
        self.calibration = calibration
        self.times: list[float] = []
        self.tips: list[dict[str, np.ndarray]] = []
        self.palms: dict[str, tuple[float, np.ndarray]] = {}  # hand -> (last seen, palm in mm)
        self.against: dict[str, float] = {}  # hand -> recent share of frames labelled the other hand
        for f in frames:
            self.append(float(f["t"]), f.get("hands", []))

    def append(self, t: float, hands: list[dict]) -> None:
        """Add a frame (frames come in time order)."""
        seen = []
        for h in hands[:2]:
            pts = self.calibration.key_points(np.asarray(h["landmarks"], float)[list(TIPS) + PALM, :2])
            seen.append((h.get("handedness", ""), pts[:5], pts[5:].mean(0)))
        sides = self._identify(t, [(label, palm) for label, _, palm in seen])
        for side, (label, _, palm) in zip(sides, seen):
            self.palms[side] = (t, palm)
            # how often the detector has lately called this hand the other one: a track
            # that went wrong (hands lost and found crossed) is put right by the labels
            against = self.against.get(side, 0.0) * (1 - LABEL_MEMORY) + LABEL_MEMORY * (
                label in HANDS and label != side
            )
            self.against[side] = against
        if len(sides) == 2 and min(self.against.get(s, 0.0) for s in HANDS) > 0.5:
            self.palms = {("right" if s == "left" else "left"): v for s, v in self.palms.items()}
            self.against = {}
            sides = tuple("right" if s == "left" else "left" for s in sides)
        self.times.append(t)
        self.tips.append({side: tips for side, (_, tips, _) in zip(sides, seen)})

    def _identify(self, t: float, seen: list[tuple[str, np.ndarray]]) -> tuple[str, ...]:
        """The hand each detection is: the assignment with the least palm travel since
        the hands were last seen, each label it goes against counting LABEL_MM."""
        recent = {side: palm for side, (when, palm) in self.palms.items() if t - when <= TRACK_S}
        options = [(s,) for s in HANDS] if len(seen) == 1 else [HANDS, HANDS[::-1]] if len(seen) == 2 else [()]

        def cost(sides: tuple[str, ...]) -> float:
            c = 0.0
            for side, (label, palm) in zip(sides, seen):
                c += LABEL_MM * (label != side)
                if side in recent:
                    c += float(np.hypot(*(palm - recent[side])))
                elif len(recent) == 1:  # the other hand is tracked: this one is not it
                    other = next(iter(recent.values()))
                    c += max(0.0, 60.0 - float(np.hypot(*(palm - other))))
            if len(sides) == 2 and not recent:  # a fresh start: the left one is more likely the left hand
                c += LABEL_MM * (seen[0][1][0] > seen[1][1][0]) * (sides[0] == "left") * 0.5
                c += LABEL_MM * (seen[0][1][0] < seen[1][1][0]) * (sides[0] == "right") * 0.5
            return c

        return min(options, key=cost)

    def forget_before(self, t: float) -> None:
        k = bisect.bisect_left(self.times, t)
        if k > 256:  # trim in batches: cheap, and bisect keeps working on what is left
            del self.times[:k]
            del self.tips[:k]

    def near(self, t: float, span: float) -> range:
        return range(bisect.bisect_left(self.times, t - span), bisect.bisect_right(self.times, t + span))

    def frame_distances(self, t: float, pitch: int, span: float) -> np.ndarray:
        """(frames, 2, 5) distance (mm) of each fingertip to the key in each frame within
        ``span`` of t (inf where the hand was not seen)."""
        kb = self.calibration.keyboard
        frames = self.near(t, span)
        out = np.full((len(frames), 2, 5), np.inf)
        for k, i in enumerate(frames):
            for h, side in enumerate(HANDS):
                tips = self.tips[i].get(side)
                if tips is not None:
                    out[k, h] = kb.centre_distance(pitch, tips[:, 0] + self.shift_mm, tips[:, 1])
        return out

    def distances(self, t: float, pitch: int, span: float) -> np.ndarray:
        """(2, 5) smallest distance (mm) of each fingertip to the key within ``span`` of t (inf if unseen)."""
        d = self.frame_distances(t, pitch, span)
        return d.min(0) if len(d) else np.full((2, 5), np.inf)


def evidence(stream: LandmarkStream, t: float, pitch: int) -> np.ndarray | None:
    """Log-scores (2, 5) of (hand, finger) for a press at t (camera clock): how close each
    fingertip came to the key around t, and how well it stayed there from the onset on
    (the finger that pressed holds the key down; one passing over it on its way, or the
    one that played the key before and is lifting off, is there only briefly). None if
    no hand was seen."""
    frames = stream.near(t, WINDOW_S)
    d = stream.frame_distances(t, pitch, WINDOW_S)
    seen = np.isfinite(d)
    if not seen.any() or d[seen].min() > ON_KEY_MM:  # no hand, or none on the key: a guess, not a call
        return None
    capped = np.where(seen, np.minimum(d, 60.0), 0.0)
    nearest = np.where(seen, capped, np.inf).min(0)
    held = np.array([stream.times[i] >= t - HELD_FROM_S for i in frames])[:, None, None] & seen
    weights = np.where(held.any(0), held, seen)  # no frame from the onset on: all of them
    mean = (capped * weights).sum(0) / np.maximum(weights.sum(0), 1)
    return np.where(seen.any(0), -(0.5 * nearest + 0.5 * mean) / SCALE_MM, -50.0)


def call(scores: np.ndarray, choice: tuple[int, int] | None = None) -> PlayedFinger:
    """The (hand, finger) the scores favour (or ``choice``), with its probability."""
    p = np.exp(scores - scores.max())
    p /= p.sum()
    h, f = choice if choice is not None else np.unravel_index(int(p.argmax()), p.shape)
    return PlayedFinger(HANDS[h], int(f) + 1, round(float(p[h, f]), 3))


def _clear_finger(scores: np.ndarray, margin: float) -> int:
    """The finger (1-5) whose score beats every other by ``margin``, else 0."""
    best, second = np.argsort(scores)[::-1][:2]
    return int(best) + 1 if scores[best] - scores[second] > margin else 0


def _misfit(stream: LandmarkStream, sample: list[tuple[float, int]], offset_s: float) -> float:
    """How badly the fingertips fit the presses: a fingertip should be on the key at the
    onset and should have come there (not been there already: that fits any later time)."""
    cost = 0.0
    for t, pitch in sample:
        at = stream.distances(t + offset_s, pitch, 1 / 60)
        before = stream.distances(t + offset_s - APPROACH_S, pitch, 1 / 60)
        if not np.isfinite(at).any():
            cost += 40.0
            continue
        fit = np.minimum(at, 40.0) + np.where(np.isfinite(before), np.maximum(0.0, 12.0 - before), 0.0)
        cost += float(fit.min())
    return cost


def align(
    stream: LandmarkStream, notes: list[tuple[float, float, int]], search_s: float = 0.3, search_mm: float = 24.0
) -> float:
    """Fit the camera to the keys that were played: the camera clock's offset from the
    MIDI clock (returned, seconds) and the calibration's error along the keyboard (kept
    in ``stream.shift_mm``), each chosen to put some fingertip on every pressed key at
    its onset. ``notes``: (onset, offset, pitch) on the MIDI clock. Short notes time the
    fit best (a held key fits any moment it is held), so they are used where there are enough."""
    short = [(on, p) for on, off, p in notes if off - on < 0.25]
    pool = short if len(short) >= 40 else [(on, p) for on, _, p in notes]
    sample = pool[:: max(1, len(pool) // 300)]
    # the two are searched together: in figured music (an Alberti bass) a clock a beat
    # off fits nearly as well as the right one once the calibration is a few mm out,
    # so settling one first and then the other can end in the wrong valley
    best = (np.inf, 0.0, 0.0)
    for step_s, step_mm, around in ((0.02, 4.0, None), (0.01, 1.0, best)):
        if around is None:
            offsets = np.arange(-search_s, search_s + 1e-9, step_s)
            shifts = np.arange(-search_mm, search_mm + 1e-9, step_mm)
        else:
            offsets = best[1] + np.arange(-2, 3) * step_s
            shifts = best[2] + np.arange(-4, 5) * step_mm
        for s in shifts:
            stream.shift_mm = float(s)
            for o in offsets:
                best = min(best, (_misfit(stream, sample, float(o)), float(o), float(s)))
    stream.shift_mm = best[2]
    return round(best[1], 3)


def attribute(
    keys: list,
    stream: LandmarkStream,
    model,
    offset_s: float = 0.0,
    weight: float = 4.0,
    clear: float = CLEAR,
) -> list[PlayedFinger]:
    """(hand, finger) of every note of ``keys`` (`bridge.fingering.KeyNote`, MIDI clock)
    from the camera and the fingering model together: the camera's evidence picks the
    hand where it is clear (else the note keeps its given hand) and is added to the
    fingering CRF of that hand, whose decoding supplies continuity. Where one fingertip
    is clearly on the key (its score ``clear`` above the next one's) the camera decides
    alone: the fingering model knows what players usually do, the camera what this one did."""
    from bridge.fingering import KeyNote, plan

    ev = [evidence(stream, k.onset + offset_s, k.pitch) for k in keys]
    hands, per_hand, seen = [], [], []
    for k, e in zip(keys, ev):
        hand = k.hand
        if e is not None:
            p = np.exp(e - e.max())
            by_hand = p.sum(1) / p.sum()
            if by_hand.max() > 0.8:
                hand = 1 - int(by_hand.argmax())  # HANDS is (left, right); KeyNote: 0 right, 1 left
        hands.append(hand)
        side = 1 - hand  # index into HANDS
        per_hand.append(None if e is None else weight * (e[side] - np.logaddexp.reduce(e[side])))
        seen.append(_clear_finger(e[side], clear) if e is not None else 0)
    fixed = [KeyNote(k.onset, k.offset, k.pitch, h, k.printed or s) for k, h, s in zip(keys, hands, seen)]
    fingers = plan(fixed, model, substitute=False, evidence=per_hand).fingers
    calls = []
    for h, f, e in zip(hands, fingers, ev):
        conf = 0.0  # the camera did not see this one: the finger is the fingering model's guess
        if e is not None:
            p = np.exp(e - e.max())
            conf = float(p[1 - h, f[0] - 1] / p.sum())
        calls.append(PlayedFinger("left" if h else "right", f[0], round(conf, 3)))
    return calls


class FingerWatcher:
    """Live: which finger played each note, from camera frames as they arrive (the
    engine's side of `attribute`, camera evidence only: a fixed bonus for the planned
    finger made it worse on the synthetic benchmark). A note is decided once frames up to
    WINDOW_S after its onset are in."""

    def __init__(self, calibration: Calibration, offset_s: float = 0.0):
        self.stream = LandmarkStream([], calibration)
        self.offset_s = offset_s
        self.pending: list[tuple[float, int, object]] = []

    def note_on(self, t: float, pitch: int, match: Ref | None, planned: tuple[str, int] | None = None) -> None:
        """A key went down at t; ``planned``: the (hand, finger) suggested for it, which
        the call keeps unless the camera clearly saw another (a near tie between two
        fingertips is no reason to tell a player they used the wrong finger)."""
        self.pending.append((t, pitch, match, planned))

    def add_frame(self, t: float, hands: list[dict]) -> list[tuple[float, int, Ref | None, PlayedFinger | None]]:
        self.stream.append(t, hands)
        self.stream.forget_before(t - 2.0)
        return self._decide(lambda onset: t >= onset + self.offset_s + WINDOW_S)

    def finish(self) -> list[tuple[float, int, Ref | None, PlayedFinger | None]]:
        return self._decide(lambda onset: True)

    def _decide(self, ready) -> list[tuple[float, int, Ref | None, PlayedFinger | None]]:
        out, waiting = [], []
        for item in self.pending:
            t, pitch, match, planned = item
            if not ready(t):
                waiting.append(item)
                continue
            scores = evidence(self.stream, t + self.offset_s, pitch)
            seen = call(scores) if scores is not None else None
            if seen is not None and planned is not None:
                h, f = HANDS.index(planned[0]), planned[1] - 1
                if scores.max() - scores[h, f] < CLEAR:
                    seen = call(scores, (h, f))
            out.append((t, pitch, match, seen))
        self.pending = waiting
        return out
