"""Events to OSC messages: pure, no sockets.

Every argument list has a fixed length and types (i, f, s only), so receivers with
strict dialects can map them by position; values the event lacks are sent in the family
where they exist (a note without a timing verdict sends no ``/timing``).
"""

from __future__ import annotations

import math

from bridge.events import (
    Annotation,
    Expression,
    FingeringCorrection,
    FingerSeen,
    Jump,
    Missed,
    NoteVerdict,
    OutputEvent,
    Pedal,
    Release,
    Revised,
    Sounded,
    Status,
)

DEFAULT_PREFIX = "/pianobridge"

Message = tuple[str, list[int | float | str]]


def _ref(ref) -> tuple[str, int]:
    return (ref.note_id, ref.pass_no) if ref is not None else ("", 0)


def to_messages(ev: OutputEvent, prefix: str = DEFAULT_PREFIX) -> list[Message]:
    """The OSC messages for one output event (see osc_schemas/ for each address)."""
    p = prefix.rstrip("/")
    t = float(ev.t)
    if isinstance(ev, NoteVerdict):
        note_id, pass_no = _ref(ev.match or ev.intended)
        pos = ev.position
        out: list[Message] = [
            (f"{p}/note", [t, ev.pitch, ev.velocity, ev.verdict, note_id, pass_no, int(ev.latency_us)]),
            (
                f"{p}/position",
                [
                    t,
                    pos.note_id,
                    pos.pass_no,
                    pos.measure,
                    float(pos.beat),
                    float(pos.onset_q),
                    float(pos.confidence),
                    float(ev.tempo_bpm),
                ],
            ),
        ]
        if ev.timing is not None and ev.timing_ms is not None:
            out.append((f"{p}/timing", [t, note_id, pass_no, float(ev.timing_ms), ev.timing]))
        if ev.loudness is not None and ev.velocity_expected is not None:
            out.append(
                (
                    f"{p}/dynamics",
                    [t, note_id, pass_no, ev.velocity, ev.velocity_expected, ev.dynamic or "", ev.loudness],
                )
            )
        if ev.suggested_finger or ev.printed_finger:
            fingers = [ev.hand or "", ev.suggested_finger or "", ev.printed_finger or ""]
            out.append((f"{p}/fingering", [t, note_id, pass_no, *fingers]))
        return out
    if isinstance(ev, FingerSeen):
        note_id, pass_no = _ref(ev.match)
        f = ev.finger
        return [(f"{p}/finger", [t, note_id, pass_no, ev.pitch, f.hand, f.finger, float(f.confidence)])]
    if isinstance(ev, FingeringCorrection):
        played, told = ev.played, ev.suggested
        ahead = [x for r in ev.replanned for x in (r.note_id, r.pass_no, r.finger)]
        return [
            (
                f"{p}/fingering_correction",
                [t, ev.match.note_id, ev.match.pass_no, ev.pitch, played.hand, played.finger, told.hand, told.finger]
                + [float(played.confidence), len(ev.replanned), *ahead],
            )
        ]
    if isinstance(ev, Missed):
        due = float(ev.t if ev.due_t is None else ev.due_t)
        return [(f"{p}/missed", [t, ev.note_id, ev.pass_no, ev.pitch, ev.measure, float(ev.beat), due, int(ev.sure)])]
    if isinstance(ev, Revised):
        return [(f"{p}/revised", [t, float(ev.of_t), ev.pitch, ev.verdict, ev.note_id, ev.pass_no])]
    if isinstance(ev, Jump):
        to = ev.to
        return [(f"{p}/jump", [t, ev.kind, ev.from_measure, to.note_id, to.pass_no, to.measure, float(to.beat)])]
    if isinstance(ev, Pedal):
        return [(f"{p}/pedal", [t, ev.pedal, int(ev.down), ev.value])]
    if isinstance(ev, Release | Sounded):
        note_id, pass_no = _ref(ev.match)
        dur = ev.held_s if isinstance(ev, Release) else ev.sounding_s
        return [(f"{p}/{ev.type}", [t, ev.pitch, float(dur), note_id, pass_no])]
    if isinstance(ev, Status):
        return [(f"{p}/status", [t, ev.state, ev.detail])]
    if isinstance(ev, Expression):
        figures = [
            x
            for played, band in (
                (ev.level, ev.level_expected),
                (ev.range, ev.range_expected),
                (ev.swell, ev.swell_expected),
                (ev.tempo_qpm, ev.tempo_expected),
                (ev.tempo_change, ev.tempo_change_expected),
                (ev.articulation, ev.articulation_expected),
            )
            for x in (played, *band)
        ]
        numbers = _floats([*figures, ev.realism])
        # added after the text, so that the arguments before it keep their places
        spread = _floats([ev.chord_spread_ms, *ev.chord_spread_expected])
        return [(f"{p}/expression", [t, ev.first_measure, ev.last_measure, ev.played, *numbers, ev.text, *spread])]
    if isinstance(ev, Annotation):
        return [(f"{p}/annotation", [t, ev.author, ev.text, ev.measure, ev.note_id])]
    return []


def _floats(values: list[float | None]) -> list[float]:
    """OSC has no null: a figure that could not be measured goes as NaN."""
    return [math.nan if x is None else float(x) for x in values]
