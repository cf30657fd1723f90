"""A transposed keyboard (an octave-shift button, a digital piano's transpose setting):
found within a few seconds, said once, and followed as written; wrong notes are not
taken for it."""

from dataclasses import replace

import pytest
from conftest import bundled, performance

from bridge import simulate
from bridge.events import NoteOff, NoteOn, NoteVerdict, Sounded, Status
from bridge.follow.engine import Engine
from bridge.midifile import read_performance
from bridge.musicxml import load_score
from bridge.replay import run_engine


@pytest.fixture(scope="module")
def sonatina():
    return load_score(bundled("sonatina"))


@pytest.fixture(scope="module")
def practice():
    return read_performance(performance("sonatina_practice"))


def shifted(events, k: int, from_t: float = 0.0, to_t: float = 1e9) -> list:
    """The performance with every key pressed in [from_t, to_t) sounding ``k`` higher
    (its release too, wherever it falls)."""
    out, moved = [], set()
    for e in events:
        if isinstance(e, NoteOn) and e.velocity and from_t <= e.t < to_t:
            moved.add(e.pitch)
            e = replace(e, pitch=e.pitch + k)
        elif isinstance(e, NoteOn | NoteOff) and e.pitch in moved and not (isinstance(e, NoteOn) and e.velocity):
            moved.discard(e.pitch)
            e = replace(e, pitch=e.pitch + k)
        out.append(e)
    return out


def follow(score, events) -> tuple[list, list[Status]]:
    out = list(run_engine(Engine(score), events))
    return out, [e for e in out if isinstance(e, Status) and e.state == "transposed"]


def correct(out, after: float = 0.0, before: float = 1e9) -> int:
    return sum(isinstance(e, NoteVerdict) and e.verdict == "correct" and after <= e.t < before for e in out)


@pytest.mark.parametrize("k", [12, -12, 24, 2, -1, 3])
def test_a_transposed_keyboard_is_found_said_once_and_followed_as_written(sonatina, practice, k):
    plain, none = follow(sonatina, practice)
    assert not none
    out, said = follow(sonatina, shifted(practice, k))
    assert len(said) == 1 and said[0].detail.startswith(f"{k:+d}: the keyboard sounds"), said
    assert said[0].t < practice[0].t + 8.0  # within the first bars
    assert correct(out, said[0].t) >= 0.97 * correct(plain, said[0].t)  # from there on, as if played as written
    presses = sum(isinstance(e, NoteOn) and e.velocity > 0 for e in practice)
    assert sum(isinstance(e, Sounded) for e in out) == presses  # no key left sounding


def test_a_shift_pressed_mid_piece_and_released_is_followed_both_ways(sonatina, practice):
    notes = [e.t for e in practice if isinstance(e, NoteOn) and e.velocity]
    a, b = notes[len(notes) // 3], notes[2 * len(notes) // 3]
    plain, _ = follow(sonatina, practice)
    out, said = follow(sonatina, shifted(practice, 12, a, b))
    assert [s.detail.split(":")[0] for s in said] == ["+12", "0"], said
    assert a < said[0].t < a + 8.0 and b < said[1].t < b + 8.0
    for since, until in ((said[0].t, b), (said[1].t, 1e9)):
        assert correct(out, since, until) >= 0.95 * correct(plain, since, until)
    presses = sum(isinstance(e, NoteOn) and e.velocity > 0 for e in practice)
    assert sum(isinstance(e, Sounded) for e in out) == presses


@pytest.mark.parametrize("seed", range(4))
def test_wrong_notes_and_wrong_places_are_not_taken_for_a_transposition(sonatina, seed):
    """A quarter of the notes a semitone or two off, extra notes an octave up, a restart."""
    played = simulate.with_mistakes(simulate.render(sonatina, seed=seed), seed=seed, wrong=0.25, extra=0.1)
    played, _ = simulate.with_jump(played, sonatina, at=0.6, to_q=0.0)
    _, said = follow(sonatina, simulate.to_events(played))
    assert not said
