"""Command line: ``pianobridge COMMAND ...``; see ``pianobridge --help``."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from itertools import chain
from pathlib import Path

from bridge import __version__
from bridge.errors import UserError

BUNDLED = Path(__file__).resolve().parent.parent / "scores"


def _open_out(path: str):
    if path == "-":
        return sys.stdout
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return open(path, "w", buffering=1)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror}") from None


def cmd_follow(args: argparse.Namespace) -> int:
    from bridge.engine import Engine
    from bridge.events import Status
    from bridge.midifile import read_performance
    from bridge.musicxml import load_score
    from bridge.osc import OscSender, parse_target, to_messages
    from bridge.replay import run_engine

    score = load_score(args.score)
    events = read_performance(args.performance)
    if not any(e.type == "note_on" for e in events):
        raise UserError(f"the MIDI file has no notes: {args.performance}")
    engine = Engine(score)
    osc = OscSender([parse_target(x) for x in args.osc], bundle=args.osc_bundle) if args.osc else None
    out = _open_out(args.jsonl) if args.jsonl else None
    results = []
    try:
        for ev in chain([Status(0.0, "score_loaded", score.title)], run_engine(engine, events, realtime=args.realtime)):
            d = ev.to_dict()
            results.append(d)
            if out:
                out.write(json.dumps(d, separators=(",", ":")) + "\n")
            if osc:
                osc.send(to_messages(ev, args.osc_prefix))
    finally:
        if out and out is not sys.stdout:
            out.close()
        if osc:
            osc.close()
    if args.summary:
        print_summary(results, score.title)
    if args.plot:
        from bridge.report import plot_follow

        plot_follow(results, score, args.plot)
    return 0


def print_summary(results: list[dict], title: str) -> None:
    """A short table of what the player did, for people rather than programs."""
    from rich.console import Console
    from rich.table import Table

    notes = [r for r in results if r["type"] == "note"]
    verdicts = Counter(r["verdict"] for r in notes)
    timing = Counter(r["timing"] for r in notes if r.get("timing"))
    loud = Counter(r["loudness"] for r in notes if r.get("loudness"))
    t = Table(title=f"pianobridge: {title}", show_header=False)
    t.add_row("notes played", str(len(notes)))
    for k in ("correct", "wrong_pitch", "extra"):
        t.add_row(f"  {k}", str(verdicts.get(k, 0)))
    t.add_row("missed score notes", str(sum(1 for r in results if r["type"] == "missed")))
    t.add_row("restarts / jumps", str(sum(1 for r in results if r["type"] == "jump")))
    t.add_row("timing early / on time / late", f"{timing['early']} / {timing['on_time']} / {timing['late']}")
    t.add_row("dynamics soft / ok / loud", f"{loud['soft']} / {loud['ok']} / {loud['loud']}")
    if notes:
        last = notes[-1]["position"]
        t.add_row("ended at", f"measure {last['measure']}, beat {last['beat']:g}")
        lat = sorted(r["latency_us"] for r in notes)
        t.add_row("engine latency p50 / p99", f"{lat[len(lat) // 2]} / {lat[int(0.99 * (len(lat) - 1))]} µs")
    Console().print(t)


def cmd_demo(args: argparse.Namespace) -> int:
    perf = BUNDLED / "performances" / "sonatina_practice.mid"
    score = BUNDLED / "sonatina.musicxml"
    ns = argparse.Namespace(
        score=str(score),
        performance=str(perf),
        jsonl=args.jsonl,
        realtime=args.realtime,
        summary=True,
        plot=args.plot,
        osc=args.osc,
        osc_prefix=args.osc_prefix,
        osc_bundle=args.osc_bundle,
    )
    return cmd_follow(ns)


def add_osc_options(p: argparse.ArgumentParser) -> None:
    from bridge.osc import DEFAULT_PREFIX

    p.add_argument(
        "--osc",
        metavar="HOST:PORT",
        action="append",
        default=[],
        help="also send every event as OSC to this UDP target (repeat for several; see osc_schemas/)",
    )
    p.add_argument("--osc-prefix", default=DEFAULT_PREFIX, help="OSC address prefix (default: %(default)s)")
    p.add_argument("--osc-bundle", action="store_true", help="send each event's messages as one OSC bundle")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="pianobridge",
        description="Follow a pianist through a MusicXML score and judge every key press.",
    )
    ap.add_argument("--version", action="version", version=f"pianobridge {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    f = sub.add_parser(
        "follow",
        help="replay a MIDI performance against a score and write verdicts as JSONL",
        description="Replay PERFORMANCE through the same engine as live input, causally, "
        "and write one JSON object per event (see docs/events.md).",
    )
    f.add_argument("score", help="MusicXML score (.musicxml, .xml or .mxl)")
    f.add_argument("performance", help="MIDI file of the performance")
    f.add_argument("--jsonl", metavar="OUT", help="write events here ('-' for stdout)")
    f.add_argument("--realtime", action="store_true", help="replay at wall-clock speed instead of as fast as possible")
    f.add_argument("--summary", action="store_true", help="print a summary table at the end")
    f.add_argument("--plot", metavar="PNG", help="save an alignment, tempo and dynamics plot")
    add_osc_options(f)
    f.set_defaults(func=cmd_follow)

    d = sub.add_parser(
        "demo",
        help="follow a bundled practice performance (no keyboard needed)",
        description="Replays a bundled practice run with wrong notes and a restart "
        "and prints what the bridge made of it.",
    )
    d.add_argument("--jsonl", metavar="OUT", help="also write the events here")
    d.add_argument("--realtime", action="store_true", help="replay at wall-clock speed")
    d.add_argument("--plot", metavar="PNG", default="pianobridge-demo.png", help="plot file (default: %(default)s)")
    add_osc_options(d)
    d.set_defaults(func=cmd_demo)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as e:
        print(f"pianobridge: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
