"""Broken, hostile and absurd scores and MIDI files, through the real command line.

Each one must give exactly one line on stderr (``pianobridge: error: ...``) and exit
status 2: no traceback, no hang, under 1 GB (issue 22). The files are made here, from
the bundled chorale and by hand.
"""

import copy
import hashlib
import io
import json
import os
import pickle
import struct
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT, bundled, cli_measured, performance
from lxml import etree

import bridge.musicxml as mx
from bridge.midifile import read_performance
from bridge.musicxml import load_score, parse_score

CHORALE = bundled("chorale").read_bytes()
FIRST_NOTE = "(//note[pitch])[1]"


def edited(change) -> bytes:
    """The chorale after ``change(root)``."""
    root = etree.fromstring(CHORALE)
    change(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def set_text(xpath: str, text: str | None, *more: str | None):
    """An edit that sets the first match's text, or removes the element (``None``);
    ``more`` gives further xpath, text pairs."""

    def change(root):
        for path, value in zip((xpath, *more[::2]), (text, *more[1::2]), strict=True):
            el = root.xpath(path)[0]
            if value is None:
                el.getparent().remove(el)
            else:
                el.text = value

    return lambda: edited(change)


def set_attr(xpath: str, name: str, value: str):
    return lambda: edited(lambda root: root.xpath(xpath)[0].set(name, value))


def in_first_measure(xml: str):
    """An edit that appends ``xml`` to the first measure."""
    return lambda: edited(lambda root: root.find("part/measure").append(etree.fromstring(xml)))


def repeat_times(times: str):
    return in_first_measure(f'<barline location="right"><repeat direction="backward" times="{times}"/></barline>')


def many_voices():
    """1,000 voices in the first measure (music21's time grows with their square)."""

    def change(root):
        note = root.xpath(FIRST_NOTE)[0]
        measure = note.getparent()
        for v in range(2, 1002):
            extra = copy.deepcopy(note)
            extra.find("voice").text = str(v)
            backup = etree.fromstring("<backup><duration>20160</duration></backup>")
            measure.append(backup)
            measure.append(extra)

    return lambda: edited(change)


def tiny_score(
    body: str, measures: int = 1, attributes: str = "<attributes><divisions>1</divisions></attributes>"
) -> bytes:
    """A one-part score whose measures each hold ``body``, the first after ``attributes``."""
    ms = "".join(f'<measure number="{i + 1}">{"" if i else attributes}{body}</measure>' for i in range(measures))
    return (
        '<?xml version="1.0"?><score-partwise version="4.0"><part-list><score-part id="P1"><part-name>P</part-name>'
        f'</score-part></part-list><part id="P1">{ms}</part></score-partwise>'
    ).encode()


C4 = "<note><pitch><step>C</step><octave>4</octave></pitch><duration>1</duration></note>"


def unfolds_too_long() -> bytes:
    """12,800 written notes played 16 times: over 200,000 once the repeats are taken."""
    chords = "".join(
        "<note>" + ("<chord/>" if k else "") + f"<pitch><step>{s}</step><octave>4</octave></pitch>"
        "<duration>1</duration></note>"
        for _ in range(4)
        for k, s in enumerate("CEGB")
    )
    body = tiny_score(chords, measures=800).decode()
    return body.replace(
        "</measure></part>", '<barline><repeat direction="backward" times="16"/></barline></measure></part>'
    )


def mxl(members: dict[str, bytes | str], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def container(path: str) -> str:
    return f'<container><rootfiles><rootfile full-path="{path}"/></rootfiles></container>'


def lying_size() -> bytes:
    """A member whose central directory entry says it is 100 bytes unpacked."""
    data = bytearray(mxl({"META-INF/container.xml": container("score.xml"), "score.xml": CHORALE}))
    cd = data.rfind(b"PK\x01\x02")  # the last central directory entry: score.xml
    data[cd + 24 : cd + 28] = struct.pack("<I", 100)
    return bytes(data)


def encrypted() -> bytes:
    """The 'encrypted' flag set on every member (zipfile cannot read them without a password)."""
    data = bytearray(mxl({"META-INF/container.xml": container("score.xml"), "score.xml": CHORALE}))
    for sig, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(sig)
        while at >= 0:
            data[at + offset] |= 1
            at = data.find(sig, at + 4)
    return bytes(data)


def corrupt_member() -> bytes:
    data = bytearray(mxl({"META-INF/container.xml": container("score.xml"), "score.xml": CHORALE}))
    at = data.find(b"score.xml") + 200  # inside the deflated score
    data[at : at + 40] = bytes(40)
    return bytes(data)


LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE score-partwise [<!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">'
    + b"".join(f'<!ENTITY {n} "{("&" + p + ";") * 20}">'.encode() for p, n in zip("abcdefg", "bcdefgh", strict=True))
    + b']><score-partwise version="3.1"><work><work-title>&h;</work-title></work></score-partwise>'
)

# id -> (file name, content maker, what the error line must say)
SCORES = {
    # values inside the score
    "octave-missing": ("s.musicxml", set_text(f"{FIRST_NOTE}/pitch/octave", None), "<octave> is missing"),
    "octave-not-a-number": ("s.musicxml", set_text(f"{FIRST_NOTE}/pitch/octave", "four"), "<octave>"),
    "octave-fraction": ("s.musicxml", set_text(f"{FIRST_NOTE}/pitch/octave", "4.5"), "not a whole number"),
    "step-unknown": ("s.musicxml", set_text(f"{FIRST_NOTE}/pitch/step", "H"), "<step>"),
    "step-missing": ("s.musicxml", set_text(f"{FIRST_NOTE}/pitch/step", None), "<step>"),
    "alter-not-a-number": ("s.musicxml", set_text(f"{FIRST_NOTE}/pitch/alter", "sharp"), "<alter>"),
    "alter-nan": ("s.musicxml", set_text(f"{FIRST_NOTE}/pitch/alter", "NaN"), "<alter>"),
    "alter-huge": ("s.musicxml", set_text(f"{FIRST_NOTE}/pitch/alter", "1e308"), "<alter>"),
    "pitch-above-127": (
        "s.musicxml",
        set_text(f"{FIRST_NOTE}/pitch/octave", "9", f"{FIRST_NOTE}/pitch/step", "B", f"{FIRST_NOTE}/pitch/alter", "4"),
        "MIDI pitch is 135",
    ),
    "staff-not-a-number": ("s.musicxml", set_text(f"{FIRST_NOTE}/staff", "one"), "<staff>"),
    "staff-zero": ("s.musicxml", set_text(f"{FIRST_NOTE}/staff", "0"), "<staff>"),
    "staff-negative": ("s.musicxml", set_text(f"{FIRST_NOTE}/staff", "-1"), "<staff>"),
    "staff-huge": ("s.musicxml", set_text(f"{FIRST_NOTE}/staff", "1000000000"), "<staff>"),
    "staves-huge": ("s.musicxml", set_text("//staves", "99999"), "<staves>"),
    "tempo-not-a-number": ("s.musicxml", set_attr("//sound", "tempo", "abc"), "<sound tempo>"),
    "tempo-nan": ("s.musicxml", set_attr("//sound", "tempo", "NaN"), "<sound tempo>"),
    "tempo-zero": ("s.musicxml", set_attr("//sound", "tempo", "0"), "<sound tempo>"),
    "tempo-negative": ("s.musicxml", set_attr("//sound", "tempo", "-72"), "<sound tempo>"),
    "metronome-zero": ("s.musicxml", set_text("//per-minute", "0"), "<per-minute>"),
    "metronome-unit-zero": ("s.musicxml", set_text("//beat-unit", "zero"), "<beat-unit>"),
    "divisions-zero": ("s.musicxml", set_text("//divisions", "0"), "<divisions>"),
    "divisions-negative": ("s.musicxml", set_text("//divisions", "-480"), "<divisions>"),
    "divisions-not-a-number": ("s.musicxml", set_text("//divisions", "many"), "<divisions>"),
    "duration-not-a-number": ("s.musicxml", set_text(f"{FIRST_NOTE}/duration", "long"), "<duration>"),
    "duration-negative": ("s.musicxml", set_text(f"{FIRST_NOTE}/duration", "-20160"), "<duration>"),
    "time-1000-beats": ("s.musicxml", set_text("//time/beats", "1000"), "<beats>"),  # 24 s in music21
    "time-tiny-beats": ("s.musicxml", set_text("//time/beats", "1e-300"), "<beats>"),  # 42 s in music21
    "music21-refuses": ("s.musicxml", set_text(f"{FIRST_NOTE}/type", "abc"), "cannot read MusicXML"),
    # repeats
    "repeat-100000000-times": ("s.musicxml", repeat_times("100000000"), "repeat times"),
    "repeat-17-times": ("s.musicxml", repeat_times("17"), "repeat times"),
    "repeat-times-not-a-number": ("s.musicxml", repeat_times("often"), "repeat times"),
    "volta-number-huge": (
        "s.musicxml",
        in_first_measure('<barline><ending number="99999" type="start"/></barline>'),
        "ending number",
    ),
    # sizes and shapes
    "note-with-100000-fermatas": (
        "s.musicxml",
        lambda: edited(
            lambda root: root.xpath(FIRST_NOTE)[0].append(
                etree.fromstring("<notations>" + "<fermata/>" * 100_000 + "</notations>")
            )
        ),
        "more than 100 elements",
    ),
    "1000-voices-in-a-measure": ("s.musicxml", many_voices(), "voices"),
    "no-divisions": ("s.musicxml", lambda: tiny_score(C4, measures=2, attributes=""), "before any <divisions>"),
    "4000-measures": ("s.musicxml", lambda: tiny_score("", measures=4000), "more than 3000"),
    "100001-measure-items": ("s.musicxml", lambda: tiny_score("<print/>" * 100_001), "measure items"),
    "900-short-measures": (  # 30 notes in a 4/4 measure each a 32nd long: music21 would take minutes
        "s.musicxml",
        lambda: tiny_score(C4 * 30, measures=900, attributes="<attributes><divisions>8</divisions></attributes>"),
        "shorter than their time signature",
    ),
    "1100000-elements": (
        "s.musicxml",
        lambda: CHORALE.replace(b"<defaults>", b"<defaults>" + b"<x/>" * 1_100_000),
        "XML elements",
    ),
    "too-large": ("s.musicxml", lambda: CHORALE + b"<!--" + b" " * 21_000_000 + b"-->", "too large"),
    "xml-entities": ("s.musicxml", lambda: LAUGHS.replace(b"&h;", b"&a;"), "entities"),
    "billion-laughs": ("s.musicxml", lambda: LAUGHS, "not a readable MusicXML"),
    "not-xml": ("s.musicxml", lambda: b"just text", "not a readable MusicXML"),
    "html": ("s.musicxml", lambda: b"<html><body/></html>", "not a MusicXML score"),
    "timewise": ("s.musicxml", lambda: b"<score-timewise/>", "timewise"),
    "empty": ("s.musicxml", lambda: b"  \n", "empty"),
    # .mxl containers
    "mxl-bomb": (
        "s.mxl",
        lambda: mxl({"META-INF/container.xml": container("s.xml"), "s.xml": bytes(30_000_000)}),
        "MB",
    ),
    "mxl-ratio": ("s.mxl", lambda: mxl({"s.xml": bytes(5_000_000)}), "times its compressed size"),
    "mxl-lying-size": ("s.mxl", lying_size, "corrupt compressed"),
    "mxl-many-members": ("s.mxl", lambda: mxl({f"f{i}.txt": "" for i in range(5000)}), "files inside"),
    "mxl-container-syntax": ("s.mxl", lambda: mxl({"META-INF/container.xml": "<container><rootfiles>"}), "container"),
    "mxl-container-no-rootfile": ("s.mxl", lambda: mxl({"META-INF/container.xml": "<container/>"}), "no rootfile"),
    "mxl-rootfile-absolute": (
        "s.mxl",
        lambda: mxl({"META-INF/container.xml": container("/etc/passwd"), "s.xml": CHORALE}),
        "not a plain path",
    ),
    "mxl-rootfile-dotdot": (
        "s.mxl",
        lambda: mxl({"META-INF/container.xml": container("../s.xml"), "s.xml": CHORALE}),
        "not a plain path",
    ),
    "mxl-rootfile-missing": (
        "s.mxl",
        lambda: mxl({"META-INF/container.xml": container("nothere.xml"), "s.xml": CHORALE}),
        "not in the archive",
    ),
    "mxl-encrypted": ("s.mxl", encrypted, "corrupt compressed"),
    "mxl-corrupt-data": ("s.mxl", corrupt_member, "corrupt compressed"),
    "mxl-no-score": ("s.mxl", lambda: mxl({"readme.txt": "hello"}), "no score inside"),
    "mxl-truncated": ("s.mxl", lambda: mxl({"s.xml": CHORALE})[:300], "corrupt compressed"),
}
# music21 alone reads these: the fingering command, which does not use it, takes them
FOLLOW_ONLY = {"music21-refuses"}
# not files with content: paths that must not be waited on or read forever
SPECIAL = {
    "fifo": (lambda tmp: _fifo(tmp), "not a regular file"),
    "directory": (lambda tmp: tmp, "not a regular file"),
    "dev-zero": (lambda tmp: Path("/dev/zero"), "not a regular file"),
    "proc-self-mem": (lambda tmp: Path("/proc/self/mem"), "cannot read"),
}


def _fifo(tmp: Path) -> Path:
    path = tmp / "fifo"
    os.mkfifo(path)
    return path


def check_one_line_error(proc, peak_mb: float, says: str) -> None:
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("pianobridge: error:"), proc.stderr
    assert says in lines[0], lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert peak_mb < 1024


def score_file(tmp_path: Path, case: str) -> Path:
    name, make, _ = SCORES[case]
    path = tmp_path / name
    path.write_bytes(make())
    return path


@pytest.mark.parametrize("case", list(SCORES))
def test_bad_score_is_one_line(tmp_path, case):
    path = score_file(tmp_path, case)
    proc, peak = cli_measured("follow", path, performance("chorale"), "--jsonl", tmp_path / "out.jsonl")
    check_one_line_error(proc, peak, SCORES[case][2])


@pytest.mark.parametrize("case", [c for c in SCORES if c not in FOLLOW_ONLY])
def test_bad_score_is_one_line_for_fingering(tmp_path, case):
    assert (ROOT / "model" / "fingering.npz").exists()  # else the command would stop on that first
    path = score_file(tmp_path, case)
    proc, peak = cli_measured("fingering", path, "--out", tmp_path / "out.musicxml")
    check_one_line_error(proc, peak, SCORES[case][2])


def test_additive_time_signature_is_read(capsys):
    """3+2/8 has beats of unequal length; music21 refuses to say how long "a beat" is."""
    score = parse_score(set_text("//time/beats", "3+2", "//time/beat-type", "8")())
    assert score.notes[0].time_signature == "3/8+2/8" and score.notes[0].beat == 1.0
    capsys.readouterr()  # music21's fix-ups of the now overfull measures


def test_unfolding_limit(tmp_path):
    """Only following unfolds the repeats; fingering reads the score once through."""
    path = tmp_path / "long.musicxml"
    path.write_text(unfolds_too_long())
    proc, peak = cli_measured("follow", path, performance("chorale"), "--jsonl", tmp_path / "out.jsonl")
    check_one_line_error(proc, peak, "more than 200000 notes once its repeats are played out")


@pytest.mark.parametrize("case", list(SPECIAL))
def test_special_file_as_score(tmp_path, case):
    make, says = SPECIAL[case]
    path = make(tmp_path)
    proc, peak = cli_measured("follow", path, performance("chorale"), "--jsonl", tmp_path / "out.jsonl", timeout=20)
    check_one_line_error(proc, peak, says)
    proc, peak = cli_measured("fingering", path, "--out", tmp_path / "out.musicxml", timeout=20)
    check_one_line_error(proc, peak, says)


# ---------------------------------------------------------------- MIDI performances


def midi(tracks: list[bytes], fmt: int = 0, division: int = 480) -> bytes:
    """A standard MIDI file from raw track bodies (``division`` as the header's 16 bits)."""
    head = b"MThd" + struct.pack(">IHHH", 6, fmt, len(tracks), division)
    return head + b"".join(b"MTrk" + struct.pack(">I", len(t)) + t for t in tracks)


NOTES = b"\x00\x90\x3c\x40\x83\x60\x80\x3c\x00"  # middle C for 480 ticks
END = b"\x00\xff\x2f\x00"
CHORALE_MID = performance("chorale").read_bytes()

MIDIS = {
    "ticks-per-beat-zero": (lambda: midi([NOTES + END], division=0), "0 ticks per beat"),
    "type-2": (lambda: midi([NOTES + END, NOTES + END], fmt=2), "type 2 MIDI files (independent sequences)"),
    "type-7": (lambda: midi([NOTES + END], fmt=7), "type 7"),
    "smpte-23-fps": (lambda: midi([NOTES + END], division=0xE928), "SMPTE"),
    "smpte-0-ticks-per-frame": (lambda: midi([NOTES + END], division=0xE700), "SMPTE"),
    "tempo-zero": (lambda: midi([b"\x00\xff\x51\x03\x00\x00\x00" + NOTES + END]), "tempo of 0"),
    "tempo-short": (lambda: midi([b"\x00\xff\x51\x01\x07" + NOTES + END]), "not a readable MIDI file"),
    "key-signature-garbage": (lambda: midi([b"\x00\xff\x59\x02\x63\x37" + NOTES + END]), "not a readable MIDI"),
    "data-byte-above-127": (lambda: midi([b"\x00\x90\x3c\xc8" + END]), "not a readable MIDI file"),
    "running-status-first": (lambda: midi([b"\x00\x3c\x40" + END]), "not a readable MIDI file"),
    "sysex-huge-length": (lambda: midi([b"\x00\xf0\xff\xff\xff\x7f" + END]), "not a readable MIDI file"),
    "track-length-huge": (
        lambda: CHORALE_MID[:18] + struct.pack(">I", 0xFFFFFFFF) + CHORALE_MID[22:],
        "not a readable MIDI file",
    ),
    "header-length-huge": (lambda: b"MThd\xff\xff\xff\xf0" + CHORALE_MID[8:], "not a readable MIDI file"),
    "truncated": (lambda: CHORALE_MID[: len(CHORALE_MID) // 2], "not a readable MIDI file"),
    "random-bytes": (lambda: bytes((i * 7919 + 13) % 256 for i in range(4096)), "not a readable MIDI file"),
    "text": (lambda: b"not a MIDI file\n", "not a readable MIDI file"),
    "empty": (lambda: b"", "not a readable MIDI file"),
    "no-notes": (lambda: midi([END]), "no notes"),
    "too-large": (lambda: midi([NOTES * 250_000 + END]), "too large"),
}


@pytest.mark.parametrize("case", list(MIDIS))
def test_bad_midi_is_one_line(tmp_path, case):
    make, says = MIDIS[case]
    path = tmp_path / "bad.mid"
    path.write_bytes(make())
    proc, peak = cli_measured("follow", bundled("chorale"), path, "--jsonl", tmp_path / "out.jsonl")
    check_one_line_error(proc, peak, says)


@pytest.mark.parametrize("case", list(SPECIAL))
def test_special_file_as_midi(tmp_path, case):
    make, says = SPECIAL[case]
    proc, peak = cli_measured(
        "follow", bundled("chorale"), make(tmp_path), "--jsonl", tmp_path / "out.jsonl", timeout=20
    )
    check_one_line_error(proc, peak, says)


def test_smpte_time_division(tmp_path):
    """25 frames of 40 ticks: a tick is a millisecond, whatever the tempo says."""
    track = b"\x00\xff\x51\x03\x0f\x42\x40" + b"\x87\x68\x90\x3c\x40\x83\x74\x80\x3c\x00" + END  # 1000, 500 ticks
    path = tmp_path / "smpte.mid"
    path.write_bytes(midi([track], division=0xE728))
    assert [(type(e).__name__, e.t) for e in read_performance(path)] == [("NoteOn", 1.0), ("NoteOff", 1.5)]
    proc, _ = cli_measured("follow", bundled("chorale"), path, "--jsonl", tmp_path / "out.jsonl")
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------- the score cache


class Planted:
    """A pickle that, when loaded, creates a file: proof that the cache ran code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def test_planted_pickle_does_not_run(tmp_path):
    cache = tmp_path / "cache"
    (cache / "scores").mkdir(parents=True)
    marker = tmp_path / "ran"
    evil = pickle.dumps(Planted(marker))
    data = bundled("chorale").read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    for name in (hashlib.sha256(data + b"v3").hexdigest() + ".pkl", digest + ".pkl", digest + ".json"):
        (cache / "scores" / name).write_bytes(evil)
    env = dict(os.environ, PIANOBRIDGE_CACHE=str(cache))
    proc, _ = cli_measured(
        "follow", bundled("chorale"), performance("chorale"), "--jsonl", tmp_path / "out.jsonl", env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()
    entry = json.loads((cache / "scores" / f"{digest}.json").read_text())  # rebuilt as data
    assert entry["format"] == mx.CACHE_FORMAT and entry["source_sha256"] == digest


def test_fifo_in_the_cache_is_not_waited_on(tmp_path):
    cache = tmp_path / "cache"
    (cache / "scores").mkdir(parents=True)
    digest = hashlib.sha256(bundled("chorale").read_bytes()).hexdigest()
    os.mkfifo(cache / "scores" / f"{digest}.json")
    env = dict(os.environ, PIANOBRIDGE_CACHE=str(cache))
    proc, _ = cli_measured(
        "follow", bundled("chorale"), performance("chorale"), "--jsonl", tmp_path / "out.jsonl", env=env, timeout=30
    )
    assert proc.returncode == 0, proc.stderr


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PIANOBRIDGE_CACHE", str(tmp_path))
    return tmp_path / "scores"


@pytest.mark.parametrize("name", ["chorale", "minuet", "nocturne", "scale_study", "sonatina"])
def test_cached_score_is_exactly_the_parsed_one(cache, monkeypatch, name):
    fresh = parse_score(bundled(name).read_bytes(), title=name)
    load_score(bundled(name))  # writes the entry

    def no_parsing(*a, **k):
        raise AssertionError("parsed again instead of using the cache")

    monkeypatch.setattr(mx, "parse_score", no_parsing)
    assert load_score(bundled(name)) == fresh


def _tamper(entry: dict, how: str) -> str:
    notes = entry["notes"]
    if how == "other-source":
        entry["source_sha256"] = "0" * 64
    elif how == "old-format":
        entry["format"] -= 1
    elif how == "pitch-as-text":
        notes["pitch"][0] = "60"
    elif how == "column-too-short":
        notes["onset_q"].pop()
    elif how == "missing-field":
        del notes["hand"]
    elif how == "event-past-the-notes":
        entry["events"]["notes"][0] = [10**6]
    elif how == "not-a-score":
        return "[1, 2, 3]"
    elif how == "nan":
        return json.dumps(entry).replace('"onset_q": [0.0', '"onset_q": [NaN', 1)
    elif how == "truncated":
        return json.dumps(entry)[:1000]
    elif how == "deeply-nested":
        return "[" * 100_000 + "]" * 100_000
    return json.dumps(entry)


TAMPERINGS = [
    "other-source", "old-format", "pitch-as-text", "column-too-short", "missing-field",
    "event-past-the-notes", "not-a-score", "nan", "truncated", "deeply-nested",
]  # fmt: skip


@pytest.mark.parametrize("how", TAMPERINGS)
def test_tampered_cache_entry_is_rebuilt(cache, monkeypatch, how):
    path = bundled("chorale")
    fresh = load_score(path)
    (entry_file,) = cache.glob("*.json")
    entry_file.write_text(_tamper(json.loads(entry_file.read_text()), how))
    parsed = []
    real = mx.parse_score
    monkeypatch.setattr(mx, "parse_score", lambda *a, **k: parsed.append(1) or real(*a, **k))
    assert load_score(path) == fresh
    assert parsed  # not taken from the entry
    assert json.loads(entry_file.read_text())["source_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_unusable_cache_only_costs_speed(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("PIANOBRIDGE_CACHE", str(blocker))  # the cache folder cannot be made
    assert len(load_score(bundled("chorale")).notes) == 80
