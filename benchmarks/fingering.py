"""Fingering yardstick and report: runs ../shared/tools/eval_fingering.py on PIG 001-030
(given hands, then --infer-hands), draws the finger confusion matrix, times a 2,000-note
score and live re-planning, renders fingered excerpts of bundled scores, and writes
docs/fingering.md between its markers.

    python benchmarks/fingering.py --pig PATH/TO/PianoFingeringDataset_v1.2 [--jobs 2]

PIG is fetched for evaluation and training only (nonprofit academic use) and never
committed; the excerpts need ``pip install verovio cairosvg``. About a minute here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from follow import machine  # same folder: one description of the machine

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT.parent / "shared" / "tools" / "eval_fingering.py"
DOC = ROOT / "docs" / "fingering.md"
IMG = ROOT / "docs" / "img"
BEGIN, END = "<!-- fingering:begin -->", "<!-- fingering:end -->"
FINGERS = [-5, -4, -3, -2, -1, 1, 2, 3, 4, 5]


def run_eval(files: Path, keep: Path, infer: bool, jobs: int) -> dict:
    out = keep / "summary.json"
    cmd = [sys.executable, str(EVAL), str(files), "--cmd", "pianobridge fingering", "--jobs", str(jobs)]
    cmd += ["--json", str(out), "--keep", str(keep)] + (["--infer-hands"] if infer else [])
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())["summary"]


def first_finger(token: str) -> int:
    m = re.match(r"-?\d", token)
    return int(m.group(0)) if m else 0


def confusion(files: Path, keep: Path) -> np.ndarray:
    """counts[annotator finger, suggested finger] over all annotators of 001-030."""
    counts = np.zeros((10, 10))
    index = {f: k for k, f in enumerate(FINGERS)}
    for piece_dir in sorted(keep.glob("p0*")):
        piece = int(piece_dir.name[1:])
        out = {
            ln.split()[0]: ln.split()[7] for ln in (piece_dir / "out.txt").read_text().splitlines() if ln[:2] != "//"
        }
        for gt in sorted(files.glob(f"{piece:03d}-*_fingering.txt")):
            for ln in gt.read_text().splitlines():
                if ln.startswith("//") or not ln.strip():
                    continue
                cols = ln.split()
                a, b = first_finger(cols[7]), first_finger(out.get(cols[0], "0"))
                if a in index and b in index:
                    counts[index[a], index[b]] += 1
    return counts


def plot_confusion(counts: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    labels = [f"L{-f}" if f < 0 else f"R{f}" for f in FINGERS]
    ax.set_xticks(range(10), labels)
    ax.set_yticks(range(10), labels)
    for i in range(10):
        for j in range(10):
            if share[i, j] >= 0.01:
                ax.text(
                    j,
                    i,
                    f"{share[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if share[i, j] > 0.5 else "black",
                )
    ax.set_xlabel("suggested finger")
    ax.set_ylabel("annotator's finger")
    ax.set_title("PIG 001-030, all annotators: share of each annotated finger")
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def timings() -> dict:
    from bridge.fingering import RIGHT, plan
    from bridge.fingering.annotate import read_score_notes
    from bridge.fingering.network import FingeringModel

    score = read_score_notes(ROOT / "scores" / "sonatina.musicxml")
    model = FingeringModel.load()
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        result = plan(score.keys, model)
        runs.append(time.perf_counter() - t)
    walls = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(3):
            t = time.perf_counter()
            subprocess.run(
                ["pianobridge", "fingering", str(ROOT / "scores" / "sonatina.musicxml"), "--out", f"{tmp}/o.musicxml"],
                check=True,
                capture_output=True,
            )
            walls.append(time.perf_counter() - t)
    rng = np.random.default_rng(0)
    n_right = len(result.order[RIGHT])
    replans = []
    for _ in range(2000):
        k = int(rng.integers(0, n_right - 1))
        t = time.perf_counter()
        result.replan(int(result.order[RIGHT][k]), int(rng.integers(1, 6)))
        replans.append(time.perf_counter() - t)
    return {
        "notes": len(score.keys),
        "plan_s": float(np.median(runs)),
        "cli_s": float(np.median(walls)),
        "replan_p50_ms": 1e3 * float(np.median(replans)),
        "replan_p99_ms": 1e3 * float(np.percentile(replans, 99)),
    }


def render_excerpt(score: str, png: Path) -> bool:
    try:
        import cairosvg
        import verovio
    except ImportError:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "f.musicxml"
        subprocess.run(
            ["pianobridge", "fingering", str(ROOT / "scores" / f"{score}.musicxml"), "--out", str(out)],
            check=True,
            capture_output=True,
        )
        tk = verovio.toolkit()
        tk.setOptions({"pageWidth": 2100, "pageHeight": 1000, "scale": 45, "adjustPageHeight": True})
        tk.loadFile(str(out))
        cairosvg.svg2png(
            bytestring=tk.renderToSVG(1).encode(), write_to=str(png), output_width=1400, background_color="white"
        )
    return True


def report(given: dict, inferred: dict, counts: np.ndarray, t: dict, excerpts: list[str]) -> str:
    def row(name: str, s: dict | None, hands: str = "") -> str:
        if not s:
            return f"| {name} | - | - | - | - |{hands}"
        return f"| {name} | {s['gen']:.2f} | {s['high']:.2f} | {s['soft']:.2f} | {s['rec']:.2f} |{hands}"

    acc = np.trace(counts) / counts.sum()
    lines = [
        f"`python benchmarks/fingering.py --pig ...` ({dt.date.today()}; {machine()}): "
        '`eval_fingering.py FingeringFiles --cmd "pianobridge fingering"`, PIG 001-030, all 150 annotation files.',
        "",
        "| notes | M_gen | M_high | M_soft | M_rec | hands |",
        "|---|---|---|---|---|---|",
        row("both hands, hands given", given["both"], " |"),
        row("right hand", given["RH"], " |"),
        row("left hand", given["LH"], " |"),
        row("both hands, `--infer-hands`", inferred["both"], f" {inferred['hands']['acc']:.2f} |"),
        "",
        f"Speed: the 2,090-note bundled sonatina is fingered in {t['plan_s']:.2f} s in-process (median of 5), "
        f"{t['cli_s']:.2f} s for the whole `pianobridge fingering` command (median of 3, start-up and file "
        f"writing included); live re-planning from a played finger (64 notes ahead) p50 {t['replan_p50_ms']:.2f} ms, "
        f"p99 {t['replan_p99_ms']:.2f} ms over 2,000 re-plans.",
        "",
        f"Finger confusion (first finger of each annotation against the suggestion, all annotators; "
        f"diagonal share {acc:.3f}):",
        "",
        "![finger confusion matrix](img/fingering_confusion.png)",
    ]
    for name in excerpts:
        lines += [
            "",
            f"`pianobridge fingering scores/{name}.musicxml`, first page rendered by verovio:",
            "",
            f"![{name} fingered](img/fingering_{name}.png)",
        ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pig", required=True, help="PianoFingeringDataset_v1.2 folder (or its FingeringFiles)")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    files = Path(args.pig)
    files = files / "FingeringFiles" if (files / "FingeringFiles").is_dir() else files
    IMG.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        given = run_eval(files, Path(tmp) / "given", False, args.jobs)
        inferred = run_eval(files, Path(tmp) / "inferred", True, args.jobs)
        counts = confusion(files, Path(tmp) / "given")
    plot_confusion(counts, IMG / "fingering_confusion.png")
    excerpts = [s for s in ("nocturne", "chorale") if render_excerpt(s, IMG / f"fingering_{s}.png")]
    text = report(given, inferred, counts, timings(), excerpts)
    doc = DOC.read_text()
    start, end = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    DOC.write_text(doc[:start] + "\n" + text + "\n" + doc[end:])
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
