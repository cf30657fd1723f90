"""MIDI files in and out, as the engine's input events."""

from __future__ import annotations

import os
from pathlib import Path

import mido

from bridge.errors import UserError
from bridge.events import Control, InputEvent, NoteOff, NoteOn, Status


def read_performance(path: str | os.PathLike) -> list[InputEvent]:
    """All tracks merged into one time-ordered list (seconds from the file's start)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"MIDI file not found: {p}")
    try:
        mid = mido.MidiFile(p)
        events: list[InputEvent] = []
        t = 0.0
        for msg in mid:  # merges tracks and applies tempo changes
            t += msg.time
            if msg.type == "note_on":
                ev = (
                    NoteOn(t, msg.note, msg.velocity, msg.channel)
                    if msg.velocity
                    else NoteOff(t, msg.note, msg.channel)
                )
                events.append(ev)
            elif msg.type == "note_off":
                events.append(NoteOff(t, msg.note, msg.channel))
            elif msg.type == "control_change":
                events.append(Control(t, msg.control, msg.value, msg.channel))
    except (OSError, EOFError, ValueError, KeyError, IndexError) as e:
        raise UserError(f"not a readable MIDI file: {p} ({e or type(e).__name__})") from None
    return events


def read_notes(path: str | os.PathLike) -> list[tuple[float, float, int, int]]:
    """(onset s, offset s, pitch, velocity) of every key press, by onset; a key still down
    at the end is released at the last event."""
    events = read_performance(path)
    end = events[-1].t if events else 0.0
    down: dict[tuple[int, int], list[int]] = {}
    notes: list[list] = []
    for ev in events:
        if isinstance(ev, NoteOn):
            down.setdefault((ev.channel, ev.pitch), []).append(len(notes))
            notes.append([ev.t, end, ev.pitch, ev.velocity])
        elif isinstance(ev, NoteOff) and down.get((ev.channel, ev.pitch)):
            notes[down[(ev.channel, ev.pitch)].pop(0)][1] = ev.t
    return [tuple(n) for n in notes]


def write_performance(events: list[InputEvent], path: str | os.PathLike, ticks_per_second: int = 1000) -> None:
    """Write input events as a type-0 MIDI file at 60 bpm (one tick per millisecond)."""
    mf = mido.MidiFile(ticks_per_beat=ticks_per_second)
    track = mido.MidiTrack()
    mf.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=1_000_000, time=0))
    last = 0
    # at the same tick, releases go before new presses so a repeated note re-strikes
    order = {NoteOff: 0, Control: 1, NoteOn: 2}
    midi = [e for e in events if not isinstance(e, Status)]
    for ev in sorted(midi, key=lambda e: (round(e.t * ticks_per_second), order[type(e)])):
        tick = round(ev.t * ticks_per_second)
        if isinstance(ev, NoteOn):
            msg = mido.Message("note_on", note=ev.pitch, velocity=ev.velocity, channel=ev.channel)
        elif isinstance(ev, NoteOff):
            msg = mido.Message("note_off", note=ev.pitch, velocity=0, channel=ev.channel)
        else:
            msg = mido.Message("control_change", control=ev.control, value=ev.value, channel=ev.channel)
        track.append(msg.copy(time=tick - last))
        last = tick
    mf.save(path)
