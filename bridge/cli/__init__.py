"""Command line: ``pianobridge COMMAND ...``; see ``pianobridge --help``.

One module per command, each with ``add_parser(sub)`` and ``run(args)``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bridge import __version__
from bridge.cli import (
    annotate,
    calibrate,
    demo,
    expression,
    fingering,
    follow,
    hands,
    ports,
    replay,
    review,
    run,
    train,
)
from bridge.errors import UserError

# in --help order
COMMANDS = (follow, demo, ports, run, replay, review, fingering, annotate, hands, calibrate, expression, train)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="pianobridge",
        description="Follow a pianist through a MusicXML score and judge every key press.",
    )
    ap.add_argument("--version", action="version", version=f"pianobridge {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if argv is None:  # a real command line, not a caller's: C libraries keep off the terminal
        from bridge.native import divert_native_stderr

        divert_native_stderr()
    try:
        return args.func(args)
    except UserError as e:
        print(f"pianobridge: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug, not the user's mistake: one line here, the traceback in a file
        print(f"pianobridge: internal error: {type(e).__name__}: {str(e)[:200]} ({_crash_report()})", file=sys.stderr)
        return 70


def _crash_report() -> str:
    """Write the current exception's traceback where a bug report can pick it up."""
    import tempfile
    import time
    import traceback

    text = "".join(traceback.format_exc())
    for folder in (
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pianobridge",
        Path(tempfile.gettempdir()),
    ):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
            path.write_text(f"pianobridge {__version__} {' '.join(sys.argv)}\n{text}")
            return f"this is a bug; details in {path}"
        except OSError:
            continue
    return "this is a bug"
