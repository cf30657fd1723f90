"""Run the follow yardstick (../shared/tools/eval_follow.py) and write its table to
docs/benchmarks.md, with the date and the machine.

    python benchmarks/follow.py [DATA] [--limit N]

DATA defaults to ../shared/data/nasap-dev. All scenarios, with --causality. Takes about
four minutes on this 2-core machine.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", nargs="?", default=str(SHARED / "data" / "nasap-dev"))
    ap.add_argument("--limit", type=int, default=0)
    a = ap.parse_args()
    tool = SHARED / "tools" / "eval_follow.py"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "follow.json"
        cmd = [sys.executable, str(tool), a.data, "--cmd", "pianobridge follow", "--causality", "--json", str(out)]
        if a.limit:
            cmd += ["--limit", str(a.limit)]
        print(" ".join(cmd[1:]), flush=True)
        subprocess.run(cmd, check=True)
        summary = json.loads(out.read_text())["summary"]
    stamp = dt.date.today().isoformat()
    section = (
        f"{BEGIN}\n"
        f"`python benchmarks/follow.py` ({stamp}; {machine()}): "
        f'`eval_follow.py {Path(a.data).name} --cmd "pianobridge follow" --causality`, '
        f"means over pieces.\n\n{table(summary)}\n{END}"
    )
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n\n"
    if BEGIN in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n## Score following\n\n" + section + "\n"
    DOC.write_text(text)
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
