"""Per-note input features for the fingering network, from one hand's notes.

Left-hand notes are mirrored around D4 (``pitch -> 124 - pitch``) before anything else:
the black keys are symmetric about D, so a mirrored left hand looks like a right hand
(thumb side low) and one network serves both hands with twice the training data.
"""

from __future__ import annotations

import numpy as np

MIRROR_AXIS = 124  # 2 * D4: D is the keyboard's axis of symmetry
CHORD_S = 0.03  # onsets closer than this are one chord
_BLACK = np.array([0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1, 0], dtype=bool)
N_FEATURES = 71


def mirror(pitch: np.ndarray) -> np.ndarray:
    return MIRROR_AXIS - pitch


def is_black(pitch: np.ndarray) -> np.ndarray:
    return _BLACK[np.asarray(pitch) % 12]


def hand_order(onset: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """Indices that put one hand's notes in playing order: by chord, then by (mirrored) pitch."""
    by_onset = np.argsort(onset, kind="stable")
    group = np.empty(len(onset), dtype=int)
    group[by_onset] = chord_groups(np.asarray(onset)[by_onset])
    return np.lexsort((pitch, group))


def chord_groups(onset: np.ndarray) -> np.ndarray:
    """Chord number of each note of an onset-sorted sequence (a new chord after a gap > CHORD_S)."""
    if len(onset) == 0:
        return np.zeros(0, dtype=int)
    group = np.zeros(len(onset), dtype=int)
    start = onset[0]
    for i in range(1, len(onset)):
        if onset[i] - start > CHORD_S:
            start = onset[i]
            group[i] = group[i - 1] + 1
        else:
            group[i] = group[i - 1]
    return group


def note_features(onset: np.ndarray, offset: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """Features (n, N_FEATURES) of one hand's notes, already in `hand_order` and mirrored.

    Parameters
    ----------
    onset, offset : seconds, shape (n,)
    pitch : MIDI numbers (mirrored for the left hand), shape (n,)
    """
    n = len(pitch)
    pitch = np.asarray(pitch, dtype=int)
    onset = np.asarray(onset, dtype=float)
    cols: list[np.ndarray] = [is_black(pitch)[:, None].astype(float)]

    def shifted(a: np.ndarray, k: int, fill: float) -> np.ndarray:
        out = np.full(n, fill, dtype=float)
        if k > 0 and n > k:
            out[:-k] = a[k:]
        elif k < 0 and n > -k:
            out[-k:] = a[:k]
        return out

    valid = {k: shifted(np.ones(n), k, 0.0) for k in (-4, -3, -2, -1, 1, 2, 3, 4)}
    for k in (-1, 1):
        d = np.clip(shifted(pitch.astype(float), k, 0.0) - pitch, -12, 12).astype(int)
        onehot = np.zeros((n, 25))
        onehot[np.arange(n), d + 12] = valid[k]
        cols.append(onehot)
    for k in (-4, -3, -2, 2, 3, 4):
        d = np.clip(shifted(pitch.astype(float), k, 0.0) - pitch, -24, 24) / 12
        cols.append((d * valid[k])[:, None])
    black = is_black(pitch).astype(float)
    for k in (-2, -1, 1, 2):
        cols.append((shifted(black, k, 0.0) * valid[k])[:, None])
    group = chord_groups(onset)
    gstart = np.r_[0, np.flatnonzero(np.diff(group)) + 1]
    gsize = np.diff(np.r_[gstart, n])
    size = gsize[group]
    rank = np.arange(n) - gstart[group]
    cols.append(np.stack([shifted(group, -1, -1) == group, shifted(group, 1, -1) == group], 1).astype(float))
    cols.append(np.stack([np.minimum(size, 5) / 5, rank / np.maximum(size - 1, 1)], 1))
    gonset = onset[gstart]
    gap_prev = np.r_[np.inf, np.diff(gonset)][group]
    gap_next = np.r_[np.diff(gonset), np.inf][group]
    cols.append(np.stack([_log_gap(gap_prev), _log_gap(gap_next)], 1))
    cols.append(_log_gap(np.maximum(np.asarray(offset, dtype=float) - onset, 0.0))[:, None])
    cols.append(((pitch - 62) / 24.0)[:, None])
    cols.append(np.stack([valid[-1] == 0, valid[1] == 0], 1).astype(float))
    x = np.concatenate(cols, 1)
    assert x.shape[1] == N_FEATURES
    return x.astype(np.float32)


def _log_gap(gap: np.ndarray) -> np.ndarray:
    # a long rest and the edge of the piece look alike: both free the hand
    return np.log1p(np.minimum(gap, 4.0) / 0.05) / 4.5
