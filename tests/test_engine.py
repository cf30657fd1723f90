"""Verdicts, timing, dynamics, pedals and releases through the engine."""

from dataclasses import replace

import pytest
from conftest import bundled
from helpers import run, verdicts

from bridge import simulate
from bridge.events import Control, Missed, NoteOff, NoteOn, NoteVerdict, Pedal, Release, Sounded
from bridge.follow.engine import Engine
from bridge.musicxml import load_score


def test_wrong_note_names_the_note_it_replaced():
    score = load_score(bundled("scale_study"))
    played = simulate.render(score, seed=1)
    i = 20
    played[i] = replace(played[i], pitch=played[i].pitch + 1, kind="wrong")
    notes = verdicts(run(score, played))
    assert notes[i].verdict == "wrong_pitch"
    assert notes[i].intended is not None
    assert notes[i].intended.note_id == score.notes[played[i].note].note_id
    assert notes[i].match is None


def test_a_faint_press_counts_only_as_the_note_the_score_expects():
    """A press the audio detector heard only faintly (``sure`` False) is judged like any
    other where it is the note the score expects, and taken for noise where it would be a
    wrong note: no verdict, and what follows is judged as before."""
    score = load_score(bundled("scale_study"))
    played = simulate.render(score, seed=1)
    i = 20
    played[i] = replace(played[i], pitch=played[i].pitch + 1, kind="wrong")
    events = simulate.to_events(played)

    def judged(evs):
        engine = Engine(score)
        return verdicts([o for ev in evs for o in engine.feed(ev)])

    sure = judged(events)
    faint = judged([replace(e, sure=False) if isinstance(e, NoteOn) else e for e in events])
    assert sure[i].verdict == "wrong_pitch"
    assert faint == sure[:i] + sure[i + 1 :]
    assert sum(v.verdict == "correct" for v in faint) >= 0.95 * len(faint)


def test_late_note_and_loudness_are_judged():
    score = load_score(bundled("nocturne"))
    played = simulate.render(score, seed=1, rubato=0.0, jitter_s=0.0, spread_s=0.0)
    # the first melody note of bar 3 comes 200 ms late and far too loud
    k = next(
        i for i, p in enumerate(played) if score.notes[p.note].measure == 3 and score.notes[p.note].hand == "right"
    )
    played[k] = replace(played[k], t=played[k].t + 0.2, velocity=120)
    played.sort(key=lambda p: p.t)
    notes = verdicts(run(score, played))
    v = next(v for v in notes if v.velocity == 120)
    assert v.verdict == "correct"
    assert v.timing == "late" and 150 <= v.timing_ms <= 260
    assert v.dynamic == "p" and v.loudness == "loud"
    on_time = [n for n in notes if n.timing is not None and n is not v]
    assert sum(n.timing == "on_time" for n in on_time) >= 0.9 * len(on_time)


def test_missed_notes_are_reported_once():
    score = load_score(bundled("minuet"))
    played = simulate.render(score, seed=1)
    drop = {10, 11, 40}
    out = run(score, [p for i, p in enumerate(played) if i not in drop])
    missed = [o for o in out if isinstance(o, Missed)]
    want = {(score.notes[played[i].note].note_id, score.notes[played[i].note].pass_no) for i in drop}
    got = [(m.note_id, m.pass_no) for m in missed]
    assert want <= set(got)
    assert len(got) == len(set(got))


def test_one_press_plays_both_voices_of_a_unison(tmp_path):
    """Two voices meeting on one key at one onset are one key press: neither is missed, and
    the press is matched to the longer note, which the key then holds."""
    import music21

    part = music21.stream.Part([music21.meter.TimeSignature("4/4")])
    for bar in range(1, 9):
        m = music21.stream.Measure(number=bar)
        m.insert(0, music21.stream.Voice([music21.note.Note(p, quarterLength=1) for p in ("C5", "D5", "E5", "D5")]))
        m.insert(0, music21.stream.Voice([music21.note.Note(p, quarterLength=2) for p in ("C5", "E5")]))
        part.append(m)
    path = tmp_path / "unison.musicxml"
    music21.stream.Score([part]).write("musicxml", fp=str(path))
    score = load_score(path)
    keys = [(n.onset_q, n.pitch) for n in score.notes]
    assert len(keys) - len(set(keys)) == 16  # two unisons a bar
    played, seen = [], set()
    for p in simulate.render(score, seed=2):
        key = (score.notes[p.note].onset_q, p.pitch)
        if key not in seen:  # a key cannot be struck twice at once
            seen.add(key)
            played.append(p)
    out = run(score, played)
    assert not [o for o in out if isinstance(o, Missed)]
    notes = verdicts(out)
    assert [n.verdict for n in notes] == ["correct"] * len(played)
    by_ref = {(n.note_id, n.pass_no): n for n in score.notes}
    on_beat = [by_ref[n.match.note_id, n.match.pass_no] for n in notes if n.match is not None]
    on_beat = [n for n in on_beat if n.onset_q % 2 == 0]
    assert len(on_beat) == 16 and all(n.duration_q == 2 for n in on_beat)


def _missed_after(score, presses: list[tuple[int, int, float]], last_event: int) -> list[int]:
    """Drive a matcher by hand: each press (follower's event, pitch, t); the notes it reports
    missed, up to ``last_event`` at the end."""
    from bridge.follow.follower import FollowerStep
    from bridge.follow.matcher import Matcher

    matcher = Matcher(score)
    missed = []
    for event, pitch, t in presses:
        step = FollowerStep(event, False, 0.9, 0.5, None, score.events[event].onset_q, t, True)
        missed += matcher.judge(step, pitch, t, 64).missed
    return missed + list(matcher.finish(last_event))


def test_a_step_ahead_and_back_keeps_the_notes_played_before_it(tmp_path):
    """A chord's third note is also the next event's: the follower takes it ahead, the chord's
    fourth note brings it back. The chord's notes played before the step ahead stay played;
    only what the step ahead took is free again (it was reported missed before)."""
    import music21

    part = music21.stream.Part([music21.meter.TimeSignature("4/4")])
    m = music21.stream.Measure(number=1)
    m.append([music21.chord.Chord(["C4", "E4", "G4", "C5"], quarterLength=2)])
    m.append([music21.note.Note(p, quarterLength=1) for p in ("E4", "G4")])
    part.append(m)
    m = music21.stream.Measure(number=2)
    m.append(music21.note.Note("C4", quarterLength=4))
    part.append(m)
    path = tmp_path / "ahead.musicxml"
    music21.stream.Score([part]).write("musicxml", fp=str(path))
    score = load_score(path)
    assert [e.pitches for e in score.events] == [(60, 64, 67, 72), (64,), (67,), (60,)]
    presses = [(0, 60, 0.0), (0, 67, 0.01), (1, 64, 0.02), (0, 72, 0.03), (1, 64, 1.0), (2, 67, 1.5), (3, 60, 2.0)]
    missed = _missed_after(score, presses, 3)
    pitches = {score.notes[k].pitch: k for k in score.events[0].notes}
    assert pitches[60] not in missed and pitches[67] not in missed and pitches[72] not in missed


def test_a_note_played_early_stays_played_when_the_follower_steps_back(tmp_path):
    """The bass of a chord struck before the run-up to it (Schubert D 935/1, bars 1-2): the
    follower puts the player at the chord, steps back for the run-up and comes to the chord
    again. The bass was played; no later press takes it; it is not reported missed."""
    import music21

    part = music21.stream.Part([music21.meter.TimeSignature("4/4")])
    m = music21.stream.Measure(number=1)
    m.append([music21.note.Note(p, quarterLength=1) for p in ("E4", "G4")])
    m.append(music21.chord.Chord(["C3", "C5"], quarterLength=2))
    part.append(m)
    path = tmp_path / "early.musicxml"
    music21.stream.Score([part]).write("musicxml", fp=str(path))
    score = load_score(path)
    assert [e.pitches for e in score.events] == [(64,), (67,), (48, 72)]
    presses = [(2, 48, 0.0), (0, 64, 0.05), (1, 67, 0.5), (2, 72, 1.0)]
    assert _missed_after(score, presses, 2) == []


def test_pedals_releases_and_all_notes_off():
    score = load_score(bundled("chorale"))
    e = Engine(score)
    out = []
    for ev in [
        NoteOn(0.5, 60, 70),
        Control(0.6, 64, 127),
        NoteOff(0.8, 60),
        NoteOn(1.0, 64, 0),  # velocity 0 is a note-off
        Control(1.5, 64, 0),
        NoteOn(2.0, 67, 80),
        Control(2.1, 123, 0),
    ]:
        out += e.feed(ev)
    kinds = [type(o).__name__ for o in out]
    assert kinds == ["NoteVerdict", "Pedal", "Release", "Pedal", "Sounded", "NoteVerdict", "Sounded"]
    rel = next(o for o in out if isinstance(o, Release))
    assert abs(rel.held_s - 0.3) < 1e-9
    sounded = next(o for o in out if isinstance(o, Sounded))
    assert abs(sounded.sounding_s - 1.0) < 1e-9  # the pedal held it until 1.5
    assert [o.down for o in out if isinstance(o, Pedal)] == [True, False]
    assert all(isinstance(o, NoteVerdict | Pedal | Release | Sounded) for o in out)


def test_same_engine_same_output():
    score = load_score(bundled("sonatina"))
    events = simulate.to_events(simulate.with_mistakes(simulate.render(score, seed=5), seed=5, wrong=0.05))
    runs = []
    for _ in range(2):
        e = Engine(score)
        runs.append([o.to_dict() for ev in events for o in e.feed(ev)])
    for a, b in zip(*runs, strict=True):
        a.pop("latency_us", None)
        b.pop("latency_us", None)
    assert runs[0] == runs[1]


def test_a_note_struck_early_then_in_time_is_revised():
    """The early press takes the note first; the press in time takes it back, and the
    stream says the early one was extra (the summary and plots count it so)."""
    from bridge.events import Revised
    from bridge.report import revised_notes

    score = load_score(bundled("scale_study"))
    played = simulate.render(score, seed=1, rubato=0.0, jitter_s=0.0)
    i = next(i for i in range(30, len(played)) if played[i + 1].t - played[i].t > 0.25)  # not within a chord
    early = replace(played[i + 1], t=played[i].t + 0.5 * (played[i + 1].t - played[i].t), note=None, kind="extra")
    out = run(score, sorted([*played, early], key=lambda p: p.t))
    revised = [o for o in out if isinstance(o, Revised)]
    assert [(r.pitch, r.verdict) for r in revised] == [(early.pitch, "extra")]
    assert revised[0].of_t == pytest.approx(early.t, abs=1e-3)
    assert revised[0].note_id == score.notes[played[i + 1].note].note_id
    notes = revised_notes([o.to_dict() for o in out])
    assert [n["verdict"] for n in notes if n["t"] == revised[0].of_t] == ["extra"]
    assert sum(n["verdict"] == "correct" for n in notes) == len(played)


def test_the_engine_says_when_each_expected_pitch_is_due():
    """Audio detection weighs a key by whether the score expects it now: the pitches expected
    next come with when each is due by the running tempo."""
    score = load_score(bundled("sonatina"))
    played = simulate.render(score, seed=3, jitter_s=0.0, spread_s=0.0)
    engine, errors = Engine(score), []
    for i, ev in enumerate(simulate.to_events(played)):
        engine.feed(ev)
        if not isinstance(ev, NoteOn) or i < 20:
            continue
        nxt = next((p for p in played if p.t > ev.t + 0.03), None)
        if nxt is None:
            break
        due = engine.expected_pitches()
        assert nxt.pitch in due
        errors.append(abs(due[nxt.pitch] - nxt.t))
    assert len(errors) > 500 and sorted(errors)[len(errors) // 2] < 0.03  # median error under 30 ms
    assert sum(e < 0.1 for e in errors) / len(errors) > 0.8  # 0.87 (the simulation's rubato and ritardandi)
