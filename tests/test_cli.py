"""`pianobridge follow` and `demo` as other tools see them: the JSONL contract, causality,
one-line errors on bad input."""

import json
import time
from pathlib import Path

import mido
import pytest
from conftest import bundled, cli, performance

from bridge.midifile import read_performance, write_performance


def follow(score, midi, out: Path) -> list[dict]:
    p = cli("follow", score, midi, "--jsonl", out)
    assert p.returncode == 0, p.stderr
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_jsonl_contract(tmp_path):
    midi = performance("sonatina_practice")
    events = follow(bundled("sonatina"), midi, tmp_path / "o.jsonl")
    note_ons = [m for m in mido.MidiFile(midi) if m.type == "note_on" and m.velocity > 0]
    notes = [e for e in events if e["type"] == "note"]
    assert len(notes) == len(note_ons)  # exactly one "note" per note-on
    for e in notes:
        assert isinstance(e["t"], float) and isinstance(e["pitch"], int) and isinstance(e["velocity"], int)
        assert e["verdict"] in ("correct", "wrong_pitch", "extra")
        assert e["match"] is None or (isinstance(e["match"]["note_id"], str) and isinstance(e["match"]["pass"], int))
        assert (e["match"] is None) == (e["verdict"] != "correct")
        pos = e["position"]
        assert set(pos) == {"note_id", "pass", "measure", "beat", "onset_q", "confidence"}
        assert 0.0 <= pos["confidence"] <= 1.0
        assert isinstance(e["latency_us"], int) and e["latency_us"] >= 0
    assert [e["t"] for e in notes] == sorted(e["t"] for e in notes)
    missed = [e for e in events if e["type"] == "missed"]
    assert missed and all(set(e) >= {"t", "note_id", "pass"} for e in missed)
    verdicts = {e["verdict"] for e in notes}
    assert verdicts == {"correct", "wrong_pitch", "extra"}  # the practice run has all three
    assert any(e["type"] == "jump" and e["kind"] == "back" for e in events)


def test_output_is_causal(tmp_path):
    """Output for a note depends only on input up to it: a prefix gives the same verdicts."""
    full = read_performance(performance("sonatina_practice"))
    cut = full[len(full) // 2].t
    prefix = [e for e in full if e.t < cut]
    write_performance(prefix, tmp_path / "prefix.mid")
    write_performance(full, tmp_path / "full.mid")
    a = [e for e in follow(bundled("sonatina"), tmp_path / "full.mid", tmp_path / "a.jsonl") if e["type"] == "note"]
    b = [e for e in follow(bundled("sonatina"), tmp_path / "prefix.mid", tmp_path / "b.jsonl") if e["type"] == "note"]
    keys = ("t", "pitch", "verdict", "match", "position")
    assert [{k: e[k] for k in keys} for e in a[: len(b)]] == [{k: e[k] for k in keys} for e in b]


def test_every_bundled_piece_follows(tmp_path, scores_dir):
    for score in sorted(scores_dir.glob("*.musicxml")):
        events = follow(score, performance(score.stem), tmp_path / f"{score.stem}.jsonl")
        notes = [e for e in events if e["type"] == "note"]
        assert sum(e["verdict"] == "correct" for e in notes) >= 0.98 * len(notes), score.stem


def test_plot_and_summary(tmp_path):
    png = tmp_path / "plot.png"
    p = cli("follow", bundled("nocturne"), performance("nocturne"), "--summary", "--plot", png)
    assert p.returncode == 0, p.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "correct" in p.stdout and "missed score notes" in p.stdout


def test_demo_runs_through_the_live_path(tmp_path):
    session = tmp_path / "demo.jsonl"
    p = cli("demo", "--speed", "8", "--plot", tmp_path / "demo.png", "--session", session, "--no-view", timeout=120)
    assert p.returncode == 0, p.stderr
    assert "wrong_pitch" in p.stdout and "OSC messages the local receiver got" in p.stdout
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    assert cli("replay", session).returncode == 0  # the demo's session log reproduces


def bad_files(tmp: Path) -> dict[str, Path]:
    (tmp / "empty.musicxml").write_bytes(b"")
    (tmp / "text.musicxml").write_text("hello")
    (tmp / "cut.musicxml").write_bytes(bundled("chorale").read_bytes()[:3000])
    (tmp / "not.mid").write_text("not midi")
    (tmp / "cut.mid").write_bytes(performance("chorale").read_bytes()[:30])
    return {p.name: p for p in tmp.iterdir()}


@pytest.mark.parametrize(
    "score, midi, message",
    [
        ("missing.musicxml", None, "not found"),
        ("empty.musicxml", None, "empty"),
        ("text.musicxml", None, "not a readable MusicXML"),
        ("cut.musicxml", None, "not a readable MusicXML"),
        (None, "not.mid", "not a readable MIDI"),
        (None, "cut.mid", "(the file ends too soon)"),
        (None, "missing.mid", "not found"),
    ],
)
def test_bad_input_is_one_line(tmp_path, score, midi, message):
    files = bad_files(tmp_path)
    s = files.get(score, tmp_path / score) if score else bundled("chorale")
    m = files.get(midi, tmp_path / midi) if midi else performance("chorale")
    p = cli("follow", s, m, "--jsonl", tmp_path / "o.jsonl")
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pianobridge: error:") and message in lines[0]
    assert "Traceback" not in p.stderr


def test_midi_without_notes(tmp_path):
    write_performance([], tmp_path / "silent.mid")
    p = cli("follow", bundled("chorale"), tmp_path / "silent.mid", "--jsonl", tmp_path / "o.jsonl")
    assert p.returncode == 2 and "no notes" in p.stderr


@pytest.mark.parametrize(
    "args",
    [("demo", "--speed", "0"), ("demo", "--speed", "fast"), ("hands", "x.jpg", "--jsonl", "-", "--workers", "-1")],
)
def test_numbers_that_must_be_positive(args):
    p = cli(*args)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith(f"pianobridge {args[0]}: error: argument --")


def test_help_lists_commands():
    p = cli("--help")
    assert p.returncode == 0 and "follow" in p.stdout and "demo" in p.stdout


def test_realtime_replay_takes_wall_clock_time(tmp_path):
    from bridge.events import NoteOff, NoteOn

    events = []
    for i, pitch in enumerate((60, 62, 64)):  # the first notes of the scale study, 0.6 s apart
        events += [NoteOn(0.1 + 0.6 * i, pitch, 70), NoteOff(0.5 + 0.6 * i, pitch)]
    write_performance(events, tmp_path / "three.mid")
    t0 = time.monotonic()
    fast = follow(bundled("scale_study"), tmp_path / "three.mid", tmp_path / "o.jsonl")
    fast_s = time.monotonic() - t0
    t0 = time.monotonic()
    p = cli("follow", bundled("scale_study"), tmp_path / "three.mid", "--jsonl", tmp_path / "r.jsonl", "--realtime")
    slow_s = time.monotonic() - t0
    assert p.returncode == 0, p.stderr
    assert slow_s - fast_s >= 1.1  # the 1.2 s from the first to the last note were waited out
    slow = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]

    def verdicts(evs):
        return [(e["t"], e["pitch"], e["verdict"], e["match"]) for e in evs if e["type"] == "note"]

    assert verdicts(slow) == verdicts(fast) and len(verdicts(fast)) == 3
