"""Soak: 30 minutes of playing, accelerated, through the live bridge; memory must stay flat.

    python benchmarks/soak.py [--minutes 30]

Loops the bundled sonatina practice run (mistakes and a restart included) through
LiveBridge with OSC to a local receiver and the session log on, as fast as the
consumer takes it, and prints resident memory at the start, along the way and at the
end (after a warm-up loop, so caches and first allocations are not counted as growth).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bridge.live.runtime import LiveBridge  # noqa: E402
from bridge.midifile import read_performance  # noqa: E402
from bridge.musicxml import load_score  # noqa: E402
from bridge.osc import OscSender  # noqa: E402
from bridge.session import SessionLog  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0, help="minutes of playing to push through")
    a = ap.parse_args()
    score_path = ROOT / "scores" / "sonatina.musicxml"
    score = load_score(score_path)
    loop = read_performance(ROOT / "scores" / "performances" / "sonatina_practice.mid")
    loop_s = loop[-1].t + 2.0  # a pause between run-throughs: the player starts again

    received = [0]
    d = Dispatcher()
    d.set_default_handler(lambda *_: received.__setitem__(0, received[0] + 1))
    server = BlockingOSCUDPServer(("127.0.0.1", 0), d)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    log_path = Path(tempfile.mkdtemp()) / "soak.jsonl"
    bridge = LiveBridge(score, OscSender([server.server_address]), log=SessionLog(log_path, str(score_path)))
    bridge.start()

    n_loops = max(2, round(a.minutes * 60 / loop_s))
    samples = []
    t0 = time.perf_counter()
    for i in range(n_loops):
        for ev in loop:
            bridge.submit(replace(ev, t=ev.t + i * loop_s))
        while not bridge.queue.empty():  # keep the backlog small, like a player would
            time.sleep(0.01)
        if i == 0:
            samples.append((1, rss_mb()))
        elif (i + 1) % max(1, n_loops // 6) == 0 or i == n_loops - 1:
            samples.append((i + 1, rss_mb()))
    bridge.stop()
    wall = time.perf_counter() - t0
    server.shutdown()
    music_min = n_loops * loop_s / 60
    print(
        f"{music_min:.1f} minutes of playing ({n_loops} run-throughs, {n_loops * len(loop)} MIDI events) "
        f"in {wall:.0f} s; {received[0]} OSC messages received; log {log_path.stat().st_size / 1e6:.1f} MB"
    )
    print("RSS after run-through: " + ", ".join(f"{k}: {v:.1f} MB" for k, v in samples))
    print(f"growth after warm-up: {samples[-1][1] - samples[0][1]:+.1f} MB")


if __name__ == "__main__":
    main()
