"""Synthetic performances of a score, with known ground truth.

Renders a score the way a person might play it (tempo drift and phrase-end ritardandi,
onset jitter, spread chords, dynamics from the marks, a louder melody), and adds the
mistakes of practice: wrong notes, extra notes, dropped notes, restarts and skips.
Used for the bundled demo performances and for tests of the follower.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace

from bridge.events import Control, InputEvent, NoteOff, NoteOn
from bridge.follow.matcher import DYNAMIC_VELOCITY
from bridge.score import Score


@dataclass(frozen=True)
class PlayedNote:
    """One performed note and what it really was."""

    t: float
    pitch: int
    velocity: int
    duration_s: float
    note: int | None  # index into Score.notes, None for an extra note
    kind: str = "score"  # score | wrong | extra


def render(
    score: Score,
    seed: int = 0,
    bpm: float | None = None,
    rubato: float = 0.08,
    jitter_s: float = 0.012,
    spread_s: float = 0.015,
) -> list[PlayedNote]:
    """A human-like performance of every note in the score."""
    rng = random.Random(seed)
    qpm = bpm or next((n.tempo_qpm for n in score.notes if n.tempo_qpm), None) or 96.0
    base_spq = 60.0 / qpm
    drift = 0.0
    t = 0.5
    prev_q = score.events[0].onset_q if score.events else 0.0
    top = {}
    for ev in score.events:  # the melody: the highest right-hand note of each chord
        rh = [k for k in ev.notes if score.notes[k].hand == "right"]
        if rh:
            top[max(rh, key=lambda k: score.notes[k].pitch)] = True
    out: list[PlayedNote] = []
    for ev in score.events:
        dq = ev.onset_q - prev_q
        prev_q = ev.onset_q
        drift = 0.92 * drift + rng.gauss(0.0, rubato) * min(1.0, dq + 0.25)
        # slow into the end of every fourth bar (a phrase end)
        bar_len = 4.0
        phrase_pos = (ev.onset_q / bar_len) % 4.0
        ritard = 1.0 + 0.25 * max(0.0, phrase_pos - 3.0)
        spq = base_spq * math.exp(drift) * ritard
        t += dq * spq
        for i, k in enumerate(ev.notes):
            n = score.notes[k]
            on = t + rng.gauss(0.0, jitter_s) + (rng.uniform(0.0, spread_s) if len(ev.notes) > 1 else 0.0)
            if n.grace:
                on = t - 0.07 * (1 + i)
            vel = DYNAMIC_VELOCITY.get(n.dynamic or "mf", 74) + (8 if k in top else 0) + rng.gauss(0.0, 5.0)
            dur = max(0.05, (n.duration_q or 0.25) * spq * rng.uniform(0.8, 0.95))
            out.append(PlayedNote(max(0.0, on), n.pitch, int(min(127, max(1, vel))), dur, k))
    out.sort(key=lambda p: p.t)
    return out


def with_mistakes(
    played: list[PlayedNote], seed: int = 0, wrong: float = 0.0, extra: float = 0.0, drop: float = 0.0
) -> list[PlayedNote]:
    """Replace, add and leave out notes at the given rates (wrong pitches are 1-2 semitones off)."""
    rng = random.Random(seed)
    out: list[PlayedNote] = []
    for i, p in enumerate(played):
        r = rng.random()
        if r < drop:
            continue
        if r < drop + wrong:
            p = replace(p, pitch=min(108, max(21, p.pitch + rng.choice((-2, -1, 1, 2)))), kind="wrong")
        out.append(p)
        if rng.random() < extra and i + 1 < len(played):
            gap = played[i + 1].t - p.t
            on = p.t + gap * rng.uniform(0.3, 0.7)
            pitch = min(108, max(21, p.pitch + rng.choice((-3, -1, 1, 3, 12))))
            out.append(PlayedNote(on, pitch, p.velocity, 0.1, None, "extra"))
    out.sort(key=lambda p: p.t)
    return out


def with_jump(
    played: list[PlayedNote], score: Score, at: float, to_q: float, pause_s: float = 1.5
) -> tuple[list[PlayedNote], float]:
    """Stop after a fraction ``at`` of the notes, pause, and carry on from score onset ``to_q``
    (behind the stop: a restart; ahead: a skip). Returns the notes and the time of the jump."""
    cut = next(p for p in played[int(at * len(played)) :] if p.note is not None)
    before = [p for p in played if p.t < cut.t]
    after_start = [p for p in played if p.note is not None and score.notes[p.note].onset_q >= to_q]
    if to_q > score.notes[cut.note].onset_q:
        after_start = [p for p in after_start if p.t > cut.t]
    if not after_start:
        raise ValueError(f"no note to resume at: quarter {to_q} is past the end")
    resume = min(after_start, key=lambda p: p.t)
    shift = cut.t + pause_s - resume.t
    after = [replace(p, t=p.t + shift) for p in played if p.t >= resume.t]
    return before + after, cut.t + pause_s


def to_events(played: list[PlayedNote], pedal_every_s: float = 0.0) -> list[InputEvent]:
    """Note-on/off events (and sustain pedal changes every ``pedal_every_s`` if set)."""
    events: list[InputEvent] = []
    for p in played:
        events.append(NoteOn(round(p.t, 4), p.pitch, p.velocity))
        events.append(NoteOff(round(p.t + p.duration_s, 4), p.pitch))
    if pedal_every_s and played:
        t, end = played[0].t, played[-1].t + 1.0
        while t < end:
            events.append(Control(round(t + 0.05, 4), 64, 100))
            events.append(Control(round(t + pedal_every_s - 0.02, 4), 64, 0))
            t += pedal_every_s
    events.sort(key=lambda e: e.t)
    return events
