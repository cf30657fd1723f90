"""Ardour 7, really running headless (ardour7-lua on its dummy audio backend), takes the
markers of a whole practice run replayed as fast as possible: one per problem group, at
the right sample, none lost. Read back from the session file Ardour saves.

Skipped where Ardour is not installed (apt-get install ardour), unless
PIANOBRIDGE_REQUIRE_LIVE is set (CI), where that fails instead.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, bundled, performance
from pythonosc.osc_message_builder import OscMessageBuilder
from test_adapters import expected_groups

pytestmark = [pytest.mark.live, pytest.mark.slow]

SUPERCLOCK = 282_240_000  # Ardour 7 keeps audio-time positions ("a" prefix) in these ticks per second
RATE = 48_000

# Ardour hides its dummy backend unless told; osc_url (empty) asks it to write where OSC listens
ARDOUR_RC = """<?xml version="1.0" encoding="UTF-8"?>
<Ardour><Config><Option name="hide-dummy-backend" value="0"/></Config></Ardour>
"""
START = """AudioEngine:set_backend("None (Dummy)", "", "")
s = load_session("{dir}", "practice")
print("READY", s:sample_rate())
"""


def _need(*commands: str) -> None:
    missing = [c for c in commands if shutil.which(c) is None]
    if missing:
        if os.environ.get("PIANOBRIDGE_REQUIRE_LIVE"):
            pytest.fail(f"{', '.join(missing)} not installed but live tests are required")
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install ardour) - no Ardour to test against")


class Ardour:
    """A headless Ardour with a fresh session whose OSC surface is on."""

    def __init__(self, tmp: Path):
        self.dir = tmp / "practice"
        made = subprocess.run(
            ["ardour7-new_session", "-s", str(RATE), str(self.dir), "practice"], capture_output=True, text=True
        )
        assert made.returncode == 0, made.stdout + made.stderr
        self.file = self.dir / "practice.ardour"
        text = self.file.read_text()
        # the surface answers the port a message came from (address-only="0")
        text, n = re.subn(
            r'<Protocol name="Open Sound Control \(OSC\)" active="0"/>',
            '<Protocol name="Open Sound Control (OSC)" active="1" address-only="0"/>',
            text,
        )
        assert n == 1, "the session template has no OSC protocol entry"
        self.file.write_text(text)
        config = tmp / "config" / "ardour7"
        config.mkdir(parents=True)
        (config / "config").write_text(ARDOUR_RC)
        (config / "osc_url").write_text("")
        self.log = (tmp / "ardour.log").open("w")
        self.proc = subprocess.Popen(
            ["ardour7-lua", "-i"],
            stdin=subprocess.PIPE,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "XDG_CONFIG_HOME": str(tmp / "config")},
        )
        self.proc.stdin.write(START.format(dir=self.dir))
        self.proc.stdin.flush()
        end = time.monotonic() + 60
        url = ""
        while time.monotonic() < end and self.proc.poll() is None:
            url = (config / "osc_url").read_text()
            if url and "READY" in (tmp / "ardour.log").read_text():
                break
            time.sleep(0.1)
        found = re.search(r":(\d+)/", url)
        if not found or self.proc.poll() is not None:
            self.close()
            pytest.fail(f"Ardour did not start: {(tmp / 'ardour.log').read_text()[-1000:]}")
        self.port = int(found.group(1))

    def save(self) -> str:
        """Ask Ardour to save the session; the saved file's text."""
        before = self.file.stat().st_mtime_ns
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.sendto(OscMessageBuilder("/save_state").build().dgram, ("127.0.0.1", self.port))
        sock.close()
        end = time.monotonic() + 20
        while self.file.stat().st_mtime_ns == before and time.monotonic() < end:
            time.sleep(0.05)
        time.sleep(0.3)  # written in place: let it finish
        return self.file.read_text()

    def markers(self) -> list[tuple[str, float]]:
        """(name, seconds) of every marker in the saved session."""
        found = re.findall(r'<Location [^>]*name="([^"]*)" start="a(\d+)"[^>]*flags="IsMark"', self.save())
        return sorted(((_unescape(n), int(s) / SUPERCLOCK) for n, s in found), key=lambda m: m[1])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()  # end of input ends the interpreter and the session
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def _unescape(name: str) -> str:
    return name.replace("&gt;", ">").replace("&lt;", "<").replace("&quot;", '"').replace("&amp;", "&")


@pytest.fixture
def ardour(tmp_path):
    _need("ardour7-lua", "ardour7-new_session")
    a = Ardour(tmp_path)
    yield a
    a.close()


def test_ardour_gets_one_marker_per_problem_group_at_the_right_time(ardour, tmp_path):
    jsonl = tmp_path / "run.jsonl"
    started = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "follow", str(bundled("sonatina")), str(performance("sonatina_practice")),
         "--jsonl", str(jsonl), "--osc", f"ardour@127.0.0.1:{ardour.port}"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    took = time.monotonic() - started
    assert p.returncode == 0, p.stderr
    lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
    want = expected_groups(lines)
    got = ardour.markers()
    # every mark arrived (none failed or dropped), and the bridge says so
    summary = next(x for x in p.stderr.splitlines() if x.startswith(f"pianobridge: ardour@127.0.0.1:{ardour.port}"))
    assert f"{len(want)} of {len(want)} marks placed" in summary and "failed" not in summary, p.stderr
    assert len(got) == len(want), (got, want)
    errors = [abs(g[1] - w[1]) for g, w in zip(got, want)]
    assert max(errors) <= 0.010, list(zip(got, want))
    # a bad passage is one marker naming what went wrong, not one per note
    problems = [g for g, w in zip(got, want) if w[0] == "problems"]
    events = sum(w[2] for w in want if w[0] == "problems")
    assert len(problems) < events / 2
    for name, _ in problems:
        assert re.fullmatch(r"m\d+(-\d+)?: \d+ \w+(, \d+ \w+)*", name), name
    jumps = [g for g, w in zip(got, want) if w[0] == "jump"]
    assert [name.split()[0] for name, _ in jumps] == [e["kind"] for e in lines if e["type"] == "jump"]
    print(
        f"\nArdour: {len(got)} markers for {events} problem events and {len(jumps)} jumps; "
        f"largest time error {1e6 * max(errors):.1f} µs; follow with markers took {took:.1f} s"
    )
