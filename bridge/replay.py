"""Drive the engine from a list of input events, as fast as possible or in real time."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from bridge.engine import Engine
from bridge.events import InputEvent, NoteVerdict, OutputEvent, Status


def run_engine(
    engine: Engine,
    events: Iterable[InputEvent],
    realtime: bool = False,
    on_input: Callable[[InputEvent], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[OutputEvent]:
    """Feed events through the engine and yield its output, stamping each note verdict
    with the engine's processing time. ``realtime`` paces input at wall-clock speed;
    ``on_input`` sees each event before the engine does (the session log)."""
    yield Status(0.0, "score_loaded", engine.score.title)
    start = None
    for ev in events:
        if realtime:
            start = clock() - ev.t if start is None else start
            wait = start + ev.t - clock()
            if wait > 0:
                sleep(wait)
        if on_input:
            on_input(ev)
        t0 = time.perf_counter_ns()
        out = engine.feed(ev)
        took_us = (time.perf_counter_ns() - t0) // 1000
        for o in out:
            if isinstance(o, NoteVerdict):
                o.latency_us = int(took_us)
            yield o
    yield from engine.finish()
