"""Bitwig Studio with DrivenByMoss's OSC controller: the playhead in beats, no markers.

DrivenByMoss cannot create a cue marker over OSC. What it can do: ``/time BEATS`` moves
the playhead (beats are the score position in quarter notes), and ``/action/N`` runs the
Bitwig action the user bound to slot N in DrivenByMoss's settings. So:

- a jump moves the playhead to where the player went (``/time``);
- with ``action=N`` (bind slot N to Bitwig's "Insert cue marker at play position"), every
  mark is ``/time BEATS`` then ``/action/N``: an unnamed cue marker (DrivenByMoss cannot
  name it); without it, problem and annotation marks are not sent (counted as skipped);
- each key press: ``/vkb_midi/CH/note/PITCH VELOCITY`` (channel 1-16: 1 correct, 2 wrong
  or extra), velocity 0 at its release; ``notes=0`` turns this off.
"""

from __future__ import annotations

import time

from bridge.adapters.base import Adapter, Mark
from bridge.events import NoteVerdict, OutputEvent, Release


class BitwigAdapter(Adapter):
    """``bitwig@HOST:PORT`` (options ``action=`` the DrivenByMoss action slot, ``notes=``)."""

    name = "bitwig"
    options = {"action": (int, 0), "notes": (int, 1)}

    def __init__(self, address, label="", **options):
        super().__init__(address, label, **options)
        self.channel_of: dict[int, int] = {}
        if not self.action:
            self.tell("action", f"{self.label}: no action= slot given, so no markers (DrivenByMoss cannot make them)")

    def on_event(self, ev: OutputEvent) -> None:
        if not self.notes:
            return
        if isinstance(ev, NoteVerdict):
            ch = self.channel_of[ev.pitch] = 1 if ev.verdict == "correct" else 2
            self.link.send(f"/vkb_midi/{ch}/note/{ev.pitch}", ev.velocity)
        elif isinstance(ev, Release):
            self.link.send(f"/vkb_midi/{self.channel_of.pop(ev.pitch, 1)}/note/{ev.pitch}", 0)

    def place(self, mark: Mark) -> bool | None:
        if not self.action and mark.kind != "jump":
            return None
        ok = self.link.send("/time", float(mark.beats))
        if self.action:
            time.sleep(self.PACE_S)  # the move first: the action marks the play position
            ok = self.link.send(f"/action/{self.action}") and ok
        time.sleep(self.PACE_S)
        return ok
