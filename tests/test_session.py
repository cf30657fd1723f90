"""Session log: everything logged, replay reproduces it, SIGKILL loses at most one event."""

import json
import os
import signal
import subprocess
import sys
import time

from conftest import ROOT, bundled, cli, performance

from bridge.session import read_session


def test_log_and_replay_reproduce(tmp_path):
    log = tmp_path / "s.jsonl"
    p = cli("follow", bundled("minuet"), performance("minuet"), "--session", log, "--jsonl", tmp_path / "o.jsonl")
    assert p.returncode == 0, p.stderr
    s = read_session(log)
    stream = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    # the log holds exactly what the stream showed; the phrases' expression events are
    # there as derived lines, which replay does not expect (they are not the engine's)
    engine = [e for e in stream if e["type"] != "expression"]
    assert s.outputs == engine and len(engine) < len(stream)
    derived = [json.loads(x) for x in log.read_text().splitlines() if '"dir":"derived"' in x]
    assert [{k: v for k, v in d.items() if k != "dir"} for d in derived] == [
        e for e in stream if e["type"] == "expression"
    ]
    assert sum(1 for e in s.inputs if e.type == "note_on") == sum(1 for e in stream if e["type"] == "note")
    r = cli("replay", log)
    assert r.returncode == 0, r.stderr
    assert f"all {len(engine)} logged outputs reproduced" in r.stdout


def test_replay_notices_a_difference(tmp_path):
    log = tmp_path / "s.jsonl"
    assert cli("follow", bundled("chorale"), performance("chorale"), "--session", log).returncode == 0
    lines = log.read_text().splitlines()
    i = next(i for i, x in enumerate(lines) if '"verdict":"correct"' in x)
    lines[i] = lines[i].replace('"verdict":"correct"', '"verdict":"extra"')
    log.write_text("\n".join(lines) + "\n")
    r = cli("replay", log)
    assert r.returncode == 1 and "replay differs" in r.stderr


def _logged_note_ons(log) -> int:
    try:
        return log.read_text().count('"type":"note_on"')
    except FileNotFoundError:
        return 0


def test_sigkill_loses_at_most_the_event_in_flight(tmp_path):
    log = tmp_path / "s.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "follow", str(bundled("minuet")), str(performance("minuet")),
         "--realtime", "--session", str(log)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    # kill mid-performance: once the log holds ten key presses, however long start-up took
    deadline = time.monotonic() + 120
    while _logged_note_ons(log) < 10 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the performance ended before the kill"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    s = read_session(log)  # every line parses
    note_ons = [e for e in s.inputs if e.type == "note_on"]
    verdicts = [o for o in s.outputs if o["type"] == "note"]
    assert len(note_ons) >= 10  # it was mid-performance
    assert len(verdicts) >= len(note_ons) - 1  # at most the note in flight has no verdict
    # everything it was fed before the kill is there, in order
    assert [e.t for e in s.inputs] == sorted(e.t for e in s.inputs)
    r = cli("replay", log)
    assert r.returncode == 0, r.stderr


def test_torn_last_line_is_tolerated(tmp_path):
    log = tmp_path / "s.jsonl"
    assert cli("follow", bundled("chorale"), performance("chorale"), "--session", log).returncode == 0
    with open(log, "a") as f:
        f.write('{"dir":"in","type":"note_on","t":99.0,"pi')
    assert cli("replay", log).returncode == 0


def test_bad_session_files(tmp_path):
    r = cli("replay", tmp_path / "missing.jsonl")
    assert r.returncode == 2 and "not found" in r.stderr
    (tmp_path / "x.jsonl").write_text('{"hello": 1}\n')
    r = cli("replay", tmp_path / "x.jsonl")
    assert r.returncode == 2 and "not a pianobridge session log" in r.stderr


def test_a_session_log_that_holds_a_session_is_not_written_again(tmp_path):
    """Replay reads one session per log, so a second session is refused before it starts,
    and the first log is left as it was."""
    log = tmp_path / "s.jsonl"
    args = ("follow", bundled("minuet"), performance("minuet"), "--session", log, "--jsonl", tmp_path / "o.jsonl")
    assert cli(*args).returncode == 0
    first = log.read_bytes()
    again = cli(*args)
    assert again.returncode == 2 and again.stderr.strip().splitlines() == [
        f"pianobridge: error: session log {log} already holds a session (give each session its own file)"
    ]
    assert log.read_bytes() == first and cli("replay", log).returncode == 0
    log.write_text("")  # an empty file (made ready by a script) is taken
    assert cli(*args).returncode == 0 and cli("replay", log).returncode == 0
