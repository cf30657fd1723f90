"""What the performance stream adds: predicting a phrase from the score alone, or from the score
and the player's previous 32 beats (the gated cross-attention), on the validation performances.

    python benchmarks/expression_fusion.py PREPARED.npz [--weights model/expression.npz] [--json OUT] [--limit N]

PREPARED.npz is the cached training data (``pianobridge train expression ... --prepared DIR``
writes it); only its validation split (one piece in eight) is read. Per phrase (from the
third on): mean absolute error of velocity (absolute level included) and of log seconds per
quarter of the phrase's beats, and Pearson r of velocity, central rendition (z = 0) with and
without the stream.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bridge.expression.assess import CONTEXT_BEATS, _sub_tree  # noqa: E402
from bridge.expression.calibrate import played_of  # noqa: E402  (isort: after train)
from bridge.expression.data import load_cache  # noqa: E402
from bridge.expression.features import played_targets  # noqa: E402
from bridge.expression.network import Scale, perf_beat_features  # noqa: E402
from bridge.expression.render import load_network  # noqa: E402
from bridge.expression.train import split  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("prepared", type=Path)
    ap.add_argument("--weights")
    ap.add_argument("--json")
    ap.add_argument("--limit", type=int, default=0, help="validation performances (0: all)")
    a = ap.parse_args()
    net = load_network(a.weights)
    pieces, perfs = load_cache(a.prepared)
    _, val = split(pieces, perfs)
    val = val[: a.limit] if a.limit else val
    err: dict[str, list[float]] = {}
    z = np.zeros(net.z_dim, np.float32)
    for k in val:
        perf, piece = perfs[k], pieces[perfs[k].piece]
        t = piece.tree
        if np.all(np.isnan(perf.log_spq)):
            continue
        played = played_of(piece, perf)
        beat_phrase = t.measure_phrase[t.beat_measure]
        for ph in range(2, int(beat_phrase.max()) + 1):
            pb = np.flatnonzero(beat_phrase == ph)
            wb0, wb1 = max(pb[0] - CONTEXT_BEATS, 0), pb[-1] + 1
            sel = np.flatnonzero((t.beat >= wb0) & (t.beat < wb1))
            beat = t.beat[sel] - wb0
            nb = wb1 - wb0
            bars, beat_bar = np.unique(t.beat_measure[wb0:wb1], return_inverse=True)
            _, bar_phr = np.unique(t.measure_phrase[bars], return_inverse=True)
            on, off, vel = (np.full(len(sel), np.nan) for _ in range(3))
            for j, i in enumerate(sel):
                if int(i) in played:
                    on[j], off[j], vel[j] = played[int(i)]
            got = played_targets(_sub_tree(t, wb0, wb1), piece.onset_q[sel], piece.duration_q[sel],
                                 piece.feats[sel, 4] > 0, on, off, vel)  # fmt: skip
            x = piece.feats[sel]
            pb0 = pb[0] - wb0
            lsp_n = (got.log_spq - Scale.SPQ_MID) / Scale.SPQ_STEP
            if np.all(np.isnan(lsp_n[:pb0])) or np.all(np.isnan(lsp_n[pb0:])):
                continue
            lsp_fill = np.where(np.isnan(lsp_n), np.nanmean(lsp_n), lsp_n)
            ok = (~np.isnan(vel)).astype(np.float32)
            vn = (np.nan_to_num(vel) - Scale.VEL_MID) / Scale.VEL_STEP
            pf = perf_beat_features(vn, np.nan_to_num(got.dev) * Scale.DEV, np.nan_to_num(got.art), lsp_fill,
                                    x[:, 0], beat, nb, ok)  # fmt: skip
            perf_ok = (np.bincount(beat, weights=ok, minlength=nb) > 0) & (np.arange(nb) < pb0)
            enc = net.encode_score(x, beat, beat_bar, bar_phr)
            mask = (beat >= pb0) & (ok > 0)
            true_l = got.log_spq[pb0:]
            for name, stream in (("score_only", None), ("with_stream", pf)):
                ob, on_ = net.forward(x, beat, beat_bar, bar_phr, z, stream, perf_ok, enc=enc)
                mv = Scale.VEL_MID + Scale.VEL_STEP * (ob[beat, 1] + on_[:, 0])
                ml = ob[pb0:, 0] * Scale.SPQ_STEP + Scale.SPQ_MID
                err.setdefault(f"{name}_velocity_mae", []).append(float(np.mean(np.abs(mv[mask] - vel[mask]))))
                tl = ~np.isnan(true_l)
                err.setdefault(f"{name}_log_spq_mae", []).append(float(np.mean(np.abs(ml[tl] - true_l[tl]))))
                if mask.sum() >= 3 and np.std(vel[mask]) > 0:
                    err.setdefault(f"{name}_velocity_r", []).append(float(np.corrcoef(mv[mask], vel[mask])[0, 1]))
    out = {key: round(float(np.mean(v)), 4) for key, v in err.items()}
    out["phrases"] = len(err.get("score_only_velocity_mae", []))
    print(json.dumps(out))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
