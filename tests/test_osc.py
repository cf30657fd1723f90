"""OSC out: a real python-osc server on loopback receives what the bridge sends, and
every message validates against its schema in osc_schemas/."""

import json
import math
import socket
import subprocess
import sys
import threading
import time

import jsonschema
import mido
import pytest
from conftest import ROOT, bundled, performance
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer

from bridge.errors import UserError
from bridge.events import (
    Expression,
    Finger,
    FingeringCorrection,
    FingerSeen,
    Jump,
    Missed,
    NoteVerdict,
    Pedal,
    PlannedFinger,
    PlayedFinger,
    Position,
    Ref,
    Release,
    Revised,
    Sounded,
    Status,
)
from bridge.osc import OscSender, parse_target, to_messages

ALL_SCHEMAS = {p.stem: json.loads(p.read_text()) for p in (ROOT / "osc_schemas").glob("*.json")}
SCHEMAS = {k: v for k, v in ALL_SCHEMAS.items() if v["x-direction"] == "out"}


def check(address: str, args: list, prefix: str = "/pianobridge") -> str:
    assert address.startswith(prefix + "/"), address
    family = address[len(prefix) + 1 :]
    schema = SCHEMAS[family]
    jsonschema.validate(args, schema)
    items = schema["prefixItems"]
    if schema.get("items"):  # a variable tail (fingering_correction's re-planned notes)
        items = items + [schema["items"]] * (len(args) - len(items))
    for value, item in zip(args, items, strict=True):
        want = [{"i": int, "f": float, "s": str}[k] for k in item["x-osc-type"].split("|")]
        assert type(value) in want, (address, item.get("title"), value)
    return family


class Receiver:
    """A python-osc server on an ephemeral loopback port, collecting what arrives."""

    def __init__(self):
        self.got: list[tuple[str, list]] = []
        d = Dispatcher()
        d.set_default_handler(lambda address, *args: self.got.append((address, list(args))))
        self.server = BlockingOSCUDPServer(("127.0.0.1", 0), d)
        self.server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, n: int, timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while len(self.got) < n and time.monotonic() < end:
            time.sleep(0.02)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_schema_examples_are_valid():
    assert set(SCHEMAS) >= {
        "note", "position", "timing", "dynamics", "missed", "revised", "jump", "pedal", "status", "annotation", "fingering", "finger",
        "fingering_correction",
    }  # fmt: skip
    for name, schema in ALL_SCHEMAS.items():
        jsonschema.Draft202012Validator.check_schema(schema)
        for example in schema["examples"]:
            if schema["x-direction"] == "out":
                check(f"/pianobridge/{name}", example)
            elif schema["x-direction"] == "reply" or name == "in_auth":  # the receiver's own (test_osc_in)
                jsonschema.validate(example, schema)
            else:  # what the bridge accepts: the example must become a command or annotation
                from bridge.osc import to_input

                ev = to_input("/pianobridge" + schema["x-osc-address"], example, 0.0, "/pianobridge")
                assert ev.type in ("command", "annotation"), (name, ev)
        for item in schema.get("prefixItems", []):
            assert item["x-osc-type"] in ("i", "f", "s") and item["description"] is not None


def test_every_event_type_maps_to_valid_messages():
    pos = Position("n5", 1, 2, 1.5, 4.5, 0.9)
    events = [
        NoteVerdict(1.0, 60, 70, "correct", Ref("n5", 1), pos, 120, None, -30.0, "on_time", 50, "p", "loud", 100.0),
        NoteVerdict(1.05, 62, 70, "correct", Ref("n8", 1), pos, 120, hand="left", suggested_finger="2_1"),
        NoteVerdict(1.1, 61, 70, "wrong_pitch", None, pos, 90, intended=Ref("n6", 2)),
        NoteVerdict(1.2, 30, 70, "extra", None, pos, 80),
        Missed(1.3, "n7", 1, 64, 2, 2.0),
        Revised(1.35, 1.05, 62, "extra", "n8", 1),
        Jump(1.4, "back", 9, pos),
        Pedal(1.5, "sustain", True, 127),
        Release(1.6, 60, 0.6, Ref("n5", 1)),
        Sounded(1.7, 60, 0.7, None),
        Status(1.8, "score_loaded", "Chorale"),
        FingerSeen(1.9, 64, Ref("n9", 1), PlayedFinger("right", 3, 0.91)),
        FingeringCorrection(
            1.9, 64, Ref("n9", 1), PlayedFinger("right", 4, 0.9), Finger("right", 3), (PlannedFinger("n10", 1, 5),)
        ),
        Expression(
            2.0,
            5,
            8,
            41,
            64.1,
            (60.2, 71.5),
            6.0,
            (18.0, 30.0),
            1.2,
            (4.0, 14.0),
            101.0,
            (96.0, 112.0),
            -3.0,
            (-8.0, 2.0),
            None,
            (None, None),
            0.62,
            "bars 5-8: dynamics flat (range 6 against 18-30 expected)",
            8.1,
            (3.3, None),
        ),  # fmt: skip
    ]
    families = [check(a, args) for ev in events for a, args in to_messages(ev)]
    assert families == [
        "note", "position", "timing", "dynamics", "note", "position", "fingering",
        "note", "position", "note", "position", "missed", "revised", "jump", "pedal", "release", "sounded",
        "status", "finger", "fingering_correction", "expression",
    ]  # fmt: skip
    (_, correction), *_ = to_messages(events[-2])
    assert correction[4:] == ["right", 4, "right", 3, 0.9, 1, "n10", 1, 5]
    (_, wrong), _ = to_messages(events[2])
    assert wrong[4:6] == ["n6", 2]  # a wrong note names the note it replaced
    assert to_messages(events[0], prefix="/studio/pb/")[0][0] == "/studio/pb/note"
    ((_, expression),) = to_messages(events[-1])
    assert expression[7:10] == [6.0, 18.0, 30.0] and all(math.isnan(x) for x in expression[19:22])
    assert expression[24:26] == [8.1, 3.3] and math.isnan(expression[26])  # after the text: the chord spread


def test_follow_sends_valid_osc_to_several_targets_one_of_them_down(receiver, tmp_path):
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()  # nothing listens there: sends to it fail or vanish
    midi = performance("minuet")
    p = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "follow", str(bundled("minuet")), str(midi), "--jsonl", str(tmp_path / "o.jsonl"),
         "--osc", f"127.0.0.1:{dead_port}", "--osc", f"127.0.0.1:{receiver.port}"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    lines = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    expected = sum(len(to_messages_from_json(e)) for e in lines)
    receiver.wait_for(expected)
    families = [check(a, args) for a, args in receiver.got]
    n_on = sum(1 for m in mido.MidiFile(midi) if m.type == "note_on" and m.velocity > 0)
    assert families.count("note") == n_on
    assert families.count("position") == n_on
    assert 0 < families.count("fingering") == sum(1 for e in lines if e.get("suggested_finger"))  # planned fingers
    assert len(receiver.got) == expected  # everything in the JSONL stream arrived


def to_messages_from_json(e: dict) -> list:
    """How many OSC messages a JSONL event stands for (the same events feed both)."""
    n = {
        "note": 2,
        "expression": 1,
        "missed": 1,
        "revised": 1,
        "jump": 1,
        "pedal": 1,
        "release": 1,
        "sounded": 1,
        "status": 1,
    }.get(e["type"], 0)
    if e["type"] == "note":
        n += (e.get("timing") is not None) + (e.get("loudness") is not None)
        n += bool(e.get("suggested_finger") or e.get("printed_finger"))
    return [None] * n


def test_sender_survives_unreachable_targets():
    s = OscSender([("127.0.0.1", 9), ("127.0.0.1", 1)], bundle=True)
    for _ in range(100):
        s.send([("/pianobridge/status", [0.0, "stopped", ""])])
    assert s.sent + s.dropped == 200
    s.close()


@pytest.mark.parametrize("text", ["nohost", "host:", "host:0", "host:70000", "no.such.host.invalid:9000"])
def test_bad_targets_are_user_errors(text):
    with pytest.raises(UserError):
        parse_target(text)


def test_targets_parse():
    assert parse_target("127.0.0.1:9000") == ("127.0.0.1", 9000)
    assert parse_target(":9001") == ("127.0.0.1", 9001)
    assert parse_target("localhost:9002")[1] == 9002
