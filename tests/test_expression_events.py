"""Expression events on the verdict stream: one per phrase the player finished, in `follow`
(inline) and in the live bridge (on a thread of its own), logged as derived outputs that
`replay` does not expect; without weights, one `expression_off` status and no events."""

import json
import subprocess
import sys
import time

import pytest
from conftest import ROOT, bundled, performance

from bridge import simulate
from bridge.events import Expression, NoteVerdict, Status
from bridge.expression import render
from bridge.expression.assess import bar_span
from bridge.expression.stream import PhraseStream, open_phrases
from bridge.live.runtime import LiveBridge
from bridge.musicxml import load_score
from bridge.replay import new_engine, run_engine
from bridge.session import SessionLog

pytestmark = pytest.mark.skipif(not render.DEFAULT_WEIGHTS.exists(), reason="no expression weights in model/")


def follow(tmp_path, *extra):
    out, session = tmp_path / "o.jsonl", tmp_path / f"s{''.join(extra)}.jsonl"  # one session per log
    p = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "follow", str(bundled("sonatina")), str(performance("sonatina_practice")),
         "--jsonl", str(out), "--session", str(session), *extra],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    return [json.loads(x) for x in out.read_text().splitlines()], session


def test_follow_says_how_each_phrase_went_once_the_player_is_past_it(tmp_path):
    events, session = follow(tmp_path)
    phrases = [e for e in events if e["type"] == "expression"]
    score = load_score(bundled("sonatina"))
    expected = PhraseStream(score).assessor.phrases
    reached = max(e["position"]["measure"] for e in events if e["type"] == "note")
    # the practice run stops in bar 33: every phrase before it is assessed
    assert {(e["first_measure"], e["last_measure"]) for e in phrases} >= {p for p in expected if p[1] < reached}
    for e in phrases:
        assert (e["first_measure"], e["last_measure"]) in expected
        assert e["text"].startswith(bar_span(e["first_measure"], e["last_measure"]) + ": ")
        assert 1 <= e["level"] <= 127 and 0.0 <= e["realism"] <= 1.0
        lo, hi = e["level_expected"]
        assert lo <= hi
        # sent with the first note of the next phrase (the last one when the performance ends)
        assert e["last_measure"] >= reached or any(
            n["type"] == "note" and abs(n["t"] - e["t"]) < 1e-3 and n["position"]["measure"] == e["last_measure"] + 1
            for n in events
        )
    logged = [json.loads(x) for x in session.read_text().splitlines()[1:]]
    assert sum(1 for r in logged if r["dir"] == "derived" and r["type"] == "expression") == len(phrases)
    r = subprocess.run([sys.executable, "-m", "bridge.cli", "replay", str(session)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr  # derived outputs are not the engine's: replay does not expect them
    none, _ = follow(tmp_path, "--no-expression")
    assert not [e for e in none if e["type"] == "expression"]


def test_going_back_judges_the_phrases_again_on_the_new_take():
    score = load_score(bundled("sonatina"))
    phrases = PhraseStream(score)
    base = simulate.render(score, seed=3)
    first_bars = [p for p in base if score.notes[p.note].measure <= 8]
    again, _ = simulate.with_jump(base, score, at=len(first_bars) / len(base), to_q=0.0, pause_s=2.0)
    done = []
    for ev in run_engine(new_engine(score, fingering=False), simulate.to_events(again)):
        if (k := phrases.add(ev)) is not None:
            done.append((k, len(phrases.played)))
    firsts = [n for k, n in done if k == 0]
    assert len(firsts) == 2  # bars 1-4 finished twice: before and after the restart
    # the second time only the new take's notes are in it, not the first take's as well (a
    # few of its first notes go uncredited while the follower finds the restart)
    assert 0.8 * firsts[0] <= firsts[1] <= firsts[0]


def test_without_weights_there_is_one_status_and_no_events(tmp_path, monkeypatch):
    score = load_score(bundled("sonatina"))
    monkeypatch.setattr(render, "DEFAULT_WEIGHTS", tmp_path / "missing.npz")
    phrases, off = open_phrases(score)
    assert phrases is None and isinstance(off, Status) and off.state == "expression_off"
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    monkeypatch.setattr(render, "DEFAULT_WEIGHTS", broken)
    phrases, off = open_phrases(score)
    assert phrases is None and off.state == "expression_off" and "\n" not in off.detail


def test_the_live_bridge_assesses_phrases_beside_the_key_presses(tmp_path):
    score_path = bundled("sonatina")
    score = load_score(score_path)
    log = SessionLog(tmp_path / "s.jsonl", str(score_path), {"fingering": False})
    seen = []
    bridge = LiveBridge(score, log=log, view=seen.append, fingering=False)
    bridge.start()
    played = simulate.render(score, seed=4)
    for ev in simulate.to_events(played):
        bridge.submit(ev)
    deadline = time.monotonic() + 60
    while sum(isinstance(e, NoteVerdict) for e in seen) < len(played) and time.monotonic() < deadline:
        time.sleep(0.05)
    bridge.stop()
    phrases = [e for e in seen if isinstance(e, Expression)]
    expected = PhraseStream(score).assessor.phrases
    # fed faster than any player, the worker drops the oldest waiting phrase rather than let
    # the key presses wait; every phrase is assessed or counted as dropped, and the last one
    # is assessed once the bridge stops
    assert len(phrases) + bridge.inbox.dropped["expression phrases"] == len(expected)
    assert (phrases[-1].first_measure, phrases[-1].last_measure) == expected[-1]
    logged = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()[1:]]
    assert sum(1 for r in logged if r["dir"] == "derived") == len(phrases)


def test_a_late_note_of_the_phrase_just_left_is_not_a_new_take():
    score = load_score(bundled("sonatina"))
    outputs = list(run_engine(new_engine(score, fingering=False), simulate.to_events(simulate.render(score, seed=3))))
    phrases = PhraseStream(score)
    phrase = {k: phrases.phrase_of[i] for k, i in phrases.index.items()}

    def of(ev):
        ok = isinstance(ev, NoteVerdict) and ev.verdict == "correct" and ev.match is not None
        return phrase[(ev.match.note_id, ev.match.pass_no)] if ok else None

    # the last note of bars 1-4 arrives only after the first note of bars 5-8
    late = max(j for j, ev in enumerate(outputs) if of(ev) == 0)
    first_next = next(j for j, ev in enumerate(outputs) if of(ev) == 1)
    moved = outputs[:late] + outputs[late + 1 : first_next + 1] + [outputs[late]] + outputs[first_next + 1 :]
    done = [k for ev in moved if (k := phrases.add(ev)) is not None]
    assert done == sorted(set(done)) and done[:2] == [0, 1]  # each phrase finished once, in order
    # the notes of bars 5-8 all counted, and the late note still credited to bars 1-4
    assert sum(1 for i in phrases.played if phrases.phrase_of[i] <= 1) == sum(
        1 for ev in outputs if of(ev) is not None and of(ev) <= 1
    )
