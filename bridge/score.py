"""Score model: the notes a pianist has to press, in the order of the unfolded score.

Pure data and functions; reading files lives in :mod:`bridge.musicxml`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

from bridge.errors import UserError

# notes, and measures, in play order: 30 times the largest development score (6,261 notes
# unfolded), and a cap on what a small file with large repeat counts can make us build
MAX_UNFOLDED = 200_000
# onsets closer than this (quarters), with the notes around them this many times further apart
# than their steps, are one chord that the file wrote split (`struck_together`)
SPLIT_CHORD_Q = 1 / 16
SPLIT_CHORD_GAPS = 5.0


# dynamics that stress the notes they are written on and leave the level in force as it was
# (fp: forte on them, piano after)
ACCENT_DYNAMICS: dict[str, str | None] = {"sf": None, "sfz": None, "sffz": None, "rfz": None, "fp": "p"}


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
    dynamic: str | None  # the level in force; an accent mark (sf, fp) on the notes it is written on only
    fingering: tuple[str, ...] = ()
    grace: bool = False
    ornaments: tuple[str, ...] = ()
    # what the expression model reads besides the above (bridge.expression)
    voice: int = 1
    articulations: tuple[str, ...] = ()  # staccato, accent, tenuto, ... (music21 class names, lower case)
    slur: bool = False  # under a slur (its first and last note included)
    slur_end: bool = False  # the last note of a slur (where players lift)
    wedge: str | None = None  # "crescendo" or "diminuendo" while a hairpin or a written cresc./dim. runs
    words: str | None = None  # the last tempo word in force ("rit.", "a tempo", "allegro"), lower case


# ornaments played as several quick notes around the written pitch
FIGURE_ORNAMENTS = ("trill", "mordent", "turn", "tremolo", "shake", "schleifer")


# a note a trill's wavy line runs on over (music21's name for the line): the trill goes on
# through it, however many notes the player's trill has
TRILL_LINE = "trillextension"
# a chord of a two-note tremolo (music21's name): it alternates with the other chord
TREMOLO_PAIR = "tremolospanner"


def plays_figure(note: ScoreNote) -> bool:
    """True when the written note is played as a trill, mordent, turn or tremolo."""
    return any(f in o for o in note.ornaments for f in FIGURE_ORNAMENTS)


def figure_spans(notes: Sequence[ScoreNote]) -> dict[int, tuple[float, float, tuple[int, ...]]]:
    """Per note played as a figure, the quarters the figure sounds over and the written
    pitches it sounds around: an ornament written on the note at least half a quarter (a
    trill on a sixteenth goes on past it); a note a trill's line runs on over, its own length
    (the line ends with it); the two chords of a two-note tremolo (a chord and the one that
    starts where it ends, on one staff), both chords' pitches over both their lengths."""
    out: dict[int, tuple[float, float, tuple[int, ...]]] = {}
    chords: dict[tuple, list[int]] = {}
    for k, n in enumerate(notes):
        if TREMOLO_PAIR in n.ornaments:
            chords.setdefault((n.part, n.staff, round(n.onset_q, 4)), []).append(k)
        elif plays_figure(n):
            marked = any(f in o for o in n.ornaments if o != TRILL_LINE for f in FIGURE_ORNAMENTS)
            out[k] = (n.onset_q, n.onset_q + (max(n.duration_q, 0.5) if marked else n.duration_q), (n.pitch,))
    for (part, staff, q), first in sorted(chords.items(), key=lambda c: c[0][2]):
        if first[0] in out:
            continue  # the second chord of a pair
        end = q + notes[first[0]].duration_q
        both = first + chords.get((part, staff, round(end, 4)), [])
        stop = max(notes[k].onset_q + notes[k].duration_q for k in both)
        pitches = tuple(sorted({notes[k].pitch for k in both}))
        out.update((k, (q, stop, pitches)) for k in both)
    return out


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
    # navigation marks (MusicXML <sound>): a segno or coda starts here; after this
    # measure the player goes back da capo or dal segno, ends at fine, or leaves for the coda
    segno: bool = False
    coda: bool = False
    jump: str | None = None  # "dacapo" | "dalsegno"
    fine: bool = False
    tocoda: bool = False


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


def unfold_measures(
    info: list[MeasureRepeatInfo], notes_per_measure: Sequence[int] | None = None
) -> list[tuple[int, int]]:
    """Play order of measures with every repeat taken and voltas chosen by pass.

    Returns ``(measure_index, pass_no)`` pairs, the same "maximal" unfolding that
    partitura and most notation programs use for playback. A da capo or dal segno is
    taken once; on the way back, as players read it, repeats are not taken (the last
    volta is played), the music ends at the fine, and "to coda" goes on at the coda.
    Raises :class:`UserError` once the order passes ``MAX_UNFOLDED`` measures, or notes
    by ``notes_per_measure``.
    """
    order: list[tuple[int, int]] = []
    n_notes = 0
    section_start, section_pass = 0, 1
    after_volta = False  # a skipped first-ending repeat: the next plain measure starts anew
    repeats_done: dict[int, int] = {}
    seen: dict[int, int] = {}
    returned = False  # the da capo or dal segno was taken
    repeated_ending = _repeated_endings(info)
    i = 0
    while i < len(info):
        m = info[i]
        skip = repeated_ending[i] if returned else section_pass not in m.endings
        if m.endings and skip:
            after_volta = after_volta or m.backward_times > 0
            i += 1
            continue
        if (m.forward and i != section_start) or (after_volta and not m.endings):
            section_start, section_pass, after_volta = i, 1, False
        seen[i] = seen.get(i, 0) + 1
        order.append((i, seen[i]))
        n_notes += notes_per_measure[i] if notes_per_measure else 0
        if len(order) > MAX_UNFOLDED or n_notes > MAX_UNFOLDED:
            what = "notes" if n_notes > MAX_UNFOLDED else "measures"
            raise UserError(f"the score has more than {MAX_UNFOLDED} {what} once its repeats are played out")
        if returned and m.fine:
            break
        if returned and m.tocoda:
            coda = next((k for k in range(i + 1, len(info)) if info[k].coda), None)
            if coda is not None:
                i = section_start = coda
                continue
        if not returned and m.backward_times and repeats_done.get(i, 0) < m.backward_times - 1:
            repeats_done[i] = repeats_done.get(i, 0) + 1
            section_pass += 1
            i = section_start
            continue
        if m.jump and not returned:
            segno = next((k for k in range(i, -1, -1) if info[k].segno), 0) if m.jump == "dalsegno" else 0
            returned, after_volta = True, False
            i = section_start = segno
            continue
        if m.backward_times:
            section_start, section_pass = i + 1, 1
        i += 1
    return order


def _repeated_endings(info: list[MeasureRepeatInfo]) -> list[bool]:
    """Per measure: it lies in a volta that ends with a backward repeat (a first ending,
    left out when the repeats are no longer taken)."""
    out = [False] * len(info)
    i = 0
    while i < len(info):
        j = i
        while j + 1 < len(info) and info[i].endings and info[j + 1].endings == info[i].endings:
            j += 1
        repeated = bool(info[i].endings) and any(info[k].backward_times for k in range(i, j + 1))
        out[i : j + 1] = [repeated] * (j + 1 - i)
        i = j + 1
    return out


def group_events(
    notes: list[ScoreNote], tol_q: float = 1e-4, keep: Sequence[int] | None = None, struck: bool = False
) -> list[ScoreEvent]:
    """Group notes with the same onset into events; each grace note is an event of its own.
    ``keep``: the indices of the notes to group (in order), all by default. ``struck``: one
    event for the onsets a player strikes as one chord (`struck_together`), as followed."""
    order = list(range(len(notes))) if keep is None else list(keep)
    groups: list[list[int]] = []
    for k in order:
        if groups and abs(notes[k].onset_q - notes[groups[-1][0]].onset_q) < tol_q:
            groups[-1].append(k)
        else:
            groups.append([k])
    if struck:
        groups = struck_together(groups, [notes[g[0]].onset_q for g in groups])
    events: list[ScoreEvent] = []
    for group in groups:
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
    return events


def struck_together(groups: list[list[int]], onsets: Sequence[float]) -> list[list[int]]:
    """``groups`` (of notes, at ascending ``onsets``) with those a player strikes as one chord
    joined: a run of onsets spanning less than `SPLIT_CHORD_Q` whose every step is
    `SPLIT_CHORD_GAPS` times shorter than the gaps before and after it. A file can write one
    chord's notes a few divisions apart: tuplets with rounded <duration> and <backup> values
    drift apart from voice to voice (Liszt's Mazeppa: each chord's hands 1/48 of a quarter
    apart), and followed as two events the chord's notes read as out of order. A fast run is
    left alone: its steps are as long as the gaps around each of its notes."""
    out: list[list[int]] = []
    n, i = len(groups), 0
    while i < n:
        j = i + 1
        while j < n and onsets[j] - onsets[i] < SPLIT_CHORD_Q:
            j += 1
        # the longest run from here that stands apart from the onsets around it
        for end in range(j, i + 1, -1):
            step = max(b - a for a, b in itertools.pairwise(onsets[i:end]))
            before = onsets[i] - onsets[i - 1] if i else math.inf
            after = onsets[end] - onsets[end - 1] if end < n else math.inf
            if min(before, after) >= SPLIT_CHORD_GAPS * step:
                out.append([k for g in groups[i:end] for k in g])
                i = end
                break
        else:
            out.append(groups[i])
            i += 1
    return out


HANDS = ("right", "left")
PLAYING = ("auto", "both", *HANDS)  # what a player may be declared to play: `Engine`'s ``hands``


def hand_part(score: Score, hand: str) -> Score:
    """The score as one hand plays it alone (hands-separate practice): the same notes, so
    note indices stay valid, grouped into events from ``hand``'s notes only."""
    keep = [k for k, n in enumerate(score.notes) if n.hand == hand]
    if not keep:
        raise UserError(f"the score has no {hand}-hand notes")
    return Score(score.title, score.notes, group_events(score.notes, keep=keep, struck=True))


def as_struck(score: Score) -> Score:
    """The score as followed: the same notes, grouped into the chords a player strikes
    (`struck_together`)."""
    return Score(score.title, score.notes, group_events(score.notes, struck=True))


# ---------------------------------------------------------------- plain data (the score cache)

# each field's JSON types, in field order; tuples travel as lists
_NOTE_TYPES = {"note_id": {str}, "pass_no": {int}, "pitch": {int}, "onset_q": {float}, "duration_q": {float},
               "measure": {int}, "beat": {float}, "part": {str}, "staff": {int}, "hand": {str},
               "time_signature": {str}, "tempo_qpm": {float, type(None)}, "dynamic": {str, type(None)},
               "fingering": {list}, "grace": {bool}, "ornaments": {list}, "voice": {int}, "articulations": {list},
               "slur": {bool}, "slur_end": {bool}, "wedge": {str, type(None)}, "words": {str, type(None)}}  # fmt: skip
_EVENT_TYPES = {"index": {int}, "onset_q": {float}, "notes": {list}, "pitches": {list}, "measure": {int},
                "beat": {float}, "bar_start": {bool}, "grace": {bool}, "arpeggiated": {bool}}  # fmt: skip
_ITEM_TYPES = {"fingering": {str}, "ornaments": {str}, "articulations": {str}, "notes": {int}, "pitches": {int}}
# a field added to a dataclass must be added here too, or cached scores would lose it
assert list(_NOTE_TYPES) == [f.name for f in fields(ScoreNote)]
assert list(_EVENT_TYPES) == [f.name for f in fields(ScoreEvent)]


def score_to_data(score: Score) -> dict:
    """The score as JSON-ready columns (one list per field), exact for :func:`score_from_data`."""
    return {
        "title": score.title,
        "notes": {f: [getattr(n, f) for n in score.notes] for f in _NOTE_TYPES},
        "events": {f: [getattr(e, f) for e in score.events] for f in _EVENT_TYPES},
    }


def score_from_data(data: object) -> Score:
    """The score that :func:`score_to_data` was given; ``ValueError`` for anything else, so
    that a damaged or planted cache file is never trusted."""
    if not isinstance(data, dict) or not isinstance(data.get("title"), str):
        raise ValueError("not a score")
    notes = _columns(data.get("notes"), _NOTE_TYPES)
    events = _columns(data.get("events"), _EVENT_TYPES)
    indices = list(itertools.chain.from_iterable(events["notes"]))
    if indices and not 0 <= min(indices) <= max(indices) < len(notes["pitch"]):
        raise ValueError("an event points past the notes")
    return Score(data["title"], list(map(ScoreNote, *notes.values())), list(map(ScoreEvent, *events.values())))


def _columns(table: object, types: dict[str, set[type]]) -> dict[str, list]:
    """The columns of ``table``, type-checked, with list values made tuples."""
    if not isinstance(table, dict) or list(table) != list(types):
        raise ValueError("wrong fields")
    cols = dict(table)
    lengths = {len(c) if isinstance(c, list) else -1 for c in cols.values()}
    if len(lengths) != 1 or -1 in lengths:
        raise ValueError("columns missing or of different lengths")
    for f, allowed in types.items():
        # set(map(type, ...)) runs in C: a 2,000-note score is checked in about a millisecond
        if not set(map(type, cols[f])) <= allowed:
            raise ValueError(f"{f} holds a value of the wrong type")
        if f in _ITEM_TYPES:
            if not set(map(type, itertools.chain.from_iterable(cols[f]))) <= _ITEM_TYPES[f]:
                raise ValueError(f"{f} holds a value of the wrong type")
            cols[f] = list(map(tuple, cols[f]))
    return cols
