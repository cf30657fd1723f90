"""Fingering: which hand and finger plays each note (pure core: notes in, fingers out).

`plan` fingers a list of `KeyNote` with a trained `FingeringModel`; the result keeps
one `HandPlan` per hand, so a live caller can `replan` from the finger the player used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from bridge.fingering.decode import HandPlan, avoid_clashes, transition_scores
from bridge.fingering.features import hand_order, mirror, note_features
from bridge.fingering.network import FingeringModel

if TYPE_CHECKING:
    from bridge.score import Score

RIGHT, LEFT = 0, 1
DEFAULT_QPM = 100.0


@dataclass(frozen=True)
class KeyNote:
    """A note to finger: seconds, MIDI pitch, hand (0 right, 1 left), printed finger (0 none)."""

    onset: float
    offset: float
    pitch: int
    hand: int
    printed: int = 0


@dataclass
class Fingering:
    """Fingers for notes in input order; ``plans[hand]`` re-plans a hand live."""

    fingers: list[tuple[int, ...]]  # (finger,) or (finger, substitute)
    plans: dict[int, HandPlan] = field(default_factory=dict)
    order: dict[int, np.ndarray] = field(default_factory=dict)  # plan position -> note index
    # note index -> (hand, plan position), built on first use: the live engine asks per key press
    _where: dict[int, tuple[int, int]] = field(default_factory=dict, init=False, repr=False)

    def where(self, note: int) -> tuple[int, int]:
        """The hand (RIGHT or LEFT) whose plan holds note ``note``, and its place in that plan."""
        if not self._where:
            self._where = {int(i): (hand, k) for hand, order in self.order.items() for k, i in enumerate(order)}
        if note not in self._where:
            raise IndexError(f"no note {note}")
        return self._where[note]

    def hand_of(self, note: int) -> int:
        """The hand (RIGHT or LEFT) whose plan holds note ``note``."""
        return self.where(note)[0]

    def replan(self, note: int, finger: int, horizon: int = 64) -> dict[int, int] | None:
        """The player used ``finger`` on note ``note``: re-plan the notes ahead in that hand.
        Returns {note index: finger} for the next ``horizon`` notes of the hand, in
        playing order (and updates ``fingers``); None when no plan from that finger keeps
        the decoder's rules (the plan stays as it was)."""
        hand, pos = self.where(note)
        order = self.order[hand]
        ahead = self.plans[hand].replan(pos, finger, horizon)
        if ahead is None:
            return None
        planned = {int(order[pos + 1 + k]): int(f) for k, f in enumerate(ahead)}
        self.fingers[note] = (finger,)
        for i, f in planned.items():
            self.fingers[i] = (f,)
        return planned


def hand_arrays(notes: list[KeyNote], hand: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(note indices in playing order, onset, offset, mirrored-for-left pitch) of one hand."""
    idx = np.array([i for i, n in enumerate(notes) if n.hand == hand], dtype=int)
    onset = np.array([notes[i].onset for i in idx], dtype=float)
    offset = np.array([notes[i].offset for i in idx], dtype=float)
    pitch = np.array([notes[i].pitch for i in idx], dtype=int)
    if hand == LEFT:
        pitch = mirror(pitch)
    order = hand_order(onset, pitch)
    return idx[order], onset[order], offset[order], pitch[order]


def plan(
    notes: list[KeyNote],
    model: FingeringModel,
    hand_size: str = "medium",
    substitute: bool = True,
    evidence: list[np.ndarray | None] | None = None,
) -> Fingering:
    """Finger every note: printed fingers kept, the rest decoded around them.
    ``evidence``: per note, log-likelihoods (5,) of the fingers from elsewhere (the
    camera), added to the model's scores; None where there is none."""
    result = Fingering([()] * len(notes))
    for hand in (RIGHT, LEFT):
        idx, onset, offset, pitch = hand_arrays(notes, hand)
        if len(idx) == 0:
            continue
        unary, pair = model.potentials(note_features(onset, offset, pitch))
        if evidence is not None:
            for k, i in enumerate(idx):
                if evidence[i] is not None:
                    unary[k] = unary[k] + evidence[i]
        trans = transition_scores(pair, onset, offset, pitch, hand_size, model.info.get("stretch_weight", 1.0))
        fixed = np.array([notes[i].printed for i in idx], dtype=int)
        hp = HandPlan.decode(unary, trans, fixed)
        subst = avoid_clashes(hp, onset, offset, pitch) if substitute else [0] * len(idx)
        for k, i in enumerate(idx):
            result.fingers[i] = (int(hp.fingers[k]), subst[k]) if subst[k] else (int(hp.fingers[k]),)
        result.plans[hand] = hp
        result.order[hand] = idx
    return result


def score_keys(score: Score) -> list[KeyNote]:
    """The score's notes as `KeyNote`, in seconds at the tempo marks (100 qpm without one)."""
    keys = []
    for n in score.notes:
        sec = 60.0 / (n.tempo_qpm or DEFAULT_QPM)
        printed = n.fingering[0].split("_")[0] if n.fingering else ""
        keys.append(
            KeyNote(
                n.onset_q * sec,
                (n.onset_q + max(n.duration_q, 0.125)) * sec,
                n.pitch,
                LEFT if n.hand == "left" else RIGHT,
                int(printed) if printed.isdigit() and 1 <= int(printed) <= 5 else 0,
            )
        )
    return keys


def plan_score(score: Score, model: FingeringModel, hands_model: FingeringModel | None = None) -> Fingering:
    """The fingering of every score note (see `suggest_for_score`), kept whole so that it
    can be re-planned live from the finger a player used."""
    keys = score_keys(score)
    if hands_model is not None and all(n.staff == 1 for n in score.notes) and len({n.part for n in score.notes}) == 1:
        from bridge.fingering.hands import infer_hands

        hands = infer_hands(
            *(np.array([getattr(k, a) for k in keys]) for a in ("onset", "offset", "pitch")), hands_model
        )
        keys = [KeyNote(k.onset, k.offset, k.pitch, int(h), k.printed) for k, h in zip(keys, hands)]
    return plan(keys, model)


def finger_text(fingers: tuple[int, ...]) -> str:
    """A planned finger as the note events give it: "3", or "3_1" for a substitution."""
    return "_".join(map(str, fingers))


def suggest_for_score(score: Score, model: FingeringModel, hands_model: FingeringModel | None = None) -> list[str]:
    """A finger per score note as text ("3", "3_1"). ``hands_model`` re-assigns the hands
    of a single-staff score (whose hands the score model only guesses from pitch)."""
    return [finger_text(f) for f in plan_score(score, model, hands_model).fingers]
