"""Which-finger benchmark on synthetic camera streams rendered from real fingering.

For PIG pieces 031-150 (real notes with real fingers), renders two-hand landmark
streams (bridge/handsim.py) at increasing noise strength, then calls (hand, finger) for
every note three ways: the camera alone, the camera with the fingering model
(`bridge.fingerid.attribute`), the live path (`FingerWatcher`: frames as they come, camera
evidence only), and the camera ignored (hands inferred from MIDI, the
fingering model's plan). Writes the table and a plot into docs/camera.md.

    python benchmarks/fingerid.py --pig PATH/TO/PianoFingeringDataset_v1.2 [--pieces 20]

Caveat: the fingering model was trained on these pieces, so the "camera ignored" row is
optimistic (on the PIG test split it agrees with one annotator about 69% of the time).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import numpy as np
from follow import machine
from rich.progress import track

from bridge.fingerid import FingerWatcher, LandmarkStream, align, attribute, call, evidence
from bridge.fingering import KeyNote, plan
from bridge.fingering.hands import infer_hands
from bridge.fingering.network import FingeringModel, weights_path
from bridge.fingering.pig import read_pig
from bridge.fingering.train import fingering_files
from bridge.handsim import Camera, Noise, PlayedNote, noisy_calibration, render

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "camera.md"
IMG = ROOT / "docs" / "img" / "fingerid_noise.png"
BEGIN, END = "<!-- fingerid:begin -->", "<!-- fingerid:end -->"
LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)


def piece_scores(path: Path, level: float, model, hands_model, seed: int) -> dict[str, tuple[int, int]]:
    pig = read_pig(path)
    truth = [("left" if n.hand else "right", n.fingers[0]) for n in pig]
    played = [PlayedNote(n.onset, n.offset, n.pitch, t[0], t[1]) for n, t in zip(pig, truth)]
    camera = Camera()
    noise = Noise.level(level)
    frames = render(played, camera, noise, seed=seed)
    calibration = noisy_calibration(camera, noise, seed)
    stream = LandmarkStream(frames, calibration)
    offset = align(stream, [(n.onset, n.offset, n.pitch) for n in pig])
    # MIDI alone: hands from the hand-separation model, fingers from the fingering model
    on = np.array([n.onset for n in pig])
    off = np.array([n.offset for n in pig])
    pitch = np.array([n.pitch for n in pig])
    midi_hands = infer_hands(on, off, pitch, hands_model)
    keys = [KeyNote(a, b, p, int(h)) for a, b, p, h in zip(on, off, pitch, midi_hands)]
    prior = [("left" if k.hand else "right", f[0]) for k, f in zip(keys, plan(keys, model, substitute=False).fingers)]
    alone = []
    for n in pig:
        ev = evidence(stream, n.onset + offset, n.pitch)
        c = call(ev) if ev is not None else None
        alone.append((c.hand, c.finger) if c else None)
    fused = [(c.hand, c.finger) for c in attribute(keys, stream, model, offset)]
    live = live_calls(frames, calibration, stream.shift_mm, offset, keys)
    n = len(truth)
    return {
        "camera alone": (sum(a == t for a, t in zip(alone, truth)), n),
        "camera + fingering model": (sum(a == t for a, t in zip(fused, truth)), n),
        "live (FingerWatcher)": (sum(live.get(k) == t for k, t in enumerate(truth)), n),
        "camera ignored": (sum(a == t for a, t in zip(prior, truth)), n),
        "offset error ms": (round(abs(offset - noise.clock_offset_s) * 1000), 1),
    }


def live_calls(frames, calibration, shift_mm, offset, keys) -> dict[int, tuple[str, int]]:
    """The live path: frames and note-ons in arrival order through the engine's
    FingerWatcher (offset and shift as found once)."""
    watcher = FingerWatcher(calibration, offset)
    watcher.stream.shift_mm = shift_mm
    arrivals = [(f["t"], 1, f) for f in frames] + [(k.onset + offset, 0, i) for i, k in enumerate(keys)]
    index = {(k.onset, k.pitch): i for i, k in enumerate(keys)}  # a call names its note by time and key
    calls: dict[int, tuple[str, int]] = {}
    for _, kind, item in sorted(arrivals, key=lambda a: (a[0], a[1])):
        if kind == 0:
            watcher.note_on(keys[item].onset, keys[item].pitch, None)
        else:
            for seen in watcher.add_frame(item["t"], item["hands"]):
                calls[index[(seen.t, seen.pitch)]] = (seen.finger.hand, seen.finger.finger)
    return calls


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pig", required=True)
    ap.add_argument("--pieces", type=int, default=20, help="how many pieces (every 6th of 031-150 first)")
    args = ap.parse_args()
    files = fingering_files(args.pig)
    firsts = {}
    for piece, path in files:
        firsts.setdefault(piece, path)
    chosen = sorted(firsts.items())[::6][: args.pieces]
    model = FingeringModel.load()
    hands_model = FingeringModel.load(weights_path(None, "hands"))
    table: dict[float, dict[str, list]] = {}
    for level in LEVELS:
        agg: dict[str, list] = {}
        for k, (_piece, path) in enumerate(track(chosen, description=f"noise {level:.2f}")):
            for name, (hit, n) in piece_scores(path, level, model, hands_model, seed=k).items():
                agg.setdefault(name, []).append(hit / n)
        table[level] = agg
    rows = ["camera alone", "camera + fingering model", "live (FingerWatcher)", "camera ignored"]
    noise_desc = {lv: Noise.level(lv) for lv in LEVELS}
    lines = [
        f"`python benchmarks/fingerid.py --pig ... --pieces {len(chosen)}` ({dt.date.today()}; {machine()}): "
        f"PIG pieces {', '.join(f'{p:03d}' for p, _ in chosen)} (first annotator), (hand, finger) right per note, "
        "mean over pieces.",
        "",
        "| noise | jitter px | missed hands | hidden tips | calibration px | clock offset ms | swapped frames | "
        + " | ".join(rows)
        + " | offset error ms (median) |",
        "|" + "---|" * (8 + len(rows)),
    ]
    for lv, agg in table.items():
        z = noise_desc[lv]
        lines.append(
            f"| {lv:.2f} | {z.jitter_px:.0f} | {z.miss:.0%} | {z.occlude:.0%} | {z.calibration_px:.0f} | "
            f"{1000 * z.clock_offset_s:.0f} | {z.swap:.0%} | "
            + " | ".join(f"{np.mean(agg[r]):.3f}" for r in rows)
            + f" | {np.median(agg['offset error ms']):.0f} |"
        )
    lines += ["", "![accuracy against noise](img/fingerid_noise.png)"]
    plot(table, rows)
    text = "\n".join(lines)
    doc = DOC.read_text()
    start, end = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    DOC.write_text(doc[:start] + "\n" + text + "\n" + doc[end:])
    print(text)
    return 0


def plot(table: dict, rows: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for r in rows:
        ax.plot(list(table), [np.mean(table[lv][r]) for lv in table], marker="o", label=r)
    ax.set_xlabel("noise strength (0.5 = moderate; see the table)")
    ax.set_ylabel("(hand, finger) right per note")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    IMG.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(IMG, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
