"""Ardour 7 (its OSC control surface, UDP 3819 by default): markers in samples.

Ardour's OSC can only add a marker at the playhead (``/add_marker NAME``), and a locate is
carried out later, by the audio thread: a marker sent right after ``/locate`` lands at the
old place. So each mark is ``/locate SAMPLES 0``, then ``/transport_frame`` questions until
Ardour answers that very sample, then ``/add_marker NAME`` - one at a time, on the
adapter's thread. ``/marker NAME`` is never sent: it renames the marker under the playhead
(or locates to one of that name).
"""

from __future__ import annotations

import time

from bridge.adapters.base import Adapter, Mark


class ArdourAdapter(Adapter):
    """``ardour@HOST:PORT`` (option ``rate=``: the session's sample rate, default 48000)."""

    name = "ardour"
    options = {"rate": (int, 48000)}
    CONFIRM_S = 1.0  # for a locate to show in /transport_frame (a few audio periods)
    FIRST_CONFIRM_S = 0.5  # until Ardour has answered once: an absent client costs little
    GIVE_UP_AFTER = 3  # failed marks in a row: the client is not there; stop waiting on it
    RETRY_S = 5.0  # then try again at most this often

    def __init__(self, address, label="", **options):
        super().__init__(address, label, **options)
        self._failures = 0
        self._last_try = 0.0
        self._answered = False

    def samples(self, t: float) -> int:
        """Performance seconds to samples at the session rate (OSC ints are 32-bit: 12 h at 48 kHz)."""
        return min(max(0, round(t * self.rate)), 2**31 - 1)

    def place(self, mark: Mark) -> bool:
        now = time.monotonic()
        if self._failures >= self.GIVE_UP_AFTER and now - self._last_try < self.RETRY_S:
            return False  # counted as failed at once: a dead client must not hold up close()
        self._last_try = now
        target = self.samples(mark.t)
        if not self.locate(target):
            self._failures += 1
            why = (
                "connection refused"
                if self.link.refused
                else "its answers are not OSC"
                if self.link.unreadable
                else "no answer to /transport_frame"
            )
            self.tell("confirm", f"{self.label}: cannot place markers: {why} (is Ardour's OSC surface on?)")
            return False
        self._failures = 0
        return self.link.send("/add_marker", mark.name)

    def locate(self, target: int) -> bool:
        """Move the playhead and wait until Ardour says it is there."""
        self.link.drain()
        self.link.refused = False
        if not self.link.send("/locate", target, 0):
            return False
        end = time.monotonic() + (self.CONFIRM_S if self._answered else self.FIRST_CONFIRM_S)
        while time.monotonic() < end and not self.link.refused:
            self.link.send("/transport_frame")
            reply = self.link.receive(0.02)
            while reply is not None:
                address, args = reply
                self._answered |= address == "/transport_frame"
                if address == "/transport_frame" and args and args[0] == target:
                    return True
                reply = self.link.receive(0.0)
        return False
