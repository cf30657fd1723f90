"""Landmark-stream files and the fingers they show for a performance (adapter)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bridge.errors import UserError
from bridge.events import InputEvent, NoteOff, NoteOn, PlayedFinger
from bridge.keyboard import Calibration


def read_stream(path: str | Path) -> list[dict]:
    """Frames ``{"t", "hands"}`` of a landmark stream (JSONL, DESIGN.md), in time order."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"landmark stream not found: {p}")
    frames = []
    for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            f = json.loads(line)
            t = float(f["t"])
            hands = [h for h in f.get("hands", []) if len(h["landmarks"]) == 21]
        except (ValueError, KeyError, TypeError):
            raise UserError(f"{p}:{n}: not a landmark frame {{'t': seconds, 'hands': [...]}}") from None
        frames.append({"t": t, "hands": hands})
    if not frames:
        raise UserError(f"no frames in {p}")
    return sorted(frames, key=lambda f: f["t"])


def played_fingers(
    events: list[InputEvent], stream_path: str, calibration_path: str
) -> tuple[list[PlayedFinger], float]:
    """The (hand, finger) of every note-on of ``events``, in order, and the camera clock's
    offset found on the way (seconds)."""
    from bridge.fingerid import LandmarkStream, align, attribute
    from bridge.fingering import KeyNote
    from bridge.fingering.hands import infer_hands
    from bridge.fingering.network import FingeringModel, weights_path

    calibration = Calibration.load(calibration_path)
    stream = LandmarkStream(read_stream(stream_path), calibration)
    notes: list[list] = []
    down: dict[int, list[int]] = {}
    end = events[-1].t if events else 0.0
    for ev in events:
        if isinstance(ev, NoteOn):
            down.setdefault(ev.pitch, []).append(len(notes))
            notes.append([ev.t, end, ev.pitch])
        elif isinstance(ev, NoteOff) and down.get(ev.pitch):
            notes[down[ev.pitch].pop(0)][1] = ev.t
    if not notes:
        return [], 0.0
    on, off, pitch = (np.array([n[k] for n in notes]) for k in range(3))
    hands = infer_hands(on, off, pitch.astype(int), FingeringModel.load(weights_path(None, "hands")))
    keys = [KeyNote(a, b, int(p), int(h)) for a, b, p, h in zip(on, off, pitch, hands)]
    offset = align(stream, [(a, b, int(p)) for a, b, p in zip(on, off, pitch)])
    return attribute(keys, stream, FingeringModel.load(), offset), offset
