"""`pianobridge hands`: hand landmarks in overhead images and videos (MediaPipe)."""

from __future__ import annotations

import argparse
import os
import sys
import threading

from bridge.cli.common import positive
from bridge.userfiles import OutputFile


def add_parser(sub) -> None:
    hd = sub.add_parser(
        "hands",
        help="hand landmarks in overhead piano images or videos (MediaPipe)",
        description="Finds the player's hands in still images and video files and writes one JSON "
        "line per image or frame: {image, [frame, t,] hands: [{handedness, score, landmarks: 21 x "
        "[x_px, y_px, z]}]}. Handedness is the player's own hand. The MediaPipe hand model is "
        "fetched from the package registry on first use and cached.",
    )
    hd.add_argument("inputs", nargs="+", metavar="IMAGE_OR_VIDEO")
    hd.add_argument("--jsonl", required=True, metavar="OUT", help="output file ('-' for stdout)")
    hd.add_argument("--hand-model", metavar="TASK", help="MediaPipe hand_landmarker .task to use instead")
    hd.add_argument(
        "--tiles",
        choices=("keyboard", "grid", "none"),
        default="keyboard",
        help="also look at tiles over the keyboard (default), over the whole frame (slower, finds more), "
        "or only the whole frame (stock MediaPipe)",
    )
    hd.add_argument("--no-tracking", action="store_true", help="treat video frames as unrelated stills")
    hd.add_argument(
        "--workers",
        type=positive(int),
        metavar="N",
        help="still images searched at once (default: one per CPU core, at most 4; fewer for large images)",
    )
    hd.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import itertools
    import json
    from concurrent.futures import ThreadPoolExecutor

    from bridge.camera.detect import HandDetector
    from bridge.camera.frames import check_inputs, is_image, read_frames, read_image
    from bridge.camera.handmodel import hand_model
    from bridge.userfiles import MAX_IMAGE_PIXELS

    largest = check_inputs(args.inputs)  # a mistyped name is reported before any model is loaded
    model = hand_model(args.hand_model)
    tracking = not args.no_tracking
    # a still takes some 15 bytes a pixel while it is searched, and its thread keeps much
    # of that after: large stills go fewer at a time
    workers = min(args.workers or min(4, os.cpu_count() or 1), max(1, MAX_IMAGE_PIXELS // max(largest, 1)))
    made: list[HandDetector] = []
    own = threading.local()  # a MediaPipe landmarker serves one thread at a time

    def detector(video: bool = False) -> HandDetector:
        if not hasattr(own, "detector"):
            own.detector = HandDetector(model, tiles=args.tiles, video=video)
            made.append(own.detector)
        return own.detector

    def still(path: str):
        # only the hands come back: finished stills wait here for the ones before them
        return path, None, None, detector().detect(read_image(path).rgb)

    out = OutputFile(args.jsonl)
    frames = hands = 0
    try:
        with ThreadPoolExecutor(workers) as pool:
            for images, group in itertools.groupby(args.inputs, key=is_image):
                if images:  # unrelated stills: several at once, one per core
                    found_in = pool.map(still, list(group))
                else:  # video frames in order, tracked from one to the next
                    track = detector(video=tracking)
                    found_in = (
                        (f.source, f.index, f.t, track.detect(f.rgb, int(f.t * 1000) if tracking else None))
                        for f in read_frames(list(group))
                    )
                for source, index, t, found in found_in:
                    line = {"image": source, "hands": [h.to_dict() for h in found]}
                    if index is not None:
                        line.update(frame=index, t=round(t, 4))
                    out.write(json.dumps(line) + "\n")
                    frames += 1
                    hands += len(found)
    finally:
        for d in made:
            d.close()
        out.close()
    print(f"pianobridge: {hands} hands in {frames} frames -> {args.jsonl}", file=sys.stderr)
    return 0
