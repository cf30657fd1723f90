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

from bridge.events import FingerSeen, PlayedFinger
from bridge.keyboard import Calibration

TIPS = (4, 8, 12, 16, 20)
HANDS = ("left", "right")
WINDOW_S = 0.06  # frames this close to the onset show the press
APPROACH_S = 0.12  # a fingertip comes to its key; one that was there this long before fits any moment
SCALE_MM = 9.0  # distance scale of the evidence


class LandmarkStream:
    """Frames of a landmark stream, their fingertips in keyboard millimetres, and the hand
    identity fixed by position: with two hands in view the left one is the left hand."""

    def __init__(self, frames: list[dict], calibration: Calibration):
        self.shift_mm = 0.0  # along the keyboard: what the calibration is off by (see `align`)
        self.calibration = calibration
        self.times: list[float] = []
        self.tips: list[dict[str, np.ndarray]] = []
        for f in frames:
            self.append(float(f["t"]), f.get("hands", []))

    def append(self, t: float, hands: list[dict]) -> None:
        """Add a frame (frames come in time order)."""
        seen = [(h.get("handedness", ""), np.asarray(h["landmarks"], float)) for h in hands]
        if len(seen) == 2:  # labels from the detector swap now and then; positions do not
            seen.sort(key=lambda h: h[1][:, 0].mean())
            seen = [("left", seen[0][1]), ("right", seen[1][1])]
        self.times.append(t)
        self.tips.append(
            {side: self.calibration.key_points(pts[list(TIPS), :2]) for side, pts in seen if side in HANDS}
        )

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
    fingertip came to the key around t, and how long it stayed (a finger passing over the
    key on its way elsewhere touches it only briefly). None if no hand was seen."""
    d = stream.frame_distances(t, pitch, WINDOW_S)
    seen = np.isfinite(d)
    if not seen.any():
        return None
    capped = np.minimum(d, 60.0)
    count = seen.sum(0)
    nearest = capped.min(0)
    mean = np.where(seen, capped, 0.0).sum(0) / np.maximum(count, 1)
    return np.where(count > 0, -(0.5 * nearest + 0.5 * mean) / SCALE_MM, -50.0)


def call(scores: np.ndarray) -> PlayedFinger:
    p = np.exp(scores - scores.max())
    p /= p.sum()
    h, f = np.unravel_index(int(p.argmax()), p.shape)
    return PlayedFinger(HANDS[h], int(f) + 1, round(float(p[h, f]), 3))


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
    offsets = np.arange(-search_s, search_s + 0.005, 0.01)
    shifts = np.arange(-search_mm, search_mm + 0.5, 1.0)
    offset = 0.0
    for _ in range(2):  # the two barely interact: one round each way settles them
        offset = float(offsets[int(np.argmin([_misfit(stream, sample, o) for o in offsets]))])
        costs = []
        for s in shifts:
            stream.shift_mm = float(s)
            costs.append(_misfit(stream, sample, offset))
        stream.shift_mm = float(shifts[int(np.argmin(costs))])
    return offset


def attribute(
    keys: list,
    stream: LandmarkStream,
    model,
    offset_s: float = 0.0,
    weight: float = 4.0,
) -> list[PlayedFinger]:
    """(hand, finger) of every note of ``keys`` (`bridge.fingering.KeyNote`, MIDI clock)
    from the camera and the fingering model together: the camera's evidence picks the
    hand where it is clear (else the note keeps its given hand) and is added to the
    fingering CRF of that hand, whose decoding supplies continuity."""
    from bridge.fingering import KeyNote, plan

    ev = [evidence(stream, k.onset + offset_s, k.pitch) for k in keys]
    hands, per_hand = [], []
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
    fixed = [KeyNote(k.onset, k.offset, k.pitch, h, k.printed) for k, h in zip(keys, hands)]
    fingers = plan(fixed, model, substitute=False, evidence=per_hand).fingers
    calls = []
    for h, f, e in zip(hands, fingers, ev):
        conf = 0.5
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

    def note_on(self, t: float, pitch: int, match) -> None:
        self.pending.append((t, pitch, match))

    def add_frame(self, t: float, hands: list[dict]) -> list[FingerSeen]:
        self.stream.append(t, hands)
        self.stream.forget_before(t - 2.0)
        return self._decide(lambda onset: t >= onset + self.offset_s + WINDOW_S)

    def finish(self) -> list[FingerSeen]:
        return self._decide(lambda onset: True)

    def _decide(self, ready) -> list[FingerSeen]:
        out, waiting = [], []
        for item in self.pending:
            t, pitch, match = item
            if not ready(t):
                waiting.append(item)
                continue
            scores = evidence(self.stream, t + self.offset_s, pitch)
            if scores is not None:
                out.append(FingerSeen(t, pitch, match, call(scores)))
        self.pending = waiting
        return out
