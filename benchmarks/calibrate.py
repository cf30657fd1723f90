"""How often `pianobridge calibrate` gets the keys right on real overhead frames.

    python benchmarks/calibrate.py [DATA] [--overlays DIR]

DATA defaults to ../shared/data/piano-hands-dev. A frame counts as right when at least
90% of the black keys seen in the keyboard band lie within 0.35 of a white key of a
black key of the calibration (a wrong size or scale fails it). The keys seen come
from the same black-key detector, so this checks consistency, not truth: look at the
overlays too. --overlays writes each frame with its keys drawn (they stay out of the
repository: the frames are evaluation data).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from bridge.camera.calibrate import black_keys, find_keyboard, overlay
from bridge.camera.detect import keyboard_rows
from bridge.errors import UserError
from bridge.keyboard import is_black, white_count

ROOT = Path(__file__).resolve().parent.parent


def keys_right(rgb: np.ndarray, share: float = 0.9) -> tuple[bool | None, object]:
    """(None if no keyboard was found, else whether its keys are right; the calibration)."""
    try:
        cal = find_keyboard(rgb)
    except UserError:
        return None, None
    gray = (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).astype(np.uint8)
    seen = black_keys(gray, keyboard_rows(gray))
    kb = cal.keyboard
    mm = np.array([[kb.centre_x(p), 100.0] for p in range(kb.low, kb.high + 1) if is_black(p)])
    predicted = cal.image_points(mm)[:, 0]
    white = np.ptp(cal.corners[:, 0]) / white_count(kb.low, kb.high)
    near = np.abs(seen[:, None] - predicted[None, :]).min(1) < 0.35 * white
    return bool(near.mean() >= share), cal


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", nargs="?", default=str(ROOT.parent / "shared" / "data" / "piano-hands-dev"))
    ap.add_argument("--overlays", metavar="DIR")
    args = ap.parse_args()
    frames = sorted(Path(args.data).glob("*.jpg"))
    found = right = 0
    for path in frames:
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        ok, cal = keys_right(rgb)
        found += ok is not None
        right += bool(ok)
        if args.overlays and cal is not None:
            Path(args.overlays).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(Path(args.overlays) / f"{path.stem}.png"), overlay(rgb, cal))
    print(f"frames {len(frames)}: keyboard found in {found}, keys right in {right}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
