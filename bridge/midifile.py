"""MIDI files in and out, as the engine's input events."""

from __future__ import annotations

import io
import os
from pathlib import Path

import mido

from bridge.errors import UserError
from bridge.events import Control, InputEvent, NoteOff, NoteOn, Status
from bridge.userfiles import read_bytes

# mido holds each message as objects of about 0.8 KB (some 270 times its size in the file)
# and reads about 0.25 MB a second: a 2 MB file takes about 600 MB and 8 s. That is about
# 20 times the largest performance in the development data (108 KB, 11 minutes).
MAX_MIDI_BYTES = 2_000_000
# SMPTE time division: frames per second as the header gives them (29 is 29.97 drop-frame)
SMPTE_FPS = {24: 24.0, 25: 25.0, 29: 30000 / 1001, 30: 30.0}
DEFAULT_TEMPO = 500_000  # microseconds per beat until a set_tempo says otherwise (the MIDI default)


def read_performance(path: str | os.PathLike) -> list[InputEvent]:
    """All tracks merged into one time-ordered list (seconds from the file's start)."""
    p = Path(path)
    data = read_bytes(p, "MIDI file", MAX_MIDI_BYTES)
    try:
        mid = mido.MidiFile(file=io.BytesIO(data))
    # what mido raises for a damaged file: its own checks (OSError), a short read (EOFError),
    # and meta messages of the wrong length or content
    except (OSError, EOFError, ValueError, KeyError, IndexError, mido.KeySignatureError) as e:
        reason = "the file ends too soon" if isinstance(e, EOFError) else str(e) or type(e).__name__
        raise UserError(f"not a readable MIDI file: {p} ({reason})") from None
    if mid.type != 0 and mid.type != 1:
        kind = "type 2 MIDI files (independent sequences) are" if mid.type == 2 else f"MIDI file type {mid.type} is"
        raise UserError(f"{kind} not supported: {p}")
    smpte = mid.ticks_per_beat < 0  # the header's top bit: ticks are parts of SMPTE frames, not beats
    if smpte:
        frames, ticks_per_frame = -(mid.ticks_per_beat >> 8), mid.ticks_per_beat & 0xFF
        if frames not in SMPTE_FPS or not ticks_per_frame:
            raise UserError(
                f"not a readable MIDI file: {p} (SMPTE time division of {frames} frames per second"
                f" and {ticks_per_frame} ticks per frame)"
            )
        scale = 1.0 / (SMPTE_FPS[frames] * ticks_per_frame)  # seconds per tick; tempo changes do not apply
    elif mid.ticks_per_beat == 0:
        raise UserError(f"not a readable MIDI file: {p} (0 ticks per beat)")
    else:
        scale = DEFAULT_TEMPO * 1e-6 / mid.ticks_per_beat  # seconds per tick, as mido.tick2second
    events: list[InputEvent] = []
    t = 0.0
    for msg in mido.merge_tracks(mid.tracks, skip_checks=True):  # delta ticks, as mido plays them
        t += msg.time * scale
        if msg.type == "set_tempo" and not smpte:
            if msg.tempo == 0:  # a beat of no time: every later note would land at once
                raise UserError(f"not a readable MIDI file: {p} (a tempo of 0 microseconds per beat at {t:.3f} s)")
            scale = msg.tempo * 1e-6 / mid.ticks_per_beat
        elif msg.type == "note_on":
            events.append(
                NoteOn(t, msg.note, msg.velocity, msg.channel) if msg.velocity else NoteOff(t, msg.note, msg.channel)
            )
        elif msg.type == "note_off":
            events.append(NoteOff(t, msg.note, msg.channel))
        elif msg.type == "control_change":
            events.append(Control(t, msg.control, msg.value, msg.channel))
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
