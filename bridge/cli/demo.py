"""`pianobridge demo`: a bundled practice run played in real time through the live bridge."""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
from pathlib import Path

from bridge.cli.common import (
    BUNDLED,
    add_oscquery_option,
    add_output_options,
    add_web_option,
    positive,
    print_summary,
    start_oscquery,
)
from bridge.errors import UserError
from bridge.report import plot_follow

DEFAULT_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"  # Debian fluid-soundfont-gm


def add_parser(sub) -> None:
    d = sub.add_parser(
        "demo",
        help="play a bundled practice run through the live bridge (no keyboard needed)",
        description="Plays a bundled practice run (wrong, extra and dropped notes, a restart) in "
        "real time into the live bridge - through a virtual MIDI port where the machine has a "
        "MIDI system, else from an internal source - with OSC to a local receiver, the live "
        "view and a session log; then prints a summary and writes a report plot.",
    )
    d.add_argument("--speed", type=positive(float), default=1.0, help="play this many times faster (default 1)")
    d.add_argument("--session", metavar="FILE", help="session log file (default: a new one in ~/pianobridge-sessions)")
    d.add_argument("--no-view", action="store_true", help="no live terminal view")
    d.add_argument("--plot", metavar="PNG", default="pianobridge-demo.png", help="plot file (default: %(default)s)")
    d.add_argument(
        "--camera-sim",
        action="store_true",
        help="also feed a simulated camera above the keys, where the player uses another finger than the "
        "suggested one on a few notes: shows fingering corrections without a camera",
    )
    d.add_argument(
        "--audio",
        action="store_true",
        help="render the practice run to audio with FluidSynth and follow it through the audio input path "
        "(an acoustic piano heard by a microphone; see docs/audio.md)",
    )
    d.add_argument(
        "--soundfont", metavar="SF2", default=DEFAULT_SOUNDFONT, help="soundfont for --audio (default: %(default)s)"
    )
    add_output_options(d)
    add_oscquery_option(d)
    add_web_option(d)
    d.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """A practice run, played in real time through the whole live path."""
    import time
    from dataclasses import replace

    from pythonosc.dispatcher import Dispatcher
    from pythonosc.osc_server import BlockingOSCUDPServer

    from bridge.adapters.registry import open_sender
    from bridge.events import HandFrame
    from bridge.keyboard import Calibration
    from bridge.live.runtime import LiveBridge
    from bridge.live.view import TerminalView
    from bridge.midifile import read_performance
    from bridge.midiport import MidiInput, open_backend, to_message
    from bridge.musicxml import load_score
    from bridge.session import SessionLog, new_session_path

    score_path = BUNDLED / "sonatina.musicxml"
    score = load_score(score_path)
    performance = BUNDLED / "performances" / "sonatina_practice.mid"
    events = read_performance(performance)
    if args.audio and (args.camera_sim or args.speed != 1.0):
        raise UserError("--audio plays the recording as it sounds: leave out --speed and --camera-sim")
    audio = None
    if args.audio:  # rendered up front: a missing synthesizer or soundfont is said before anything starts
        from bridge.audio.live import AudioInput, PlayedSource, detector_factory
        from bridge.audio.render import fluidsynth_render

        make_detector = detector_factory()
        samples = fluidsynth_render(performance, args.soundfont)
    # a local OSC receiver stands in for the DAW
    received = [0]
    d = Dispatcher()
    d.set_default_handler(lambda *_: received.__setitem__(0, received[0] + 1))
    receiver = BlockingOSCUDPServer(("127.0.0.1", 0), d)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    osc = open_sender(args.osc, bundle=args.osc_bundle, native=[receiver.server_address])
    session = Path(args.session) if args.session else new_session_path()
    settings = {"demo": True, "fingering": not args.no_fingering, "audio": bool(args.audio)}
    sim = frames = None
    if args.camera_sim:
        from bridge.camera.simulated import practice_camera

        if args.no_fingering:
            raise UserError("--camera-sim shows fingering corrections: leave out --no-fingering")
        # the simulated player plays at the demo's speed: the camera sees hands move that fast
        sim = practice_camera(score, [replace(e, t=e.t / args.speed) for e in events])
        frames = [{**f, "t": f["t"] * args.speed} for f in sim.frames]  # on the timeline's clock
        cal_path = session.with_name(session.stem + ".calibration.json")  # `replay` needs it
        sim.calibration.save(cal_path)
        calibration = Calibration.load(cal_path)  # as `replay` will read it (the file rounds the corners)
        settings.update(camera="simulated", calibration=str(cal_path.resolve()))
    log = SessionLog(session, str(score_path), settings)
    results: list[dict] = []
    view = TerminalView(score.title) if sys.stdout.isatty() and not args.no_view else None

    def collect(ev) -> None:
        results.append(ev.to_dict())
        if view:
            view(ev)

    bridge = LiveBridge(
        score,
        osc,
        args.osc_prefix,
        log,
        collect,
        fingering=not args.no_fingering,
        calibration=calibration if sim else None,
        expression=not args.no_expression,
    )
    osc.set_notice(bridge.notice)
    page = None
    if args.web:  # the score page: annotations typed there go the way OSC ones do
        from bridge.web import open_page, plan_of, tee

        plan = plan_of(score, bridge.engine.suggested)
        page = open_page(args.web, score_path, score.title, submit=bridge.submit_control, clock=bridge.clock, plan=plan)
        bridge.view = tee(bridge.view, page.publish)
    query = start_oscquery(args.oscquery, args.osc_prefix)
    bridge.start()
    midi = out = None
    if args.audio:
        audio = AudioInput(
            PlayedSource(samples, name=Path(args.soundfont).name),
            bridge.submit,
            bridge.clock,
            lambda: bridge.engine.expected_pitches(),
            make_detector,
        )
        bridge.stamp = audio.stamp
    source = "the audio input (rendered with FluidSynth)"
    if audio is None:
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
    # key presses and camera frames in time order, each sent when its moment comes (audio plays itself)
    timeline = (
        []
        if audio
        else sorted([(ev.t, 0, ev) for ev in events] + [(f["t"], 1, f) for f in frames or []], key=lambda x: x[:2])
    )
    start = time.monotonic()
    try:
        with view or contextlib.nullcontext():
            if audio is not None:
                audio.start()
                audio.source.done.wait()
            for at, is_frame, ev in timeline:
                time.sleep(max(0.0, start + at / args.speed - time.monotonic()))
                if is_frame:
                    bridge.submit(HandFrame(bridge.clock(), tuple(ev["hands"])))
                elif out is not None:
                    out.send(to_message(ev))
                else:
                    bridge.submit(replace(ev, t=bridge.clock()))
            time.sleep(0.3)
    finally:
        if audio is not None:
            print(f"pianobridge: {audio.close()}", file=sys.stderr)
        if out is not None:
            out.close()
        if midi:
            midi.close()
        bridge.stop()
        if page:
            page.close()  # after the bridge's last events
        if midi:
            midi.release()
        receiver.shutdown()
        if query:
            query.close()
    print_summary(results, f"{score.title} (through {source})")
    print(f"OSC messages the local receiver got: {received[0]}; session log: {session}")
    for line in osc.summary()[1:]:  # the other targets (the first is the local receiver)
        print(f"pianobridge: {line}", file=sys.stderr)
    if page:
        print(f"pianobridge: {page.summary()}", file=sys.stderr)
    if sim:
        told = sum(r["type"] == "fingering_correction" for r in results)
        print(
            f"simulated camera: the player used another finger than suggested on {len(sim.other_fingers)} notes; "
            f"fingering corrections sent: {told}"
        )
    plot_follow(results, score, args.plot)
    print(f"report: {args.plot}")
    return 0
