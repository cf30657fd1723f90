"""Run the engine over a simulated performance and score it against the truth."""

from __future__ import annotations

from bridge import simulate
from bridge.events import NoteVerdict, OutputEvent
from bridge.follow.engine import Engine
from bridge.score import Score


def run(score: Score, played: list[simulate.PlayedNote]) -> list[OutputEvent]:
    engine = Engine(score)
    out: list[OutputEvent] = []
    for ev in simulate.to_events(played):
        out += engine.feed(ev)
    return out + engine.finish()


def verdicts(out: list[OutputEvent]) -> list[NoteVerdict]:
    return [o for o in out if isinstance(o, NoteVerdict)]


def position_ok(score: Score, played, notes, after_t: float = -1.0) -> list[bool]:
    """Per score note played (after after_t): reported position within one quarter."""
    return [
        abs(v.position.onset_q - score.notes[p.note].onset_q) <= 1.0
        for p, v in zip(played, notes, strict=True)
        if p.note is not None and p.t >= after_t
    ]


def notes_to_recover(score: Score, played, notes, jump_t: float) -> int | None:
    """Notes after the jump until five in a row are placed right."""
    ok = position_ok(score, played, notes, after_t=jump_t)
    return next((i for i in range(len(ok) - 4) if all(ok[i : i + 5])), None)
