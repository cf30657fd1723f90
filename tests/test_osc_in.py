"""OSC in: commands and annotations become input events; garbage is counted, answered to its sender and ignored."""

import socket
import time

import jsonschema
from conftest import bundled
from hypothesis import given, settings
from hypothesis import strategies as st
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import SimpleUDPClient
from test_osc import ALL_SCHEMAS

from bridge import simulate
from bridge.events import Annotation, Command, Jump, NoteOn, NoteVerdict, Status
from bridge.follow.engine import Engine
from bridge.musicxml import load_score
from bridge.osc import OscReceiver, to_input, to_messages
from bridge.replay import apply

P = "/pianobridge"


def test_messages_to_inputs():
    assert to_input(f"{P}/control/jump", [12], 1.0, P) == Command(1.0, "jump", measure=12, pass_no=1)
    assert to_input(f"{P}/control/jump", [12, 2], 1.0, P) == Command(1.0, "jump", measure=12, pass_no=2)
    assert to_input(f"{P}/control/stop", [], 1.0, P) == Command(1.0, "stop")
    assert to_input(f"{P}/annotate", ["Ms Lee", "lighter here", 9], 1.0, P) == Annotation(
        1.0, "Ms Lee", "lighter here", 9
    )
    for address, args in [
        (f"{P}/control/jump", ["twelve"]),
        (f"{P}/control/jump", []),
        (f"{P}/control/stop", [1]),
        (f"{P}/annotate", ["only author"]),
        (f"{P}/nonsense", []),
        ("/other/control/stop", []),
    ]:
        ev = to_input(address, args, 1.0, P)
        assert isinstance(ev, Status) and ev.state == "osc_ignored", (address, args)


def test_commands_drive_the_engine():
    score = load_score(bundled("minuet"))
    engine = Engine(score)
    played = simulate.render(score, seed=1)
    for p in played[:20]:
        engine.feed(NoteOn(p.t, p.pitch, p.velocity))
    t = played[20].t
    (jump,) = engine.feed(Command(t, "jump", measure=12))
    assert isinstance(jump, Jump) and jump.to.measure == 12 and jump.kind == "ahead"
    # the player now plays from bar 12: the follower is there at once
    bar12 = [p for p in played if score.notes[p.note].measure == 12 and score.notes[p.note].pass_no == 1]
    shift = t + 0.5 - bar12[0].t
    v = engine.feed(NoteOn(bar12[0].t + shift, bar12[0].pitch, 70))[-1]
    assert isinstance(v, NoteVerdict) and v.verdict == "correct" and v.position.measure == 12
    assert engine.feed(Command(t + 1, "stop")) == [Status(t + 1, "paused", "")]
    assert engine.feed(NoteOn(t + 2, 60, 70)) == []  # paused: no verdicts
    assert engine.feed(Command(t + 3, "start"))[0].state == "following"
    assert engine.feed(Command(t + 4, "reset"))[0].state == "reset"
    assert engine.feed(Command(t + 5, "jump", measure=999))[0].state == "osc_ignored"
    note = Annotation(t + 6, "teacher", "breathe", 3)
    assert engine.feed(note) == [note]


def test_reset_starts_afresh_after_the_follower_was_lost():
    """Keys the score never uses until confidence drops, reset, the same again: the drop
    is reported again, and nothing claims the follower "recovered" in between (the
    engine does not carry its "lost" state across a reset)."""
    engine = Engine(load_score(bundled("minuet")))

    def nonsense(t0):
        out = []
        for k in range(40):
            out += engine.feed(NoteOn(t0 + 0.2 * k, 22 + k % 3, 64))
        return [o.state for o in out if isinstance(o, Status)]

    assert "confidence_low" in nonsense(0.0)
    assert engine.feed(Command(10.0, "reset"))[0].state == "reset"
    assert nonsense(11.0) == ["confidence_low"]


def test_load_command_swaps_the_score(tmp_path):
    engine = Engine(load_score(bundled("chorale")))
    engine, out = apply(engine, Command(1.0, "load", path=str(bundled("nocturne"))))
    assert out[0].state == "score_loaded" and engine.score.title == "Nocturne with dynamics"
    engine2, out = apply(engine, Command(2.0, "load", path=str(tmp_path / "missing.musicxml")))
    assert engine2 is engine and out[0].state == "osc_ignored" and "not found" in out[0].detail


def test_annotation_goes_out_as_osc():
    ((address, args),) = to_messages(Annotation(2.0, "teacher", "more legato", 7, "n40"))
    assert address == f"{P}/annotation" and args == [2.0, "teacher", "more legato", 7, "n40"]


def test_receiver_over_udp_survives_garbage():
    got, notices = [], []
    rx = OscReceiver(
        "127.0.0.1", 0, lambda ev, reply: got.append(ev), time.monotonic, P, notice=lambda *a: notices.append(a)
    )
    rx.start()
    client = SimpleUDPClient("127.0.0.1", rx.address[1])
    raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    raw.settimeout(3)
    try:
        raw.sendto(b"\x00\xffnot osc at all", rx.address)
        raw.sendto(b"/pianobridge/control/jump\x00\x00\x00,i\x00\x00", rx.address)  # truncated argument
        raw.sendto(OscMessageBuilder(f"{P}/control/jump").build().dgram, rx.address)  # no measure
        reply = OscMessage(raw.recv(1024))  # the sender alone hears what was wrong
        client.send_message(f"{P}/control/jump", 5)
        client.send_message(f"{P}/annotate", ["teacher", "watch the left hand"])
        deadline = time.monotonic() + 3
        while (len(got) < 2 or not notices) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        rx.close()
        raw.close()
    assert reply.address == f"{P}/reply" and reply.params[0] == "error" and "expected int" in reply.params[1]
    jsonschema.validate(reply.params, ALL_SCHEMAS["reply"])
    assert [type(e) for e in got] == [Command, Annotation]  # nothing ignored is queued
    assert rx.ignored_total == 3 and notices[0][0] == "osc_ignored" and notices[0][1].startswith("3 OSC datagrams")


def test_remote_listener_wants_the_token():
    got = []
    rx = OscReceiver("127.0.0.1", 0, lambda ev, reply: got.append(ev), time.monotonic, P, token="s3cret")
    rx.start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(3)

    def send(address, *args):
        b = OscMessageBuilder(address)
        for a in args:
            b.add_arg(a)
        sock.sendto(b.build().dgram, rx.address)
        return OscMessage(sock.recv(1024)).params

    try:
        assert send(f"{P}/control/reset")[0] == "error"
        assert send(f"{P}/auth", "guess") == ["error", "wrong token"]
        assert send(f"{P}/auth", "s3cret") == ["ok", "authorised"]
        sock.sendto(OscMessageBuilder(f"{P}/control/reset").build().dgram, rx.address)
        deadline = time.monotonic() + 3
        while not got and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        rx.close()
        sock.close()
    assert [e.command for e in got] == ["reset"]


@settings(max_examples=300, deadline=None)
@given(
    address=st.one_of(
        st.sampled_from([f"{P}/control/jump", f"{P}/annotate", f"{P}/control/load"]), st.text(max_size=40)
    ),
    args=st.lists(
        st.one_of(st.integers(-(2**31), 2**31 - 1), st.floats(allow_nan=True), st.text(max_size=30)), max_size=5
    ),
)
def test_fuzzed_osc_never_raises(address, args):
    ev = to_input(address, args, 0.0, P)
    assert isinstance(ev, Status | Command | Annotation)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200))
def test_fuzzed_datagrams_never_raise(data):
    from pythonosc.osc_packet import OscPacket, ParseError

    try:
        OscPacket(data)
    except (ParseError, ValueError, IndexError, TypeError, OverflowError):
        pass  # the receiver catches exactly these
