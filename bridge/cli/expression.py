"""`pianobridge expression`: render a score expressively, or assess a performance of it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bridge.cli.common import positive
from bridge.errors import UserError


def add_parser(sub) -> None:
    ex = sub.add_parser(
        "expression",
        help="render a score expressively, or assess how a performance shapes it",
        description="The expression model (trained on (n)ASAP, CC BY-NC-SA 4.0: non-commercial use). "
        "`render` writes a rendition (dynamics, timing, articulation, pedal) as CSV and/or MIDI; "
        "`assess` compares a performance's dynamics, tempo and articulation per phrase with what "
        "the model expects there.",
    )
    verbs = ex.add_subparsers(dest="verb", required=True, metavar="VERB")
    rd = verbs.add_parser("render", help="render a MusicXML score", description="Render a MusicXML score.")
    rd.add_argument("score", help="MusicXML (.musicxml, .xml, .mxl)")
    rd.add_argument("--csv", help="rows note_id,pass,velocity,onset_s,duration_s (one per unfolded score note)")
    rd.add_argument("--midi", help="the rendition as a MIDI file")
    rd.add_argument(
        "--seed",
        type=int,
        help="draw the style vector with this seed from the styles pianists differ by (default: the central rendition)",
    )
    rd.add_argument(
        "--samples", type=positive(int), default=1, help="interpretations to write (OUT-1, OUT-2, ... when above 1)"
    )
    rd.add_argument("--weights", metavar="NPZ", help="expression weights (default: model/expression.npz)")
    rd.set_defaults(func=run_render)
    ac = verbs.add_parser(
        "assess", help="assess a performance of a score", description="Assess a MIDI performance of a score."
    )
    ac.add_argument("score", help="MusicXML (.musicxml, .xml, .mxl)")
    ac.add_argument("performance", help="MIDI file of the performance")
    ac.add_argument("--json", required=True, help="per-phrase and per-measure assessment")
    ac.add_argument("--plot", metavar="PNG", help="played against modelled dynamics and tempo")
    ac.add_argument("--weights", metavar="NPZ", help="expression weights (default: model/expression.npz)")
    ac.set_defaults(func=run_assess)


def numbered(path: str, k: int, n: int) -> str:
    """OUT itself for one interpretation, else OUT-k (before the suffix)."""
    if n == 1:
        return path
    p = Path(path)
    return str(p.with_name(f"{p.stem}-{k}{p.suffix}"))


def run_render(args: argparse.Namespace) -> int:
    from bridge.expression.render import interpretations, load_network, write_csv, write_midi
    from bridge.musicxml import load_score

    if not args.csv and not args.midi:
        raise UserError("say where the rendition goes: --csv OUT.csv and/or --midi OUT.mid")
    net = load_network(args.weights)
    score = load_score(args.score)
    rends = interpretations(score, net, args.seed, args.samples)
    for k, rend in enumerate(rends, 1):
        if args.csv:
            try:
                write_csv(score, rend, numbered(args.csv, k, len(rends)))
            except OSError as e:
                raise UserError(f"cannot write {args.csv}: {e.strerror}") from None
        if args.midi:
            write_midi(score, rend, numbered(args.midi, k, len(rends)))
    print(f"pianobridge: rendered {len(score.notes)} notes x {len(rends)}", file=sys.stderr)
    return 0


def run_assess(args: argparse.Namespace) -> int:
    from bridge.expression.assess import assess_performance, plot_assessment, write_json
    from bridge.expression.render import load_network
    from bridge.musicxml import load_score

    net = load_network(args.weights)
    score = load_score(args.score)
    result = assess_performance(score, args.performance, net)
    write_json(result, args.json)
    if args.plot:
        plot_assessment(result, args.plot)
    for ph in result["phrases"]:
        print(ph["text"])
    return 0
