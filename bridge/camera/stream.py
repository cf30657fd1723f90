"""Landmark-stream files and the fingers they show for a performance (adapter)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bridge.errors import UserError
from bridge.events import MAX_SECONDS, InputEvent, NoteOff, NoteOn, PlayedFinger, check_hands, seconds
from bridge.keyboard import Calibration
from bridge.userfiles import numbered_lines

MAX_STREAM_BYTES = 256 << 20  # two hands at 30 fps write about 120 MB an hour
MAX_LINE = 1 << 16  # a frame with two hands is about 1 KB


def read_stream(path: str | Path) -> list[dict]:
    """Frames ``{"t", "hands"}`` of a landmark stream (JSONL, DESIGN.md), in time order,
    each line checked (a bad one is a `UserError` naming it); landmarks come back as
    (21, 3) float32 arrays, a quarter of the memory of JSON's lists."""
    frames = []
    for n, line, _ in numbered_lines(path, "landmark stream", MAX_STREAM_BYTES, MAX_LINE):
        if not line.strip():
            continue
        try:
            frame = json.loads(line)
            if not isinstance(frame, dict) or not seconds(frame.get("t")):
                raise ValueError(f"t must be a number of seconds, 0-{MAX_SECONDS:g}")
            hands = check_hands(frame.get("hands", []))
        except (ValueError, RecursionError) as e:
            raise UserError(f"{path}:{n}: not a landmark frame {{'t': seconds, 'hands': [...]}} ({e})") from None
        frames.append({"t": float(frame["t"]), "hands": [_compact(h) for h in hands]})
    if not frames:
        raise UserError(f"no frames in {path}")
    return sorted(frames, key=lambda f: f["t"])


def _compact(hand: dict) -> dict:
    return {**hand, "landmarks": np.array(hand["landmarks"], np.float32)}


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
    hands = infer_hands(on, off, pitch.astype(int), FingeringModel.load(weights_path(None, "hands"), "hands"))
    keys = [KeyNote(a, b, int(p), int(h)) for a, b, p, h in zip(on, off, pitch, hands)]
    offset = align(stream, [(a, b, int(p)) for a, b, p in zip(on, off, pitch)])
    return attribute(keys, stream, FingeringModel.load(task="fingering"), offset), offset
