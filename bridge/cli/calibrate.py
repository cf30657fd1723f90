"""`pianobridge calibrate`: find the keyboard and its keys in an overhead view."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bridge.errors import UserError


def add_parser(sub) -> None:
    cb = sub.add_parser(
        "calibrate",
        help="find the keyboard and its keys in an image, a video or a camera",
        description="Finds the keyboard and every key in an overhead view (the first frame of a video, "
        "a frame from a camera index) and writes the calibration JSON (image size, four corners, lowest "
        "and highest key, per-key polygons) and a PNG with the keys drawn on the image to check. "
        "--corners and --keys override what is found.",
    )
    cb.add_argument("source", help="image, video file, or camera index (0, 1, ...)")
    cb.add_argument("--out", required=True, metavar="CAL.json")
    cb.add_argument("--overlay", metavar="PNG", help="where to draw the keys (default: next to --out)")
    cb.add_argument(
        "--corners",
        metavar="X,Y,...",
        help="keyboard corners in pixels: front-left, front-right, back-right, back-left",
    )
    cb.add_argument("--keys", metavar="LOW-HIGH", help="lowest and highest key as MIDI numbers (e.g. 21-108)")
    cb.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np

    from bridge.camera.calibrate import find_keyboard, overlay
    from bridge.camera.frames import grab_frame
    from bridge.keyboard import Calibration, Keyboard, corner_points
    from bridge.userfiles import write_bytes

    # the flags first: a mistake in them is reported before a camera is opened
    keys = None
    if args.keys:
        try:
            low, high = (int(x) for x in args.keys.split("-"))
        except ValueError:
            raise UserError(f"--keys wants LOW-HIGH as MIDI numbers (21-108 for 88 keys), not {args.keys!r}") from None
        Keyboard(low, high)  # raises for keys a keyboard cannot have (0-127, white ends)
        keys = (low, high)
    pts = None
    if args.corners:
        try:
            pts = corner_points(np.reshape([float(x) for x in args.corners.split(",")], (4, 2)))
        except (ValueError, UserError):
            raise UserError(
                "--corners wants 8 finite numbers: x,y of front-left, front-right, back-right, back-left"
            ) from None
    picture = args.overlay or str(Path(args.out).with_suffix(".png"))
    if Path(picture) == Path(args.out):
        raise UserError(f"the key picture would overwrite the calibration {args.out}: give --overlay PNG")
    ext = Path(picture).suffix.lower() or ".png"  # the name is kept as given, suffix or not
    if not cv2.haveImageWriter(f"x{ext}"):
        raise UserError(f"cannot write {picture}: not an image format OpenCV writes ({ext}); use .png or .jpg")
    rgb = grab_frame(args.source)
    if pts is not None:
        cal = Calibration((rgb.shape[1], rgb.shape[0]), pts, Keyboard(*(keys or (21, 108))))
    else:
        cal = find_keyboard(rgb, keys)
    cal.save(args.out)
    write_bytes(picture, cv2.imencode(ext, overlay(rgb, cal))[1].tobytes())
    print(
        f"pianobridge: keys {cal.keyboard.low}-{cal.keyboard.high} -> {args.out}; check them on {picture}",
        file=sys.stderr,
    )
    return 0
