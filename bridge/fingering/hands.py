"""Hand separation: which hand plays each note when the score or MIDI does not say.

The same kind of network as for fingers, with two states (0 right, 1 left), runs over
all notes in (chord, pitch) order; decoding keeps every chord split at one pitch, the
left hand below the right, and neither hand spanning a wide gap inside a chord.
"""

from __future__ import annotations

import numpy as np

from bridge.fingering.decode import NEG, viterbi
from bridge.fingering.features import CHORD_S, hand_order, note_features
from bridge.fingering.network import FingeringModel

HANDS_WEIGHTS = "hands.npz"


MAX_GAP = 15  # semitones between neighbouring notes of one hand in one chord


def hand_transitions(pair: np.ndarray, onset: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """Pair potentials (n-1, 2, 2) with right-then-left inside a chord ruled out, and a
    chord's neighbouring notes more than MAX_GAP apart split between the hands."""
    trans = pair.astype(np.float64).copy()
    chord = np.diff(onset) <= CHORD_S
    step = np.diff(pitch)
    trans[chord & (step > 0), 0, 1] = NEG
    wide = chord & (step > MAX_GAP)
    trans[wide, 0, 0] = NEG
    trans[wide, 1, 1] = NEG
    return trans


def infer_hands(onset: np.ndarray, offset: np.ndarray, pitch: np.ndarray, model: FingeringModel) -> np.ndarray:
    """Hand (0 right, 1 left) of each note, in the order given."""
    onset, offset, pitch = (np.asarray(a) for a in (onset, offset, pitch))
    order = hand_order(onset, pitch)
    unary, pair = model.potentials(note_features(onset[order], offset[order], pitch[order]))
    path = viterbi(unary, hand_transitions(pair, onset[order], pitch[order]))
    hands = np.empty(len(order), dtype=int)
    hands[order] = path
    return hands
