"""Does the expression assessment prefer human performances to spoiled copies of themselves?

    python benchmarks/expression_degrade.py ../shared/data/vienna4x22 [--weights model/expression.npz]
        [--json OUT] [--limit N]

For each Vienna 4x22 performance (match files: score note -> performed note) and each phrase
of its score, the phrase's realism score (the critic, see bridge/expression/assess.py) of the
human performance is compared with that of four degraded copies of the whole performance:

    flat        velocities set to the performance's mean
    shuffled    velocities shuffled among the notes of each phrase
    metronomic  onsets on a constant tempo (the performance's mean), durations kept
    jittered    onsets moved by N(0, 30 ms), durations kept

AUC = the fraction of (phrase, degradation) pairs where the human copy scores higher (ties
count half), per degradation and over all. Needs partitura (reading .match files).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bridge.expression.assess import Assessor  # noqa: E402
from bridge.expression.render import load_network  # noqa: E402
from bridge.musicxml import load_score  # noqa: E402

DEGRADATIONS = ("flat", "shuffled", "metronomic", "jittered")
JITTER_S = 0.03


def played_from_match(score, match: str) -> dict[int, tuple[float, float, int]]:
    """Score note index -> (onset_s, offset_s, velocity) from a match file."""
    import partitura as pt

    warnings.filterwarnings("ignore")
    perf, alignment = pt.load_match(match)
    pna = perf.note_array()
    by_id = {str(i): (float(o), float(o + d), int(v)) for i, o, d, v in
             zip(pna["id"], pna["onset_sec"], pna["duration_sec"], pna["velocity"])}  # fmt: skip
    index = {f"{n.note_id}-{n.pass_no}": i for i, n in enumerate(score.notes)}
    out = {}
    for a in alignment:
        if a.get("label") != "match" or str(a.get("performance_id")) not in by_id:
            continue
        sid = str(a["score_id"])
        i = index.get(sid, index.get(f"{sid}-1"))
        if i is not None:
            out[i] = by_id[str(a["performance_id"])]
    return out


def degrade(score, assessor: Assessor, played: dict, kind: str, rng: np.random.Generator) -> dict:
    """A spoiled copy of ``played`` (see the module docstring)."""
    idx = np.array(sorted(played))
    on = np.array([played[i][0] for i in idx])
    off = np.array([played[i][1] for i in idx])
    vel = np.array([played[i][2] for i in idx], float)
    if kind == "flat":
        vel[:] = round(vel.mean())
    elif kind == "shuffled":
        for a, b in assessor.note_span:
            sel = np.flatnonzero((idx >= a) & (idx < b))
            vel[sel] = vel[rng.permutation(sel)]
    elif kind == "metronomic":
        q = np.array([score.notes[i].onset_q for i in idx])
        spq = (on.max() - on.min()) / max(q.max() - q.min(), 1e-6)
        new_on = on.min() + (q - q.min()) * spq
        off, on = off - on + new_on, new_on
    elif kind == "jittered":
        new_on = on + rng.normal(0, JITTER_S, len(on))
        off, on = off - on + new_on, new_on
    return {int(i): (float(o), float(f), int(v)) for i, o, f, v in zip(idx, on, off, vel)}


def beats(human: float, other: float) -> float:
    """1 when the human copy ranks above, 0.5 for a tie, 0 below."""
    return 1.0 if human > other else 0.5 if human == other else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", help="vienna4x22 folder (musicxml/, match/)")
    ap.add_argument("--weights", help="expression weights (default: model/expression.npz)")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--limit", type=int, default=0, help="performances per piece (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    net = load_network(a.weights)
    rng = np.random.default_rng(a.seed)
    wins: dict[str, list[float]] = {k: [] for k in DEGRADATIONS}
    critic_wins: dict[str, list[float]] = {k: [] for k in DEGRADATIONS}
    per_piece = {}
    times, cpu = [], []
    for xml in sorted(glob.glob(os.path.join(a.data, "musicxml", "*.musicxml"))):
        piece = Path(xml).stem
        score = load_score(xml)
        assessor = Assessor(score, net)
        matches = sorted(glob.glob(os.path.join(a.data, "match", f"{piece}_p[0-9][0-9].match")))
        if a.limit:
            matches = matches[: a.limit]
        pw: dict[str, list[float]] = {k: [] for k in DEGRADATIONS}
        for m in matches:
            played = played_from_match(score, m)
            copies = {k: degrade(score, assessor, played, k, rng) for k in DEGRADATIONS}
            for ph in range(len(assessor.phrases)):
                t0, c0 = time.perf_counter(), time.process_time()
                human = assessor.assess_phrase(ph, played)
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                if np.isnan(human.score):
                    continue
                for k, spoiled in copies.items():
                    other = assessor.assess_phrase(ph, spoiled)
                    wins[k].append(beats(human.score, other.score))
                    pw[k].append(wins[k][-1])
                    if not np.isnan(human.realism):  # weights without a critic have no realism score
                        critic_wins[k].append(beats(human.realism, other.realism))
        per_piece[piece] = {k: round(float(np.mean(v)), 4) for k, v in pw.items() if v}
        print(f"{piece:30s} " + " ".join(f"{k}={v:.3f}" for k, v in per_piece[piece].items()), flush=True)
    summary = {k: round(float(np.mean(v)), 4) for k, v in wins.items() if v}
    summary["all"] = round(float(np.mean([x for v in wins.values() for x in v])), 4)
    summary["pairs"] = sum(len(v) for v in wins.values())
    summary["critic_only"] = {k: round(float(np.mean(v)), 4) for k, v in critic_wins.items() if v}
    if summary["critic_only"]:
        summary["critic_only"]["all"] = round(float(np.mean([x for v in critic_wins.values() for x in v])), 4)
    summary["assess_phrase_ms_median"] = round(1000 * float(np.median(times)), 2)
    summary["assess_phrase_ms_max"] = round(1000 * float(np.max(times)), 2)
    summary["assess_phrase_cpu_ms_median"] = round(1000 * float(np.median(cpu)), 2)
    summary["assess_phrase_cpu_ms_p95"] = round(1000 * float(np.percentile(cpu, 95)), 2)
    print("AUC " + " ".join(f"{k}={v}" for k, v in summary.items()))
    if a.json:
        Path(a.json).write_text(json.dumps({"pieces": per_piece, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
