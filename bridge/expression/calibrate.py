"""After training (numpy): the assessment's expected ranges, and the distribution of styles.

:func:`fit_style` measures how pianists of one piece differ in style (on the training split)
so that drawn interpretations vary as much as real ones, and places the central rendition
at the centre of the styles (see its docstring).

The central rendition is a mean: its phrases are smoother than any pianist's. How far real
phrases fall from it is measured here, on the validation performances (never trained on):
for each statistic of :func:`bridge.expression.assess.passage_stats`, the 10th and 90th
percentiles of (human - central), or of log(human / central) for range and tempo. They are
stored in the weights file's recipe (``calibration``), and ``Assessor.band`` adds them to the
central value of any phrase. The chord spread of those phrases (how far apart their chords'
notes are struck) is stored as it is, at every 5th percentile: ``Assessor.together`` places a
phrase's spread among them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bridge.errors import UserError
from bridge.expression.assess import RATIO_STATS, SPREAD_LEVELS, Assessor
from bridge.expression.data import Performance, Piece, chunk_arrays, usable
from bridge.expression.network import ExpressionNetwork, perf_beat_features
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
    spreads: list[float] = []
    for k in val:
        perf = perfs[k]
        piece = pieces[perf.piece]
        if np.all(np.isnan(perf.log_spq)):
            continue
        a = Assessor(inputs_of(piece), net)
        played = played_of(piece, perf)
        ks = rng.permutation(len(a.phrases))[:PHRASES_PER_PERFORMANCE]
        for ph in ks:
            phrase = a.assess_phrase(int(ph), played)
            if np.isnan(phrase.score):
                continue
            if not np.isnan(phrase.chord_spread_ms):
                spreads.append(phrase.chord_spread_ms)
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
    if spreads:  # not a residual: how far apart pianists strike a chord's notes does not follow the model
        cal["chord_spread_ms"] = [round(float(x), 2) for x in np.percentile(spreads, 100 * SPREAD_LEVELS)]
    write_recipe_entry(weights, "calibration", cal)
    return cal


def within_covariance(mus: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Covariance of the rows of ``mus`` around their own group's mean (pooled over groups,
    each group's mean costing one degree of freedom); groups of one row add nothing."""
    dev, dof = [], 0
    for g in np.unique(groups):
        m = mus[groups == g]
        dev.append(m - m.mean(0))
        dof += len(m) - 1
    d = np.concatenate(dev)
    return d.T @ d / max(dof, 1)


def fit_style(
    weights: Path, pieces: list[Piece], perfs: list[Performance], train: list[int], chunk_beats: int
) -> list[dict[str, list]]:
    """Fit each member's distribution of styles and write it into ``weights`` (``style``).

    The style vector of a passage's performance is its posterior mean; what varies between
    pianists is how the posterior means of one passage differ across its performances. Over
    the training pieces with two performances or more, in passages of ``chunk_beats`` beats
    (as training draws them): the mean of all posterior means (the centre, which the central
    rendition plays), and the covariance of each performance around its passage's mean plus
    the mean posterior variance (the law of total variance). A style drawn from N(0, I)
    instead varies the pace about three times as much as 22 pianists of one piece do."""
    net = ExpressionNetwork.load(weights)
    by_piece: dict[int, list[int]] = {}
    for k in train:
        by_piece.setdefault(perfs[k].piece, []).append(k)
    rows: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(net.members)]
    groups: list[int] = []
    for p, ks in sorted(by_piece.items()):
        if len(ks) < 2:
            continue
        piece = pieces[p]
        nb = piece.tree.n_beats
        for b0 in range(0, max(nb - chunk_beats, 0) + 1, chunk_beats):
            chunks = [chunk_arrays(piece, perfs[k], b0, min(b0 + chunk_beats, nb)) for k in ks]
            chunks = [c for c in chunks if usable(c)]
            if len(chunks) < 2:
                continue
            c0 = chunks[0]  # the same passage: the score's arrays are every chunk's
            nbc = int(c0.beat.max()) + 1
            for m, (_, b) in enumerate(net.encode_score(c0.x, c0.beat, c0.beat_bar, c0.bar_phr)):
                for c in chunks:
                    real = perf_beat_features(c.vel, c.dev, c.art, c.log_spq, c0.x[:, 0], c0.beat, nbc, c.played)
                    rows[m].append(net.posterior(m, b, real))
            groups.extend([len(groups)] * len(chunks))
    if not groups:
        raise UserError("no training piece has two performances: the styles cannot be fitted")
    style = []
    for member in rows:
        mus = np.array([mu for mu, _ in member])
        var = np.exp(np.array([lv for _, lv in member])).mean(0)
        cov = within_covariance(mus, np.array(groups)) + np.diag(var)
        style.append({"mean": np.round(mus.mean(0), 5).tolist(), "cov": np.round(cov, 6).tolist(),
                      "passages": len(set(groups)), "performances": len(member)})  # fmt: skip
    write_recipe_entry(weights, "style", style)
    return style


def write_recipe_entry(weights: Path, key: str, value) -> None:
    """Set ``recipe[key]`` in a weights file (written whole, then moved into place)."""
    with np.load(weights, allow_pickle=False) as z:
        arrays = {name: z[name] for name in z.files}
    recipe = json.loads(str(arrays["recipe"]))
    recipe[key] = value
    arrays["recipe"] = np.array(json.dumps(recipe))
    tmp = weights.with_name(weights.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(weights)
