"""The one event model: what comes in from devices and files, and what goes out.

The same dataclasses are written to the JSONL stream, the session log and OSC, so a
field added here shows up everywhere. ``to_dict`` gives the JSON shape of DESIGN.md
(``pass_no`` is written as ``pass``; ``None`` as null).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar


def _plain(value: Any) -> Any:
    if isinstance(value, _Serialisable):
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def json_line(obj: dict[str, Any]) -> str:
    """One compact JSON line, as the JSONL stream and the session log write them."""
    return json.dumps(obj, separators=(",", ":")) + "\n"


class _Serialisable:
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if isinstance(self, Event):
            out["type"] = self.type
        for f in fields(self):  # type: ignore[arg-type]
            out["pass" if f.name == "pass_no" else f.name] = _plain(getattr(self, f.name))
        return out


@dataclass(frozen=True, slots=True)
class Ref(_Serialisable):
    """A score note: its id and repeat pass."""

    note_id: str
    pass_no: int


@dataclass(frozen=True, slots=True)
class Position(_Serialisable):
    note_id: str
    pass_no: int
    measure: int
    beat: float
    onset_q: float
    confidence: float


@dataclass(frozen=True, slots=True)
class PlayedFinger(_Serialisable):
    """Which finger pressed a key, as the camera saw it."""

    hand: str  # left | right
    finger: int  # 1 (thumb) to 5
    confidence: float  # 0-1


class Event(_Serialisable):
    type: ClassVar[str]
    t: float


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class NoteOn(Event):
    """A key press. ``sure`` is False for one the audio detector heard too faintly to
    believe but for the score expecting that key: the engine takes it as a press only
    where it turns out to be an expected note (MIDI presses are always sure)."""

    type: ClassVar[str] = "note_on"
    t: float
    pitch: int
    velocity: int
    channel: int = 0
    sure: bool = True


@dataclass(frozen=True, slots=True)
class NoteOff(Event):
    type: ClassVar[str] = "note_off"
    t: float
    pitch: int
    channel: int = 0


@dataclass(frozen=True, slots=True)
class Control(Event):
    """A control change: 64 sustain, 66 sostenuto, 67 soft pedal, 123 all notes off."""

    type: ClassVar[str] = "control"
    t: float
    control: int
    value: int
    channel: int = 0


# ---------------------------------------------------------------- outputs


@dataclass(slots=True)
class NoteVerdict(Event):
    """The verdict on one key press.

    ``timing_ms`` is the onset deviation against the local tempo (negative: early);
    ``velocity_expected`` comes from the dynamic mark in force.
    """

    type: ClassVar[str] = "note"
    t: float
    pitch: int
    velocity: int
    verdict: str  # correct | wrong_pitch | extra
    match: Ref | None
    position: Position
    latency_us: int = 0
    intended: Ref | None = None  # for wrong_pitch: the score note it stood in for
    timing_ms: float | None = None
    timing: str | None = None  # early | on_time | late
    velocity_expected: int | None = None
    dynamic: str | None = None  # the mark in force
    loudness: str | None = None  # soft | ok | loud
    tempo_bpm: float = 0.0
    hand: str | None = None
    printed_finger: str | None = None
    suggested_finger: str | None = None  # the planned finger ("3", or "3_1" for a substitution)
    finger: PlayedFinger | None = None  # the finger that played it (camera), when known
    detected_t: float | None = None  # audio input: when the detector decided on this note (s)


@dataclass(slots=True)
class Missed(Event):
    """A score note the player passed without playing.

    ``due_t`` is when it was due by the running tempo. ``sure`` is False where the input
    cannot tell a note left out from one it did not catch (audio: the key's onset estimate
    rose near ``due_t`` without reaching the detector's bar): shown as "not heard" rather
    than as a correction.
    """

    type: ClassVar[str] = "missed"
    t: float
    note_id: str
    pass_no: int
    pitch: int
    measure: int
    beat: float
    due_t: float | None = None
    sure: bool = True


@dataclass(frozen=True, slots=True)
class Revised(Event):
    """A later press, nearer the note's due time, took a score note an earlier press of
    the same key had been given: the earlier press (at ``of_t``, reported ``correct``)
    was an extra note. ``note_id``/``pass_no`` name the note that changed hands."""

    type: ClassVar[str] = "revised"
    t: float
    of_t: float
    pitch: int
    verdict: str  # what the earlier press is now: extra
    note_id: str
    pass_no: int


@dataclass(frozen=True, slots=True)
class Jump(Event):
    """The player restarted or skipped; the follower moved there."""

    type: ClassVar[str] = "jump"
    t: float
    kind: str  # restart | back | ahead
    from_measure: int
    to: Position


@dataclass(frozen=True, slots=True)
class Release(Event):
    """A key came up; ``sounding_s`` includes the time the pedals held it."""

    type: ClassVar[str] = "release"
    t: float
    pitch: int
    held_s: float
    match: Ref | None = None


@dataclass(frozen=True, slots=True)
class Pedal(Event):
    type: ClassVar[str] = "pedal"
    t: float
    pedal: str  # sustain | sostenuto | soft
    down: bool
    value: int


@dataclass(frozen=True, slots=True)
class Sounded(Event):
    """A note stopped sounding (key up, pedal up): its full sounding time."""

    type: ClassVar[str] = "sounded"
    t: float
    pitch: int
    sounding_s: float
    match: Ref | None = None


@dataclass(frozen=True, slots=True)
class Status(Event):
    """A change in the bridge's state: score_loaded, confidence_low, following,
    transposed, device_connected, device_lost, not_piano, stopped (docs/events.md lists
    them all)."""

    type: ClassVar[str] = "status"
    t: float
    state: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Command(Event):
    """A control command from OSC: start, stop, reset, jump (to ``measure``, ``pass_no``),
    load (the score at ``path``), playing (the hands now played: ``playing`` auto, both,
    right or left)."""

    type: ClassVar[str] = "command"
    t: float
    command: str
    measure: int = 0
    pass_no: int = 1
    path: str = ""
    playing: str = ""


@dataclass(frozen=True, slots=True)
class Annotation(Event):
    """A teacher's note on a measure or a score note, relayed to every target and logged."""

    type: ClassVar[str] = "annotation"
    t: float
    author: str
    text: str
    measure: int = 0
    note_id: str = ""


@dataclass(frozen=True, slots=True)
class HandFrame(Event):
    """One camera frame's hands: ``hands`` as in the landmark stream of DESIGN.md
    (handedness, score, 21 landmarks in pixels), stamped on the bridge's clock."""

    type: ClassVar[str] = "hands"
    t: float
    hands: tuple = ()


MAX_HANDS = 8  # in one frame: a player has two; a file with more is not a landmark stream
MAX_COORDINATE = 1e6  # pixels (and MediaPipe's relative depth): frames are at most 40 megapixels


def check_hands(value: object) -> tuple[dict, ...]:
    """``value`` checked as one frame's ``hands`` from outside (a landmark stream, a
    session log): a list of at most MAX_HANDS ``{"handedness": "left"|"right", "score":
    number, "landmarks": 21 x [x, y, z]}``, all numbers finite (coordinates within
    MAX_COORDINATE). ValueError says what is wrong."""
    if not isinstance(value, list) or len(value) > MAX_HANDS:
        raise ValueError(f"hands must be a list of at most {MAX_HANDS} hands")
    for h in value:
        if not isinstance(h, dict) or h.get("handedness") not in ("left", "right"):
            raise ValueError('each hand needs "handedness": "left" or "right"')
        if "score" in h and not finite_number(h["score"]):
            raise ValueError("a hand's score must be a finite number")
        points = h.get("landmarks")
        if not (
            isinstance(points, list)
            and len(points) == 21
            and all(
                isinstance(p, list) and len(p) == 3 and all(finite_number(v) and abs(v) <= MAX_COORDINATE for v in p)
                for p in points
            )
        ):
            raise ValueError(f"landmarks must be 21 points [x, y, z] of numbers within +-{MAX_COORDINATE:g}")
    return tuple(value)


MAX_SECONDS = 1e8  # three years: a time past this in a file is not a performance's


def seconds(v: object) -> bool:
    """A time from outside: a finite number of seconds, 0 to MAX_SECONDS."""
    return finite_number(v) and 0 <= v <= MAX_SECONDS


def finite_number(v: object) -> bool:
    """A JSON number that is not NaN or infinite (nor a bool, nor an integer past float)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


@dataclass(frozen=True, slots=True)
class FingerSeen(Event):
    """The camera's call on which finger played a note (sent once the frames just after
    the onset have come in)."""

    type: ClassVar[str] = "finger"
    t: float  # the note-on
    pitch: int
    match: Ref | None
    finger: PlayedFinger


@dataclass(frozen=True, slots=True)
class Finger(_Serialisable):
    """A hand and a finger, as planned."""

    hand: str  # left | right
    finger: int  # 1 (thumb) to 5


@dataclass(frozen=True, slots=True)
class PlannedFinger(_Serialisable):
    """The finger now planned for a score note ahead."""

    note_id: str
    pass_no: int
    finger: int


@dataclass(frozen=True, slots=True)
class FingeringCorrection(Event):
    """The camera saw another finger than the one suggested on a note; ``replanned`` is
    the new plan for the notes ahead in that hand, starting from the finger used, so the
    advice stays playable from where the hand is (empty when the other hand played it,
    or no plan from that finger keeps the decoder's rules)."""

    type: ClassVar[str] = "fingering_correction"
    t: float  # the note-on
    pitch: int
    match: Ref
    played: PlayedFinger
    suggested: Finger
    replanned: tuple[PlannedFinger, ...] = ()


@dataclass(frozen=True, slots=True)
class Expression(Event):
    """How the player shaped a phrase against the expression model, sent once they have
    moved on into the next one. Each ``*_expected`` is the model's range for that passage
    (10th to 90th percentile over its interpretations, given how this player played
    before it); a figure that cannot be measured (no key releases yet, too few beats)
    is None."""

    type: ClassVar[str] = "expression"
    t: float  # the first note past the phrase
    first_measure: int
    last_measure: int
    played: int  # the phrase's score notes that were played
    level: float | None  # mean velocity
    level_expected: tuple[float | None, float | None]
    range: float | None  # spread of the beat loudness (velocity)
    range_expected: tuple[float | None, float | None]
    swell: float | None  # loudness change over the phrase (velocity; > 0 crescendo)
    swell_expected: tuple[float | None, float | None]
    tempo_qpm: float | None
    tempo_expected: tuple[float | None, float | None]
    tempo_change: float | None  # speed change over the phrase, % (> 0 pressing on)
    tempo_change_expected: tuple[float | None, float | None]
    articulation: float | None  # median log(played / notated length at the local tempo)
    articulation_expected: tuple[float | None, float | None]
    realism: float | None  # the critic's score, 0-1 (higher: more like a human performance)
    text: str  # e.g. "bars 5-8: dynamics flat (range 6 against 18-30 expected)"
    chord_spread_ms: float | None  # median distance of a chord's notes from their mean onset
    chord_spread_expected: tuple[float | None, float | None]  # human phrases' 10th-90th percentile


# Status (device changes), Command, Annotation and camera frames come in from outside and
# are logged as input, so a replay reproduces them in order with everything else.
InputEvent = NoteOn | NoteOff | Control | Status | Command | Annotation | HandFrame
OutputEvent = (
    NoteVerdict
    | Missed
    | Revised
    | Jump
    | Release
    | Pedal
    | Sounded
    | Status
    | Annotation
    | FingerSeen
    | FingeringCorrection
    | Expression
)

__all__ = [
    "Annotation",
    "Command",
    "Control",
    "Expression",
    "Event",
    "Finger",
    "FingerSeen",
    "FingeringCorrection",
    "HandFrame",
    "InputEvent",
    "Jump",
    "Missed",
    "NoteOff",
    "NoteOn",
    "NoteVerdict",
    "OutputEvent",
    "Pedal",
    "PlannedFinger",
    "PlayedFinger",
    "Position",
    "Ref",
    "Release",
    "Revised",
    "Sounded",
    "Status",
]
