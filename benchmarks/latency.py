"""End-to-end latency: note-on into a real MIDI port -> the bridge's OSC /note on loopback.

    python benchmarks/latency.py [--notes 10000] [--rate 40] [--period 128] [--echo] [--flood 10000]

A JACK dummy server carries the MIDI (started here with --period frames at 48 kHz if
none runs). `pianobridge run` follows the bundled 2,090-note sonatina from a virtual
port; this process plays the sonatina's own performance into that port, looped, and
times each note-on against the /note message that comes back. Both processes read
CLOCK_MONOTONIC, which Linux shares across processes. Prints p50 / p99 / max and the
notes that never came back; JACK's period is part of the path and is printed with them.
--echo puts a bare echo in the bridge's place (the same virtual port, read the same way,
handed to a second thread, answered with an OSC /note; no engine, no log): the floor
this machine sets under any bridge. --flood N sends N junk datagrams a second (bytes that
are not OSC, and OSC messages with wrong arguments) at the bridge's --osc-in port all the
while, and prints the bridge's memory before and after. --web serves the score page
(`run --web`) and keeps it open in headless Chromium (playwright, Debian's /usr/bin/chromium)
all the while, drawing every note: the bridge's figures with a page watching (--no-browser:
the page's server alone, to tell its cost from the browser's on a small machine).
--no-expression leaves out the phrase assessment (`expression` events), to tell its cost.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict, deque
from pathlib import Path

import mido
import numpy as np
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer

ROOT = Path(__file__).resolve().parent.parent
JACK_API = "mido.backends.rtmidi/UNIX_JACK"
# the live bridge's path without the engine: rtmidi drained every 0.5 ms (as
# bridge.midiport does), a queue to one consumer thread, python-osc out
ECHO = """
import queue, sys, threading, rtmidi
from pythonosc.udp_client import SimpleUDPClient
sys.setswitchinterval(0.0005)
osc = SimpleUDPClient("127.0.0.1", int(sys.argv[1]))
rt = rtmidi.MidiIn(rtapi=rtmidi.API_UNIX_JACK, name="echo", queue_size_limit=8192)
rt.open_virtual_port("pb-latency")
q = queue.SimpleQueue()
def answer():
    while True:
        b = q.get()
        if b[0] & 0xF0 == 0x90 and b[2]:
            osc.send_message("/pianobridge/note", [0.0, b[1], b[2]])
threading.Thread(target=answer, daemon=True).start()
print("ready", file=sys.stderr, flush=True)
stop = threading.Event()
while True:
    item = rt.get_message()
    if item is None:
        stop.wait(0.0005)
    else:
        q.put(item[0])
"""


# junk for --osc-in: argv[1] port, argv[2] datagrams a second, argv[3] how many; prints how many it sent
FLOOD = """
import socket, sys, time
port, rate, total = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
junk = [b"\\xff junk %d" % i for i in range(100)]
junk.append(b"/pianobridge/control/jump\\x00\\x00\\x00\\x00,s\\x00\\x00x\\x00\\x00\\x00")  # a string, not a measure
start = time.monotonic()
for n in range(total):
    s.sendto(junk[n % len(junk)], ("127.0.0.1", port))
    if n % 500 == 499:
        time.sleep(max(0.0, start + (n + 1) / rate - time.monotonic()))
print(total)
"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def jack_running() -> bool:
    out = subprocess.run(["jack_wait", "-c"], capture_output=True, text=True).stdout.strip()
    return out == "running"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--notes", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=40.0, help="note-ons per second")
    ap.add_argument("--period", type=int, default=128, help="JACK period in frames at 48 kHz, if started here")
    ap.add_argument("--echo", action="store_true", help="a bare echo in place of the bridge (the floor)")
    ap.add_argument("--flood", type=float, metavar="N", help="junk datagrams a second at the bridge's --osc-in")
    ap.add_argument("--web", action="store_true", help="with the score page open in headless Chromium")
    ap.add_argument(
        "--no-expression", action="store_true", help="without the phrase assessment (its cost on the note path)"
    )
    ap.add_argument("--no-browser", action="store_true", help="with --web: the page's server on, no page open")
    a = ap.parse_args()
    if a.flood and a.echo:
        sys.exit("latency.py: --flood needs the bridge, not --echo")
    sys.setswitchinterval(0.0002)  # hand the GIL to the receiver thread promptly
    if shutil.which("jackd") is None:
        sys.exit("latency.py: needs jackd (apt-get install jackd2)")
    jackd = None
    if not jack_running():
        jackd = subprocess.Popen(
            ["jackd", "--no-realtime", "-d", "dummy", "-r", "48000", "-p", str(a.period)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        subprocess.run(["jack_wait", "-w", "-t", "10"], capture_output=True)
    os.environ["MIDO_BACKEND"] = JACK_API
    mido.set_backend(JACK_API, load=True)

    sent_at: dict[tuple[int, int], deque[float]] = defaultdict(deque)
    latencies: list[float] = []
    lock = threading.Lock()

    def on_note(address, t, pitch, velocity, *rest):
        now = time.monotonic()
        with lock:
            q = sent_at.get((pitch, velocity))
            while q and now - q[0] > 2.0:
                q.popleft()  # its reply never came: that note was lost, not this one late
            if q:
                latencies.append(now - q.popleft())

    d = Dispatcher()
    d.map("/pianobridge/note", on_note)
    server = BlockingOSCUDPServer(("127.0.0.1", 0), d)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    session = Path(tempfile.mkdtemp()) / "latency.jsonl"
    osc_port = str(server.server_address[1])
    run = [sys.executable, "-m", "bridge.cli", "run", "--score", str(ROOT / "scores" / "sonatina.musicxml"),
           "--virtual-port", "pb-latency", "--osc", f"127.0.0.1:{osc_port}", "--session", str(session), "--no-view"]  # fmt: skip
    if a.no_expression:
        run.append("--no-expression")
    if a.flood:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            in_port = probe.getsockname()[1]
        run += ["--osc-in", f"127.0.0.1:{in_port}"]
    if a.web:
        run += ["--web", "127.0.0.1:0"]
    cmd = [sys.executable, "-c", ECHO, osc_port] if a.echo else run
    bridge = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    page_url = browser = None
    for line in bridge.stderr:
        if "score page on " in line:
            page_url = line.split("score page on ")[1].split()[0]
        if "ready" in line:
            break
    if page_url and not a.no_browser:
        from playwright.sync_api import sync_playwright

        playwright = sync_playwright().start()
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page()
        page.goto(page_url)
        page.wait_for_function("() => __pb.firstRender !== null", timeout=30000)
    time.sleep(1.0)
    port = mido.open_output(next(n for n in mido.get_output_names() if "pb-latency" in n))

    perf = mido.MidiFile(ROOT / "scores" / "performances" / "sonatina.mid")
    pitches = [m.note for m in perf if m.type == "note_on" and m.velocity]
    gap = 1.0 / a.rate
    rss_before = rss_mb(bridge.pid)
    flood = None
    if a.flood:
        total = int(a.flood * a.notes / a.rate)  # for as long as the notes take
        flood = subprocess.Popen(
            [sys.executable, "-c", FLOOD, str(in_port), str(a.flood), str(total)], stdout=subprocess.PIPE
        )
    start = time.monotonic()
    held: deque[int] = deque()
    for i in range(a.notes):
        pitch = pitches[i % len(pitches)]
        velocity = 1 + i % 127  # (pitch, velocity) pairs the reply with its note
        # sleep (releasing the GIL, so the receiver thread stamps replies at once); the
        # send is stamped after waking, so wake-up jitter is not counted as latency
        time.sleep(max(0.0, start + i * gap - time.monotonic()))
        with lock:
            sent_at[(pitch, velocity)].append(time.monotonic())
        port.send(mido.Message("note_on", note=pitch, velocity=velocity))
        held.append(pitch)
        if len(held) > 4:
            port.send(mido.Message("note_off", note=held.popleft(), velocity=0))
        if i and i % 1000 == 0:
            print(f"  {i} notes sent", flush=True)
    flooded = ""
    if flood is not None:
        sent = int(flood.communicate()[0])
        flooded = (
            f"; {sent} junk datagrams at {a.flood:g}/s, bridge memory {rss_before:.0f} -> {rss_mb(bridge.pid):.0f} MB"
        )
    time.sleep(1.0)
    on_page = ""
    if browser is not None:
        lags = np.array(page.evaluate("() => __pb.lags") or [0.0])
        on_page = (
            f"; the page drew {len(lags)} note events, lag to its DOM p50 {np.percentile(lags, 50):.1f} ms, "
            f"p99 {np.percentile(lags, 99):.1f} ms"
        )
        browser.close()
        playwright.stop()
    bridge.send_signal(2)
    bridge.wait(timeout=30)
    port.close()
    server.shutdown()
    if jackd is not None:
        jackd.terminate()

    lat_ms = np.array(latencies) * 1000.0
    lost = a.notes - len(lat_ms)
    where = "a bare echo (no engine, no log)" if a.echo else "`pianobridge run` on a 2,090-note score"
    if a.echo:
        lost_how = ""
    else:  # where were they lost: the session log holds every note-on the bridge received
        arrived = sum(1 for line in session.read_text().splitlines() if '"dir":"in","type":"note_on"' in line)
        lost_how = f" (the bridge logged {arrived} note-ons arriving over MIDI)"
    print(
        f"{a.notes} note-ons at {a.rate:g}/s through JACK (period {a.period} frames at 48 kHz = "
        f"{a.period / 48:.2f} ms) into {where}:\n"
        f"  note-on -> OSC /note: p50 {np.percentile(lat_ms, 50):.2f} ms, p99 {np.percentile(lat_ms, 99):.2f} ms, "
        f"max {lat_ms.max():.2f} ms; lost {lost}{lost_how}{flooded}{on_page}"
    )


if __name__ == "__main__":
    main()
