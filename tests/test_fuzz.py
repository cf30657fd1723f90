"""Garbage in: MIDI bytes and random event sequences never crash the bridge."""

from dataclasses import replace

import mido
from conftest import bundled
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.events import Control, NoteOff, NoteOn, NoteVerdict
from bridge.follow.engine import Engine
from bridge.midiport import to_event
from bridge.musicxml import load_score

SCORE = load_score(bundled("minuet"))


@settings(max_examples=500, deadline=None)
@given(data=st.binary(min_size=0, max_size=12))
def test_garbage_midi_bytes_parse_or_fail_cleanly(data):
    """The MIDI reader parses each message like this and skips exactly these errors."""
    try:
        msg = mido.Message.from_bytes(data)
    except (ValueError, TypeError, IndexError):
        return
    to_event(msg, 0.0)


events = st.lists(
    st.one_of(
        st.builds(NoteOn, st.just(0.0), st.integers(0, 127), st.integers(0, 127), st.integers(0, 15)),
        st.builds(NoteOff, st.just(0.0), st.integers(0, 127), st.integers(0, 15)),
        st.builds(Control, st.just(0.0), st.integers(0, 127), st.integers(0, 127), st.integers(0, 15)),
    ),
    max_size=120,
)


@settings(max_examples=60, deadline=None)
@given(evs=events, gaps=st.lists(st.floats(0.0, 3.0), min_size=120, max_size=120))
def test_random_event_streams(evs, gaps):
    engine = Engine(SCORE)
    t, verdicts, note_ons = 0.0, 0, 0
    for ev, gap in zip(evs, gaps):
        t += gap
        ev = replace(ev, t=t)
        out = engine.feed(ev)
        verdicts += sum(isinstance(o, NoteVerdict) for o in out)
        note_ons += isinstance(ev, NoteOn) and ev.velocity > 0
        for o in out:
            o.to_dict()
    engine.finish()
    assert verdicts == note_ons
