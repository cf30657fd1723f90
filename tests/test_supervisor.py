"""The live bridge's supervision, in process: a failing engine, a stalled engine, a broken
output, bounded queues. Faults are injected into a real engine on a real score."""

import time

from conftest import bundled

from bridge.events import NoteOn, NoteVerdict, Status
from bridge.follow.engine import Engine
from bridge.live.runtime import Inboxes, LiveBridge
from bridge.musicxml import load_score
from bridge.session import SessionLog, read_session

BOOM, SLOW = 13, 14  # pitches the faulty engine fails or stalls on


class FaultyEngine(Engine):
    def feed(self, ev):
        if isinstance(ev, NoteOn) and ev.pitch == BOOM:
            raise RuntimeError("boom")
        if isinstance(ev, NoteOn) and ev.pitch == SLOW:
            time.sleep(1.5)
        return super().feed(ev)


def wait_for(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end:
        time.sleep(0.01)
    return cond()


def make_bridge(tmp_path, view):
    score_path = bundled("chorale")
    log = SessionLog(tmp_path / "s.jsonl", str(score_path), {"fingering": False})
    bridge = LiveBridge(load_score(score_path), log=log, view=view, fingering=False, stall_after_s=0.5)
    bridge.engine.__class__ = FaultyEngine
    return bridge


def play(tmp_path, *pitches, view=None):
    """A started bridge fed these key presses, and what its view has seen."""
    seen = []
    bridge = make_bridge(tmp_path, view or seen.append)
    bridge.start()
    for pitch in pitches:
        bridge.submit(NoteOn(bridge.clock(), pitch, 60))
    return bridge, seen


def test_an_engine_failure_is_reported_and_the_next_note_judged(tmp_path):
    bridge, seen = play(tmp_path, BOOM, 60)
    assert wait_for(lambda: any(isinstance(e, NoteVerdict) for e in seen))
    bridge.stop()
    errors = [e for e in seen if isinstance(e, Status) and e.state == "engine_error"]
    assert errors and "RuntimeError: boom" in errors[0].detail
    s = read_session(tmp_path / "s.jsonl")
    assert [e.pitch for e in s.inputs if isinstance(e, NoteOn)] == [BOOM, 60]  # the failing input is logged too


def test_a_stalled_engine_is_noticed_and_its_recovery_too(tmp_path):
    bridge, seen = play(tmp_path, SLOW, 60)
    states = lambda: [e.state for e in seen if isinstance(e, Status)]  # noqa: E731
    assert wait_for(lambda: "resumed" in states())
    bridge.stop()
    assert states().index("stalled") < states().index("resumed")
    notices = [line for line in (tmp_path / "s.jsonl").read_text().splitlines() if '"dir":"notice"' in line]
    assert any('"stalled"' in n for n in notices)  # in the log, but not as an engine output
    assert all(
        o["state"] not in ("stalled", "resumed")
        for o in read_session(tmp_path / "s.jsonl").outputs
        if o["type"] == "status"
    )


def test_a_broken_output_does_not_stop_the_following(tmp_path):
    seen, calls = [], [0]

    def flaky_view(ev):
        calls[0] += 1
        if calls[0] == 2:
            raise ValueError("the terminal went away")
        seen.append(ev)

    bridge, _ = play(tmp_path, 60, 61, 62, 63, 64, view=flaky_view)
    assert wait_for(lambda: sum(isinstance(e, NoteVerdict) for e in seen) >= 4)
    bridge.stop()
    assert any(isinstance(e, Status) and e.state == "output_error" and "terminal went away" in e.detail for e in seen)


def test_queues_are_bounded_and_notes_go_first():
    box = Inboxes({"notes": 3, "control": 2})
    for k in range(4):
        box.put("control", f"c{k}")
    for k in range(5):
        box.put("notes", f"n{k}")
    assert box.dropped == {"control": 2, "notes": 2}
    assert [box.get(timeout=0) for _ in range(6)] == ["n0", "n1", "n2", "c0", "c1", None]
