"""A simulated camera for `pianobridge demo --camera-sim`: the landmark stream a camera
above the keys would give while a bundled practice run is played, by a player who
takes the suggested fingering except on a few notes, so that a user sees fingering
corrections without a camera (pure: events in, frames out).
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.events import InputEvent, NoteOff, NoteOn, NoteVerdict, PlayedFinger, Ref
from bridge.fingerid import WINDOW_S
from bridge.handsim import Camera, Noise, PlayedNote, render
from bridge.keyboard import Calibration
from bridge.replay import apply, new_engine
from bridge.score import Score

CHORD_S = 0.05  # notes this close together are a chord: a finger change there is left alone
SAME_KEY_S = 0.6  # a key struck again this soon may change fingers on it: left alone too
DECIDED_S = WINDOW_S + 1 / 30  # the first frame at 30 fps that far past the onset
NOISE = Noise(jitter_px=2.0, miss=0.02, occlude=0.03)  # a good camera in a lit room; one clock


@dataclass(frozen=True)
class SimulatedCamera:
    frames: list[dict]  # the landmark stream, times on the performance's clock
    calibration: Calibration
    other_fingers: list[tuple[Ref, int, int]]  # (note, finger used, finger suggested) where they differ
    played: dict[tuple[float, int], tuple[str, int]]  # (onset, pitch) -> the hand and finger that played it


def practice_camera(score: Score, events: list[InputEvent], deviations: int = 6, seed: int = 0) -> SimulatedCamera:
    """Frames for ``events`` played on ``score``: every key pressed by the suggested
    finger of the hand the plan gives it, except ``deviations`` single correct notes
    spread over the run, played with a neighbouring finger; after each of those the
    player follows the re-planned fingering, as the bridge advises."""
    engine = new_engine(score, fingering=True)
    if engine.fingering is None:
        from bridge.errors import UserError

        raise UserError("--camera-sim needs the fingering weights (model/fingering.npz)")
    presses = [(ev.t, ev.pitch) for ev in events if isinstance(ev, NoteOn) and ev.velocity > 0]
    onsets = [t for t, _ in presses]
    # a finger change shows where the note stands alone: no chord, and no other finger on
    # the same key just before or after (a repeated note changes fingers on one key)
    alone = {
        t
        for k, (t, pitch) in enumerate(presses)
        if all(
            abs(t - u) > CHORD_S and (q != pitch or abs(t - u) > SAME_KEY_S)
            for u, q in presses[max(0, k - 8) : k + 9]
            if u != t
        )
    }
    step = max(1, len(onsets) // (deviations + 1))
    wanted = {round(onsets[k], 6) for k in range(step, len(onsets), step)}
    played: dict[tuple[float, int], tuple[str, int]] = {}
    other: list[tuple[Ref, int, int]] = []
    pending_deviation = False
    calls: list[tuple] = []  # the live bridge hears of a finger once the frames after the onset are in
    for ev in _verdicts(engine, events, calls):
        pending_deviation |= round(ev.t, 6) in wanted
        hand = ev.hand or ("right" if ev.pitch >= 60 else "left")
        told = ev.suggested_finger.split("_")[0] if ev.suggested_finger else "3"
        finger = int(told)
        if pending_deviation and ev.verdict == "correct" and ev.t in alone and len(other) < deviations:
            finger = finger + 1 if finger < 5 else finger - 1
            pending_deviation = False
            other.append((ev.match, finger, int(told)))
        if ev.match is not None:  # the engine re-plans as the live bridge will
            calls.append((ev.t, ev.pitch, ev.match, PlayedFinger(hand, finger, 1.0)))
        played[(ev.t, ev.pitch)] = (hand, finger)
    notes, down = [], {}
    for ev in events:
        if isinstance(ev, NoteOn) and ev.velocity > 0:
            down.setdefault(ev.pitch, []).append(ev.t)
        elif isinstance(ev, NoteOff | NoteOn) and down.get(ev.pitch):
            on = down[ev.pitch].pop(0)
            hand, finger = played.get((on, ev.pitch), ("right" if ev.pitch >= 60 else "left", 3))
            notes.append(PlayedNote(on, max(ev.t, on + 0.05), ev.pitch, hand, finger))
    camera = Camera()
    return SimulatedCamera(render(notes, camera, NOISE, seed=seed), camera.calibration(), other, played)


def _verdicts(engine, events: list[InputEvent], calls: list[tuple]):
    """The engine's verdicts on ``events``; before each input, the camera calls (appended
    to ``calls`` by the caller) whose frames would be in by then reach the engine."""
    for ev in events:
        while calls and calls[0][0] + DECIDED_S <= ev.t:
            engine.finger_played(*calls.pop(0))
        engine, out = apply(engine, ev)
        yield from (o for o in out if isinstance(o, NoteVerdict))
