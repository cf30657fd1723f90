"""`pianobridge run`: follow a player live (MIDI in, OSC out, session log), settings from flags or TOML."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from pathlib import Path
from types import GenericAlias, UnionType

from bridge.cli.common import (
    add_oscquery_option,
    add_output_options,
    add_playing_option,
    add_web_option,
    start_oscquery,
)
from bridge.errors import UserError
from bridge.score import PLAYING

# every setting `run --config` reads, and the TOML type it must have
CONFIG_TYPES: dict[str, type | UnionType | GenericAlias] = {
    "score": str,
    "midi_in": str,
    "audio_in": str,
    "virtual_port": str,
    "osc": list[str],
    "osc_in": str,
    "osc_prefix": str,
    "osc_bundle": bool,
    "session_dir": str,
    "view": bool,
    "fingering": bool,
    "playing": str,
    "expression": bool,
    "camera": str | int,
    "calibration": str,
    "hand_model": str,
    "osc_in_remote": bool,
    "osc_token": str,
    "library": list[str],
    "oscquery": int,
    "web": str,
}

CONFIG_KEYS = set(CONFIG_TYPES)
CONFIG_CHOICES = {"playing": PLAYING}  # settings that take one of a few words

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
        if value not in CONFIG_CHOICES.get(key, (value,)):
            raise UserError(f"{path}: {key} must be one of {', '.join(CONFIG_CHOICES[key])}, not {value!r:.60}")
    return cfg


def add_parser(sub) -> None:
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
    live.add_argument(
        "--audio-in",
        metavar="DEVICE",
        help="follow an acoustic piano through this sound input (exact name or a unique part; `pianobridge ports` "
        "lists them; a sound that is not a piano is said once, as status not_piano; see docs/audio.md)",
    )
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
    add_playing_option(live)
    add_output_options(live)
    add_oscquery_option(live)
    add_web_option(live)
    live.set_defaults(func=run, osc_prefix=None)


def run(args: argparse.Namespace) -> int:
    import ipaddress
    import secrets
    import signal

    from bridge.adapters.registry import open_sender
    from bridge.live.runtime import LiveBridge
    from bridge.live.view import TerminalView
    from bridge.midiport import MidiInput, find_port, open_backend
    from bridge.musicxml import load_score
    from bridge.osc import OscReceiver, parse_target
    from bridge.session import SessionLog, new_session_path

    cfg = load_config(args.config)
    # the MIDI reader and the consumer share the GIL: hand it over in 0.5 ms, not 5 ms
    sys.setswitchinterval(0.0005)

    def setting(name, default=None):
        value = getattr(args, name, None)
        return value if value not in (None, [], False) else cfg.get(name, default)

    score_path = setting("score")
    if not score_path:
        raise UserError("give a score: --score FILE (or score = ... in the config)")
    midi_in, virtual, audio_in = setting("midi_in"), setting("virtual_port"), setting("audio_in")
    if not midi_in and not virtual and not audio_in:
        raise UserError(
            "give an input: --midi-in NAME, --virtual-port NAME or --audio-in DEVICE (`pianobridge ports` lists them)"
        )
    score = load_score(score_path)
    backend = open_backend() if midi_in or virtual else None
    if midi_in and not virtual:
        midi_in = find_port(midi_in, backend.get_input_names())  # a clear error before anything starts
    audio_source = None
    if audio_in:
        from bridge.audio.live import DeviceSource

        audio_source = DeviceSource(audio_in)  # a clear error before anything starts
    targets = setting("osc", [])
    osc = open_sender(targets, bundle=bool(setting("osc_bundle", False))) if targets else None
    session = Path(args.session) if args.session else new_session_path(setting("session_dir"))
    fingering = bool(setting("fingering", True)) and not args.no_fingering
    playing = setting("playing", "auto")
    expression = bool(setting("expression", True)) and not args.no_expression
    camera, cal_path = setting("camera"), setting("calibration")
    if camera is not None and not cal_path:
        raise UserError("--camera needs --calibration CAL.json (`pianobridge calibrate` makes one)")
    calibration = None
    if cal_path:
        from bridge.keyboard import Calibration

        calibration = Calibration.load(cal_path)
        cal_path = str(Path(cal_path).resolve())
    settings = {
        "midi_in": midi_in,
        "virtual_port": virtual,
        "audio_in": audio_in,
        "osc": setting("osc", []),
        "fingering": fingering,
        "playing": playing,
    }
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
        hands=playing,
        expression=expression,
        library=setting("library", []),
        score_path=score_path,
    )
    if osc:
        osc.set_notice(bridge.notice)  # a DAW that does not answer is said like every other fault
    page = None
    if setting("web"):  # the score page: annotations typed there go the way OSC ones do
        from bridge.web import open_page, plan_of, tee

        plan = plan_of(score, bridge.engine.suggested)
        page = open_page(
            setting("web"), score_path, score.title, submit=bridge.submit_control, clock=bridge.clock, plan=plan
        )
        bridge.view = tee(bridge.view, page.publish)
    osc_in = in_address = None
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
        in_address = (host, port)
        osc_in = OscReceiver(host, port, bridge.submit_control, bridge.clock, prefix, notice=bridge.notice, token=token)
        if token:
            print(f"pianobridge: OSC in on {host}:{port}: send {prefix}/auth {token} first", file=sys.stderr)
    query_port = args.oscquery if args.oscquery is not None else cfg.get("oscquery")
    query = start_oscquery(query_port, prefix, in_address)
    midi = (
        MidiInput(backend, bridge.submit, bridge.clock, name=None if virtual else midi_in, virtual=virtual)
        if backend
        else None
    )
    audio = None
    if audio_source:
        from bridge.audio.live import AudioInput, detector_factory

        audio = AudioInput(
            audio_source, bridge.submit, bridge.clock, lambda: bridge.engine.expected_pitches(), detector_factory()
        )
        bridge.stamp = audio.stamp
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
        if midi:
            midi.start()
        if audio:
            audio.start()
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
        if query:
            query.close()
        if osc_in:
            osc_in.close()
        if midi:
            midi.close()
        if audio_source:
            audio_source.detach()  # the process leaves by os._exit (below)
        audio_note = audio.close() if audio else None
        camera_note = cam.close() if cam else None
        bridge.stop()  # the session log is complete and closed before the MIDI system is let go
        if page:
            page.close()  # after the bridge's last events
        if midi:
            midi.release()
    if audio_note:
        print(f"pianobridge: {audio_note}", file=sys.stderr)
    if camera_note:
        print(f"pianobridge: {camera_note}", file=sys.stderr)
    for line in osc.summary() if osc else []:
        print(f"pianobridge: {line}", file=sys.stderr)
    if page:
        print(f"pianobridge: {page.summary()}", file=sys.stderr)
    print(f"pianobridge: stopped after {bridge.counts['in']} input events; session log {session}", file=sys.stderr)
    if audio_source:
        # PortAudio's JACK host ends the process badly on its way out (Pa_CloseStream and
        # Pa_Terminate assert that a busy server answered in time, or wait forever for one that
        # went away; skipped, its callback thread crashes the interpreter's finalisation):
        # everything is written and closed, so leave without any of them
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0
