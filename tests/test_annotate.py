"""Notation programs: `pianobridge annotate` (a session's results written into its score)
and the bundled scores as MuseScore 3 draws them."""

import json
import os
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import SCORES, bundled, cli
from lxml import etree

from bridge.adapters.annotated_score import MARKS, note_elements
from bridge.events import Annotation, json_line
from bridge.musicxml import load_score, xml_root

# mistakes played into the nocturne, and notes played with another finger than suggested
WRONG, DROPPED, LATE, LOUD, SOFT, EXTRA_AFTER = "n5", "n12", "n21", "n30", "n60", "n9"
OTHER_FINGER = ("n3", "n40")
TEACHER = [  # (at the press of, measure, note id, text)
    ("n20", 3, "", "lighter here"),
    ("n45", 0, "n40", "thumb under"),
    ("n70", 0, "", "good tempo"),
]


def _mscore3() -> str:
    """MuseScore 3 (Debian `musescore3`); skip where it is not installed, unless
    PIANOBRIDGE_REQUIRE_LIVE is set (CI installs it)."""
    path = shutil.which("mscore3")
    if path is None:
        if os.environ.get("PIANOBRIDGE_REQUIRE_LIVE"):
            pytest.fail("mscore3 is not installed but the MuseScore checks are required")
        pytest.skip("mscore3 not installed (apt-get install musescore3) - cannot check how MuseScore draws scores")
    return path


def mscore(src: Path, out: Path) -> None:
    """Convert with MuseScore 3, headless (no X server), and never for ever."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    p = subprocess.run([_mscore3(), "-o", str(out), str(src)], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr[-500:]


@pytest.fixture(scope="module")
def practice(tmp_path_factory) -> dict:
    """A nocturne session with known mistakes, a camera that sees two other fingers and a
    teacher's three annotations, and the score annotated from it."""
    from bridge.fingering.files import score_suggestions
    from bridge.handsim import Camera, Noise, PlayedNote, render
    from bridge.midifile import write_performance
    from bridge.simulate import PlayedNote as Played
    from bridge.simulate import render as perform
    from bridge.simulate import to_events

    d = tmp_path_factory.mktemp("annotate")
    score = load_score(bundled("nocturne"))
    suggested = score_suggestions(score)
    assert suggested, "the fingering weights (model/fingering.npz) are needed"
    played = []
    for p in sorted(perform(score, seed=2), key=lambda p: p.t):
        nid = score.notes[p.note].note_id
        if nid == DROPPED:
            continue
        p = replace(
            p,
            pitch=p.pitch + (nid == WRONG),
            t=p.t + 0.2 * (nid == LATE),
            velocity={LOUD: 127, SOFT: 5}.get(nid, p.velocity),
        )
        played.append(p)
        if nid == EXTRA_AFTER:
            played.append(Played(p.t + 0.15, 66, p.velocity, 0.1, None, "extra"))
    played.sort(key=lambda p: p.t)
    write_performance(to_events(played), d / "p.mid")
    seen = []  # what the camera films: the suggested fingers but two
    for p in played:
        note = score.notes[p.note] if p.note is not None else None
        finger = int(suggested[p.note].split("_")[0]) if note else 3
        if note and note.note_id in OTHER_FINGER:
            finger = finger % 5 + 1
        seen.append(PlayedNote(p.t, p.t + p.duration_s, p.pitch, note.hand if note else "right", finger))
    camera = Camera()
    (d / "hands.jsonl").write_text("".join(json.dumps(f) + "\n" for f in render(seen, camera, Noise())))
    camera.calibration().save(d / "cal.json")
    session = d / "session.jsonl"
    p = cli(
        "follow", bundled("nocturne"), d / "p.mid", "--session", session, "--hands", d / "hands.jsonl",
        "--calibration", d / "cal.json",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    add_annotations(session, score)
    out = d / "annotated.musicxml"
    p = cli("annotate", bundled("nocturne"), session, "--out", out)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(x) for x in session.read_text().splitlines()]
    return {"dir": d, "out": out, "stderr": p.stderr, "events": [x for x in lines if x.get("dir") == "out"]}


def add_annotations(session: Path, score) -> None:
    """Put the teacher's annotations into the log where the live bridge logs them: the
    input, and the engine's output passing it on, after the press they followed.
    (`follow` reads MIDI only, and a SessionLog always starts a new log.)"""
    lines = session.read_text().splitlines(keepends=True)
    for after, measure, note_id, text in TEACHER:
        press = next(
            i for i, x in enumerate(lines)
            if '"dir":"out"' in x and '"type":"note"' in x and f'"match":{{"note_id":"{after}"' in x
        )  # fmt: skip
        t = json.loads(lines[press])["t"] + 0.01
        nxt = next(i for i in range(press, len(lines)) if '"dir":"in"' in lines[i] and json.loads(lines[i])["t"] > t)
        ann = Annotation(t, "Ms Lee", text, measure, note_id).to_dict()
        lines[nxt:nxt] = [json_line({"dir": "in", **ann}), json_line({"dir": "out", **ann})]
    session.write_text("".join(lines))


def expected_marks(events: list[dict]) -> dict[str, str]:
    """Note id -> colour, straight from the session (each note is played once here)."""
    assert not any(e["type"] == "revised" for e in events)
    worst: dict[str, str] = {}
    rank = list(MARKS)

    def mark(note_id: str, label: str) -> None:
        if note_id not in worst or rank.index(label) < rank.index(worst[note_id]):
            worst[note_id] = label

    for e in events:
        if e["type"] == "missed":
            mark(e["note_id"], "missed")
        elif e["type"] == "note" and e["verdict"] == "wrong_pitch":
            mark(e["intended"]["note_id"], "wrong_pitch")
        elif e["type"] == "note" and e["verdict"] == "correct":
            for label in (e["timing"], e["loudness"]):
                if label in MARKS:
                    mark(e["match"]["note_id"], label)
    return {nid: MARKS[label] for nid, label in worst.items()}


def words(root) -> list[tuple[str, str, str | None]]:
    """(measure number, text, id of the note it stands before, None at the measure start)."""
    out = []
    for d in root.iter("direction"):
        text = d.findtext("direction-type/words")
        if text is None:
            continue
        nxt = d.getnext()
        while nxt is not None and nxt.tag == "direction":
            nxt = nxt.getnext()
        first = next((c for c in d.getparent() if c.tag in ("note", "backup", "forward")), None)
        out.append((d.getparent().get("number"), text, None if nxt is first else nxt.get("id")))
    return out


def test_annotated_score_has_the_sessions_results(practice):
    events = practice["events"]
    root = etree.parse(str(practice["out"])).getroot()
    notes = {n.get("id"): n for n in root.iter("note")}

    # the planted mistakes, and every other verdict of the session, as colours
    want = expected_marks(events)
    assert {WRONG, DROPPED, LATE, LOUD, SOFT} <= set(want)
    assert (want[WRONG], want[DROPPED], want[LATE], want[LOUD], want[SOFT]) == (
        "#D55E00", "#CC79A7", "#0072B2", "#009E73", "#009E73",
    )  # fmt: skip
    assert {nid: n.get("color") for nid, n in notes.items() if n.get("color")} == want
    assert all(notes[nid].find("notehead").get("color") == c for nid, c in want.items())

    # played fingers that differ from the suggestion, as PLAYED(SUGGESTED)
    calls = {
        e["match"]["note_id"]: (e["finger"]["finger"], e["suggested_finger"])
        for e in events
        if e["type"] == "note" and e["verdict"] == "correct" and e["finger"]
    }
    differ = {nid: f"{f}({s})" for nid, (f, s) in calls.items() if str(f) != s.split("_")[0]}
    assert set(OTHER_FINGER) <= set(differ)
    fingerings = {nid: [f.text for f in n.iter("fingering")] for nid, n in notes.items()}
    assert {nid: f for nid, f in fingerings.items() if f} == {nid: [text] for nid, text in differ.items()}

    # wrong and extra pitches and the teacher's notes as words, where they belong
    press = {e["match"]["note_id"]: e for e in events if e["type"] == "note" and e["match"]}
    at_t = [e for e in events if e["type"] == "note" and e["t"] < press["n70"]["t"] + 0.01][-1]
    position_measure = str(at_t["position"]["measure"])
    assert sorted(words(root), key=str) == sorted(
        [
            ("1", "G#2", WRONG),  # a semitone above the G2 it stood for
            ("1", "+F#4", EXTRA_AFTER),
            ("3", "Ms Lee: lighter here", None),
            (notes["n40"].getparent().get("number"), "Ms Lee: thumb under", "n40"),
            (position_measure, "Ms Lee: good tempo", None),
        ],
        key=str,
    )
    assert "1 missed" in practice["stderr"] and "3 annotations" in practice["stderr"]


def test_annotated_score_keeps_everything_else(practice):
    """Take the additions away again and the original document is left, byte for byte."""
    out = etree.parse(str(practice["out"])).getroot()
    for n in out.iter("note"):
        n.attrib.pop("color", None)
        head = n.find("notehead")
        if head is not None and head.get("color"):
            n.remove(head)
        for f in n.findall("notations/technical/fingering"):
            f.getparent().remove(f)
        for el in n.findall("notations/technical") + n.findall("notations"):
            if len(el) == 0:
                el.getparent().remove(el)
    for d in list(out.iter("direction")):
        if d.find("direction-type/words") is not None:
            d.getparent().remove(d)
    original = xml_root(bundled("nocturne").read_bytes())
    assert etree.tostring(out, method="c14n") == etree.tostring(original, method="c14n")


def test_several_passes_add_up_to_the_worst(tmp_path):
    """A note shows the worst over all its passes; a press a `revised` event took back is
    an extra note; the live camera's later `finger` event counts, and a finger of the
    other hand says so."""
    from bridge.adapters.annotated_score import read_results

    def note(t, pitch, verdict, nid, pass_no=1, **more):
        ref = {"note_id": nid, "pass": pass_no}
        return {
            "dir": "out", "type": "note", "t": t, "pitch": pitch, "velocity": 64, "verdict": verdict,
            "match": ref if verdict == "correct" else None, "intended": ref if verdict == "wrong_pitch" else None,
            "position": {**ref, "measure": 1, "beat": 1.0, "onset_q": 0.0, "confidence": 1.0},
            "timing": None, "loudness": None, "hand": "right", "suggested_finger": "3", "finger": None, **more,
        }  # fmt: skip

    finger = {"hand": "right", "finger": 4, "confidence": 0.9}
    lines = [
        {"type": "session", "version": 1, "score": "s.musicxml", "score_sha256": "0" * 64, "settings": {}},
        note(1.0, 60, "correct", "a", timing="late"),
        {"dir": "out", "type": "missed", "t": 1.5, "note_id": "b", "pass": 1, "pitch": 62, "measure": 1, "beat": 2.0},
        note(2.0, 65, "wrong_pitch", "c"),
        note(3.0, 67, "correct", "d"),
        note(3.2, 67, "correct", "d"),
        {"dir": "out", "type": "revised", "t": 3.2, "of_t": 3.0, "pitch": 67, "verdict": "extra", "note_id": "d"},
        note(4.0, 69, "correct", "e", finger=finger),
        note(5.0, 71, "correct", "f"),
        {"dir": "out", "type": "finger", "t": 5.0, "pitch": 71, "match": None, "finger": {**finger, "hand": "left"}},
        # the second pass (or a restart): all played right, which does not undo the first
        note(9.0, 60, "correct", "a", 2),
        note(9.5, 62, "correct", "b", 2, timing="early"),
        note(10.0, 64, "correct", "c", 2, loudness="loud"),
    ]
    log = tmp_path / "s.jsonl"
    log.write_text("".join(json_line(x) for x in lines))
    _, res = read_results(log)
    got = {nid: (r.mark, r.played_instead, r.fingers, r.suggested) for nid, r in res.notes.items()}
    assert got == {
        "a": ("late", [], [], ""),
        "b": ("missed", [], [], ""),
        "c": ("wrong_pitch", ["F4"], [], ""),
        "d": (None, [], [], ""),
        "e": (None, [], ["4"], "3"),
        "f": (None, [], ["L4"], "3"),
    }
    assert res.extras == {"d": ["G4"]}


def test_notes_without_ids_are_found_as_the_loader_names_them(tmp_path):
    """A score without <note id>: the loader's made-up ids lead to the right elements."""
    root = xml_root(bundled("minuet").read_bytes())
    named = [n.get("id") for n in root.iter("note")]
    for n in root.iter("note"):
        del n.attrib["id"]
    bare = tmp_path / "bare.musicxml"
    bare.write_bytes(etree.tostring(root))
    found = note_elements(bare, root)
    elements = list(root.iter("note"))  # kept, so that each element keeps its one Python object
    order = {id(n): i for i, n in enumerate(elements)}
    original, unnamed = load_score(bundled("minuet")), load_score(bare)
    assert len({n.note_id for n in unnamed.notes}) == len(found) > 100
    for a, b in zip(original.notes, unnamed.notes):  # the same note, by either name
        assert named[order[id(found[b.note_id])]] == a.note_id


def test_bad_input_is_one_line(tmp_path, practice):
    session = practice["dir"] / "session.jsonl"
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"type": "session"}\n')
    odd = tmp_path / "odd.jsonl"
    lines = session.read_text().splitlines(keepends=True)
    at = next(i for i, x in enumerate(lines) if '"type":"note"' in x)
    odd.write_text("".join(lines[:at]) + json_line({"dir": "out", "type": "note", "t": 1.0, "pitch": 60}))
    bad_xml = tmp_path / "bad.musicxml"
    bad_xml.write_text("<score-partwise><part")
    out = tmp_path / "out.musicxml"
    cases = [
        ((tmp_path / "none.musicxml", session, out), "score file not found"),
        ((bad_xml, session, out), "not a readable MusicXML file"),
        ((bundled("nocturne"), tmp_path / "none.jsonl", out), "session log not found"),
        ((bundled("nocturne"), broken, out), "the session header needs"),
        ((bundled("nocturne"), bundled("nocturne"), out), "not JSON"),
        ((bundled("nocturne"), odd, out), "is not as docs/events.md describes it"),
        ((bundled("chorale"), session, out), "is not that file as it was then"),
        ((bundled("nocturne"), session, bundled("nocturne")), "is the score itself"),
        ((bundled("nocturne"), session, session / "out.musicxml"), "cannot write"),
    ]
    for args, says in cases:
        p = cli("annotate", args[0], args[1], "--out", args[2])
        assert p.returncode == 2 and p.stderr.count("\n") == 1 and says in p.stderr, (args, p.stderr)
    assert not out.exists()


def needless_accidentals(root) -> list[str]:
    """Notes whose <accidental> the key signature and the measure so far already imply,
    and notes that need one but have none (per staff and octave, as printed music reads)."""
    sharps, flats = "FCGDAEB", "BEADGCF"
    wrong = []
    for part in root.iterfind("part"):
        key: dict[str, float] = {}
        for measure in part.iterfind("measure"):
            fifths = measure.findtext("attributes/key/fifths")
            if fifths is not None:
                k = int(fifths)
                key = {s: 1.0 for s in sharps[:k]} if k >= 0 else {s: -1.0 for s in flats[:-k]}
            in_force: dict[tuple, float] = {}
            for n in measure.iterfind("note"):
                pitch = n.find("pitch")
                if pitch is None:
                    continue
                step, place = (
                    pitch.findtext("step"),
                    (n.findtext("staff"), pitch.findtext("step"), pitch.findtext("octave")),
                )
                alter = float(pitch.findtext("alter") or 0)
                implied = in_force.get(place, key.get(step, 0.0))
                tied_on = any(t.get("type") == "stop" for t in n.iterfind("tie"))
                shown = n.find("accidental") is not None
                if shown and alter == implied:
                    wrong.append(
                        f"{n.get('id')} (measure {measure.get('number')}): needless {n.findtext('accidental')}"
                    )
                elif not shown and alter != implied and not tied_on:
                    wrong.append(f"{n.get('id')} (measure {measure.get('number')}): no accidental for alter {alter}")
                in_force[place] = alter
    return wrong


@pytest.mark.parametrize("name", ["scale_study", "chorale", "minuet", "nocturne", "sonatina"])
def test_bundled_scores_print_only_the_accidentals_a_reader_needs(name):
    root = xml_root(bundled(name).read_bytes())
    assert root.find("part/measure/attributes/key/fifths") is not None  # a key, as readers expect
    assert needless_accidentals(root) == []


def test_the_accidental_check_can_fail():
    root = xml_root(bundled("scale_study").read_bytes())
    n = root.find("part/measure[2]/note")
    etree.SubElement(n, "accidental").text = "natural"
    assert len(needless_accidentals(root)) == 1


def _mscx_text(el) -> str:
    return re.sub(r"<[^>]+>", "", "".join(el.find("text").itertext()) if el.find("text") is not None else "")


@pytest.mark.slow
def test_musescore_shows_colours_fingerings_and_annotations(practice, tmp_path):
    """MuseScore 3's own export of the annotated score holds every colour, fingering
    and text, and its picture has the colours in it."""
    from PIL import Image

    src = etree.parse(str(practice["out"])).getroot()
    mscx = tmp_path / "annotated.mscx"
    mscore(practice["out"], mscx)
    ms = etree.parse(str(mscx)).getroot()

    def rgb(c: str) -> tuple[int, int, int]:
        return tuple(int(c[i : i + 2], 16) for i in (1, 3, 5))

    coloured = [
        tuple(int(n.find("color").get(x)) for x in "rgb") for n in ms.iter("Note") if n.find("color") is not None
    ]
    want = [rgb(n.get("color")) for n in src.iter("note") if n.get("color")]
    assert sorted(coloured) == sorted(want) and len(want) >= 10
    fingers = sorted(_mscx_text(f) for f in ms.iter("Fingering"))
    assert fingers == sorted(f.text for f in src.iter("fingering")) and len(fingers) >= 2
    texts = sorted(_mscx_text(t) for t in ms.iter("StaffText"))
    assert texts == sorted(d.text for d in src.iter("words")) and "Ms Lee: thumb under" in texts

    png = tmp_path / "annotated.png"
    mscore(practice["out"], png)
    pages = sorted(tmp_path.glob("annotated*.png"))
    pixels = set()
    for page in pages:
        pixels |= {p[:3] for _, p in Image.open(page).convert("RGBA").getcolors(1 << 24) if p[3] == 255}
    assert {rgb(c) for c in set(MARKS.values())} <= pixels  # every colour the session earned is drawn


@pytest.mark.slow
def test_musescore_prints_no_accidentals_in_the_bundled_scores(tmp_path):
    for path in sorted(SCORES.glob("*.musicxml")):
        out = tmp_path / f"{path.stem}.mscx"
        mscore(path, out)
        ms = etree.parse(str(out)).getroot()
        assert sum(1 for _ in ms.iter("Note")) > 50
        assert [a.findtext("subtype") for a in ms.iter("Accidental")] == [], path.name
