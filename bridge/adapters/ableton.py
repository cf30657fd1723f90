"""Ableton Live with AbletonOSC (listens on UDP 11000, always answers on 11001): cue
points in beats.

A cue point can only be toggled at the song time, so a mark is
``/live/song/set/current_song_time BEATS``, ``/live/song/cue_point/add_or_delete``, then
``/live/song/get/cue_points`` (answered on 11001 as name, time, name, time, ...) to find
the new cue's index for ``/live/song/cue_point/set/name INDEX NAME``, and
``/live/api/show_message TEXT`` in Live's status bar. Beats are the score position in
quarter notes (the arrangement holding the score at one beat per quarter note); two marks
never share a beat (a second toggle would delete the first cue). Without answers (port
11001 taken, or no AbletonOSC) the index is counted from the cues this run made.
"""

from __future__ import annotations

import bisect

from bridge.adapters.base import Adapter, Mark

SAME_BEAT = 1e-3  # Live keeps cue times as floats: closer than this is the same cue
NUDGE = 1 / 64  # beats a cue moves over when its place is taken


class AbletonAdapter(Adapter):
    """``ableton@HOST:PORT`` (option ``reply_port=``: where AbletonOSC answers, default 11001;
    0 for no answers)."""

    name = "ableton"
    options = {"reply_port": (int, 11001)}
    ANSWER_S = 0.5
    STOP_ASKING_AFTER = 3  # questions Live left unanswered: then count the cues ourselves

    def __init__(self, address, label="", **options):
        super().__init__(address, label, **options)
        self.cues: list[float] = []  # beats of the cues this run made, sorted
        self.unanswered = 0
        if self.link.replies is None and self.reply_port:
            self.tell("replies", f"{self.label}: cannot listen on UDP {self.reply_port}; cue names go by our own count")

    def place(self, mark: Mark) -> bool:
        beats = mark.beats
        while any(abs(beats - b) < SAME_BEAT for b in self.cues):
            beats += NUDGE
        send = self.link.send
        ok = send("/live/song/set/current_song_time", float(beats))
        ok = send("/live/song/cue_point/add_or_delete") and ok
        index = self.index_of(beats)
        bisect.insort(self.cues, beats)
        if index is None:
            return False
        ok = send("/live/song/cue_point/set/name", index, mark.name) and ok
        return send("/live/api/show_message", f"pianobridge: {mark.name}") and ok

    def index_of(self, beats: float) -> int | None:
        """The new cue's place in Live's list (Live's own answer when there is one)."""
        if self.link.replies is not None and self.unanswered < self.STOP_ASKING_AFTER:
            self.link.drain()
            asked = self.link.send("/live/song/get/cue_points")
            reply = self.link.receive(self.ANSWER_S) if asked else None
            while reply is not None and reply[0] != "/live/song/get/cue_points":
                reply = self.link.receive(self.ANSWER_S)
            if reply is not None:
                times = reply[1][1::2]
                found = [i for i, x in enumerate(times) if isinstance(x, float | int) and abs(x - beats) < SAME_BEAT]
                if not found:
                    self.tell("cue", f"{self.label}: Live lists no cue point at beat {beats:g} after adding one")
                    return None
                return found[0]
            self.unanswered += 1
            self.tell("answer", f"{self.label}: no answer to /live/song/get/cue_points; cue names go by our own count")
        return bisect.bisect_left(self.cues, beats)
