"""The follower on bundled pieces: clean, with mistakes, restarts and skips."""

import pytest
from conftest import bundled
from helpers import notes_to_recover, position_ok, run, verdicts

from bridge import simulate
from bridge.events import Jump, Missed
from bridge.follower import Follower
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
