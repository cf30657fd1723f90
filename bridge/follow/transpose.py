"""Is the keyboard transposed? An octave-shift button or a digital piano's transpose
setting moves every key by the same interval, and the follower, which knows only the
written pitches, turns a faultless performance into hundreds of wrong notes and jumps.

``TranspositionWatch`` looks only while the presses are mostly not correct. It asks, for
each interval a keyboard is commonly set to, whether the last presses, moved back by it,
are the score's notes in their order somewhere (an alignment that moves at most STEP
events per press, from any event on). A shift is taken where it explains nearly every
press while the one in use explains at most half, at five looks in a row: a player's
wrong notes are not one interval off everywhere, music played elsewhere in the score is
explained as it is, and other music (or none), or a run the score does not have, fits
some shift by chance only for a few looks (docs/benchmarks.md gives the rates). Pitches
are MIDI numbers; no time is needed.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from bridge.score import Score

# the intervals a keyboard is set to: octave shifts, and a digital piano's transpose
SHIFTS = (0, 12, -12, 24, -24, 1, -1, 2, -2, 3, -3)
PRESSES = 24  # the presses weighed
TROUBLE, RECENT = 5, 8  # look once this many of the RECENT last presses were not correct ...
EVERY = 4  # ... and again after this many more
# a shift is taken where it explains EXPLAINS presses, and the one in use at most FEW, at
# LOOKS looks in a row (docs/benchmarks.md: what chance alignments of other music reach)
EXPLAINS, FEW, LOOKS = PRESSES - 2, PRESSES // 2, 5
STEP = 2  # events a press may move on from the one before


class TranspositionWatch:
    """Per press, whether the keyboard's transposition changed (``shift``: semitones a
    key sounds above the one written; played pitch minus ``shift`` is the written one)."""

    def __init__(self, score: Score, has: np.ndarray | None = None):
        self.has = pitch_table(score) if has is None else has  # ``score``'s, where the caller has it
        self.events = len(score.events)
        self.shift = 0
        self.window = PressWindow(PRESSES, TROUBLE, RECENT, EVERY)
        self.candidate: int | None = None  # the shift the last looks found ...
        self.looks = 0  # ... at this many looks in a row

    def press(self, pitch: int, correct: bool) -> int | None:
        """Take a press (the key's pitch as sent, and whether it was taken as correct); the
        new shift where it changed, else None."""
        if not self.window.add(pitch, correct):
            return None
        found = self.explained([k for k in SHIFTS if k != self.shift], EXPLAINS)
        best = max(found, key=found.get) if found and not self.explained([self.shift], FEW + 1) else None
        self.looks = self.looks + 1 if best is not None and best == self.candidate else 1
        self.candidate = best
        if best is None or self.looks < LOOKS:
            return None
        self.shift, self.candidate = best, None
        self.window.clear()
        return best

    def explained(self, shifts: list[int], need: int) -> dict[int, int]:
        """The shifts under which ``need`` or more of the weighed presses, moved back by the
        shift, are notes of the score in their order (see `in_order`); with how many."""
        found = in_order(self.has, self.events, list(self.window.presses), shifts, need)
        return {k: n for k, (n, _) in found.items()}


class PressWindow:
    """The last ``size`` presses (keys) a watch weighs, and when to look at them: once
    ``trouble`` of the last ``recent`` were not correct, then every ``every`` presses."""

    def __init__(self, size: int, trouble: int, recent: int, every: int) -> None:
        self.presses: deque[int] = deque(maxlen=size)
        self.wrong: deque[bool] = deque(maxlen=recent)
        self.trouble, self.every = trouble, every
        self.wait = 0  # presses before the next look

    def add(self, pitch: int, correct: bool) -> bool:
        """Take a press; True where it is time to look."""
        self.presses.append(pitch)
        self.wrong.append(not correct)
        self.wait = max(self.wait - 1, 0)
        if self.wait or len(self.presses) < self.presses.maxlen or sum(self.wrong) < self.trouble:
            return False
        self.wait = self.every
        return True

    def clear(self) -> None:
        self.presses.clear()
        self.wrong.clear()


def pitch_table(score: Score) -> np.ndarray:
    """Per event of ``score``, its pitches: (events + STEP * PRESSES, 129) booleans, padded
    past the end and with a column 128 never set."""
    has = np.zeros((len(score.events) + STEP * PRESSES, 129), bool)
    for e, ev in enumerate(score.events):
        for k in ev.notes:
            has[e, score.notes[k].pitch] = True
    return has


def in_order(
    has: np.ndarray, events: int, presses: list[int], shifts: list[int], need: int
) -> dict[int, tuple[int, int]]:
    """The shifts under which ``need`` or more of ``presses`` (at most PRESSES), moved back
    by the shift, are notes of the score in their order: each on the event of the one
    before or up to STEP events after it (a chord's notes share an event, a note left out
    skips one), from an event where the first press is a note. Per such shift: how many,
    and the event of the last press placed (of equally good alignments, the one starting
    first). ``has``: the score's `pitch_table`."""
    written = np.array(presses)[:, None] - np.array(shifts)  # (presses, shifts)
    written = np.where((written >= 0) & (written < 128), written, 128)  # 128: a column never set
    # one alignment per (start, shift), in the order of their starts (np.nonzero takes twice as long)
    start, which = np.divmod(np.flatnonzero(has[:events, written[0]]), len(shifts))
    # per event after its start (rows) and alignment (columns): most matched. Alignments run
    # along the rows, thousands of them at first: numpy then works along long rows
    dp = np.zeros((1, len(start)), int)
    for i in range(1, len(presses)):
        # the events reached so far, and STEP more
        dp = np.concatenate([dp, np.full((STEP, dp.shape[1]), -PRESSES)])
        here = has[start + np.arange(len(dp))[:, None], written[i, which]]
        # a key struck again is a later note: a chord holds a pitch once
        reach = np.full_like(dp, -PRESSES) if presses[i] == presses[i - 1] else dp.copy()
        for d in range(1, STEP + 1):
            np.maximum(reach[d:], dp[:-d], out=reach[d:])
        dp = np.maximum(dp, np.where(here, reach + 1, -PRESSES))
        alive = dp.max(axis=0) + len(presses) - i >= need  # an alignment that can still get there
        start, which, dp = start[alive], which[alive], dp[:, alive]
        if not len(start):
            break
    dp += 1  # the first press
    best, end = dp.max(axis=0, initial=0), start + dp.argmax(axis=0)
    found: dict[int, tuple[int, int]] = {}
    for r in np.argsort(-best, kind="stable"):  # alignments are in the order of their starts
        if best[r] < need:
            break
        found.setdefault(shifts[which[r]], (int(best[r]), int(end[r])))
    return found


def describe(shift: int) -> str:
    """A ``transposed`` status's detail: the shift first, then what it means."""
    if shift == 0:
        return "0: the keys sound as written again"
    way = "higher" if shift > 0 else "lower"
    size = {1: "a semitone", 12: "an octave", 24: "two octaves"}.get(abs(shift), f"{abs(shift)} semitones")
    return f"{shift:+d}: the keyboard sounds {size} {way} than the keys written; followed as written"
