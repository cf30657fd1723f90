"""`pianobridge replay`: re-run a session log and check it reproduces every logged output."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bridge.errors import UserError
from bridge.events import json_line
from bridge.userfiles import OutputFile, writing


def add_parser(sub) -> None:
    r = sub.add_parser(
        "replay",
        help="re-run a session log and check that it reproduces every logged output",
        description="Feeds the logged input events through a fresh engine and compares the "
        "outputs with the logged ones (exit 1 at the first difference).",
    )
    r.add_argument("session", help="session log (JSONL) written by --session or the live bridge")
    r.add_argument("--jsonl", metavar="OUT", help="write the replayed events here")
    r.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import hashlib

    from bridge.musicxml import load_score
    from bridge.replay import new_engine, run_engine
    from bridge.session import check_session, first_difference, session_events

    header, n_inputs, n_outputs = check_session(args.session)
    score_path = Path(header["score"])
    if not score_path.is_file():
        raise UserError(f"the session's score is gone: {score_path}")
    if hashlib.sha256(score_path.read_bytes()).hexdigest() != header["score_sha256"]:
        raise UserError(f"the score changed since the session was recorded: {score_path}")
    settings = header["settings"]
    calibration = None
    if settings.get("calibration"):
        from bridge.keyboard import Calibration

        calibration = Calibration.load(settings["calibration"])
    engine = new_engine(
        load_score(score_path), bool(settings.get("fingering")), calibration=calibration, hands=settings.get("playing")
    )
    out = OutputFile(args.jsonl) if args.jsonl else None

    def replayed():  # streamed from the log and compared as they come: a long session stays small
        inputs = (ev for _, ev in session_events(args.session, "in"))
        for ev in run_engine(engine, inputs):
            d = ev.to_dict()
            if out:
                out.write(json_line(d))
            yield d

    try:
        outputs = replayed()
        diff = first_difference((d for _, d in session_events(args.session, "out")), outputs)
        more = sum(1 for _ in outputs)  # the rest (for --jsonl too)
    finally:
        if out:
            out.close()
    if diff is not None:
        n, want, got = diff
        print(f"pianobridge: replay differs at output {n + 1}: logged {want}, replayed {got}", file=sys.stderr)
        return 1
    with writing("standard output", stdout=True):
        print(
            f"replayed {n_inputs} input events: all {n_outputs} logged outputs reproduced"
            + (f" ({more} more from the event in flight)" if more else ""),
            flush=True,
        )
    return 0
