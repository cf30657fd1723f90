"""Fast follower sweeps: the yardstick's own scenarios and metrics, engine run in-process.

    python benchmarks/follow_inprocess.py ../shared/data/nasap-dev [--scenarios clean,sub10]
        [--set reloc_llr=6 --set pause_s=0.8] [--pieces Bach,Mozart]

Imports ``perturb`` and ``evaluate`` from ../shared/tools/eval_follow.py so the numbers are
the yardstick's; it skips the subprocess so a parameter change can be checked in a minute.
The figures to report come from eval_follow.py itself (benchmarks/follow.py). One figure
is added: ``sure_wrong``, the share of notes placed more than a quarter off while the
follower reported confidence 0.9 or more (a wrong place it did not say it was unsure of).
And ``miss_p``: the share of ``missed`` reports whose note was really not played (neither in
the recording's alignment nor among the notes a scenario played instead), a false "you
missed this note" being a correction the player did not earn. And ``transposed``: ``status
transposed`` events per performance (none of these is transposed: each one is a false alarm),
and ``hands``: ``status hands`` events (all are played with both hands: false alarms too).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import numpy as np
import yardsticks

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

KEYS = (
    "pos1q",
    "match",
    "lost",
    "sure_wrong",
    "err_p",
    "err_r",
    "false_flag",
    "miss_r",
    "miss_p",
    "recover_s",
    "transposed",
    "hands",
)
SURE = 0.9  # a place reported this confidently is one the player can rely on
# the error flags again with ``revised`` events applied (a press a later, better-timed
# press took its note from counts as extra); the yardstick scores first verdicts only
REVISED_KEYS = ("err_p", "err_r", "false_flag")


def sure_wrong(ef, notes, paired, full, base) -> float:
    """Share of the score's notes placed more than a quarter off at confidence SURE or more:
    a wrong place the follower did not say it was unsure of."""
    n = bad = 0
    for note, ev in zip(notes, paired, strict=True):
        if note["xml"] is None or note["xml"] not in full:
            continue
        n += 1
        cands = ef.pos_quarters(ev, base)
        conf = ((ev or {}).get("position") or {}).get("confidence") or 0.0
        bad += min((abs(q - full[note["xml"]]) for q in cands), default=1e9) > 1.0 and conf >= SURE
    return bad / max(n, 1)


def miss_precision(score, notes, events) -> float:
    """Share of ``missed`` reports for score notes the performance did not play. A unison (two
    voices on one key at one onset) is one key press, which the alignment gives to one of its
    notes: the others count as played with it."""
    key = {f"{n.note_id}-{n.pass_no}": (n.pass_no, n.onset_q, n.pitch) for n in score.notes}
    played = {key.get(n["xml"], n["xml"]) for n in notes if n["xml"]}
    missed = [key.get(f"{e['note_id']}-{e['pass']}") for e in events if e["type"] == "missed"]
    return sum(m not in played for m in missed) / len(missed) if missed else 1.0


def run_piece(piece: str, scenarios: list[str], overrides: dict) -> dict:
    ef = yardsticks.load("eval_follow")

    from bridge.errors import UserError
    from bridge.follow.engine import Engine
    from bridge.follow.follower import FollowerParams
    from bridge.follow.matcher import MatcherParams
    from bridge.report import revised_notes

    try:
        p = yardsticks.follow_piece(piece)
    except UserError as e:  # a score the loader refuses is reported, as the yardstick does
        return {os.path.basename(piece): {"error": str(e)}}
    fp, mp = FollowerParams(), MatcherParams()
    params = replace(fp, **{k: v for k, v in overrides.items() if hasattr(fp, k)})
    mparams = replace(mp, **{k: v for k, v in overrides.items() if hasattr(mp, k)})
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for s in scenarios:
            rng = random.Random(f"0-{p.name}-{s}")
            notes, ccs, jump_t, dropped = ef.perturb(p.notes, p.ccs, p.full, s, rng)
            events = yardsticks.engine_events(Engine(p.score, params, mparams), notes, ccs, tmp)
            r, paired = ef.evaluate(notes, events, p.full, p.base, jump_t, dropped)
            r["sure_wrong"] = sure_wrong(ef, notes, paired, p.full, p.base)
            r["miss_p"] = miss_precision(p.score, notes, events)
            r["transposed"] = sum(e.get("state") == "transposed" for e in events)
            r["hands"] = sum(e.get("state") == "hands" for e in events)
            out[s] = {k: r[k] for k in KEYS if k in r}
            if any(e["type"] == "revised" for e in events):
                rev = revised_notes(events) + [e for e in events if e["type"] != "note"]
                r, _ = ef.evaluate(notes, rev, p.full, p.base, jump_t, dropped)
                out[s].update({f"{k}_rev": r[k] for k in REVISED_KEYS if k in r})
    return {p.name: out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--scenarios", default="clean,sub10,ins10,del10,back8,restart,skip8")
    ap.add_argument("--set", action="append", default=[], help="FollowerParams or MatcherParams field=value")
    ap.add_argument("--pieces", default="", help="comma-separated name prefixes")
    ap.add_argument("--json")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    overrides = {}
    for kv in a.set:
        k, v = kv.split("=", 1)
        overrides[k] = json.loads(v)
    pieces = sorted(d for d in glob.glob(os.path.join(a.data, "*")) if os.path.isfile(os.path.join(d, "alignment.tsv")))
    if a.pieces:
        pieces = [p for p in pieces if any(os.path.basename(p).startswith(x) for x in a.pieces.split(","))]
    scen = a.scenarios.split(",")
    results: dict = {}
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        for res in ex.map(run_piece, pieces, [scen] * len(pieces), [overrides] * len(pieces)):
            results.update(res)
            if a.verbose:
                for name, by_s in res.items():
                    if "error" in by_s:
                        continue
                    for s, r in by_s.items():
                        print(f"{name[:40]:40s} {s:8s} " + " ".join(f"{k}={v:.3f}" for k, v in r.items()))
    for name, r in results.items():
        if "error" in r:
            print(f"{name}: ERROR {r['error']}")
    for s in scen:
        rows = [results[p][s] for p in results if "error" not in results[p]]
        keys = KEYS + tuple(f"{k}_rev" for k in REVISED_KEYS)
        # a piece without revisions scores the same with them applied
        rows = [{**r, **{f"{k}_rev": r[k] for k in REVISED_KEYS if k in r and f"{k}_rev" not in r}} for r in rows]
        agg = {k: float(np.mean([r[k] for r in rows if k in r])) for k in keys if any(k in r for r in rows)}
        if "recover_s" in agg:
            rec = [r["recover_s"] for r in rows]
            agg = {k: v for k, v in agg.items() if k != "recover_s"}
            agg["rec_med"], agg["rec_max"] = float(np.median(rec)), float(np.max(rec))
        print(f"{s:8s} " + " ".join(f"{k}={v:.3f}" for k, v in agg.items()))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
