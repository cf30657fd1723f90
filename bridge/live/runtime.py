"""The live bridge: inputs on their own threads, one consumer that logs, follows and sends.

Input adapters call ``submit`` (MIDI, camera) or ``submit_control`` (OSC in) from their
threads with events already stamped on the bridge's clock. Each kind has its own bounded
queue, and the consumer always takes key presses first, so a flood of control messages
can delay a verdict by one control message at most; what does not fit is dropped and
counted, never queued without bound. The consumer is the only thread touching the engine,
the session log's event lines and the OSC socket.

Nothing fails silently: an exception in the engine becomes an ``engine_error`` status
(see ``replay.apply``), one in the outputs an ``output_error`` notice, a consumer that
stops taking events a ``stalled`` notice from the watchdog, a failing disk a
``log_write_failed`` notice, and a score that will not load a ``load_failed`` notice while
the current score stays. Notices go to OSC, the view and the session log (as ``notice``
lines, which ``replay`` does not expect of the engine).
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bridge.errors import UserError
from bridge.events import Command, Event, OutputEvent, Status
from bridge.expression.stream import PhraseStream, open_phrases
from bridge.follow.engine import Engine
from bridge.osc import OscSender
from bridge.osc.receiver import Reply
from bridge.replay import apply, new_engine
from bridge.score import Score
from bridge.session import SessionLog


@dataclass
class _Loaded:
    """A score parsed off the note path, ready to swap in."""

    path: str
    engine: Engine
    reply: Reply | None
    phrases: PhraseStream | None = None


class _PhraseWorker:
    """Assesses finished phrases on a thread of its own: the expression model takes tens of
    milliseconds, which a key press must never wait for. At most two phrases wait; when
    the player outruns it, the oldest is dropped and counted in ``dropped`` (the watchdog
    reports it as ``input_dropped``)."""

    def __init__(self, publish: Callable[[OutputEvent], None], fail: Callable[[Exception], None], dropped: Counter):
        self.publish, self.fail = publish, fail
        self.jobs: queue.Queue = queue.Queue(maxsize=2)
        self.dropped = dropped
        self.thread = threading.Thread(target=self._run, name="expression", daemon=True)
        self.thread.start()

    def submit(self, phrases: PhraseStream, k: int, t: float) -> None:
        job = (phrases, k, t, phrases.snapshot())
        while True:
            try:
                self.jobs.put_nowait(job)
                return
            except queue.Full:
                try:
                    self.jobs.get_nowait()
                    self.dropped["expression phrases"] += 1
                except queue.Empty:
                    pass

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            phrases, k, t, played = job
            try:
                ev = phrases.assess(k, t, played)
            except Exception as e:  # noqa: BLE001 - one phrase the model chokes on must not end the others
                self.fail(e)
                continue
            if ev is not None:
                self.publish(ev)

    def close(self, timeout: float) -> None:
        """Assess what is waiting, then stop."""
        self.jobs.put(None)
        self.thread.join(timeout)


_STOP = object()


class Inboxes:
    """Bounded FIFO queues read in priority order by one consumer."""

    def __init__(self, sizes: dict[str, int]):
        self.sizes = sizes
        self.queues: dict[str, deque] = {name: deque() for name in sizes}
        self.dropped: Counter[str] = Counter()
        self.cond = threading.Condition()

    def put(self, name: str, item, force: bool = False) -> bool:
        with self.cond:
            q = self.queues[name]
            if len(q) >= self.sizes[name] and not force:
                self.dropped[name] += 1
                return False
            q.append(item)
            self.cond.notify()
            return True

    def get(self, timeout: float | None = None):
        """The oldest item of the first non-empty queue; None after ``timeout`` s of nothing."""
        with self.cond:
            while True:
                for q in self.queues.values():
                    if q:
                        return q.popleft()
                if not self.cond.wait(timeout):
                    return None

    def backlog(self) -> int:
        with self.cond:
            return sum(map(len, self.queues.values()))


class LiveBridge:
    """One score, any number of inputs, outputs to OSC, the session log and a view.

    ``library``: folders a ``load`` command may read scores from (the bundled scores and
    the first score's folder are always allowed)."""

    LOAD_EVERY_S = 1.0  # loads closer together than this are refused

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
        hands: str = "auto",
        expression: bool = True,
        library: list[str | os.PathLike] = (),
        score_path: str | os.PathLike | None = None,
        max_notes: int = 20000,
        max_control: int = 256,
        stall_after_s: float = 2.0,
    ):
        self.engine = new_engine(score, fingering, calibration=calibration, hands=hands)
        # how each phrase was shaped (expression events), assessed off the note path
        self.phrases, self._expression_off = open_phrases(score, expression)
        self.phrase_worker: _PhraseWorker | None = None
        self.osc, self.osc_prefix, self.log, self.view = osc, osc_prefix, log, view
        self._clock = clock
        self.t0 = clock()
        self.inbox = Inboxes({"notes": max_notes, "control": max_control})
        self.thread: threading.Thread | None = None
        self.counts = {"in": 0, "out": 0}
        self.stall_after_s = stall_after_s
        bundled = Path(__file__).resolve().parent.parent / "scores"
        first = [Path(score_path).resolve().parent] if score_path else []
        self.library = [p.resolve() for p in [bundled, *first, *map(Path, library)]]
        self._loading = False
        self._last_load = -1e9
        self._notice_lock = threading.Lock()
        self._stop_watch = threading.Event()
        self._output_errors = 0
        # puts what a replay cannot reproduce on a verdict (audio: when the detector decided)
        self.stamp: Callable[[OutputEvent], None] | None = None
        if log is not None:
            log.on_fault = self.notice

    def clock(self) -> float:
        """Seconds since the bridge started: the one timeline of every input."""
        return self._clock() - self.t0

    def submit(self, ev: Event) -> None:
        """Key presses, pedals, device and camera events; called from input threads, never blocks."""
        self.inbox.put("notes", ev)

    def submit_control(self, ev: Event, reply: Reply | None = None) -> None:
        """Commands and annotations from OSC in; ``reply`` answers the sender alone."""
        if isinstance(ev, Command) and ev.command == "load":
            self._request_load(ev.path, reply)
        elif not self.inbox.put("control", ev) and reply:
            reply("error", "busy: too many control messages, this one was dropped")

    def notice(self, state: str, detail: str = "") -> None:
        """Something the bridge noticed about itself, from any thread: OSC, view and log."""
        ev = Status(round(self.clock(), 4), state, detail)
        with self._notice_lock:
            for step in (self._send, self._show):
                try:
                    step([ev])
                except Exception:  # noqa: BLE001 - a notice about a broken output must not break more
                    pass
            if self.log:
                self.log.log_notice(ev)

    def start(self) -> None:
        self._emit(Status(0.0, "score_loaded", self.engine.score.title))
        if self._expression_off is not None:
            self.notice(self._expression_off.state, self._expression_off.detail)
        # idle until a phrase ends (a score loaded later may have phrases where this has none)
        self.phrase_worker = _PhraseWorker(self._derived, self._expression_failed, self.inbox.dropped)
        self.thread = threading.Thread(target=self._consume, name="bridge-consumer", daemon=True)
        self.thread.start()
        threading.Thread(target=self._watch, name="bridge-watchdog", daemon=True).start()

    def stop(self, timeout: float = 30.0) -> None:
        """Take in everything that arrived, report what was left unplayed, close the log.
        Call it after the inputs are closed, so that every input received is logged."""
        self.inbox.put("notes", Status(round(self.clock(), 4), "stopped", ""), force=True)
        self.inbox.put("notes", _STOP, force=True)
        if self.thread is not None:
            self.thread.join(timeout)
            if self.thread.is_alive():
                self.notice("stalled", f"the engine did not finish within {timeout:.0f} s of stopping")
        if self.phrase_worker is not None:
            self.phrase_worker.close(timeout)
        self._stop_watch.set()
        if self.log:
            left = self.log.close()
            if left:
                print(f"pianobridge: {left} bytes of the session log could not be written", file=sys.stderr)
        if self.osc:
            self.osc.close()

    # ---------------------------------------------------------------- consumer

    def _consume(self) -> None:
        while True:
            item = self.inbox.get()
            if item is _STOP:
                break
            self._handle(item)
        while (item := self.inbox.get(timeout=0)) is not None:  # what came in beside the stop
            if item is not _STOP:
                self._handle(item)
        for out in self.engine.finish():
            self._emit(out)
        if self.phrases and self.phrase_worker and (done := self.phrases.finish()) is not None:
            self.phrase_worker.submit(self.phrases, done, self.clock())

    def _handle(self, item) -> None:
        if isinstance(item, _Loaded):
            self._swap(item)
            return
        outs: list[OutputEvent] = []
        try:
            self.engine, outs = apply(self.engine, item)  # engine failures come back as engine_error
            if self.stamp:  # what only the input knows, wanted on OSC too (a missed note's ``sure``)
                for out in outs:
                    self.stamp(out)
            self._send(outs)  # before any logging: the player is waiting for these
        except Exception as e:  # noqa: BLE001 - an output failing must not stop the following
            self._output_failed(e)
        finally:
            if self.log:  # logged even when something failed on it
                self.log.log_in(item)
            self.counts["in"] += 1
        self._record(outs)

    def _emit(self, out: OutputEvent) -> None:
        try:
            self._send([out])
        except Exception as e:  # noqa: BLE001
            self._output_failed(e)
        self._record([out])

    def _send(self, outs: list[OutputEvent]) -> None:
        if self.osc:
            for out in outs:
                self.osc.send_event(out, self.osc_prefix)

    def _show(self, outs: list[OutputEvent]) -> None:
        if self.view:
            for out in outs:
                self.view(out)

    def _record(self, outs: list[OutputEvent]) -> None:
        for out in outs:
            self.counts["out"] += 1
            if self.log:
                self.log.log_out(out)
            if self.phrases and self.phrase_worker and (done := self.phrases.add(out)) is not None:
                self.phrase_worker.submit(self.phrases, done, out.t)
        try:
            self._show(outs)
        except Exception as e:  # noqa: BLE001
            self._output_failed(e)

    def _derived(self, ev: OutputEvent) -> None:
        """An output made beside the engine (a phrase's expression), from its own thread."""
        with self._notice_lock:
            try:
                self._send([ev])
                self._show([ev])
            except Exception as e:  # noqa: BLE001
                self._output_failed(e)
            if self.log:
                self.log.log_derived(ev)

    def _expression_failed(self, e: Exception) -> None:
        self.notice("expression_off", f"the expression model failed on a phrase: {type(e).__name__}: {e}"[:200])

    def _output_failed(self, e: Exception) -> None:
        self._output_errors += 1
        if self._output_errors in (1, 10, 100) or self._output_errors % 1000 == 0:  # never a flood of notices
            self.notice("output_error", f"{type(e).__name__}: {e}"[:200] + f" ({self._output_errors} so far)")

    # ---------------------------------------------------------------- load

    def _request_load(self, path: str, reply: Reply | None) -> None:
        """Check a ``load`` against the library and start parsing it on a thread of its own."""
        answer = reply or (lambda _kind, _text: None)
        now = time.monotonic()
        if self._loading or now - self._last_load < self.LOAD_EVERY_S:
            answer("error", "load refused: another load is in progress or too recent")
            return
        try:
            resolved = self._allowed(path)
        except UserError as e:
            answer("error", f"load refused: {e}")
            self.notice("load_failed", f"refused: {e}")
            return
        self._loading, self._last_load = True, now
        threading.Thread(target=self._load, args=(resolved, answer), name="score-loader", daemon=True).start()

    def _allowed(self, path: str) -> Path:
        """The library file ``path`` names (relative paths are looked up in each library
        folder), or UserError. Every refusal reads the same, so a sender learns nothing
        about files outside the library."""
        refused = UserError("not a score in the score library")
        if not isinstance(path, str) or not path or "\x00" in path or len(path) > 1024:
            raise refused
        given = Path(path)
        candidates = [given] if given.is_absolute() else [folder / given for folder in self.library]
        for candidate in candidates:
            try:
                real = candidate.resolve(strict=True)
            except (OSError, RuntimeError):
                continue
            inside = any(real.is_relative_to(folder) for folder in self.library)
            if inside and real.suffix.lower() in (".musicxml", ".xml", ".mxl") and os.path.isfile(real):
                return real  # its size is load_score's to check, as for any score
        raise refused

    def _load(self, path: Path, reply: Reply) -> None:
        from bridge.musicxml import load_score

        try:
            score = load_score(path)
            engine = new_engine(score, self.engine.suggested is not None, self.engine)
            phrases, off = open_phrases(score, self.phrases is not None or self._expression_off is not None)
        except Exception as e:  # noqa: BLE001 - a score that will not load keeps the current one
            why = str(e).replace(str(path), path.name) if isinstance(e, UserError) else type(e).__name__
            reply("error", f"load failed: {why}"[:200])
            self.notice("load_failed", f"{path.name}: {why}"[:200])
            return
        finally:
            self._loading = False
        if off is not None:
            self.notice(off.state, f"{path.name}: {off.detail}"[:200])
        self.inbox.put("control", _Loaded(str(path), engine, reply, phrases), force=True)

    def _swap(self, loaded: _Loaded) -> None:
        """Logged as the load command at the moment it takes effect, so replay (which loads
        in line) switches scores between the same two inputs."""
        cmd = Command(round(self.clock(), 4), "load", path=loaded.path)
        self.engine = loaded.engine
        self.phrases = loaded.phrases
        if self.log:
            self.log.log_in(cmd)
        self.counts["in"] += 1
        self._emit(Status(cmd.t, "score_loaded", self.engine.score.title))
        if loaded.reply:
            loaded.reply("ok", f"loaded {self.engine.score.title}")

    # ---------------------------------------------------------------- watchdog

    def _watch(self, every_s: float = 0.5) -> None:
        """Notices a consumer that stops taking events, and input dropped for lack of room."""
        seen_in, since, stalled = -1, time.monotonic(), False
        reported: Counter[str] = Counter()
        while not self._stop_watch.wait(every_s):
            now = time.monotonic()
            if self.counts["in"] != seen_in or not self.inbox.backlog():
                if stalled:
                    self.notice("resumed", f"the engine takes events again after {now - since:.1f} s")
                seen_in, since, stalled = self.counts["in"], now, False
            elif not stalled and now - since > self.stall_after_s:
                stalled = True
                self.notice("stalled", f"the engine has taken no event for {now - since:.1f} s")
            dropped = self.inbox.dropped.copy()
            fresh = dropped - reported
            if fresh:
                self.notice("input_dropped", ", ".join(f"{n} {kind}" for kind, n in fresh.items()) + " (queue full)")
                reported = dropped
