"""DAW dialects, byte for byte: REAPER, AbletonOSC and DrivenByMoss (Bitwig) cannot run
here, so real UDP sockets stand in for them and the datagrams the adapters send are
compared with ones built here from the OSC 1.0 spec and each client's documented
messages (docs/daw.md). Ardour's handshake is checked against a stand-in that answers
late; the real Ardour is in test_adapters_live.py. Bad clients: refused, silent, garbage.
"""

import json
import socket
import struct
import subprocess
import sys
import threading
import time

import mido
import pytest
from conftest import ROOT, bundled, performance

from bridge.adapters.ableton import AbletonAdapter
from bridge.adapters.ardour import ArdourAdapter
from bridge.adapters.base import Grouper, Timeline
from bridge.adapters.bitwig import BitwigAdapter
from bridge.adapters.reaper import ReaperAdapter
from bridge.adapters.registry import open_sender, parse_osc_target
from bridge.errors import UserError
from bridge.events import Annotation, Jump, Missed, NoteVerdict, Position, Ref, Release, Status


def osc(address: str, *args) -> bytes:
    """One OSC 1.0 message, built from the spec (not python-osc): padded strings, a type
    tag string, big-endian int32 / float32 arguments."""

    def pad(b: bytes) -> bytes:
        return b + b"\0" * (4 - len(b) % 4)

    tags, data = ",", b""
    for a in args:
        if isinstance(a, int):
            tags, data = tags + "i", data + struct.pack(">i", a)
        elif isinstance(a, float):
            tags, data = tags + "f", data + struct.pack(">f", a)
        else:
            tags, data = tags + "s", data + pad(a.encode())
    return pad(address.encode()) + pad(tags.encode()) + data


class Client:
    """A UDP socket standing in for a DAW: every datagram it gets, raw, in order."""

    def __init__(self, answer=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.got: list[bytes] = []
        self.answer = answer  # (datagram, peer) -> None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            self.got.append(data)
            if self.answer:
                self.answer(data, peer)

    def close(self):
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def client():
    c = Client()
    yield c
    c.close()


def pos(measure: int, onset_q: float) -> Position:
    return Position(f"n{measure}", 1, measure, 1.0, onset_q, 0.9)


def note(t, pitch, verdict="correct", measure=3, onset_q=8.0, velocity=80, tempo=120.0):
    match = Ref(f"n{pitch}", 1) if verdict == "correct" else None
    return NoteVerdict(t, pitch, velocity, verdict, match, pos(measure, onset_q), tempo_bpm=tempo)


# a short practice: a wrong note and a missed one close together (one mark), a correct note
# after the gap closes it, a restart, then a teacher's annotation
EVENTS = [
    Status(0.0, "score_loaded", "Test"),
    note(1.0, 60),
    note(1.5, 61, "wrong_pitch", onset_q=8.5),
    Release(1.6, 61, 0.1),
    Missed(2.0, "n9", 1, 62, 3, 2.0),
    note(5.0, 64, onset_q=12.0),
    Jump(6.0, "restart", 4, pos(1, 0.0)),
    note(6.0, 60, measure=1, onset_q=0.0),
    Annotation(9.0, "teacher", "more legato", 1, ""),
]


def run(adapter, events=EVENTS):
    for ev in events:
        adapter.handle(ev)
    adapter.close()
    return adapter


def test_reaper_markers_and_notes_byte_exact(client):
    a = run(ReaperAdapter(("127.0.0.1", client.port)))
    time.sleep(0.1)
    notes = [d for d in client.got if d.startswith(b"/vkb_midi")]
    marks = [d for d in client.got if d.startswith(b"/marker_id")]
    assert notes == [
        osc("/vkb_midi/0/note/60", 80),  # correct: channel 0
        osc("/vkb_midi/1/note/61", 80),  # wrong: channel 1
        osc("/vkb_midi/1/note/61", 0),  # its release: note-off on the same channel
        osc("/vkb_midi/0/note/64", 80),
        osc("/vkb_midi/0/note/60", 80),
    ]
    assert marks == [
        osc("/marker_id/1000/time", 1.5),  # seconds: the first problem of the group
        osc("/marker_id/1000/name", "m3: 1 wrong, 1 missed"),
        osc("/marker_id/1001/time", 6.0),
        osc("/marker_id/1001/name", "restart m4->m1"),
        osc("/marker_id/1002/time", 9.0),
        osc("/marker_id/1002/name", "teacher: more legato"),
    ]
    assert a.counts["placed"] == 3 and a.summary().endswith("3 of 3 marks placed (4 events grouped)")


def test_reaper_options(client):
    run(ReaperAdapter(("127.0.0.1", client.port), **parse_osc_target("reaper,first_marker=7,notes=0@:1").options))
    time.sleep(0.1)
    assert client.got[0] == osc("/marker_id/7/time", 1.5) and not any(d.startswith(b"/vkb") for d in client.got)


def test_bitwig_moves_the_playhead_in_beats_and_marks_only_through_an_action(client):
    run(BitwigAdapter(("127.0.0.1", client.port), notes=0))
    time.sleep(0.1)
    assert client.got == [osc("/time", 0.0)]  # no action slot: only the restart's locate (beat 0)
    client.got.clear()
    a = run(BitwigAdapter(("127.0.0.1", client.port), action=5))
    time.sleep(0.1)
    marks = [d for d in client.got if not d.startswith(b"/vkb_midi")]
    assert marks == [
        osc("/time", 8.5),  # the wrong note's score position, in quarter notes
        osc("/action/5"),  # no arguments: DrivenByMoss reads the slot from the address
        osc("/time", 0.0),
        osc("/action/5"),
        osc("/time", 0.0 + 3.0 * 120 / 60),  # 3 s after the last note at 120 bpm: 6 beats on
        osc("/action/5"),
    ]
    assert osc("/vkb_midi/2/note/61", 80) in client.got  # channels 1-16: 2 for wrong
    assert a.counts["placed"] == 3


class FakeLive:
    """AbletonOSC's behaviour as its README and song.py describe it: a song time, cue
    points toggled there, the list answered on the reply port as name, time, ..."""

    def __init__(self):
        self.reply = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.reply.bind(("127.0.0.1", 0))  # take a free port for the answers, then hand it over
        self.reply_port = self.reply.getsockname()[1]
        self.reply.close()
        self.time, self.cues = 0.0, []  # [time, name]
        self.client = Client(self.answer)
        self.out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def answer(self, data, peer):
        from pythonosc.osc_message import OscMessage

        m = OscMessage(data)
        if m.address == "/live/song/set/current_song_time":
            self.time = m.params[0]
        elif m.address == "/live/song/cue_point/add_or_delete":
            here = [c for c in self.cues if c[0] == self.time]
            if here:
                self.cues.remove(here[0])
            else:
                self.cues = sorted([*self.cues, [self.time, ""]])
        elif m.address == "/live/song/get/cue_points":
            flat = [x for t, name in self.cues for x in (name, float(t))]
            self.out.sendto(osc("/live/song/get/cue_points", *flat), ("127.0.0.1", self.reply_port))
        elif m.address == "/live/song/cue_point/set/name":
            self.cues[m.params[0]][1] = m.params[1]


def test_ableton_cue_points_named_through_lives_own_list():
    live = FakeLive()
    try:
        live.cues = [[4.0, "verse"]]  # the set already has a cue: ours are named by Live's index
        a = run(AbletonAdapter(("127.0.0.1", live.client.port), reply_port=live.reply_port))
        time.sleep(0.1)
    finally:
        live.client.close()
    assert live.client.got[:5] == [
        osc("/live/song/set/current_song_time", 8.5),  # beats
        osc("/live/song/cue_point/add_or_delete"),  # no arguments: an empty type tag string
        osc("/live/song/get/cue_points"),
        osc("/live/song/cue_point/set/name", 1, "m3: 1 wrong, 1 missed"),
        osc("/live/api/show_message", "pianobridge: m3: 1 wrong, 1 missed"),
    ]
    assert live.cues == [
        [0.0, "restart m4->m1"],
        [4.0, "verse"],
        [6.0, "teacher: more legato"],
        [8.5, "m3: 1 wrong, 1 missed"],
    ]
    assert a.counts["placed"] == 3 and not a.counts["failed"]


def test_ableton_never_toggles_its_own_cue_off():
    live = FakeLive()
    twice = [note(1.0, 61, "wrong_pitch", onset_q=8.0), note(5.0, 61, "wrong_pitch", onset_q=8.0), note(9.0, 60)]
    try:
        run(AbletonAdapter(("127.0.0.1", live.client.port), reply_port=live.reply_port), twice)
    finally:
        live.client.close()
    assert [t for t, _ in live.cues] == [8.0, 8.0 + 1 / 64]  # the second moved over, the first kept


def test_ardour_waits_for_the_locate_before_adding_the_marker():
    """A stand-in that reports the old playhead for the first few questions, as a busy
    Ardour does: the marker must not be added until the new position is confirmed."""
    state = {"at": 0, "target": 0, "asked": 0, "early": 0}
    log = []

    def answer(data, peer):
        from pythonosc.osc_message import OscMessage

        m = OscMessage(data)
        log.append(m.address)
        if m.address == "/locate":
            state["target"], state["asked"] = m.params[0], 0
        elif m.address == "/transport_frame":
            state["asked"] += 1
            if state["asked"] >= 3:
                state["at"] = state["target"]
            reply = b"/transport_frame\0\0\0\0,h\0\0" + struct.pack(">q", state["at"])  # Ardour answers int64
            fake.sock.sendto(reply, peer)
        elif m.address == "/add_marker" and state["at"] != state["target"]:
            state["early"] += 1

    fake = Client(answer)
    try:
        a = run(ArdourAdapter(("127.0.0.1", fake.port), rate=44100))
        time.sleep(0.1)
    finally:
        fake.close()
    assert state["early"] == 0 and a.counts["placed"] == 3
    locates = [d for d in fake.got if d.startswith(b"/locate")]
    assert locates == [
        osc("/locate", round(1.5 * 44100), 0),
        osc("/locate", 6 * 44100, 0),
        osc("/locate", 9 * 44100, 0),
    ]
    assert osc("/add_marker", "m3: 1 wrong, 1 missed") in fake.got
    assert "/marker" not in log  # renames whatever marker the playhead is on


def test_grouping_a_bad_passage_is_one_mark_not_forty():
    where, g = Timeline(), Grouper()
    marks = []
    for i in range(40):  # forty wrong notes, 0.15 s apart: 6 s of bad playing
        ev = note(10 + 0.15 * i, 61, "wrong_pitch", measure=12 + i // 16, onset_q=40 + 0.5 * i)
        marks += g.add(ev, where)
        where.update(ev)
    marks += g.flush()
    assert [(m.kind, m.t, m.name) for m in marks] == [("problems", 10.0, "m12-14: 40 wrong")]
    g = Grouper()
    marks = [m for i in range(100) for m in g.add(note(0.5 * i, 61, "extra"), where)] + g.flush()
    assert [m.t for m in marks] == [0.0, 8.5, 17.0, 25.5, 34.0, 42.5]  # 50 s without a pause: one per 8 s


def test_missed_notes_are_placed_at_the_players_position_by_tempo():
    where, g = Timeline(), Grouper()
    for ev in [note(1.0, 60, onset_q=8.0, tempo=90.0), Missed(2.0, "n9", 1, 62, 3, 2.0)]:
        g.add(ev, where)
        where.update(ev)
    (m,) = g.flush()
    assert m.t == 2.0 and m.beats == pytest.approx(8.0 + 1.0 * 90 / 60)


def test_a_missed_note_the_microphone_may_not_have_heard_makes_no_marker():
    where, g = Timeline(), Grouper()
    for ev in [note(1.0, 60, onset_q=8.0), Missed(2.0, "n9", 1, 62, 3, 2.0, 1.8, sure=False)]:
        assert g.add(ev, where) == []
        where.update(ev)
    assert g.flush() == []


@pytest.mark.parametrize(
    "text, says",
    [
        ("protools@127.0.0.1:9000", "unknown OSC adapter 'protools'"),
        ("ardour,rate=fast@127.0.0.1:3819", "rate must be int"),
        ("ardour,volume=3@127.0.0.1:3819", "ardour has no option 'volume=3'"),
        ("reaper@127.0.0.1", "must be HOST:PORT"),
    ],
)
def test_bad_targets_are_one_user_error(text, says):
    with pytest.raises(UserError, match=says):
        parse_osc_target(text)


def test_targets_parse():
    t = parse_osc_target("ARDOUR,rate=44100@localhost:3819")
    assert (t.adapter, t.host, t.port, t.options) == ("ardour", "127.0.0.1", 3819, {"rate": 44100})
    assert parse_osc_target("127.0.0.1:9000").adapter is None


def expected_groups(lines: list[dict]) -> list[tuple[str, float, int]]:
    """(kind, time of the first event, number of events) of each mark docs/daw.md promises
    for a JSONL stream, worked out here independently of the adapter's code."""
    gaps = {"problems": (2.0, 8.0), "jump": (1.0, 4.0), "annotation": (1.0, 4.0)}
    groups, open_ = [], {}

    def close(kind):
        if kind in open_:
            groups.append((kind, open_[kind][0], open_[kind][2]))
            del open_[kind]

    for e in lines:
        kind, t = None, e["t"]
        if e["type"] == "note" and e["verdict"] != "correct" or e["type"] == "missed":
            kind = "problems"
        elif e["type"] == "revised":
            kind, t = "problems", e["of_t"]
        elif e["type"] in ("jump", "annotation"):
            kind = e["type"]
        for k in list(open_):  # nothing joined for longer than the gap: closed
            if t - open_[k][1] > gaps[k][0]:
                close(k)
        if kind is None:
            continue
        if kind == "jump":
            close("problems")
        g = open_.get(kind)
        if g and (t - g[1] > gaps[kind][0] or t - g[0] > gaps[kind][1]):
            close(kind)
            g = None
        if g is None:
            g = open_[kind] = [t, t, 0]
        g[1], g[2] = max(g[1], t), g[2] + 1
    for k in list(open_):
        close(k)
    return sorted(groups, key=lambda g: g[1])


def follow(tmp_path, *targets, timeout=60):
    out = tmp_path / "o.jsonl"
    started = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "follow", str(bundled("sonatina")), str(performance("sonatina_practice")),
         "--jsonl", str(out), *(x for t in targets for x in ("--osc", t))],
        capture_output=True, text=True, cwd=ROOT, timeout=timeout,
    )  # fmt: skip
    lines = [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []
    return p, lines, time.monotonic() - started


def test_follow_at_full_speed_gives_reaper_every_group(client, tmp_path):
    p, lines, _ = follow(tmp_path, f"reaper@127.0.0.1:{client.port}")
    assert p.returncode == 0, p.stderr
    want = expected_groups(lines)
    time.sleep(0.2)
    times = [struct.unpack(">f", d[-4:])[0] for d in client.got if d.startswith(b"/marker_id") and b"/time\0" in d]
    assert times == pytest.approx([w[1] for w in want], abs=1e-4)  # float32 seconds
    assert f"{len(want)} of {len(want)} marks placed" in p.stderr
    n_notes = sum(1 for e in lines if e["type"] == "note")
    assert sum(1 for d in client.got if d.startswith(b"/vkb_midi") and not d.endswith(b"\0\0\0\0")) == n_notes


def test_unreachable_and_garbage_clients_hold_nothing_up(tmp_path):
    """Nobody on one port, a liar answering every question with bytes that are not OSC on
    another: every note still judged, one line each, and the run ends in seconds."""
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()
    liar = Client(lambda data, peer: liar.sock.sendto(b"\x00garbage\xff", peer))
    try:
        p, lines, took = follow(
            tmp_path, f"ardour@127.0.0.1:{dead_port}", f"ardour@127.0.0.1:{liar.port}", f"ableton@127.0.0.1:{dead_port}"
        )
    finally:
        liar.close()
    assert p.returncode == 0, p.stderr
    n_on = sum(1 for m in mido.MidiFile(performance("sonatina_practice")) if m.type == "note_on" and m.velocity)
    assert sum(1 for e in lines if e["type"] == "note") == n_on  # every key press judged and written
    said = p.stderr.splitlines()
    assert len([x for x in said if f"ardour@127.0.0.1:{dead_port}: cannot place" in x]) == 1
    assert len([x for x in said if "connection refused" in x]) == 1
    assert (
        len([x for x in said if f"ardour@127.0.0.1:{liar.port}: cannot place markers: its answers are not OSC" in x])
        == 1
    )
    assert took < 20, took


def test_unknown_adapter_stops_follow_before_it_starts(tmp_path):
    p, lines, _ = follow(tmp_path, "127.0.0.1:9", "protools@127.0.0.1:9000")
    assert p.returncode == 2 and not lines
    assert p.stderr.count("\n") == 1 and "unknown OSC adapter 'protools'" in p.stderr, p.stderr


def test_adapters_never_block_the_caller(client):
    """A client that never answers: handing events over stays in microseconds while the
    adapter's thread waits on it (Ardour's handshake)."""
    a = ArdourAdapter(("127.0.0.1", client.port))
    events = [note(0.5 * i, 61, "wrong_pitch" if i % 7 == 0 else "correct") for i in range(2000)]
    started = time.perf_counter()
    for ev in events:
        a.handle(ev)
    per_event_us = (time.perf_counter() - started) / len(events) * 1e6
    a.CLOSE_TIMEOUT_S = 5
    a.close()
    assert per_event_us < 200, per_event_us


def test_sender_gives_events_to_adapters_and_messages_to_native_targets(client):
    native = Client()
    try:
        s = open_sender([f"127.0.0.1:{native.port}", f"reaper,notes=0@127.0.0.1:{client.port}"])
        for ev in EVENTS:
            s.send_event(ev)
        s.close()
        time.sleep(0.1)
    finally:
        native.close()
    assert native.got[0].startswith(b"/pianobridge/status\0")
    assert all(not d.startswith(b"/pianobridge") for d in client.got) and len(client.got) == 6
    lines = s.summary()
    assert lines[0].startswith(f"127.0.0.1:{native.port}: ") and lines[1].startswith("reaper,notes=0@")


def test_config_takes_adapter_targets_and_oscquery(tmp_path):
    from bridge.cli.run import load_config

    cfg = tmp_path / "c.toml"
    cfg.write_text('osc = ["127.0.0.1:9000", "ardour,rate=44100@127.0.0.1:3819"]\noscquery = 0\n')
    loaded = load_config(str(cfg))
    assert [parse_osc_target(t).adapter for t in loaded["osc"]] == [None, "ardour"] and loaded["oscquery"] == 0
    cfg.write_text('oscquery = "yes"\n')
    with pytest.raises(UserError, match="oscquery must be integer"):
        load_config(str(cfg))
