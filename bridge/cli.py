"""Command line: ``pianobridge COMMAND ...``; see ``pianobridge --help``."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from types import GenericAlias, UnionType

from bridge import __version__
from bridge.errors import UserError
from bridge.events import NoteVerdict, json_line
from bridge.report import FollowRecord, plot_follow
from bridge.userfiles import OutputFile, writing

BUNDLED = Path(__file__).resolve().parent.parent / "scores"


def cmd_follow(args: argparse.Namespace) -> int:
    from bridge.midifile import read_performance
    from bridge.musicxml import load_score
    from bridge.osc import OscSender, parse_target, to_messages
    from bridge.replay import new_engine, run_engine
    from bridge.session import SessionLog

    score = load_score(args.score)
    events = read_performance(args.performance)
    if not any(e.type == "note_on" for e in events):
        raise UserError(f"the MIDI file has no notes: {args.performance}")
    fingers: list = []
    if bool(args.hands) != bool(args.calibration):
        raise UserError("--hands and --calibration go together")
    if args.hands:
        from bridge.camera.stream import played_fingers

        fingers, offset = played_fingers(events, args.hands, args.calibration)
        print(f"pianobridge: camera clock {1000 * offset:+.0f} ms from the MIDI clock", file=sys.stderr)
    played = iter(fingers)
    engine = new_engine(score, not args.no_fingering)
    osc = OscSender([parse_target(x) for x in args.osc], bundle=args.osc_bundle) if args.osc else None
    log = (
        SessionLog(args.session, args.score, {"performance": args.performance, "fingering": not args.no_fingering})
        if args.session
        else None
    )
    out = OutputFile(args.jsonl) if args.jsonl else None
    # each event is written as it comes; only counts (and, for --plot, a few numbers a
    # press) are kept, so a long performance does not fill memory
    record = FollowRecord(notes=bool(args.plot))
    try:
        for ev in run_engine(engine, events, realtime=args.realtime, on_input=log.log_in if log else None):
            if fingers and isinstance(ev, NoteVerdict):
                ev.finger = next(played, None)
            if log:
                log.log_out(ev)
            d = ev.to_dict()
            record.add(d)
            if out:
                out.write(json_line(d))
            if osc:
                osc.send(to_messages(ev, args.osc_prefix))
    finally:
        for closable in (log, osc, out):
            if closable:
                closable.close()
    if args.summary:
        print_summary(record, score.title)
    if args.plot:
        plot_follow(record, score, args.plot)
    return 0


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
    t.add_row("restarts / jumps", str(rec.jumps_count))
    t.add_row("timing early / on time / late", f"{timing['early']} / {timing['on_time']} / {timing['late']}")
    t.add_row("dynamics soft / ok / loud", f"{loud['soft']} / {loud['ok']} / {loud['loud']}")
    if rec.last_position is not None:
        last = rec.last_position
        t.add_row("ended at", f"measure {last['measure']}, beat {last['beat']:g}")
        t.add_row("engine latency p50 / p99", f"{rec.latency_at(0.5)} / {rec.latency_at(0.99)} µs")
    with writing("standard output", stdout=True):
        Console().print(t)
        sys.stdout.flush()


def cmd_demo(args: argparse.Namespace) -> int:
    """A practice run, played in real time through the whole live path."""
    import time
    from dataclasses import replace

    from pythonosc.dispatcher import Dispatcher
    from pythonosc.osc_server import BlockingOSCUDPServer

    from bridge.live import LiveBridge
    from bridge.midifile import read_performance
    from bridge.midiport import MidiInput, open_backend, to_message
    from bridge.musicxml import load_score
    from bridge.osc import OscSender, parse_target
    from bridge.report import plot_follow
    from bridge.session import SessionLog, new_session_path
    from bridge.view import TerminalView

    score_path = BUNDLED / "sonatina.musicxml"
    score = load_score(score_path)
    events = read_performance(BUNDLED / "performances" / "sonatina_practice.mid")
    # a local OSC receiver stands in for the DAW
    received = [0]
    d = Dispatcher()
    d.set_default_handler(lambda *_: received.__setitem__(0, received[0] + 1))
    receiver = BlockingOSCUDPServer(("127.0.0.1", 0), d)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    targets = [receiver.server_address] + [parse_target(x) for x in args.osc]
    session = Path(args.session) if args.session else new_session_path()
    log = SessionLog(session, str(score_path), {"demo": True, "fingering": not args.no_fingering})
    results: list[dict] = []
    view = TerminalView(score.title) if sys.stdout.isatty() and not args.no_view else None

    def collect(ev) -> None:
        results.append(ev.to_dict())
        if view:
            view(ev)

    bridge = LiveBridge(
        score,
        OscSender(targets, bundle=args.osc_bundle),
        args.osc_prefix,
        log,
        collect,
        fingering=not args.no_fingering,
    )
    bridge.start()
    midi = out = None
    try:  # play into a virtual MIDI port, as a keyboard would, where there is a MIDI system
        backend = open_backend()
        midi = MidiInput(backend, bridge.submit, bridge.clock, virtual="pianobridge-demo")
        midi.start()
        time.sleep(0.2)
        out = backend.open_output(next(n for n in backend.get_output_names() if "pianobridge-demo" in n))
        source = "a virtual MIDI port"
    except (UserError, StopIteration, OSError, RuntimeError):
        if midi:
            midi.close()
            midi.release()
        midi, source = None, "an internal source (no MIDI system here)"
    print(f"pianobridge demo: playing {score.title!r} in real time through {source}", file=sys.stderr)
    start = time.monotonic()
    try:
        with view or contextlib.nullcontext():
            for ev in events:
                time.sleep(max(0.0, start + ev.t / args.speed - time.monotonic()))
                if out is not None:
                    out.send(to_message(ev))
                else:
                    bridge.submit(replace(ev, t=bridge.clock()))
            time.sleep(0.3)
    finally:
        if out is not None:
            out.close()
        if midi:
            midi.close()
        bridge.stop()
        if midi:
            midi.release()
        receiver.shutdown()
    print_summary(results, f"{score.title} (through {source})")
    print(f"OSC messages the local receiver got: {received[0]}; session log: {session}")
    plot_follow(results, score, args.plot)
    print(f"report: {args.plot}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
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
    engine = new_engine(load_score(score_path), bool(settings.get("fingering")), calibration=calibration)
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


def add_output_options(p: argparse.ArgumentParser) -> None:
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
    p.add_argument(
        "--no-fingering",
        action="store_true",
        help="no suggested_finger on note events (default: planned by the fingering model when installed)",
    )


# every setting `run --config` reads, and the TOML type it must have
CONFIG_TYPES: dict[str, type | UnionType | GenericAlias] = {
    "score": str,
    "midi_in": str,
    "virtual_port": str,
    "osc": list[str],
    "osc_in": str,
    "osc_prefix": str,
    "osc_bundle": bool,
    "session_dir": str,
    "view": bool,
    "fingering": bool,
    "camera": str | int,
    "calibration": str,
    "hand_model": str,
    "osc_in_remote": bool,
    "osc_token": str,
    "library": list[str],
}
CONFIG_KEYS = set(CONFIG_TYPES)
MAX_CONFIG_BYTES = 1 << 20  # a config is a few lines; anything this big is not one


def _of_type(value: object, kind: type | UnionType | GenericAlias) -> bool:
    if isinstance(kind, GenericAlias):  # list[str]
        return isinstance(value, list) and all(_of_type(v, kind.__args__[0]) for v in value)
    if kind is not bool and isinstance(value, bool):  # TOML true is no number
        return False
    return isinstance(value, kind)


def _type_name(kind: type | UnionType | GenericAlias) -> str:
    if isinstance(kind, GenericAlias):
        return f"a list of {_type_name(kind.__args__[0])}s"
    if isinstance(kind, UnionType):
        return " or ".join(_type_name(k) for k in kind.__args__)
    return {str: "string", int: "integer", bool: "true or false"}[kind]


def load_config(path: str | None) -> dict:
    """TOML settings for `run`; command-line flags override them."""
    if not path:
        return {}
    import tomllib

    from bridge.userfiles import read_text

    text = read_text(path, "config file", MAX_CONFIG_BYTES)
    try:
        cfg = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as e:
        raise UserError(f"{path}: not valid TOML ({e})") from None
    unknown = set(cfg) - CONFIG_KEYS
    if unknown:
        raise UserError(
            f"{path}: unknown settings {', '.join(sorted(unknown))} (known: {', '.join(sorted(CONFIG_KEYS))})"
        )
    for key, value in cfg.items():
        if not _of_type(value, CONFIG_TYPES[key]):
            raise UserError(f"{path}: {key} must be {_type_name(CONFIG_TYPES[key])}, not {value!r:.60}")
    return cfg


def cmd_ports(args: argparse.Namespace) -> int:
    from bridge.midiport import describe, list_ports, open_backend

    backend = open_backend()
    inputs, outputs = list_ports(backend)
    print(f"MIDI system: {describe(backend)}")
    print("inputs:" + "".join(f"\n  {n}" for n in inputs) if inputs else "inputs: none")
    print("outputs:" + "".join(f"\n  {n}" for n in outputs) if outputs else "outputs: none")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import ipaddress
    import secrets
    import signal

    from bridge.live import LiveBridge
    from bridge.midiport import MidiInput, find_port, open_backend
    from bridge.musicxml import load_score
    from bridge.osc import OscReceiver, OscSender, parse_target
    from bridge.session import SessionLog, new_session_path
    from bridge.view import TerminalView

    cfg = load_config(args.config)
    # the MIDI reader and the consumer share the GIL: hand it over in 0.5 ms, not 5 ms
    sys.setswitchinterval(0.0005)

    def setting(name, default=None):
        value = getattr(args, name, None)
        return value if value not in (None, [], False) else cfg.get(name, default)

    score_path = setting("score")
    if not score_path:
        raise UserError("give a score: --score FILE (or score = ... in the config)")
    midi_in, virtual = setting("midi_in"), setting("virtual_port")
    if not midi_in and not virtual:
        raise UserError("give a MIDI input: --midi-in NAME or --virtual-port NAME (`pianobridge ports` lists them)")
    score = load_score(score_path)
    backend = open_backend()
    if midi_in and not virtual:
        midi_in = find_port(midi_in, backend.get_input_names())  # a clear error before anything starts
    targets = [parse_target(x) for x in setting("osc", [])]
    osc = OscSender(targets, bundle=bool(setting("osc_bundle", False))) if targets else None
    session = Path(args.session) if args.session else new_session_path(setting("session_dir"))
    fingering = bool(setting("fingering", True)) and not args.no_fingering
    camera, cal_path = setting("camera"), setting("calibration")
    if camera is not None and not cal_path:
        raise UserError("--camera needs --calibration CAL.json (`pianobridge calibrate` makes one)")
    calibration = None
    if cal_path:
        from bridge.keyboard import Calibration

        calibration = Calibration.load(cal_path)
        cal_path = str(Path(cal_path).resolve())
    settings = {"midi_in": midi_in, "virtual_port": virtual, "osc": setting("osc", []), "fingering": fingering}
    log = SessionLog(session, score_path, {**settings, "camera": camera, "calibration": cal_path})
    show = setting("view", sys.stdout.isatty()) and not args.no_view
    view = TerminalView(score.title) if show else None
    prefix = setting("osc_prefix", "/pianobridge")
    bridge = LiveBridge(
        score,
        osc,
        prefix,
        log,
        view,
        fingering=fingering,
        calibration=calibration,
        library=setting("library", []),
        score_path=score_path,
    )
    osc_in = None
    if setting("osc_in"):
        host, port = parse_target(setting("osc_in"))
        token = None
        if not ipaddress.ip_address(host).is_loopback:
            if not setting("osc_in_remote"):
                raise UserError(
                    f"--osc-in {host}:{port} lets other machines control the bridge: add --osc-in-remote "
                    "(senders then need the access token)"
                )
            token = setting("osc_token") or secrets.token_urlsafe(12)
        osc_in = OscReceiver(host, port, bridge.submit_control, bridge.clock, prefix, notice=bridge.notice, token=token)
        if token:
            print(f"pianobridge: OSC in on {host}:{port}: send {prefix}/auth {token} first", file=sys.stderr)
    midi = MidiInput(backend, bridge.submit, bridge.clock, name=None if virtual else midi_in, virtual=virtual)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"pianobridge: following {score.title!r}; session log {session}", file=sys.stderr, flush=True)
    cam = None
    # a thread of an input that dies is reported like every other fault, not printed as a traceback
    threading.excepthook = lambda a: bridge.notice(
        "input_error", f"{a.thread.name if a.thread else 'a thread'}: {a.exc_type.__name__}: {a.exc_value}"[:200]
    )
    try:
        bridge.start()
        midi.start()
        if osc_in:
            osc_in.start()
        if camera is not None:
            from bridge.camera.live import CameraInput

            cam = CameraInput(str(camera), bridge.submit, bridge.clock, setting("hand_model"))
            cam.start()
        print("pianobridge: ready", file=sys.stderr, flush=True)
        with view or contextlib.nullcontext():
            stop.wait()
    finally:
        if osc_in:
            osc_in.close()
        midi.close()
        camera_note = cam.close() if cam else None
        bridge.stop()  # the session log is complete and closed before the MIDI system is let go
        midi.release()
    if camera_note:
        print(f"pianobridge: {camera_note}", file=sys.stderr)
    print(f"pianobridge: stopped after {bridge.counts['in']} input events; session log {session}", file=sys.stderr)
    return 0


def cmd_fingering(args: argparse.Namespace) -> int:
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


def _positive(kind: type):
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


def cmd_hands(args: argparse.Namespace) -> int:
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


def cmd_calibrate(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np

    from bridge.camera.calibrate import find_keyboard, overlay
    from bridge.camera.frames import grab_frame
    from bridge.keyboard import Calibration, Keyboard, corner_points
    from bridge.userfiles import write_bytes

    # the flags first: a mistake in them is reported before a camera is opened
    keys = None
    if args.keys:
        try:
            low, high = (int(x) for x in args.keys.split("-"))
        except ValueError:
            raise UserError(f"--keys wants LOW-HIGH as MIDI numbers (21-108 for 88 keys), not {args.keys!r}") from None
        Keyboard(low, high)  # raises for keys a keyboard cannot have (0-127, white ends)
        keys = (low, high)
    pts = None
    if args.corners:
        try:
            pts = corner_points(np.reshape([float(x) for x in args.corners.split(",")], (4, 2)))
        except (ValueError, UserError):
            raise UserError(
                "--corners wants 8 finite numbers: x,y of front-left, front-right, back-right, back-left"
            ) from None
    picture = args.overlay or str(Path(args.out).with_suffix(".png"))
    if Path(picture) == Path(args.out):
        raise UserError(f"the key picture would overwrite the calibration {args.out}: give --overlay PNG")
    ext = Path(picture).suffix.lower() or ".png"  # the name is kept as given, suffix or not
    if not cv2.haveImageWriter(f"x{ext}"):
        raise UserError(f"cannot write {picture}: not an image format OpenCV writes ({ext}); use .png or .jpg")
    rgb = grab_frame(args.source)
    if pts is not None:
        cal = Calibration((rgb.shape[1], rgb.shape[0]), pts, Keyboard(*(keys or (21, 108))))
    else:
        cal = find_keyboard(rgb, keys)
    cal.save(args.out)
    write_bytes(picture, cv2.imencode(ext, overlay(rgb, cal))[1].tobytes())
    print(
        f"pianobridge: keys {cal.keyboard.low}-{cal.keyboard.high} -> {args.out}; check them on {picture}",
        file=sys.stderr,
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from bridge.fingering.train import train_command

    return train_command(args)


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
    add_output_options(f)
    f.set_defaults(func=cmd_follow)

    d = sub.add_parser(
        "demo",
        help="play a bundled practice run through the live bridge (no keyboard needed)",
        description="Plays a bundled practice run (wrong, extra and dropped notes, a restart) in "
        "real time into the live bridge - through a virtual MIDI port where the machine has a "
        "MIDI system, else from an internal source - with OSC to a local receiver, the live "
        "view and a session log; then prints a summary and writes a report plot.",
    )
    d.add_argument("--speed", type=_positive(float), default=1.0, help="play this many times faster (default 1)")
    d.add_argument("--session", metavar="FILE", help="session log file (default: a new one in ~/pianobridge-sessions)")
    d.add_argument("--no-view", action="store_true", help="no live terminal view")
    d.add_argument("--plot", metavar="PNG", default="pianobridge-demo.png", help="plot file (default: %(default)s)")
    add_output_options(d)
    d.set_defaults(func=cmd_demo)

    pt = sub.add_parser("ports", help="list MIDI inputs and outputs", description="List MIDI ports.")
    pt.set_defaults(func=cmd_ports)

    live = sub.add_parser(
        "run",
        help="follow a player live: MIDI keyboard in, OSC out, session log",
        description="Follow a player live from a MIDI keyboard (or a virtual port a DAW sends to), "
        "send every event over OSC and log the session. Ctrl-C stops cleanly. Settings can "
        "come from a TOML file (--config); flags override it.",
    )
    live.add_argument("--score", help="MusicXML score")
    live.add_argument("--midi-in", metavar="NAME", help="MIDI input: exact name or a unique part of it")
    live.add_argument("--virtual-port", metavar="NAME", help="open a virtual MIDI input other apps can send to")
    live.add_argument("--config", metavar="FILE.toml", help="settings: " + ", ".join(sorted(CONFIG_KEYS)))
    live.add_argument("--session", metavar="FILE", help="session log file (default: a new file in session_dir)")
    live.add_argument("--session-dir", metavar="DIR", help="folder for session logs (default: ~/pianobridge-sessions)")
    live.add_argument(
        "--osc-in",
        metavar="HOST:PORT",
        help="listen here for control commands and teacher annotations (see bridge/osc/receiver.py)",
    )
    live.add_argument(
        "--osc-in-remote",
        action="store_true",
        help="allow --osc-in on an address other machines can reach; senders must send PREFIX/auth TOKEN first",
    )
    live.add_argument(
        "--osc-token", metavar="TOKEN", help="the token for --osc-in-remote (default: a random one, printed)"
    )
    live.add_argument(
        "--library",
        metavar="DIR",
        action="append",
        default=[],
        help="a folder /control/load may read scores from (repeatable; the bundled scores and the score's own "
        "folder are always allowed)",
    )
    live.add_argument("--no-view", action="store_true", help="no live terminal view")
    live.add_argument(
        "--camera",
        metavar="INDEX_OR_VIDEO",
        help="camera above the keys (index) or a video file: which finger played each note (needs --calibration)",
    )
    live.add_argument(
        "--calibration", metavar="CAL.json", help="keyboard calibration for --camera (`pianobridge calibrate`)"
    )
    live.add_argument("--hand-model", metavar="TASK", help="MediaPipe hand_landmarker .task to use instead")
    add_output_options(live)
    live.set_defaults(func=cmd_run, osc_prefix=None)

    r = sub.add_parser(
        "replay",
        help="re-run a session log and check that it reproduces every logged output",
        description="Feeds the logged input events through a fresh engine and compares the "
        "outputs with the logged ones (exit 1 at the first difference).",
    )
    r.add_argument("session", help="session log (JSONL) written by --session or the live bridge")
    r.add_argument("--jsonl", metavar="OUT", help="write the replayed events here")
    r.set_defaults(func=cmd_replay)

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
    fg.set_defaults(func=cmd_fingering)

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
        type=_positive(int),
        metavar="N",
        help="still images searched at once (default: one per CPU core, at most 4; fewer for large images)",
    )
    hd.set_defaults(func=cmd_hands)

    cb = sub.add_parser(
        "calibrate",
        help="find the keyboard and its keys in an image, a video or a camera",
        description="Finds the keyboard and every key in an overhead view (the first frame of a video, "
        "a frame from a camera index) and writes the calibration JSON (image size, four corners, lowest "
        "and highest key, per-key polygons) and a PNG with the keys drawn on the image to check. "
        "--corners and --keys override what is found.",
    )
    cb.add_argument("source", help="image, video file, or camera index (0, 1, ...)")
    cb.add_argument("--out", required=True, metavar="CAL.json")
    cb.add_argument("--overlay", metavar="PNG", help="where to draw the keys (default: next to --out)")
    cb.add_argument(
        "--corners",
        metavar="X,Y,...",
        help="keyboard corners in pixels: front-left, front-right, back-right, back-left",
    )
    cb.add_argument("--keys", metavar="LOW-HIGH", help="lowest and highest key as MIDI numbers (e.g. 21-108)")
    cb.set_defaults(func=cmd_calibrate)

    tr = sub.add_parser(
        "train",
        help="train the fingering or hand-separation network on PIG",
        description="Trains on PIG pieces 031-150 (001-030 are the test split and are never read) "
        "and writes numpy weights that `pianobridge fingering` loads. Needs torch.",
    )
    tr.add_argument("task", choices=("fingering", "hands"))
    tr.add_argument("pig", help="PIG dataset folder (PianoFingeringDataset_v1.2 or its FingeringFiles)")
    tr.add_argument("--out", help="weights file (default: model/TASK.npz)")
    tr.add_argument("--members", type=_positive(int), default=None, help="networks in the ensemble")
    tr.add_argument("--steps", type=_positive(int), default=None, help="training steps per network")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument(
        "--holdout", action="store_true", help="hold out pieces whose number is a multiple of 5 and report on them"
    )
    tr.set_defaults(func=cmd_train)
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


if __name__ == "__main__":
    sys.exit(main())
