"""Score model: the notes a pianist has to press, in the order of the unfolded score.

Pure data and functions; reading files lives in :mod:`bridge.musicxml`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ScoreNote:
    """One key press the score asks for (tied continuations are folded into it).

    ``onset_q`` and ``duration_q`` are in quarter notes from the start of the unfolded
    score; ``pass_no`` counts how often the player has reached this ``note_id`` so far.
    """

    note_id: str
    pass_no: int
    pitch: int
    onset_q: float
    duration_q: float
    measure: int
    beat: float
    part: str
    staff: int
    hand: str
    time_signature: str
    tempo_qpm: float | None
    dynamic: str | None
    fingering: tuple[str, ...] = ()
    grace: bool = False
    ornaments: tuple[str, ...] = ()


# ornaments played as several quick notes around the written pitch
FIGURE_ORNAMENTS = ("trill", "mordent", "turn", "tremolo", "shake", "schleifer")


def plays_figure(note: ScoreNote) -> bool:
    """True when the written note is played as a trill, mordent, turn or tremolo."""
    return any(f in o for o in note.ornaments for f in FIGURE_ORNAMENTS)


@dataclass(frozen=True, slots=True)
class ScoreEvent:
    """Notes struck together: one chord, or the grace notes before a main note."""

    index: int
    onset_q: float
    notes: tuple[int, ...]  # indices into Score.notes
    pitches: tuple[int, ...]
    measure: int
    beat: float
    bar_start: bool
    grace: bool
    arpeggiated: bool = False


@dataclass(frozen=True, slots=True)
class MeasureRepeatInfo:
    """What a measure's barlines say about repeats (one entry per measure, all parts)."""

    forward: bool = False
    backward_times: int = 0  # 0: no backward repeat; n: play the section n times
    endings: tuple[int, ...] = ()  # volta numbers this measure belongs to


@dataclass
class Score:
    """Notes sorted by onset and grouped into events; see :func:`group_events`."""

    title: str
    notes: list[ScoreNote]
    events: list[ScoreEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.events:
            self.events = group_events(self.notes)

    @property
    def duration_q(self) -> float:
        return max((n.onset_q + n.duration_q for n in self.notes), default=0.0)


def unfold_measures(info: list[MeasureRepeatInfo]) -> list[tuple[int, int]]:
    """Play order of measures with every repeat taken and voltas chosen by pass.

    Returns ``(measure_index, pass_no)`` pairs, the same "maximal" unfolding that
    partitura and most notation programs use for playback.
    """
    order: list[tuple[int, int]] = []
    section_start, section_pass = 0, 1
    after_volta = False  # a skipped first-ending repeat: the next plain measure starts anew
    repeats_done: dict[int, int] = {}
    seen: dict[int, int] = {}
    i = 0
    while i < len(info):
        m = info[i]
        if m.endings and section_pass not in m.endings:
            after_volta = after_volta or m.backward_times > 0
            i += 1
            continue
        if (m.forward and i != section_start) or (after_volta and not m.endings):
            section_start, section_pass, after_volta = i, 1, False
        seen[i] = seen.get(i, 0) + 1
        order.append((i, seen[i]))
        if m.backward_times and repeats_done.get(i, 0) < m.backward_times - 1:
            repeats_done[i] = repeats_done.get(i, 0) + 1
            section_pass += 1
            i = section_start
            continue
        if m.backward_times:
            section_start, section_pass = i + 1, 1
        i += 1
    return order


def group_events(notes: list[ScoreNote], tol_q: float = 1e-4) -> list[ScoreEvent]:
    """Group notes with the same onset into events; each grace note is an event of its own."""
    events: list[ScoreEvent] = []
    i = 0
    while i < len(notes):
        j = i
        while j < len(notes) and abs(notes[j].onset_q - notes[i].onset_q) < tol_q:
            j += 1
        group = list(range(i, j))
        # grace notes are struck one after another before the main chord
        parts = [(k,) for k in group if notes[k].grace]
        chord = tuple(k for k in group if not notes[k].grace)
        for idx in parts + ([chord] if chord else []):
            first = notes[idx[0]]
            prev_measure = events[-1].measure if events else None
            events.append(
                ScoreEvent(
                    index=len(events),
                    onset_q=first.onset_q,
                    notes=idx,
                    pitches=tuple(notes[k].pitch for k in idx),
                    measure=first.measure,
                    beat=first.beat,
                    bar_start=first.measure != prev_measure,
                    grace=first.grace,
                    arpeggiated=any("arpeggio" in o for k in idx for o in notes[k].ornaments),
                )
            )
        i = j
    return events
