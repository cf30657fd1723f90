"""Expression events from the verdict stream: what was played on each score note, and, once
the player moves on into the next phrase, how the last one went (numpy only, no clock).

    phrases = PhraseStream(score)              # loads the weights; UserError if it cannot
    for ev in outputs:                         # the engine's verdicts and releases
        done = phrases.add(ev)                 # a phrase index when one just ended
        if done is not None:
            out.append(phrases.assess(done, ev.t))

The assessment takes tens of milliseconds: offline (`follow`) it runs inline; the live
bridge hands ``snapshot()`` to a thread of its own so that key presses never wait for it.
"""

from __future__ import annotations

import math

import numpy as np

from bridge.errors import UserError
from bridge.events import Expression, NoteVerdict, OutputEvent, Release, Status
from bridge.expression.assess import Assessor, PhraseAssessment
from bridge.expression.render import load_network
from bridge.score import Score

Played = dict[int, tuple[float, float | None, int]]


class PhraseStream:
    """The phrases of one score, the notes played in them, and their assessment."""

    def __init__(self, score: Score, weights: str | None = None) -> None:
        self.assessor = Assessor(score, load_network(weights))
        self.index = {(n.note_id, n.pass_no): i for i, n in enumerate(score.notes)}
        self.phrase_of = np.zeros(len(score.notes), dtype=int)
        for k, (n0, n1) in enumerate(self.assessor.note_span):
            self.phrase_of[n0:n1] = k
        self.played: Played = {}
        self.current: int | None = None  # the phrase the player is in

    def add(self, ev: OutputEvent) -> int | None:
        """Fold in one output event; returns the phrase that the player just finished
        (entered the one after it), else None."""
        if isinstance(ev, Release) and ev.match is not None:
            i = self.index.get((ev.match.note_id, ev.match.pass_no))
            if i is not None and i in self.played and self.played[i][1] is None:
                onset, _, velocity = self.played[i]
                self.played[i] = (onset, ev.t, velocity)
            return None
        if not isinstance(ev, NoteVerdict) or ev.verdict != "correct" or ev.match is None:
            return None
        i = self.index.get((ev.match.note_id, ev.match.pass_no))
        if i is None:
            return None
        k = int(self.phrase_of[i])
        if self.current is not None and k < self.current:
            if k == self.current - 1 and i not in self.played:
                # a note of the phrase just left that had not come yet: played late, not a new take
                self.played[i] = (ev.t, None, ev.velocity)
                return None
            # gone back: the phrases from here on are played again, and judged on the new take
            self.played = {j: p for j, p in self.played.items() if self.phrase_of[j] < k}
        self.played.setdefault(i, (ev.t, None, ev.velocity))
        done = self.current if self.current is not None and k == self.current + 1 else None
        self.current = k
        return done

    def finish(self) -> int | None:
        """The phrase the player was in when the performance ended."""
        done, self.current = self.current, None
        return done

    def snapshot(self) -> Played:
        """A copy of the notes played so far, for an assessment on another thread."""
        return dict(self.played)

    def assess(self, k: int, t: float, played: Played | None = None) -> Expression | None:
        """Phrase ``k`` as an event at time ``t``; None when too little of it was played."""
        a = self.assessor.assess_phrase(k, self.played if played is None else played)
        return to_event(a, t)


def open_phrases(score: Score, enabled: bool = True) -> tuple[PhraseStream | None, Status | None]:
    """The phrase assessment for ``score``, or (None, why not) as an ``expression_off``
    status: without the model's weights, or for a score it cannot read, the bridge goes
    on without expression events and says so once."""
    if not enabled:
        return None, None
    try:
        return PhraseStream(score), None
    except UserError as e:
        return None, Status(0.0, "expression_off", str(e))


def _num(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def _band(b: tuple[float, float]) -> tuple[float | None, float | None]:
    return (_num(b[0]), _num(b[1]))


def to_event(a: PhraseAssessment, t: float) -> Expression | None:
    if a.level is None or math.isnan(a.level):
        return None
    return Expression(
        round(t, 4), a.first_measure, a.last_measure, a.played,
        _num(a.level), _band(a.level_expected), _num(a.range), _band(a.range_expected),
        _num(a.swell), _band(a.swell_expected), _num(a.tempo_qpm), _band(a.tempo_expected),
        _num(a.tempo_change), _band(a.tempo_change_expected), _num(a.articulation),
        _band(a.articulation_expected), _num(a.realism), a.text, _num(a.chord_spread_ms),
        _band(a.chord_spread_expected),
    )  # fmt: skip
