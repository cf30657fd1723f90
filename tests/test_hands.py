"""Hands-separate practice: one hand alone is noticed, followed in its part of the score
(its notes right, the other hand's not reported missed) and said once; both hands again
are noticed too. A two-handed performance, wrong notes and all, is never taken for it."""

import json
import random
from dataclasses import replace
from functools import partial

import pytest
from conftest import bundled, cli

from bridge import simulate
from bridge.errors import UserError
from bridge.events import Command, Missed, NoteOn, NoteVerdict, Status
from bridge.follow.engine import Engine
from bridge.musicxml import load_score
from bridge.osc import to_input
from bridge.replay import run_engine
from bridge.score import Score, ScoreNote, hand_part


@pytest.fixture(scope="module")
def sonatina():
    return load_score(bundled("sonatina"))


def one_hand(played, score, hand):
    return [p for p in played if score.notes[p.note].hand == hand]


def follow(score, played, hands="auto") -> list:
    return list(run_engine(Engine(score, hands=hands), simulate.to_events(played)))


def said(out) -> list[Status]:
    return [e for e in out if isinstance(e, Status) and e.state == "hands"]


def verdicts(out, kind, after=0.0) -> int:
    return sum(isinstance(e, NoteVerdict) and e.verdict == kind and e.t >= after for e in out)


def test_a_hand_part_keeps_the_notes_and_groups_only_that_hands_events(sonatina):
    right = hand_part(sonatina, "right")
    assert right.notes is sonatina.notes  # note indices stay valid
    assert [e.index for e in right.events] == list(range(len(right.events)))
    kept = [k for e in right.events for k in e.notes]
    assert kept == [k for k, n in enumerate(sonatina.notes) if n.hand == "right"]
    assert all(e.pitches == tuple(sonatina.notes[k].pitch for k in e.notes) for e in right.events)
    melody = Score("melody", [ScoreNote("n1", 1, 72, 0.0, 1.0, 1, 1.0, "P1", 1, "right", "4/4", None, None)])
    with pytest.raises(UserError, match="no left-hand notes"):
        hand_part(melody, "left")


@pytest.mark.parametrize("hand", ["right", "left"])
def test_one_hand_alone_is_noticed_said_once_and_followed_in_its_part(sonatina, hand):
    played = one_hand(simulate.render(sonatina, seed=3), sonatina, hand)
    plain = follow(sonatina, played, hands="both")
    out = follow(sonatina, played)
    told = said(out)
    assert len(told) == 1 and told[0].detail.startswith(f"{hand}: the {hand} hand alone"), told
    # within the first bars (the sonatina's open slowly): 16 notes of each hand are weighed
    assert told[0].t < next(p.t for p in played if sonatina.notes[p.note].measure >= 10)
    # from there on every press is right and nothing of the other hand is reported missed
    after = [e for e in out if e.t > told[0].t]
    assert verdicts(after, "correct") >= 0.98 * sum(p.t > told[0].t for p in played)
    assert all(_hand(sonatina, e) == hand for e in after if isinstance(e, Missed))
    # what the follower expecting both hands made of it
    assert sum(isinstance(e, Missed) for e in plain) > 3 * sum(isinstance(e, Missed) for e in out)


def _hand(score, missed: Missed) -> str:
    return next(n.hand for n in score.notes if (n.note_id, n.pass_no) == (missed.note_id, missed.pass_no))


def test_a_declared_hand_is_followed_alone_from_the_first_note(sonatina):
    played = one_hand(simulate.render(sonatina, seed=4), sonatina, "left")
    out = follow(sonatina, played, hands="left")
    assert not said(out)
    assert verdicts(out, "correct") >= 0.98 * len(played)
    assert all(_hand(sonatina, e) == "left" for e in out if isinstance(e, Missed))


def test_both_hands_again_from_the_top_are_noticed_and_followed(sonatina):
    whole = simulate.render(sonatina, seed=5)
    alone = one_hand(whole, sonatina, "right")
    cut = alone[len(alone) // 2].t
    start = cut + 1.5 - whole[0].t
    played = [p for p in alone if p.t < cut] + [replace(p, t=p.t + start) for p in whole]
    out = follow(sonatina, played)
    told = said(out)
    assert [s.detail.split(":")[0] for s in told] == ["right", "both"], told
    assert told[1].t < cut + 1.5 + 6.0  # within the first bars played together
    together = sum(p.t > told[1].t for p in played)
    assert verdicts(out, "correct", told[1].t) >= 0.97 * together


def test_a_switch_of_hands_builds_no_score_tables_on_the_note_path(sonatina):
    """The follower of each hand's part is made ready when the engine starts (about 10 ms of
    tables for 4,000 notes): a switch to one hand and back shares them."""
    whole = simulate.render(sonatina, seed=5)
    alone = one_hand(whole, sonatina, "right")
    cut = alone[len(alone) // 2].t
    played = [p for p in alone if p.t < cut] + [replace(p, t=p.t + cut + 1.5 - whole[0].t) for p in whole]
    engine = Engine(sonatina)
    ready = {id(f.m) for f in engine._made.values()}
    assert len(ready) == 3  # both hands, right, left
    used, out = set(), []
    for ev in simulate.to_events(played):
        out += engine.feed(ev)
        used.add(id(engine.follower.m))
    assert [s.detail.split(":")[0] for s in said(out)] == ["right", "both"]
    assert len(used) == 2 and used <= ready
    # the player saying what they play, again and again, reuses them too
    for k, hands in enumerate(["left", "both", "auto", "right", "auto", "left"] * 3):
        assert engine.feed(Command(played[-1].t + 1 + k, "playing", playing=hands))[0].state == "hands"
        assert id(engine.follower.m) in ready
    assert len(engine._made) == 3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_both_hands_with_wrong_extra_and_left_out_notes_are_never_taken_for_one(sonatina, seed):
    played = simulate.with_mistakes(simulate.render(sonatina, seed=seed), seed=seed, wrong=0.1, extra=0.1, drop=0.1)
    assert not said(follow(sonatina, played))


def test_an_unknown_hands_setting_is_refused(sonatina):
    with pytest.raises(ValueError, match="hands must be"):
        Engine(sonatina, hands="three")


def test_follow_takes_the_hand_played_and_refuses_one_the_score_lacks(tmp_path):
    from music21 import note, stream

    melody = stream.Part([note.Note(p, quarterLength=1.0) for p in ("C5", "D5", "E5", "F5")])
    melody.write("musicxml", fp=tmp_path / "melody.musicxml")
    sonatina, played = bundled("sonatina"), bundled("sonatina").parent / "performances" / "sonatina.mid"
    out, log = tmp_path / "out.jsonl", tmp_path / "session.jsonl"
    r = cli("follow", sonatina, played, "--jsonl", out, "--session", log, "--playing", "left", "--no-expression")
    assert r.returncode == 0, r.stderr
    stream = [json.loads(x) for x in out.read_text().splitlines()]
    # both hands played, the left followed: the right hand's presses are extra, none said
    assert not [e for e in stream if e.get("state") == "hands"]
    extra = sum(e["type"] == "note" and e["verdict"] == "extra" for e in stream)
    assert extra > 0.4 * sum(e["type"] == "note" for e in stream)
    r = cli("replay", log)  # the session log keeps the hands played: replay follows the same part
    assert r.returncode == 0 and "logged outputs reproduced" in r.stdout, r.stderr
    r = cli("follow", tmp_path / "melody.musicxml", played, "--playing", "left", "--no-expression")
    assert r.returncode == 2 and r.stderr.strip() == "pianobridge: error: the score has no left-hand notes", r.stderr
    r = cli("follow", sonatina, played, "--playing", "three")
    assert r.returncode == 2 and "invalid choice: 'three'" in r.stderr


def test_the_player_says_which_hands_they_play_and_that_part_is_followed(sonatina):
    """``/control/playing``: both hands to bar 8, then the player says "left" and plays
    the left hand alone to bar 16, then "both" and both hands to the end."""
    whole = simulate.render(sonatina, seed=6)
    bar = lambda p: sonatina.notes[p.note].measure  # noqa: E731
    played = [p for p in whole if bar(p) < 9 or bar(p) >= 17 or sonatina.notes[p.note].hand == "left"]
    left_at = next(p.t for p in played if bar(p) >= 9) - 0.2
    both_at = next(p.t for p in played if bar(p) >= 17) - 0.2
    events = simulate.to_events(played) + [Command(left_at, "playing", playing="left")]
    events += [Command(both_at, "playing", playing="both")]
    out = list(run_engine(Engine(sonatina), sorted(events, key=lambda e: e.t)))
    assert [(s.t, s.detail.split(":")[0]) for s in said(out)] == [(left_at, "left"), (both_at, "both")]
    for lo, hi in ((left_at, both_at), (both_at, 1e9)):
        presses = sum(lo < p.t < hi for p in played)
        assert sum(isinstance(e, NoteVerdict) and lo < e.t < hi and e.verdict == "correct" for e in out) >= (
            0.98 * presses
        )
    # the right hand's notes of bars 9-16 were not expected, so none is reported missed
    assert not [
        e for e in out if isinstance(e, Missed) and left_at < e.t < both_at + 1 and _hand(sonatina, e) == "right"
    ]


def test_a_playing_command_the_score_cannot_take_is_ignored_and_said(sonatina):
    melody = Score("melody", [ScoreNote("n1", 1, 72, 0.0, 1.0, 1, 1.0, "P1", 1, "right", "4/4", None, None)])
    (told,) = Engine(melody).feed(Command(0.0, "playing", playing="left"))
    assert told.state == "osc_ignored" and told.detail == "the score has no left-hand notes"
    engine = Engine(sonatina)
    assert engine.feed(Command(0.0, "playing", playing="three"))[0].state == "osc_ignored"
    (told,) = engine.feed(Command(0.0, "playing", playing="right"))  # before the first note: from the start
    assert told.state == "hands" and told.detail.startswith("right:") and engine.hands_mode == "right"
    first_right = next(n for n in sonatina.notes if n.hand == "right")
    assert engine.feed(NoteOn(0.5, first_right.pitch, 70))[0].verdict == "correct"
    P = "/pianobridge"
    assert to_input(f"{P}/control/playing", ["left"], 1.0, P) == Command(1.0, "playing", playing="left")
    bad = to_input(f"{P}/control/playing", ["three"], 1.0, P)
    assert bad.state == "osc_ignored" and "auto, both, right, left" in bad.detail


def _add(notes: list, qpm: float, pitch: int, onset: float, dur: float, hand: str) -> None:
    """A note of a project-authored piece in 4/4, each hand on its own staff."""
    bar = int(onset // 4) + 1
    notes.append(
        ScoreNote(f"n{len(notes) + 1}", 1, pitch, onset, dur, bar, onset % 4 + 1, "P1", 1 + (hand == "left"),
                  hand, "4/4", qpm, None)
    )  # fmt: skip


def _alberti_under_a_running_melody(bars: int = 24) -> Score:
    """A project-authored piece: the left hand strikes the same four quarters in every bar,
    under a right hand of sixteenths that differs from bar to bar."""
    rng = random.Random(7)
    notes: list = []
    add = partial(_add, notes, 72.0)

    for b in range(bars):
        for k in range(16):
            add(rng.choice([72, 74, 76, 77, 79, 81, 83, 84]), 4 * b + k / 4, 0.25, "right")
        for k, p in enumerate((48, 55, 52, 55)):
            add(p, 4 * b + k, 1.0, "left")
    notes.sort(key=lambda n: (n.onset_q, n.pitch))
    return Score("alberti", notes)


def test_one_hand_alone_is_found_when_the_whole_score_cannot_place_it():
    """The left hand alone, the same figure in every bar: the follower expecting both hands
    cannot tell which bar it is in and loses the player, so what became of each hand's
    notes tells nothing. The last presses, looked for in each hand's part and in the whole
    score, do: only the left hand's part holds them in their order."""
    score = _alberti_under_a_running_melody()
    played = one_hand(simulate.render(score, seed=2), score, "left")
    out = follow(score, played)
    told = said(out)
    assert len(told) == 1 and told[0].detail.startswith("left:"), told
    assert told[0].t <= played[31].t  # the 24 presses weighed, and two looks 4 presses apart
    after = [e for e in out if e.t > told[0].t]
    assert verdicts(after, "correct") >= 0.98 * sum(p.t > told[0].t for p in played)
    assert not [e for e in after if isinstance(e, Missed)]
    # and both hands, the same piece, are never taken for one
    assert not said(follow(score, simulate.render(score, seed=2)))


def _rondo() -> tuple[Score, float, float, float]:
    """A project-authored rondo: a theme A (8 bars), an episode B (8), two bars of the left
    hand's G pedal under held right-hand notes, A again note for note, then an episode C
    (8) unlike B. Returns the score and the onsets (quarters) where B, the pedal and A's
    return begin."""
    rng = random.Random(11)
    notes: list = []
    add = partial(_add, notes, 100.0)

    def section(at: float, bars: int, seed: int) -> None:
        r = random.Random(seed)
        for b in range(bars):
            for k in range(8):
                add(r.choice([67, 69, 71, 72, 74, 76, 77, 79, 81]), at + 4 * b + k / 2, 0.5, "right")
            for k, p in enumerate(r.choice([(36, 43, 48, 43), (41, 48, 53, 48), (43, 50, 55, 50), (45, 52, 57, 52)])):
                add(p, at + 4 * b + k, 1.0, "left")

    section(0.0, 8, seed=1)  # A
    section(32.0, 8, seed=2)  # B
    for b in range(2):  # the pedal
        add(rng.choice([74, 77]), 64.0 + 4 * b, 4.0, "right")
        for k in range(8):
            add((43, 55)[k % 2], 64.0 + 4 * b + k / 2, 0.5, "left")
    section(72.0, 8, seed=1)  # A again
    section(104.0, 8, seed=3)  # C
    notes.sort(key=lambda n: (n.onset_q, n.pitch))
    return Score("rondo", notes), 32.0, 64.0, 72.0


def test_both_hands_again_where_the_music_fits_two_places_say_they_are_unsure_until_it_parts():
    """The left hand alone up to the pedal, then, after a breath, both hands from the top.
    The last presses, in their order, are the pedal and then the theme, which is where the
    theme comes back: the theme at the top sounds the same, and only the episodes after
    the two tell them apart. Until then the follower says it is unsure (not, as it did,
    sure of the return for eight bars), and where they part it finds the player at once."""
    score, episode_q, pedal_q, back_q = _rondo()
    whole = simulate.render(score, seed=4)
    alone = [p for p in one_hand(whole, score, "left") if score.notes[p.note].onset_q < back_q]
    cut = alone[-1].t + 0.3
    shift = cut + 1.5 - whole[0].t
    again = [replace(p, t=p.t + shift) for p in whole if score.notes[p.note].onset_q < pedal_q]
    played = alone + again
    out = follow(score, played)
    told = said(out)
    assert [s.detail.split(":")[0] for s in told] == ["left", "both"], told
    parts = next(p.t for p in again if score.notes[p.note].onset_q >= episode_q)  # B, against C
    unsure = [e for e in out if isinstance(e, NoteVerdict) and told[1].t <= e.t < parts]
    assert len(unsure) > 40 and all(e.position.confidence < 0.4 for e in unsure)
    # found where the two part: every press from the second bar of the episode on is right
    settled = next(p.t for p in again if score.notes[p.note].onset_q >= episode_q + 4.0)
    later = [e for e in out if isinstance(e, NoteVerdict) and e.t >= settled]
    assert len(later) > 60 and verdicts(later, "correct") >= 0.98 * len(later)
