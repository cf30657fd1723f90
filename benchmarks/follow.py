"""Run the follow yardstick (../shared/tools/eval_follow.py) and write its table to
docs/benchmarks.md, with the date and the machine.

    python benchmarks/follow.py [DATA] [--limit N] [--wide] [--json OUT | --from JSON]

DATA defaults to ../shared/data/nasap-dev. All scenarios, with --causality. Takes about
four minutes on this 2-core machine (the wide validation half, 97 pieces: about an hour).
``--wide`` writes the issue-16 section instead: the means, one row per piece and the
pieces furthest from the bars. ``--json`` keeps the yardstick's result; ``--from`` writes
the tables from such a file without running anything.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- follow:begin -->", "<!-- follow:end -->"
WIDE_BEGIN, WIDE_END = "<!-- follow-wide:begin -->", "<!-- follow-wide:end -->"
WORST = 20  # pieces listed under each bar they miss, at most

COLUMNS = [
    ("pos1q", "pos1q"),
    ("match", "match"),
    ("lost", "lost"),
    ("err_p", "err P"),
    ("err_r", "err R"),
    ("false_flag", "false flags"),
    ("miss_r", "missed R"),
    ("recover_s_median", "recover med s"),
    ("recover_s_max", "recover max s"),
    ("rtf", "rtf"),
    ("lat_p99_us", "lat p99 µs"),
    ("causal", "causal"),
]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def table(summary: dict) -> str:
    head = "| scenario | pieces | errors | " + " | ".join(c[1] for c in COLUMNS) + " |"
    rule = "|" + "---|" * (3 + len(COLUMNS))
    rows = []
    for scen, agg in summary.items():
        cells = []
        for key, _ in COLUMNS:
            v = agg.get(key)
            cells.append("" if v is None else f"{v:.0f}" if key == "lat_p99_us" else f"{v:.3f}")
        rows.append(f"| {scen} | {agg['pieces']} | {agg['errors']} | " + " | ".join(cells) + " |")
    return "\n".join([head, rule, *rows])


def _cell(v: float | None, fmt: str = "{:.3f}") -> str:
    return "" if v is None else fmt.format(v)


def piece_table(pieces: dict) -> str:
    """One row per piece: where each scenario leaves it against the issue's bars."""
    head = (
        "| piece | clean pos1q | clean match | lost | sub10 pos1q | sub10 P / R | ins10 pos1q | ins10 P / R "
        "| del10 pos1q | back8 s | restart s | skip8 s | causal |"
    )
    rows = [head, "|" + "---|" * 13]
    for name in sorted(pieces):
        r = pieces[name]

        def g(scen: str, key: str, _r: dict = r) -> float | None:
            return (_r.get(scen) or {}).get(key)

        pr = [f"{_cell(g(sc, 'err_p'))} / {_cell(g(sc, 'err_r'))}" for sc in ("sub10", "ins10")]
        cells = [_cell(g("clean", "pos1q")), _cell(g("clean", "match")), _cell(g("clean", "lost")),
                 _cell(g("sub10", "pos1q")), pr[0], _cell(g("ins10", "pos1q")), pr[1], _cell(g("del10", "pos1q")),
                 *(_cell(g(sc, "recover_s"), "{:.2f}") for sc in ("back8", "restart", "skip8")),
                 _cell(g("clean", "causal"))]  # fmt: skip
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def worst(pieces: dict) -> str:
    """The pieces under each per-piece bar of issue 16, worst first."""
    out = []
    clean = sorted((r["clean"]["pos1q"], n) for n, r in pieces.items() if "pos1q" in r.get("clean", {}))
    low = [f"{n} {v:.3f}" for v, n in clean if v < 0.95]
    out.append(f"- clean pos1q under 0.95 ({len(low)} pieces): {', '.join(low[:WORST]) or 'none'}")
    for scen in ("back8", "restart", "skip8"):
        rec = sorted(
            ((r[scen]["recover_s"], n) for n, r in pieces.items() if "recover_s" in r.get(scen, {})), reverse=True
        )
        slow = [f"{n} {v:.1f} s" for v, n in rec if v > 3.0]
        out.append(f"- {scen} recovery over 3 s ({len(slow)} pieces): {', '.join(slow[:WORST]) or 'none'}")
    return "\n".join(out)


def replace_section(text: str, begin: str, end: str, section: str, heading: str) -> str:
    if begin in text:
        return re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: section, text, flags=re.S)
    return text.rstrip() + f"\n\n{heading}\n\n" + section + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", nargs="?", default=str(SHARED / "data" / "nasap-dev"))
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--wide", action="store_true", help="write the wide validation section, per piece")
    ap.add_argument("--json", type=Path, help="keep the yardstick's JSON result here")
    ap.add_argument("--from", dest="src", type=Path, help="write the tables from this JSON result, run nothing")
    a = ap.parse_args()
    tool = SHARED / "tools" / "eval_follow.py"
    if a.src:
        result = json.loads(a.src.read_text())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            out = a.json or Path(tmp) / "follow.json"
            cmd = [sys.executable, str(tool), a.data, "--cmd", "pianobridge follow", "--causality", "--json", str(out)]
            if a.limit:
                cmd += ["--limit", str(a.limit)]
            print(" ".join(cmd[1:]), flush=True)
            subprocess.run(cmd, check=True)
            result = json.loads(out.read_text())
    stamp = dt.date.today().isoformat()
    run = f'`eval_follow.py {Path(a.data).name} --cmd "pianobridge follow" --causality`'
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n\n"
    if a.wide:
        section = (
            f"{WIDE_BEGIN}\n`python benchmarks/follow.py {a.data} --wide` ({stamp}; {machine()}): {run}, "
            f"means over {len(result['pieces'])} pieces.\n\n{table(result['summary'])}\n\n"
            f"Furthest from the bars:\n\n{worst(result['pieces'])}\n\n{piece_table(result['pieces'])}\n{WIDE_END}"
        )
        text = replace_section(text, WIDE_BEGIN, WIDE_END, section, "## Wide validation, every piece")
    else:
        section = f"{BEGIN}\n`python benchmarks/follow.py` ({stamp}; {machine()}): {run}, means over pieces.\n\n"
        section += f"{table(result['summary'])}\n{END}"
        text = replace_section(text, BEGIN, END, section, "## Score following")
    DOC.write_text(text)
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
