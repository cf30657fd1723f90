"""Structured decoding of fingers: Viterbi over the network's CRF potentials, with the
hard rules of the hand and the player's constraints folded in.

- chord notes (one hand, one onset) take strictly rising fingers from the thumb side;
- printed fingerings are fixed;
- a stretch prior after Parncutt (1997) and Jacobs (2001) scales with hand size and
  applies where the hand must really span an interval: within a chord or while the
  previous note is still held;
- `HandPlan.replan` re-decodes the notes ahead from the finger the player actually used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bridge.fingering.features import CHORD_S

# right-hand finger pairs (a < b), semitones from finger a's key up to finger b's:
# (MinPrac, MinComf, MaxComf, MaxPrac)
SPANS = {
    (1, 2): (-5, -3, 8, 10),
    (1, 3): (-4, -2, 10, 12),
    (1, 4): (-3, -1, 12, 14),
    (1, 5): (-1, 1, 13, 15),
    (2, 3): (1, 1, 3, 5),
    (2, 4): (1, 1, 5, 7),
    (2, 5): (2, 2, 8, 10),
    (3, 4): (1, 1, 2, 4),
    (3, 5): (1, 1, 5, 7),
    (4, 5): (1, 1, 3, 5),
}
HAND_SCALE = {"small": 0.85, "medium": 1.0, "large": 1.15}
HOLD_S = 0.05  # a previous note still down this long after the next onset binds the hand
NEG = -1e9


def stretch_cost(interval: int, scale: float) -> np.ndarray:
    """(5, 5) cost of fingers [a, b] spanning ``interval`` semitones (b's key minus a's) at once."""
    cost = np.zeros((5, 5))
    for a in range(1, 6):
        for b in range(1, 6):
            if a == b:
                cost[a - 1, b - 1] = 0.0 if interval == 0 else 50.0
                continue
            lo_prac, lo_comf, hi_comf, hi_prac = SPANS[(min(a, b), max(a, b))]
            d = interval if a < b else -interval
            hi_comf, hi_prac = hi_comf * scale, hi_prac * scale
            excess = max(0.0, d - hi_comf) + max(0.0, lo_comf - d)
            beyond = max(0.0, d - hi_prac) + max(0.0, lo_prac - d)
            cost[a - 1, b - 1] = excess + 10.0 * beyond
    return cost


_STRETCH = {size: {d: stretch_cost(d, s) for d in range(-30, 31)} for size, s in HAND_SCALE.items()}


def transition_scores(
    pair: np.ndarray,
    onset: np.ndarray,
    offset: np.ndarray,
    pitch: np.ndarray,
    hand_size: str = "medium",
    stretch_weight: float = 1.0,
) -> np.ndarray:
    """Pair potentials with the chord rule and the stretch prior folded in (n-1, 5, 5)."""
    scores = pair.astype(np.float64).copy()
    rising = np.triu(np.ones((5, 5), dtype=bool), 1)
    table = _STRETCH[hand_size]
    for t in range(1, len(pitch)):
        chord = onset[t] - onset[t - 1] <= CHORD_S
        held = offset[t - 1] - onset[t] > HOLD_S
        if chord and pitch[t] != pitch[t - 1]:
            scores[t - 1][~rising] = NEG
        if (chord or held) and stretch_weight:
            d = int(np.clip(pitch[t] - pitch[t - 1], -30, 30))
            scores[t - 1] -= stretch_weight * table[d]
    return scores


def viterbi(unary: np.ndarray, trans: np.ndarray, start: int | None = None) -> np.ndarray:
    """Best state path (0-based) through unary (n, k) and trans (n-1, k, k);
    ``start`` clamps the first state."""
    n, k = unary.shape
    if n == 0:
        return np.zeros(0, dtype=int)
    score = unary[0].astype(np.float64).copy()
    if start is not None:
        score = np.full(k, NEG)
        score[start] = 0.0
    back = np.zeros((n, k), dtype=np.int64)
    states = np.arange(k)
    for t in range(1, n):
        cand = score[:, None] + trans[t - 1]
        back[t] = cand.argmax(0)
        score = cand[back[t], states] + unary[t]
    path = np.empty(n, dtype=np.int64)
    path[-1] = int(score.argmax())
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def feasible(unary: np.ndarray, trans: np.ndarray, path: np.ndarray) -> bool:
    """Whether a state path (0-based) breaks no hard rule: no forbidden finger on a note
    (``unary``: the notes after the first) and no forbidden step between notes."""
    steps = np.arange(len(path) - 1)
    return bool((trans[steps, path[:-1], path[1:]] > NEG / 2).all() and (unary[steps, path[1:]] > NEG / 2).all())


@dataclass
class HandPlan:
    """One hand's decoded fingering (1-5) and the scores to re-plan it from any note."""

    unary: np.ndarray
    trans: np.ndarray
    fingers: np.ndarray

    @classmethod
    def decode(cls, unary: np.ndarray, trans: np.ndarray, fixed: np.ndarray | None = None) -> HandPlan:
        """``fixed``: printed fingers (1-5, 0 where free) that the plan must keep."""
        unary = unary.astype(np.float64).copy()
        if fixed is not None:
            for t in np.flatnonzero(fixed):
                keep = unary[t, fixed[t] - 1]
                unary[t] = NEG
                unary[t, fixed[t] - 1] = keep
        return cls(unary, trans, viterbi(unary, trans) + 1)

    def replan(self, index: int, finger: int, horizon: int = 64) -> np.ndarray | None:
        """The player used ``finger`` on note ``index``: plan the next ``horizon`` notes from
        there, store it, and return the fingers of notes index+1 .. index+horizon; None
        (and the plan kept) when no plan from that finger keeps the hard rules (a 5 on
        the lowest note of a chord leaves its upper notes no finger)."""
        end = min(len(self.fingers), index + horizon + 1)
        unary, trans = self.unary[index:end], self.trans[index : end - 1]
        path = viterbi(unary, trans, start=finger - 1)
        # the clamp is a score, not a wall: a path around it (or through a forbidden step) means none keeps the rules
        if path[0] != finger - 1 or not feasible(unary[1:], trans, path):
            return None
        self.fingers[index:end] = path + 1
        return path[1:] + 1


def finger_clashes(
    fingers: np.ndarray, onset: np.ndarray, offset: np.ndarray, pitch: np.ndarray
) -> list[tuple[int, int]]:
    """(i, j): note j takes the finger of note i while i is held right through j."""
    clashes = []
    for i in range(len(fingers)):
        for j in range(i + 1, len(fingers)):
            if onset[j] >= offset[i] - HOLD_S:
                break
            if (
                onset[j] - onset[i] > CHORD_S
                and offset[j] <= offset[i]
                and fingers[j] == fingers[i]
                and pitch[j] != pitch[i]
            ):
                clashes.append((i, j))
                break
    return clashes


def avoid_clashes(
    plan: HandPlan, onset: np.ndarray, offset: np.ndarray, pitch: np.ndarray, rounds: int = 3
) -> list[int]:
    """Re-decode so that no finger is taken from a key it is still holding; where that is
    impossible, the held note changes finger silently. Returns each note's substitute
    finger (0 for none)."""
    for _ in range(rounds):
        clashes = finger_clashes(plan.fingers, onset, offset, pitch)
        if not clashes:
            break
        for i, j in clashes:
            plan.unary[j, plan.fingers[i] - 1] = NEG
        plan.fingers = viterbi(plan.unary, plan.trans) + 1
    subst = [0] * len(plan.fingers)
    for i, j in finger_clashes(plan.fingers, onset, offset, pitch):
        busy = {
            int(plan.fingers[k])
            for k in range(i + 1, len(plan.fingers))
            if onset[k] < offset[i] and offset[k] > onset[j]
        }
        free = [g for g in range(1, 6) if g != plan.fingers[i] and g not in busy]
        if free:
            subst[i] = min(free, key=lambda g: abs(g - plan.fingers[i]))
    return subst
