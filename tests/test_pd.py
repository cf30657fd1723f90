"""Pure Data, really running (pd -nogui -noaudio), unpacks the native address space with
the shipped abstraction docs/pd/pianobridge.pd and receives every message of a whole
`follow --osc` run, counted per family against the JSONL stream and against what the
bridge says it sent.

Skipped where Pd is not installed (apt-get install puredata), unless
PIANOBRIDGE_REQUIRE_LIVE is set (CI), where that fails instead.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter

import pytest
from conftest import ROOT, bundled, performance

pytestmark = [pytest.mark.live, pytest.mark.slow]

FAMILIES = ["note", "position", "timing", "dynamics", "missed", "revised", "jump", "status", "annotation", "other"]


def free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def pd(tmp_path):
    """Pd listening on a free UDP port through [pianobridge PORT], a [print] per outlet."""
    if shutil.which("pd") is None:
        if os.environ.get("PIANOBRIDGE_REQUIRE_LIVE"):
            pytest.fail("pd is not installed but live tests are required")
        pytest.skip("pd not installed (apt-get install puredata) - no Pure Data to test against")
    port = free_udp_port()
    lines = ["#N canvas 0 0 900 300 12;", f"#X obj 10 10 pianobridge {port};"]
    lines += [f"#X obj {10 + 90 * i} 100 print {f};" for i, f in enumerate(FAMILIES)]
    lines += ["#X obj 10 200 loadbang;", "#X obj 10 230 print ready;"]
    lines += [f"#X connect 0 {i} {i + 1} 0;" for i in range(len(FAMILIES))]
    lines += [f"#X connect {len(FAMILIES) + 1} 0 {len(FAMILIES) + 2} 0;"]
    patch = tmp_path / "count.pd"
    patch.write_text("\n".join(lines) + "\n")
    log = tmp_path / "pd.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["pd", "-nogui", "-noaudio", "-nomidi", "-stderr", "-path", str(ROOT / "docs" / "pd"), str(patch)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    end = time.monotonic() + 30
    while "ready: bang" not in log.read_text() and proc.poll() is None and time.monotonic() < end:
        time.sleep(0.05)
    if "ready: bang" not in log.read_text():
        proc.kill()
        pytest.fail(f"pd did not start: {log.read_text()[-1000:]}")
    yield port, log
    proc.terminate()
    proc.wait(timeout=10)


def test_pd_receives_every_message_of_a_follow_run(pd, tmp_path):
    port, log = pd
    out = tmp_path / "o.jsonl"
    p = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "follow", str(bundled("sonatina")), str(performance("sonatina_practice")),
         "--jsonl", str(out), "--osc", f"127.0.0.1:{port}"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    said = next(x for x in p.stderr.splitlines() if x.startswith(f"pianobridge: 127.0.0.1:{port}: "))
    sent = int(said.split(": ")[2].split()[0])
    assert said.endswith("0 dropped"), said
    end = time.monotonic() + 20
    while time.monotonic() < end:
        got = Counter(x.split(":")[0] for x in log.read_text().splitlines() if x.split(":")[0] in FAMILIES)
        if sum(got.values()) >= sent:
            break
        time.sleep(0.1)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    n = Counter(e["type"] for e in lines)
    assert sum(got.values()) == sent  # every datagram the bridge sent came out of Pd's outlets
    assert got["note"] == got["position"] == n["note"]
    assert got["missed"] == n["missed"] and got["jump"] == n["jump"] and got["status"] == n["status"]
    assert got["timing"] == sum(1 for e in lines if e["type"] == "note" and e.get("timing") is not None)
    # a note unpacks to its schema's arguments: t pitch velocity verdict note_id pass latency_us
    first = next(x for x in log.read_text().splitlines() if x.startswith("note:"))
    assert len(first.split()) == 1 + 7, first
    print(f"\nPd: {sum(got.values())} of {sent} messages ({dict(got)})")
