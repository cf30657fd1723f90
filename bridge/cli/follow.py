"""`pianobridge follow`: replay a MIDI or audio performance against a score, causally, as JSONL."""

from __future__ import annotations

import argparse
import sys

from bridge.cli.common import add_output_options, add_playing_option, add_web_option, print_summary
from bridge.errors import UserError
from bridge.events import NoteVerdict, json_line
from bridge.expression.stream import open_phrases
from bridge.report import FollowRecord, plot_follow
from bridge.userfiles import OutputFile

MIN_AUDIO_NOTES = 3  # fewer from a recording: noise, speech or another sound, not a performance to follow


def add_parser(sub) -> None:
    f = sub.add_parser(
        "follow",
        help="replay a MIDI or audio performance against a score and write verdicts as JSONL",
        description="Replay PERFORMANCE through the same engine as live input, causally, "
        "and write one JSON object per event (see docs/events.md). An audio recording (WAV, FLAC, "
        "OGG, MP3, ...) of a piano goes through the note detector first; one that clearly is not a piano is refused "
        "(see docs/audio.md).",
    )
    f.add_argument("score", help="MusicXML score (.musicxml, .xml or .mxl)")
    f.add_argument("performance", help="MIDI file or audio recording of the performance")
    f.add_argument("--jsonl", metavar="OUT", help="write events here ('-' for stdout)")
    f.add_argument("--realtime", action="store_true", help="replay at wall-clock speed instead of as fast as possible")
    f.add_argument("--summary", action="store_true", help="print a summary table at the end")
    f.add_argument("--plot", metavar="PNG", help="save an alignment, tempo and dynamics plot")
    f.add_argument("--session", metavar="FILE", help="also log every input and output event here (see `replay`)")
    f.add_argument(
        "--hands",
        metavar="STREAM.jsonl",
        help="hand landmarks of the same performance (`pianobridge hands` on its video): adds the finger that "
        "played each note",
    )
    f.add_argument(
        "--calibration", metavar="CAL.json", help="keyboard calibration for --hands (`pianobridge calibrate`)"
    )
    add_playing_option(f)
    add_output_options(f)
    add_web_option(f)
    f.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bridge.adapters.registry import open_sender
    from bridge.midifile import read_performance
    from bridge.musicxml import load_score
    from bridge.replay import new_engine, run_engine
    from bridge.session import SessionLog

    if args.web and not args.realtime:
        raise UserError("--web shows the performance as it is played: add --realtime")
    from bridge.audio.files import is_midi

    score = load_score(args.score)
    audio = None
    if is_midi(args.performance):
        events = read_performance(args.performance)
        if not any(e.type == "note_on" for e in events):
            raise UserError(f"the MIDI file has no notes: {args.performance}")
    else:
        from bridge.audio.stream import FileDetection

        if args.hands:
            raise UserError("--hands needs a MIDI performance (its note times are the camera's clock)")
        audio = FileDetection(args.performance)
        for line in audio.warnings:
            print(f"pianobridge: {line}", file=sys.stderr)
    fingers: list = []
    if bool(args.hands) != bool(args.calibration):
        raise UserError("--hands and --calibration go together")
    if args.hands:
        from bridge.camera.stream import played_fingers

        fingers, offset = played_fingers(events, args.hands, args.calibration)
        print(f"pianobridge: camera clock {1000 * offset:+.0f} ms from the MIDI clock", file=sys.stderr)
    played = iter(fingers)
    playing = args.playing or "auto"
    engine = new_engine(score, not args.no_fingering, hands=playing)
    phrases, off = open_phrases(score, not args.no_expression)
    if audio is not None:  # detected as the engine follows: each frame weighs what it expects next
        events = audio.events(engine.expected_pitches)
    page = None
    if args.web:  # annotations typed on the page go in between the key presses
        from bridge.web import PendingAnnotations, open_page, plan_of

        pending = PendingAnnotations()
        events = pending.merged(events)
        plan = plan_of(score, engine.suggested)
        page = open_page(args.web, args.score, score.title, submit=pending.submit, clock=pending.clock, plan=plan)
    osc = open_sender(args.osc, bundle=args.osc_bundle) if args.osc else None
    log = (
        SessionLog(
            args.session,
            args.score,
            {"performance": args.performance, "fingering": not args.no_fingering, "playing": playing},
        )
        if args.session
        else None
    )
    out = OutputFile(args.jsonl) if args.jsonl else None
    # each event is written as it comes; only counts (and, for --plot, a few numbers a
    # press) are kept, so a long performance does not fill memory
    record = FollowRecord(notes=bool(args.plot))

    last_t = 0.0

    def emit(e, kind: str = "out") -> None:
        nonlocal last_t
        last_t = max(last_t, e.t)
        if audio is not None:  # logged, not replayed (session.VOLATILE)
            audio.stamp(e)
        if log:  # expression events are derived from outputs, an expression_off is a notice
            {"out": log.log_out, "derived": log.log_derived, "notice": log.log_notice}[kind](e)
        d = e.to_dict()
        record.add(d)
        if out:
            out.write(json_line(d))
        if osc:
            osc.send_event(e, args.osc_prefix)
        if page:
            page.publish(e)

    try:
        for ev in run_engine(engine, events, realtime=args.realtime, on_input=log.log_in if log else None):
            out_events = [ev]
            if fingers and isinstance(ev, NoteVerdict):
                ev.finger = next(played, None)
                out_events += engine.finger_played(ev.t, ev.pitch, ev.match, ev.finger)
            for e in out_events:
                emit(e)
                if phrases and (done := phrases.add(e)) is not None and (x := phrases.assess(done, e.t)):
                    emit(x, "derived")
            if off is not None:
                emit(off, "notice")  # once, after the stream's first line
                off = None
        if phrases and (done := phrases.finish()) is not None and (x := phrases.assess(done, last_t)):
            emit(x, "derived")
    finally:
        for closable in (page, log, osc, out):
            if closable:
                closable.close()
    if audio is not None and audio.notes < MIN_AUDIO_NOTES:
        raise UserError(f"no piano notes heard in {args.performance} ({audio.notes} detected)")
    for line in osc.summary() if osc else []:  # what each OSC target got, marks included
        print(f"pianobridge: {line}", file=sys.stderr)
    if page:
        print(f"pianobridge: {page.summary()}", file=sys.stderr)
    if args.summary:
        print_summary(record, score.title)
    if args.plot:
        plot_follow(record, score, args.plot)
    return 0
