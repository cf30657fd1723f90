"""Delay of the live audio path: from a note's sound to its OSC message.

    python benchmarks/audio_latency.py [--soundfont SF2] [--seconds 60] [--block 256]

Renders the bundled sonatina performance with FluidSynth and plays it in real time, one
device-sized block at a time, into the live bridge (`AudioInput` -> `LiveBridge` -> OSC to
a local receiver), as `run --audio-in` does. For each OSC /note that pairs with a played
note (same pitch, within 60 ms), the delay is the receiver's arrival time minus the
moment that note's sound reached the input (block delivery included: a block is handed
over once its last sample is in, as a device does). A sound card adds its own buffer
(a 256-frame buffer at 48 kHz: 5 ms) on top.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    from pythonosc.dispatcher import Dispatcher
    from pythonosc.osc_server import BlockingOSCUDPServer

    from bridge.audio.live import AudioInput, PlayedSource, detector_factory
    from bridge.audio.render import fluidsynth_render
    from bridge.events import NoteOn
    from bridge.live.runtime import LiveBridge
    from bridge.midifile import read_performance
    from bridge.musicxml import load_score
    from bridge.osc import OscSender

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--soundfont", default="/usr/share/sounds/sf2/FluidR3_GM.sf2")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--block", type=int, default=256, help="samples per block at 22.05 kHz (default 256: 11.6 ms)")
    a = ap.parse_args()
    scores = ROOT / "scores"
    midi = scores / "performances" / "sonatina.mid"
    truth = [(e.t, e.pitch) for e in read_performance(midi) if isinstance(e, NoteOn) and e.velocity and e.t < a.seconds]
    samples = fluidsynth_render(midi, a.soundfont)[: int(a.seconds * 22050)]
    arrivals: list[tuple[float, float, int]] = []
    d = Dispatcher()
    d.map("/pianobridge/note", lambda _a, *args: arrivals.append((time.monotonic(), float(args[0]), int(args[1]))))
    server = BlockingOSCUDPServer(("127.0.0.1", 0), d)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    osc = OscSender([server.server_address])
    bridge = LiveBridge(load_score(scores / "sonatina.musicxml"), osc, fingering=False)
    source = PlayedSource(samples, block=a.block)
    audio = AudioInput(
        source, bridge.submit, bridge.clock, lambda: bridge.engine.expected_pitches(), detector_factory()
    )
    bridge.start()
    audio.start()
    source.done.wait()
    time.sleep(0.5)
    print(audio.close(), file=sys.stderr)
    bridge.stop()
    server.shutdown()
    t0 = audio.t0  # the bridge time of the first sample
    delays = []
    for at, t, pitch in arrivals:
        cands = [tt for tt, p in truth if p == pitch and abs(t0 + tt - t) <= 0.06]
        if cands:
            sound = bridge.t0 + t0 + min(cands, key=lambda tt: abs(t0 + tt - t))
            delays.append((at - sound) * 1000)
    if not delays:
        print("no notes paired", file=sys.stderr)
        return 1
    p50, p90, p99 = np.percentile(delays, [50, 90, 99])
    print(
        f"live audio path, sound to OSC: {len(delays)} notes of {len(truth)}; "
        f"delay p50 {p50:.1f} ms, p90 {p90:.1f} ms, p99 {p99:.1f} ms, max {max(delays):.1f} ms (block {a.block})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
