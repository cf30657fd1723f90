"""What several commands share: the bundled scores, the OSC output flags, the summary table."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

from bridge.errors import UserError
from bridge.report import FollowRecord
from bridge.score import PLAYING
from bridge.userfiles import writing

BUNDLED = Path(__file__).resolve().parent.parent.parent / "scores"
PHRASES_SHOWN = 8


def print_summary(results: Iterable[dict] | FollowRecord, title: str) -> None:
    """A short table of what the player did, for people rather than programs."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    rec = results if isinstance(results, FollowRecord) else FollowRecord.of(results)
    timing, loud = rec.timing, rec.loudness
    # the title comes from the score: plain text, not rich markup (`[/]` in it would crash rich)
    t = Table(title=Text(f"pianobridge: {title}", style="table.title"), show_header=False)
    t.add_row("notes played", str(rec.played))
    for k in ("correct", "wrong_pitch", "extra"):
        t.add_row(f"  {k}", str(rec.verdicts.get(k, 0)))
    t.add_row("missed score notes", str(rec.missed_count))
    if rec.unheard_count:
        t.add_row("  not heard (maybe played)", str(rec.unheard_count))
    t.add_row("restarts / jumps", str(rec.jumps_count))
    if rec.corrections_count:
        t.add_row("fingering corrections", str(rec.corrections_count))
    t.add_row("timing early / on time / late", f"{timing['early']} / {timing['on_time']} / {timing['late']}")
    t.add_row("dynamics soft / ok / loud", f"{loud['soft']} / {loud['ok']} / {loud['loud']}")
    if rec.last_position is not None:
        last = rec.last_position
        t.add_row("ended at", f"measure {last['measure']}, beat {last['beat']:g}")
        t.add_row("engine latency p50 / p99", f"{rec.latency_at(0.5)} / {rec.latency_at(0.99)} µs")
    if rec.phrases:
        t.add_row("phrases assessed (expression)", str(len(rec.phrases)))
    with writing("standard output", stdout=True):
        console = Console()
        console.print(t)
        # how each phrase went, in words (the last few: the JSONL stream has them all)
        for line in rec.phrases[-PHRASES_SHOWN:]:
            console.print(Text(line))
        sys.stdout.flush()


def add_output_options(p: argparse.ArgumentParser) -> None:
    from bridge.osc import DEFAULT_PREFIX

    p.add_argument(
        "--osc",
        metavar="[ADAPTER@]HOST:PORT",
        action="append",
        default=[],
        help="also send every event as OSC to this UDP target (repeat for several): HOST:PORT gets the bridge's "
        "own address space (osc_schemas/), ADAPTER@HOST:PORT a DAW's dialect, markers included (ardour, reaper, "
        "ableton, bitwig; see docs/daw.md)",
    )
    p.add_argument("--osc-prefix", default=DEFAULT_PREFIX, help="OSC address prefix (default: %(default)s)")
    p.add_argument("--osc-bundle", action="store_true", help="send each event's messages as one OSC bundle")
    p.add_argument(
        "--no-fingering",
        action="store_true",
        help="no suggested_finger on note events (default: planned by the fingering model when installed)",
    )
    p.add_argument(
        "--no-expression",
        action="store_true",
        help="no expression events (default: each phrase assessed against the expression model when installed, "
        "once the player is into the next; docs/expression.md)",
    )


def add_playing_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--playing",
        choices=PLAYING,
        help="the hands the player plays: right or left follows that hand's part alone (hands-separate practice: "
        "the other hand's notes are not expected), both the whole score; auto (default) notices one hand "
        "playing alone and both again (status hands)",
    )


def add_web_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--web",
        metavar="[HOST:]PORT",
        help="serve a live score page here (PORT 0: any free one): the engraved score with the player's place, "
        "every verdict and fingering on it, teacher annotations back (loopback unless HOST is given; then the "
        "page needs the token printed at start; docs/web.md)",
    )


def add_oscquery_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--oscquery",
        metavar="PORT",
        nargs="?",
        type=int,
        const=0,
        help="publish the OSC address space over OSCQuery (HTTP on this port, any free one if none is given, "
        "announced over mDNS); off unless given",
    )


def start_oscquery(port: int | None, prefix: str, osc_in: tuple[str, int] | None = None):
    """The OSCQuery server for ``--oscquery PORT`` (None: off), on the ``--osc-in`` host or loopback."""
    if port is None:
        return None
    from bridge.osc.query import OscQueryServer

    if not 0 <= port < 65536:
        raise UserError(f"--oscquery takes a TCP port (0 for any free one), not {port}")
    host = osc_in[0] if osc_in else "127.0.0.1"
    server = OscQueryServer(prefix, port, host=host, osc_in=osc_in)
    print(f"pianobridge: OSCQuery on {server.url} (announced over mDNS as {server.name})", file=sys.stderr)
    return server


def positive(kind: type):
    """An argparse type: a number of ``kind`` above zero."""

    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
        return value

    return convert
