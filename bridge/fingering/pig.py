"""The PIG note-list format (Nakamura et al., PianoFingeringDataset v1.2).

One note per line, tab separated: id, onset s, offset s, spelled pitch, on velocity, off
velocity, channel (0 = right hand, 1 = left hand), finger (left hand negative, a
substitution written ``3_1``). Lines starting with ``//`` are comments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from bridge.errors import UserError
from bridge.userfiles import read_text, write_bytes

HEADER = "//Version: PianoFingering_v170101"
_PITCH = re.compile(r"^([A-Ga-g])([#b]*)(-?\d+)$")
_STEP = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_FINGER = re.compile(r"^-?[0-5](_-?[0-5])*$")
MAX_PIG_BYTES = 64 << 20  # a 2,000-note piece is 100 KB


@dataclass
class PigNote:
    """One line of a PIG file; ``fingers`` is the finger string split at ``_`` (unsigned)."""

    id: str
    onset: float
    offset: float
    spelled: str
    pitch: int
    on_velocity: str
    off_velocity: str
    hand: int  # 0 right, 1 left
    fingers: tuple[int, ...]

    def line(self) -> str:
        sign = -1 if self.hand else 1
        finger = "_".join(str(sign * f) for f in self.fingers) if self.fingers else "0"
        return "\t".join(
            (
                self.id,
                f"{self.onset:g}",
                f"{self.offset:g}",
                self.spelled,
                self.on_velocity,
                self.off_velocity,
                str(self.hand),
                finger,
            )
        )


def midi_number(spelled: str) -> int | None:
    """``"Eb4"`` -> 63 (C4 = 60); None if it is not a spelled pitch."""
    m = _PITCH.match(spelled.strip())
    if not m:
        return None
    step, acc, octave = m.groups()
    return (int(octave) + 1) * 12 + _STEP[step.upper()] + acc.count("#") - acc.count("b")


def parse_line(line: str, where: str) -> PigNote:
    cols = line.split()
    if len(cols) < 7:
        raise UserError(f"{where}: a PIG note line needs at least 7 columns, got {len(cols)}")
    pitch = midi_number(cols[3])
    if pitch is None:
        raise UserError(f"{where}: not a spelled pitch: {cols[3]!r}")
    try:
        onset, offset = float(cols[1]), float(cols[2])
    except ValueError:
        raise UserError(f"{where}: onset and offset must be numbers, got {cols[1]!r} {cols[2]!r}") from None
    if cols[6] not in ("0", "1"):
        raise UserError(f"{where}: channel must be 0 (right hand) or 1 (left hand), got {cols[6]!r}")
    finger = cols[7] if len(cols) > 7 else "0"
    if not _FINGER.match(finger):
        raise UserError(f"{where}: not a finger: {finger!r}")
    fingers = tuple(abs(int(f)) for f in finger.split("_") if int(f) != 0)
    return PigNote(cols[0], onset, offset, cols[3], pitch, cols[4], cols[5], int(cols[6]), fingers)


def read_pig(path: str | Path) -> list[PigNote]:
    """Read a PIG file; a line that does not parse is a `UserError` naming the line."""
    path = Path(path)
    text = read_text(path, "PIG file", MAX_PIG_BYTES)
    notes = [
        parse_line(line, f"{path}:{n}")
        for n, line in enumerate(text.splitlines(), 1)
        if line.strip() and not line.startswith("//")
    ]
    if not notes:
        raise UserError(f"no notes in {path}")
    return notes


def write_pig(notes: list[PigNote], path: str | Path) -> None:
    write_bytes(path, (HEADER + "\n" + "".join(n.line() + "\n" for n in notes)).encode())
