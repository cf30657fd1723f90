"""The live bridge: inputs on their own threads, one consumer that logs, follows and sends.

Input adapters call ``submit`` from their threads with events already stamped on the
bridge's clock; the consumer thread is the only one touching the engine, the session
log and the OSC socket, so nothing on the hot path waits on another thread's I/O.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

from bridge.events import Event, OutputEvent, Status
from bridge.osc import OscSender, to_messages
from bridge.replay import apply, new_engine
from bridge.score import Score
from bridge.session import SessionLog


class LiveBridge:
    """One score, any number of inputs, outputs to OSC, the session log and a view."""

    def __init__(
        self,
        score: Score,
        osc: OscSender | None = None,
        osc_prefix: str = "/pianobridge",
        log: SessionLog | None = None,
        view: Callable[[OutputEvent], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        fingering: bool = True,
        calibration=None,
    ):
        self.engine = new_engine(score, fingering, calibration=calibration)
        self.osc, self.osc_prefix, self.log, self.view = osc, osc_prefix, log, view
        self._clock = clock
        self.t0 = clock()
        self.queue: queue.SimpleQueue[Event | None] = queue.SimpleQueue()
        self.thread: threading.Thread | None = None
        self.counts = {"in": 0, "out": 0}

    def clock(self) -> float:
        """Seconds since the bridge started: the one timeline of every input."""
        return self._clock() - self.t0

    def submit(self, ev: Event) -> None:
        """Called from input threads; never blocks."""
        self.queue.put(ev)

    def start(self) -> None:
        self._emit(Status(0.0, "score_loaded", self.engine.score.title))
        self.thread = threading.Thread(target=self._consume, name="bridge-consumer", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Drain what arrived, report what was left unplayed, and close the log."""
        self.queue.put(Status(self.clock(), "stopped", ""))
        self.queue.put(None)
        if self.thread is not None:
            self.thread.join(timeout=5.0)
        for out in self.engine.finish():
            self._emit(out)
        if self.log:
            self.log.close()
        if self.osc:
            self.osc.close()

    def _consume(self) -> None:
        while True:
            ev = self.queue.get()
            if ev is None:
                return
            outs: list[OutputEvent] = []
            try:
                self.engine, outs = apply(self.engine, ev)
                self._send(outs)  # before any logging: the player is waiting for these
            finally:
                if self.log:  # logged even when the engine fails on it
                    self.log.log_in(ev)
            self.counts["in"] += 1
            self._record(outs)

    def _emit(self, out: OutputEvent) -> None:
        self._send([out])
        self._record([out])

    def _send(self, outs: list[OutputEvent]) -> None:
        if self.osc:
            for out in outs:
                self.osc.send(to_messages(out, self.osc_prefix))

    def _record(self, outs: list[OutputEvent]) -> None:
        for out in outs:
            self.counts["out"] += 1
            if self.log:
                self.log.log_out(out)
            if self.view:
                self.view(out)
