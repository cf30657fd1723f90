"""The follower on bundled pieces: clean, with mistakes, restarts and skips."""

from dataclasses import replace

import music21 as m21
import pytest
from conftest import bundled
from helpers import notes_to_recover, position_ok, run, verdicts

from bridge import simulate
from bridge.events import Jump, Missed
from bridge.follow.follower import Follower
from bridge.musicxml import load_score

PIECES = ["scale_study", "chorale", "minuet", "nocturne", "sonatina"]


@pytest.fixture(scope="module", params=PIECES)
def piece(request):
    score = load_score(bundled(request.param))
    return request.param, score, simulate.render(score, seed=7)


def test_clean_playing_is_followed_without_flags(piece):
    _, score, played = piece
    out = run(score, played)
    notes = verdicts(out)
    assert len(notes) == len(played)  # exactly one verdict per key press
    assert all(position_ok(score, played, notes))
    correct = sum(v.verdict == "correct" for v in notes)
    assert correct / len(notes) >= 0.99
    matched = sum(v.match is not None and v.match.note_id == score.notes[p.note].note_id for p, v in zip(played, notes))
    assert matched / len(notes) >= 0.98
    assert not any(isinstance(o, Jump) for o in out)  # no spurious jumps, repeats included


@pytest.mark.parametrize("kind", ["wrong", "extra", "drop"])
def test_mistakes_do_not_derail_and_are_flagged(piece, kind):
    name, score, base = piece
    played = simulate.with_mistakes(base, seed=3, **{kind: 0.08})
    out = run(score, played)
    notes = verdicts(out)
    ok = position_ok(score, played, notes)
    assert sum(ok) / len(ok) >= 0.98
    false_flags = sum(1 for p, v in zip(played, notes) if p.kind == "score" and v.verdict != "correct")
    assert false_flags <= max(1, 0.02 * len(notes))
    if kind == "drop":
        dropped = {score.notes[p.note].note_id for p in base} - {score.notes[p.note].note_id for p in played}
        reported = {o.note_id for o in out if isinstance(o, Missed)}
        assert len(dropped & reported) >= 0.85 * len(dropped)
    else:
        errors = [(p, v) for p, v in zip(played, notes) if p.kind != "score"]
        flagged = sum(v.verdict != "correct" for _, v in errors)
        assert flagged >= 0.8 * len(errors)
        if kind == "wrong":
            assert all(v.verdict in ("wrong_pitch", "extra", "correct") for _, v in errors)


@pytest.mark.parametrize("name", ["minuet", "nocturne", "sonatina"])
@pytest.mark.parametrize("jump, pause", [(-8.0, 1.5), (None, 1.5), (8.0, 0.0)], ids=["back8", "top", "skip8"])
def test_restarts_and_skips_are_found_again(name, jump, pause):
    score = load_score(bundled(name))
    base = simulate.render(score, seed=7)
    cut_q = score.notes[base[len(base) // 2].note].onset_q
    to_q = 0.0 if jump is None else cut_q + jump
    played, jump_t = simulate.with_jump(base, score, at=0.5, to_q=to_q, pause_s=pause)
    out = run(score, played)
    notes = verdicts(out)
    n = notes_to_recover(score, played, notes, jump_t)
    assert n is not None and n <= 8, f"recovered after {n} notes"
    assert sum(isinstance(o, Jump) for o in out) >= 1


def test_spread_chords_are_one_event():
    score = load_score(bundled("chorale"))
    played = simulate.render(score, seed=1, spread_s=0.09)
    notes = verdicts(run(score, played))
    assert all(v.verdict == "correct" for v in notes)
    assert all(position_ok(score, played, notes))


def test_tempo_and_confidence_are_always_there():
    score = load_score(bundled("sonatina"))
    played = simulate.render(score, seed=2, bpm=90.0, rubato=0.0)
    f = Follower(score)
    steps = [f.observe(p.pitch, p.t) for p in played]
    assert all(0.0 <= s.confidence <= 1.0 for s in steps)
    late = [60.0 / s.sec_per_quarter for s in steps[200:]]
    # ritardandi at phrase ends pull the local tempo below the nominal 90
    assert 70 < sorted(late)[len(late) // 2] < 95


@pytest.mark.parametrize("name", ["chorale", "minuet"])
def test_tempo_follows_slow_practice(name):
    """At half the marked tempo every gap between notes looks like a pause by the mark:
    the tempo must still come down to what is played."""
    score = load_score(bundled(name))
    marked = next(n.tempo_qpm for n in score.notes if n.tempo_qpm)
    played = simulate.render(score, seed=2, bpm=marked / 2, rubato=0.0)
    f = Follower(score)
    late = [60.0 / f.observe(p.pitch, p.t).sec_per_quarter for p in played][len(played) // 2 :]
    assert 0.35 * marked < sorted(late)[len(late) // 2] < 0.6 * marked


def test_cost_per_note_is_bounded_by_the_band():
    score = load_score(bundled("sonatina"))
    f = Follower(score)
    p = f.p
    for pl in simulate.render(score, seed=4)[:400]:
        f.observe(pl.pitch, pl.t)
        assert f.local.hi - f.local.lo <= p.band_back + p.band_ahead + 1


@pytest.mark.parametrize("name", ["minuet", "nocturne"])
def test_restart_in_slow_music_is_found_though_the_pause_is_short(name):
    """At 30 quarters a minute a 1.5 s stop is shorter than the music's own gaps, so the
    notes before it must not be replayed into the search for where the player went."""
    score = load_score(bundled(name))
    base = simulate.render(score, seed=7, bpm=30.0)
    cut_q = score.notes[base[len(base) // 2].note].onset_q
    played, jump_t = simulate.with_jump(base, score, at=0.5, to_q=cut_q - 8.0, pause_s=1.5)
    notes = verdicts(run(score, played))
    n = notes_to_recover(score, played, notes, jump_t)
    assert n is not None and n <= 8, f"recovered after {n} notes"


# two bars of chords that open the piece and come back in bar 7
THEME = [(60, 64, 67), (62, 65, 69), (64, 67, 71), (65, 69, 72), (67, 71, 74), (69, 72, 76), (71, 74, 77), (72, 76, 79)]
BARS = [THEME, [79, 76, 72, 67, 77, 74, 71, 67], [76, 72, 69, 65, 74, 71, 67, 62], THEME]
BARS += [[47, 50, 53, 50, 48, 52, 55, 52], [45, 48, 52, 48, 43, 47, 50, 55]]


@pytest.fixture(scope="module")
def returning_theme(tmp_path_factory):
    part = m21.stream.Part([m21.meter.TimeSignature("4/4")])
    for pitches in (p for bars in BARS for p in bars):
        part.append(m21.chord.Chord(pitches) if isinstance(pitches, tuple) else m21.note.Note(pitches))
    path = tmp_path_factory.mktemp("theme") / "theme.musicxml"
    m21.stream.Score([part]).write("musicxml", fp=str(path))
    score = load_score(path, use_cache=False)
    return score, simulate.render(score, seed=5, bpm=100.0, rubato=0.0)


def test_a_pause_then_going_on_is_not_a_restart(returning_theme):
    """The music after the pause also opens the piece: the player who stops for breath
    at the end of bar 6 and goes on is where they were, not back at the top."""
    score, base = returning_theme
    resume = next(i for i, p in enumerate(base) if score.notes[p.note].onset_q == 24.0)
    played = base[:resume] + [replace(p, t=p.t + 2.5) for p in base[resume:]]
    out = run(score, played)
    assert not any(isinstance(o, Jump) for o in out)
    assert all(position_ok(score, played, verdicts(out)))


def test_a_restart_on_the_theme_goes_back_not_to_the_top(returning_theme):
    """Stopped in bar 12, the player goes back to the theme's second chord in bar 7: the same
    notes follow the piece's second chord, but a restart at the top starts on its first."""
    score, base = returning_theme
    cut = next(i for i, p in enumerate(base) if score.notes[p.note].onset_q == 44.0)
    played, jump_t = simulate.with_jump(base, score, at=cut / len(base), to_q=25.0, pause_s=1.5)
    out = run(score, played)
    assert [o.to.measure for o in out if isinstance(o, Jump)] == [7]
    assert notes_to_recover(score, played, verdicts(out), jump_t) <= 6  # two chords
