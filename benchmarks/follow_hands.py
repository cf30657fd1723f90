"""Hands-separate practice: the recorded performances played with one hand, the engine run
in-process, scored with the yardstick's own functions.

    python benchmarks/follow_hands.py ../shared/data/nasap-dev [--playing auto|both|declared]
        [--scenarios right,left,...] [--pieces Bach,Mozart]

Each scenario keeps the performance's notes the alignment gives to one hand (notes it
leaves unaligned are left out: which hand played them is unknown):

- ``right``, ``left``: that hand alone, the whole piece;
- ``right-sub10``, ``left-sub10``: the same with the yardstick's sub10 wrong notes;
- ``right+both``, ``left+both``: that hand alone for the first 40% of the piece, then
  1.5 s later both hands from the top (``recover`` is timed from there);
- ``right>both``, ``left>both``: that hand alone for the first 40%, then on with both.

``--playing``: the engine as shipped (``auto``: it notices one hand alone), one that
expects both hands throughout (``both``: the follower before hands-separate practice), or
told the hand (``declared``: ``--playing right``; one-hand scenarios only).

Per scenario, means over pieces: ``pos1q`` / ``match`` over the notes played; ``sure_wrong``,
notes placed more than a quarter off at confidence 0.9 or more (a wrong place the follower
did not say it was unsure of, as in follow_inprocess.py); ``other_missed``,
the other hand's notes reported missed per note of it (all false: the player chose not to
play them); ``false_corr``, wrong or extra verdicts per note played; ``jumps`` and ``low``
(``confidence_low``) per performance; ``said``, when ``status hands`` first said one hand
alone (median seconds of playing), and ``back``, how long after both hands came back it said
so (median seconds; ``+both`` and ``>both``); ``statuses``, how many ``status hands`` a
performance had (one hand alone: 1, then both: 2); ``recover`` (``+both``, median seconds).
"""

from __future__ import annotations

import argparse
import glob
import os
import random
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import yardsticks
from follow_inprocess import sure_wrong

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

SCENARIOS = ("right", "left", "right-sub10", "left-sub10", "right+both", "left+both", "right>both", "left>both")
TOGETHER_AT = 0.4  # the share of the piece played with one hand before both come in
PAUSE_S = 1.5


def played_as(notes0, ccs0, full, hand_of, scenario, rng):
    """(notes, ccs, the time both hands come in or None, the hand alone) of a scenario."""
    hand = scenario.split("-")[0].split("+")[0].split(">")[0]
    mine = [dict(n, injected=None) for n in notes0 if n["xml"] and hand_of.get(n["xml"]) == hand]
    if scenario in (hand, f"{hand}-sub10"):
        if scenario.endswith("-sub10"):
            mine, ccs0, _, _ = yardsticks.load("eval_follow").perturb(mine, ccs0, full, "sub10", rng)
        return mine, ccs0, None, hand
    labelled = sorted((n for n in notes0 if n["xml"] in full), key=lambda n: n["onset"])
    cut = labelled[int(TOGETHER_AT * len(labelled))]["onset"]
    alone = [n for n in mine if n["onset"] < cut]
    if ">" in scenario:  # on with both hands from where one hand reached
        return alone + [dict(n, injected=None) for n in notes0 if n["onset"] >= cut], ccs0, cut, hand
    shift = cut + PAUSE_S - min(n["onset"] for n in notes0)  # both hands from the top
    together = [dict(n, injected=None, onset=n["onset"] + shift, offset=n["offset"] + shift) for n in notes0]
    ccs = [c for c in ccs0 if c["t"] < cut] + [dict(c, t=c["t"] + shift) for c in ccs0]
    return alone + together, ccs, cut + PAUSE_S, hand


def run_piece(piece: str, scenarios: list[str], playing: str) -> dict:
    from bridge.errors import UserError
    from bridge.follow.engine import Engine

    ef = yardsticks.load("eval_follow")
    try:
        p = yardsticks.follow_piece(piece)
    except UserError as e:
        return {os.path.basename(piece): {"error": str(e)}}
    name, score, full, base, notes0 = p.name, p.score, p.full, p.base, p.notes
    hand_of = {f"{n.note_id}-{n.pass_no}": n.hand for n in score.notes}
    if any(not any(hand_of.get(n["xml"]) == h for n in notes0) for h in ("right", "left")):
        return {name: {"error": "skipped: the alignment gives one hand no notes"}}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for s in scenarios:
            notes, ccs, together_t, hand = played_as(notes0, p.ccs, full, hand_of, s, random.Random(f"0-{name}-{s}"))
            one_only = together_t is None
            hands = (hand if one_only else None) if playing == "declared" else playing
            if hands is None:
                continue
            events = yardsticks.engine_events(Engine(score, hands=hands), notes, ccs, tmp)
            r, paired = ef.evaluate(notes, events, full, base, together_t if "+" in s else None, [])
            other = sum(hand_of.get(n["xml"]) not in (None, hand) for n in notes0) if one_only else 0
            missed = [e for e in events if e["type"] == "missed"]
            said = [e["t"] for e in events if e.get("state") == "hands"]
            row = {
                "pos1q": r["pos1q"],
                "match": r["match"],
                "sure_wrong": sure_wrong(ef, notes, paired, full, base),
                "other_missed": sum(hand_of.get(f"{e['note_id']}-{e['pass']}") != hand for e in missed) / other
                if one_only
                else None,
                "false_corr": sum(e["type"] == "note" and e["verdict"] in ("wrong_pitch", "extra") for e in events)
                / len(notes),
                "jumps": sum(e["type"] == "jump" for e in events),
                "low": sum(e.get("state") == "confidence_low" for e in events),
                "said": said[0] - notes[0]["onset"] if said and playing == "auto" else None,
                "statuses": len(said),
                "back": next((t - together_t for t in said[1:] if t >= together_t), None)
                if said and not one_only and playing == "auto"
                else None,
                "recover": r.get("recover_s") if "+" in s else None,
            }
            if "-sub10" in s:  # the flags for the wrong notes of one hand
                row.update(err_p=r["err_p"], err_r=r["err_r"])
            out[s] = {k: v for k, v in row.items() if v is not None}
    return {name: out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--playing", choices=("auto", "both", "declared"), default="auto")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--pieces", default="", help="comma-separated name prefixes")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    pieces = sorted(d for d in glob.glob(os.path.join(a.data, "*")) if os.path.isfile(os.path.join(d, "alignment.tsv")))
    if a.pieces:
        pieces = [p for p in pieces if any(os.path.basename(p).startswith(x) for x in a.pieces.split(","))]
    scen = [s for s in a.scenarios.split(",") if s]
    results: dict = {}
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        for res in ex.map(run_piece, pieces, [scen] * len(pieces), [a.playing] * len(pieces)):
            results.update(res)
            for name, by_s in res.items():
                if "error" in by_s:
                    print(f"{name}: ERROR {by_s['error']}")
                elif a.verbose:
                    for s, r in by_s.items():
                        print(f"{name[:40]:40s} {s:12s} " + " ".join(f"{k}={v:.3f}" for k, v in r.items()))
    medians = ("said", "back", "recover")
    print(f"{len(results)} pieces, engine playing={a.playing}")
    for s in scen:
        rows = [results[p][s] for p in results if s in results[p]]
        if not rows:
            continue
        keys = [k for k in rows[0] if k not in medians] + [k for k in medians if any(k in r for r in rows)]
        agg = {}
        for k in keys:
            vals = [r[k] for r in rows if k in r]
            agg[k] = float(np.median(vals) if k in medians else np.mean(vals))
        extra = ""
        if "said" in agg:
            said = [r.get("said") for r in rows]
            extra = f" said_max={max((v for v in said if v is not None), default=float('nan')):.1f}"
            extra += f" never_said={sum(v is None for v in said)}"
        if "back" in agg:
            back = [r.get("back") for r in rows]
            extra += f" back_max={max((v for v in back if v is not None), default=float('nan')):.1f}"
            extra += f" back_never={sum(v is None for v in back)}"
        counts = [r["statuses"] for r in rows]
        extra += f" statuses_min={min(counts)} statuses_max={max(counts)}"
        if "recover" in agg:
            extra += f" recover_max={max(r['recover'] for r in rows if 'recover' in r):.1f}"
        print(f"{s:12s} pieces={len(rows)} " + " ".join(f"{k}={v:.3f}" for k, v in agg.items()) + extra)


if __name__ == "__main__":
    main()
