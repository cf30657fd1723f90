"""The live score page (``--web [HOST:]PORT``): the score engraved with verovio, the
player's place and every verdict on it, teacher annotations back; see docs/web.md.

`open_page` is what ``run``, ``demo``, ``follow --realtime`` and ``review`` call."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

from bridge.events import Annotation, Event, InputEvent
from bridge.web.server import WebServer, parse_web_address

__all__ = ["WebServer", "open_page", "parse_web_address", "plan_of", "tee", "PendingAnnotations"]


def plan_of(score, suggested: list[str | None] | None) -> list[list]:
    """``[note_id, pass, finger, hand]`` for each unfolded score note with a suggested finger."""
    if not suggested:
        return [[n.note_id, n.pass_no, None, n.hand] for n in score.notes]
    return [[n.note_id, n.pass_no, f, n.hand] for n, f in zip(score.notes, suggested)]


def open_page(
    address: str,
    score_path: str | os.PathLike,
    title: str,
    *,
    submit: Callable | None = None,
    clock: Callable[[], float] = time.monotonic,
    prefix: str = "/pianobridge",
    plan: list[list] | None = None,
    events: Iterable[dict] = (),
    mode: str = "live",
) -> WebServer:
    """Engrave the score, start serving it on ``address`` and say where (with the token
    when one is needed). `UserError` when the score cannot be engraved or the address had."""
    from bridge.web.engrave import engrave

    host, port = parse_web_address(address)
    engraving = engrave(score_path, title)
    server = WebServer(
        engraving, host, port, submit=submit, clock=clock, prefix=prefix, plan=plan, events=events, mode=mode
    )
    server.start()
    where = server.url + (" (on a network address: the page and its socket need this token)" if server.token else "")
    print(
        f"pianobridge: score page on {where} ({len(engraving.pages)} pages engraved in {engraving.seconds:.2f} s)",
        file=sys.stderr,
        flush=True,
    )
    return server


def tee(*views: Callable[[Event], None] | None) -> Callable[[Event], None] | None:
    """One view callback that calls each of ``views`` (None ones left out)."""
    live = [v for v in views if v is not None]
    if len(live) <= 1:
        return live[0] if live else None

    def both(ev: Event) -> None:
        for v in live:
            v(ev)

    return both


class PendingAnnotations:
    """Annotations from the page for a replay that has no live bridge (``follow
    --realtime``): taken on the page's thread, fed to the engine between key presses, so
    they are logged, sent and written like every other input. At most ``limit`` wait."""

    def __init__(self, limit: int = 256):
        self.queue: deque[Annotation] = deque()
        self.limit = limit
        self.origin: float | None = None  # perf_counter at the performance's time 0
        self.closed = False  # the performance is over: no more are taken
        self._lock = threading.Lock()

    def clock(self) -> float:
        """Seconds on the performance's timeline (0 before it starts)."""
        return 0.0 if self.origin is None else max(0.0, time.perf_counter() - self.origin)

    def submit(self, ev: Event, reply: Callable[[str, str], None]) -> None:
        with self._lock:
            if self.closed:
                reply("error", "the performance is over: the annotation was not taken")
                return
            if len(self.queue) >= self.limit:
                reply("error", "busy: too many annotations waiting, this one was dropped")
                return
            self.queue.append(ev)

    def merged(self, events: Iterable[InputEvent]) -> Iterator[InputEvent]:
        """``events`` with the waiting annotations in between, each stamped no earlier
        than the press before it (the stream stays in time order)."""
        last = 0.0
        for ev in events:
            if self.origin is None:
                self.origin = time.perf_counter() - ev.t
            yield from self._take(last)
            last = ev.t
            yield ev
        with self._lock:  # everything taken until now still goes in; nothing after
            self.closed = True
        yield from self._take(last)

    def _take(self, last: float) -> Iterator[InputEvent]:
        while True:
            with self._lock:
                if not self.queue:
                    return
                ev = self.queue.popleft()
            yield replace(ev, t=max(ev.t, last))
