"""Calibrate the assessment's expected ranges on the validation split (numpy; after training).

The central rendition is a mean: its phrases are smoother than any pianist's. How far real
phrases fall from it is measured here, on the validation performances (never trained on):
for each statistic of :func:`bridge.expression.assess.passage_stats`, the 10th and 90th
percentiles of (human - central), or of log(human / central) for range and tempo. They are
stored in the weights file's recipe (``calibration``), and ``Assessor.band`` adds them to the
central value of any phrase.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bridge.expression.assess import RATIO_STATS, Assessor
from bridge.expression.data import Performance, Piece
from bridge.expression.network import ExpressionNetwork
from bridge.expression.render import Inputs

PHRASES_PER_PERFORMANCE = 12


def inputs_of(piece: Piece) -> Inputs:
    t = piece.tree
    grace = piece.feats[:, 4] > 0  # the grace column of note_features
    return Inputs(piece.feats, t, t.beat, t.beat_measure, t.measure_phrase, piece.onset_q, piece.duration_q, grace)


def played_of(piece: Piece, perf: Performance) -> dict[int, tuple[float, float, int]]:
    """The performance's notes back in seconds from its targets (tempo curve, timing
    deviation, articulation): what the assessment takes."""
    t = piece.tree
    lsp = perf.log_spq.copy()
    ok = ~np.isnan(lsp)
    lsp[~ok] = np.interp(np.flatnonzero(~ok), np.flatnonzero(ok), lsp[ok])
    spq = np.exp(lsp)
    span_q = np.diff(np.append(t.beat_start_q, t.beat_start_q[-1] + t.beat_len_q[-1]))
    beat_t = np.concatenate([[0.0], np.cumsum(spq * span_q)])[:-1]
    b = t.beat
    on = beat_t[b] + (piece.onset_q - t.beat_start_q[b]) * spq[b] + perf.dev * spq[b] * t.beat_len_q[b]
    dur = np.where(np.isnan(perf.art), 0.1, np.exp(perf.art) * spq[b] * np.maximum(piece.duration_q, 1e-3))
    keep = np.flatnonzero(~np.isnan(perf.velocity) & ~np.isnan(on))
    return {int(i): (float(on[i]), float(on[i] + dur[i]), int(perf.velocity[i])) for i in keep}


def calibrate(
    weights: Path, pieces: list[Piece], perfs: list[Performance], val: list[int], seed: int = 0
) -> dict[str, list[float]]:
    """Measure the residual percentiles on validation performances and write them into ``weights``."""
    net = ExpressionNetwork.load(weights)
    rng = np.random.default_rng(seed)
    res: dict[str, list[float]] = {}
    for k in val:
        perf = perfs[k]
        piece = pieces[perf.piece]
        if np.all(np.isnan(perf.log_spq)):
            continue
        a = Assessor(inputs_of(piece), net)
        played = played_of(piece, perf)
        ks = rng.permutation(len(a.phrases))[:PHRASES_PER_PERFORMANCE]
        for ph in ks:
            if np.isnan(a.assess_phrase(int(ph), played).score):
                continue
            mine, centre = a.last_stats
            for key, v in mine.items():
                c = centre[key]
                if np.isnan(v) or np.isnan(c) or (key in RATIO_STATS and (v <= 0 or c <= 0)):
                    continue
                res.setdefault(key, []).append(float(np.log(v / c)) if key in RATIO_STATS else v - c)
    cal = {
        key: [round(float(np.percentile(v, 10)), 4), round(float(np.percentile(v, 90)), 4)] for key, v in res.items()
    }
    cal["phrases"] = len(res.get("level", []))
    with np.load(weights, allow_pickle=False) as z:
        arrays = {name: z[name] for name in z.files}
    recipe = json.loads(str(arrays["recipe"]))
    recipe["calibration"] = cal
    arrays["recipe"] = np.array(json.dumps(recipe))
    tmp = weights.with_name(weights.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(weights)
    return cal
