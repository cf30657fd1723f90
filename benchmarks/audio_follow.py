"""The follow yardstick in audio mode, as a table for docs/audio.md.

    python benchmarks/audio_follow.py [--limit 6] [--scenarios clean,sub10,...]
        [--soundfont SF2 ...] [--snr-db DB ...] [--out results.json]

Runs ../shared/tools/eval_follow.py DATA --cmd "pianobridge follow" --causality --audio SF2
[--snr-db DB] once per soundfont and noise level and prints one markdown row per scenario
(means over pieces, as the tool's SUMMARY gives them).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
COLUMNS = (
    "pos1q",
    "match",
    "note_recall",
    "ghost",
    "ghost_flags",
    "false_flag",
    "err_p",
    "err_r",
    "recover_s_median",
    "onset_err_ms",
    "delay_ms_p50",
    "delay_ms_p99",
    "rtf",
    "causal",
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(SHARED / "data" / "nasap-dev"))
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--scenarios", default="clean,sub10,ins10,del10,back8,restart,skip8")
    ap.add_argument("--soundfont", nargs="+", default=["/usr/share/sounds/sf2/FluidR3_GM.sf2"])
    ap.add_argument("--snr-db", nargs="+", type=float, default=[])
    ap.add_argument("--out", help="all results as JSON")
    a = ap.parse_args()
    runs = [(sf, None) for sf in a.soundfont] + [(a.soundfont[0], snr) for snr in a.snr_db]
    results = {}
    print("| sound | scenario | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 2) + "|")
    for sf, snr in runs:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            cmd = [sys.executable, str(SHARED / "tools" / "eval_follow.py"), a.data, "--cmd", "pianobridge follow"]
            cmd += ["--causality", "--audio", sf, "--scenarios", a.scenarios, "--json", out.name]
            cmd += ["--limit", str(a.limit)] if a.limit else []
            cmd += ["--snr-db", str(snr)] if snr is not None else []
            subprocess.run(cmd, check=True, stdout=sys.stderr)
            summary = json.load(open(out.name))["summary"]
        label = Path(sf).stem + (f" +noise {snr:g} dB" if snr is not None else "")
        results[label] = summary
        for scenario, row in summary.items():
            cells = [f"{row[k]:.3f}" if k in row else "" for k in COLUMNS]
            print(f"| {label} | {scenario} ({row['pieces']}) | " + " | ".join(cells) + " |", flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
