"""Drive the engine from a list of input events, as fast as possible or in real time."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from bridge.errors import UserError
from bridge.events import Command, InputEvent, NoteVerdict, OutputEvent, Status
from bridge.follow.engine import Engine
from bridge.score import Score


def new_engine(
    score: Score, fingering: bool = True, like: Engine | None = None, calibration=None, hands: str | None = None
) -> Engine:
    """An engine for ``score``, with planned fingers on its verdicts when ``fingering``
    (and the weights are installed), the camera's keyboard ``calibration`` (or that of
    ``like``), the parameters of ``like``, and the hands the player plays (``hands``, see
    `Engine`; else those of ``like``, else "auto")."""
    plan = None
    if fingering:
        from bridge.fingering.files import score_plan

        plan = score_plan(score)
    if like is None:
        return Engine(score, fingering=plan, calibration=calibration, hands=hands or "auto")
    return Engine(
        score,
        like.follower_params,
        like.matcher_params,
        plan,
        calibration or like.calibration,
        hands or like.hands_mode,
    )


def apply(engine: Engine, ev: InputEvent) -> tuple[Engine, list[OutputEvent]]:
    """Feed one event and stamp note verdicts with the engine's processing time; a
    'load' command (file I/O, so not the engine's business) swaps in a new engine for
    the new score, or reports why it could not. An exception in the engine comes back as
    an ``engine_error`` status and the engine goes on with the next event."""
    if isinstance(ev, Command) and ev.command == "load":
        from bridge.musicxml import load_score

        try:
            score = load_score(ev.path)
        except UserError as e:
            return engine, [Status(ev.t, "osc_ignored", f"load: {e}")]
        fresh = new_engine(score, engine.suggested is not None, engine)
        return fresh, [Status(ev.t, "score_loaded", score.title)]
    t0 = time.perf_counter_ns()
    try:
        out = engine.feed(ev)
    except Exception as e:  # noqa: BLE001 - one bad event must not end the session; replay fails the same way
        return engine, [Status(ev.t, "engine_error", f"{type(e).__name__}: {e}"[:200])]
    took_us = (time.perf_counter_ns() - t0) // 1000
    for o in out:
        if isinstance(o, NoteVerdict):
            o.latency_us = int(took_us)
    return engine, out


def run_engine(
    engine: Engine,
    events: Iterable[InputEvent],
    realtime: bool = False,
    on_input: Callable[[InputEvent], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[OutputEvent]:
    """Feed events through the engine (see ``apply``) and yield its output. ``realtime``
    paces input at wall-clock speed;
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
        engine, out = apply(engine, ev)
        yield from out
    yield from engine.finish()
