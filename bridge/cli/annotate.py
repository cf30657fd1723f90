"""`pianobridge annotate`: a session's verdicts, fingers and teacher notes written into its score."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> None:
    a = sub.add_parser(
        "annotate",
        help="write a session's results into its MusicXML score for notation programs",
        description="Writes the score with the session's results in it: notes coloured by verdict (wrong "
        "pitch, missed, early or late, too loud or soft; the worst over all passes), the pitches of wrong and "
        "extra notes as text, played fingers that differ from the suggestion as PLAYED(SUGGESTED), and teacher "
        "annotations as text at their measure. See docs/notation.md.",
    )
    a.add_argument("score", help="the MusicXML score the session was recorded on (.musicxml, .xml or .mxl)")
    a.add_argument("session", help="session log (`follow --session`, `run`, `demo`)")
    a.add_argument("--out", required=True, metavar="OUT.musicxml", help="annotated score (.mxl: compressed)")
    a.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bridge.adapters.annotated_score import annotate

    s = annotate(args.score, args.session, args.out)
    marks = ", ".join(f"{n} {label.replace('_', ' ')}" for label, n in s.marks.items()) or "none"
    print(
        f"pianobridge: coloured notes: {marks}; {s.extras} extra notes, {s.fingers} fingerings, "
        f"{s.annotations} annotations -> {args.out}"
        + (f" ({s.unplaced} results on notes this score does not have)" if s.unplaced else ""),
        file=sys.stderr,
    )
    return 0
