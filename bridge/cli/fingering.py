"""`pianobridge fingering`: suggested fingering for a score, a PIG note list or a MIDI file."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> None:
    fg = sub.add_parser(
        "fingering",
        help="suggest fingering for a score, a PIG note list or a MIDI file",
        description="Assigns hand and finger to every note. MusicXML in: the same file out with "
        "<technical><fingering> added (right hand above, left below; fingers printed in the score "
        "are kept and planned around). --format pig (or a .txt input): PIG note list in and out. "
        "A MIDI file: PIG out, hands inferred. Trained on PIG 031-150 (nonprofit academic use only).",
    )
    fg.add_argument("input", help="MusicXML (.musicxml, .xml, .mxl), PIG (.txt) or MIDI (.mid)")
    fg.add_argument("--out", required=True, help="output file")
    fg.add_argument("--format", choices=("musicxml", "pig"), help="input/output format (default: from the file name)")
    fg.add_argument(
        "--infer-hands", action="store_true", help="ignore the given hands (staves, PIG channel) and infer them"
    )
    fg.add_argument("--hand-size", choices=("small", "medium", "large"), default="medium", help="span of the hand")
    fg.add_argument("--no-substitutions", action="store_true", help="never suggest a silent finger change")
    fg.add_argument("--weights", metavar="NPZ", help="fingering weights (default: model/fingering.npz)")
    fg.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bridge.fingering.files import finger_midi, finger_musicxml, finger_pig, input_format

    fmt = input_format(args.input, args.format)
    opts = {"hand_size": args.hand_size, "weights": args.weights, "substitute": not args.no_substitutions}
    if fmt == "midi":
        n = finger_midi(args.input, args.out, **opts)
    elif fmt == "pig":
        n = finger_pig(args.input, args.out, args.infer_hands, **opts)
    else:
        n = finger_musicxml(args.input, args.out, args.infer_hands, **opts)
    print(f"pianobridge: fingered {n} notes -> {args.out}", file=sys.stderr)
    return 0
