"""Vienna 4x22 next to its pianists: each pianist against the mean of the other 21, and a plot
of the model's central rendition against all 22.

    python benchmarks/expression_vienna.py ../shared/data/vienna4x22 [--weights NPZ] [--plot-piece Chopin_op10_no3]
        [--png docs/img/expression_vienna.png] [--json OUT] [--samples 22]

The figures use eval_expression.py's own functions (score table, match reading, features,
Pearson r), imported from ../shared/tools, so they are measured exactly as the yardstick does.
Leave-one-out: velocity, per-onset seconds per quarter and log articulation of the other 21
pianists are averaged per note/onset (over the notes all of them have) and compared with the
held-out one. Spread: do renditions drawn with different style vectors (``--samples`` of
them, seed 0) vary as much as the pianists do? Over the same notes, the spread across the
pianists and across the renditions of each note's velocity and each onset's log seconds
per quarter (standard deviation, mean over notes/onsets), and of each performance's mean
velocity and mean log seconds per quarter (its level and pace); a ratio of 1 is "as varied
as 22 pianists". Needs partitura.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import yardsticks

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--weights")
    ap.add_argument("--plot-piece", default="Chopin_op10_no3")
    ap.add_argument("--png", default=str(ROOT / "docs" / "img" / "expression_vienna.png"))
    ap.add_argument("--json")
    ap.add_argument("--samples", type=int, default=22, help="renditions drawn for the spread (default: %(default)s)")
    a = ap.parse_args()
    ev = yardsticks.load("eval_expression")
    from bridge.expression.render import interpretations, load_network, write_csv
    from bridge.musicxml import load_score

    net = load_network(a.weights)
    out = {}
    for xml, matches in ev.pairs(a.data):
        piece = Path(xml).stem
        score = ev.score_table(xml)
        humans = []
        for m in matches:
            h = {}
            for sid, v in ev.human_table(m).items():
                k = ev.resolve(sid, score)
                if k:
                    h[k] = v
            humans.append(h)
        s = load_score(xml)
        with tempfile.TemporaryDirectory() as tmp:
            drawn = []
            for k, rend in enumerate(interpretations(s, net, None, 1) + interpretations(s, net, 0, a.samples)):
                csv_path = os.path.join(tmp, f"r{k}.csv")
                write_csv(s, rend, csv_path)
                drawn.append(ev.model_table(csv_path))
        model, drawn = drawn[0], drawn[1:]
        common = set(model)
        for h in humans:
            common &= set(h)
        ids = sorted(common, key=lambda k: (score[k][0], score[k][2]))
        feats = [ev.features(h, score, ids) for h in humans]
        mf = ev.features(model, score, ids)
        loo = {"vel_r": [], "ioi_r": [], "art_r": []}
        for i, f in enumerate(feats):
            rest = [g for j, g in enumerate(feats) if j != i]
            mean = tuple(np.nanmean([g[c] for g in rest], axis=0) for c in range(3))
            for k, v in ev.compare(mean, f).items():
                loo[k].append(v)
        model_r = {"vel_r": [], "ioi_r": [], "art_r": []}
        for f in feats:
            for k, v in ev.compare(mf, f).items():
                model_r[k].append(v)
        out[piece] = {
            "notes_common": len(ids),
            "spread_pianists_vs_renditions": spread(feats, [ev.features(d, score, ids) for d in drawn]),
            "pianist_vs_mean_of_others": {k: round(float(np.nanmean(v)), 3) for k, v in loo.items()},
            "model_central_same_notes": {k: round(float(np.nanmean(v)), 3) for k, v in model_r.items()},
        }
        print(piece, json.dumps(out[piece]), flush=True)
        if piece == a.plot_piece:
            plot(piece, feats, mf, score, ids, a.png)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))


def spread(humans: list, drawn: list) -> dict[str, list[float]]:
    """[pianists, renditions, ratio] of the spread of velocity, local tempo, level and pace."""

    def of(feats: list) -> dict[str, float]:
        vel = np.array([f[0] for f in feats])
        lsp = np.log(np.maximum(np.array([f[1] for f in feats]), 1e-3))
        return {
            "velocity": float(vel.std(axis=0).mean()),
            "tempo": float(lsp.std(axis=0).mean()),
            "level": float(vel.mean(axis=1).std()),
            "pace": float(lsp.mean(axis=1).std()),
        }

    h, d = of(humans), of(drawn)
    return {k: [round(h[k], 3), round(d[k], 3), round(d[k] / max(h[k], 1e-9), 2)] for k in h}


def plot(piece, feats, mf, score, ids, png) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    oq = np.array([score[i][0] for i in ids])
    uq = np.unique(oq)
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True)
    # velocity: the mean per score onset (the loudness of each chord)
    for k, f in enumerate(feats):
        per = [np.mean(f[0][oq == u]) for u in uq]
        a1.plot(uq, per, color="0.75", lw=0.6, label="22 pianists" if k == 0 else None)
        a2.plot(uq[:-1], 60 / np.maximum(f[1], 1e-3), color="0.75", lw=0.6)
    mean_v = np.mean([[np.mean(f[0][oq == u]) for u in uq] for f in feats], axis=0)
    a1.plot(uq, mean_v, color="k", lw=1.5, label="mean of the 22")
    a1.plot(uq, [np.mean(mf[0][oq == u]) for u in uq], color="C1", lw=1.5, label="model (central rendition)")
    a2.plot(uq[:-1], 60 / np.maximum(np.mean([f[1] for f in feats], axis=0), 1e-3), color="k", lw=1.5)
    # r ignores the overall tempo: the model's curve is drawn at the pianists' median tempo
    scale = np.median(np.concatenate([f[1] for f in feats])) / np.median(mf[1])
    a2.plot(uq[:-1], 60 / np.maximum(mf[1] * scale, 1e-3), color="C1", lw=1.5)
    a1.set_ylabel("velocity (mean per onset)")
    a2.set_ylabel("tempo (quarters/min, per IOI;\nmodel at the pianists' median)")
    a2.set_ylim(0, np.percentile(60 / np.maximum(np.concatenate([f[1] for f in feats]), 1e-3), 99) * 1.2)
    a2.set_xlabel("score position (quarters)")
    a1.legend(loc="upper right")
    a1.set_title(f"{piece}: the model's central rendition against the 22 Vienna pianists (never trained on)")
    fig.tight_layout()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    main()
