"""REAPER (an OSC control surface with the Default.ReaperOSC pattern file): markers in
seconds, played notes on the virtual keyboard.

- a mark: ``/marker_id/N/time SECONDS`` then ``/marker_id/N/name NAME`` (MARKERID_TIME,
  MARKERID_NAME: write-only; REAPER creates marker number N if there is none, without
  moving the edit cursor). N counts up from ``first_marker=`` (default 1000), so the
  project's own markers are left alone; a second run reuses the same numbers.
- each key press: ``/vkb_midi/CH/note/PITCH VELOCITY`` (VKB_MIDI_NOTE, channel 0-15) on
  channel 0 when correct, 1 when wrong or extra, so REAPER's MIDI editor can colour them
  apart; its release sends velocity 0 (note-off) on the same channel. ``notes=0`` turns
  this off (when the keyboard also plays into REAPER).
"""

from __future__ import annotations

import time

from bridge.adapters.base import Adapter, Mark
from bridge.events import NoteVerdict, OutputEvent, Release


class ReaperAdapter(Adapter):
    """``reaper@HOST:PORT`` (options ``first_marker=``, ``notes=``)."""

    name = "reaper"
    options = {"first_marker": (int, 1000), "notes": (int, 1)}

    def __init__(self, address, label="", **options):
        super().__init__(address, label, **options)
        self.next_id = self.first_marker
        self.channel_of: dict[int, int] = {}  # pitch -> channel of its note-on

    def on_event(self, ev: OutputEvent) -> None:
        if not self.notes:
            return
        if isinstance(ev, NoteVerdict):
            ch = self.channel_of[ev.pitch] = 0 if ev.verdict == "correct" else 1
            self.link.send(f"/vkb_midi/{ch}/note/{ev.pitch}", ev.velocity)
        elif isinstance(ev, Release):
            ch = self.channel_of.pop(ev.pitch, 0)
            self.link.send(f"/vkb_midi/{ch}/note/{ev.pitch}", 0)

    def place(self, mark: Mark) -> bool:
        n, self.next_id = self.next_id, self.next_id + 1
        ok = self.link.send(f"/marker_id/{n}/time", float(mark.t))
        ok = self.link.send(f"/marker_id/{n}/name", mark.name) and ok
        time.sleep(self.PACE_S)
        return ok
