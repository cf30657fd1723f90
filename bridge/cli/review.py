"""`pianobridge review`: a recorded session on the score page, with a timeline to scrub."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> None:
    r = sub.add_parser(
        "review",
        help="open a recorded session on the score page: scrub, play back at speed, export PNG/PDF",
        description="Serves the score page (see docs/web.md) over a recorded session: every verdict, jump, "
        "fingering and teacher annotation on the engraved score, a timeline to scrub or play back at any speed, "
        "and the marked-up page as PNG or (through the browser's print) PDF. Runs until Ctrl-C.",
    )
    r.add_argument("session", help="session log (`run`, `demo`, `follow --session`)")
    r.add_argument(
        "--web",
        metavar="[HOST:]PORT",
        default="127.0.0.1:0",
        help="where to serve the page (default: any free port on loopback; another HOST needs the printed token)",
    )
    r.add_argument("--score", metavar="FILE", help="the session's score, where it is no longer where it was recorded")
    r.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import signal
    import threading

    from bridge.musicxml import load_score
    from bridge.session import check_score, check_session, session_events
    from bridge.web import open_page, plan_of
    from bridge.web.server import PAGE_TYPES

    header, _, n_out = check_session(args.session)  # a bad line is one message before anything starts
    score_path = args.score or header["score"]
    check_score(args.session, header, score_path)
    score = load_score(score_path)
    events = [ev for _, ev in session_events(args.session, "out") if ev.get("type") in PAGE_TYPES]
    suggested = None
    if header["settings"].get("fingering"):
        from bridge.fingering.files import score_suggestions

        suggested = score_suggestions(score)
    page = open_page(args.web, score_path, score.title, plan=plan_of(score, suggested), events=events, mode="review")
    print(
        f"pianobridge: reviewing {args.session}: {len(events)} of its {n_out} output events on the page; Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        page.close()
    print(f"pianobridge: {page.summary()}", file=sys.stderr)
    return 0
