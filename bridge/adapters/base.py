"""What every DAW adapter shares: where the player is (in seconds and in score beats),
problems grouped into a few named marks, and a worker thread that talks to the client.

An adapter is handed every output event on the caller's thread (the live bridge's
consumer), where it only does bookkeeping and non-blocking sends. Anything that waits for
the client (a locate that must be confirmed before a marker is added) runs on the
adapter's own thread, fed by a bounded queue: a full queue drops the mark and counts it.
The worker places one mark at a time, at the client's pace, so a replay as fast as
possible never overruns the client; ``close`` waits (boundedly) until the queue is empty.
"""

from __future__ import annotations

import queue
import select
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from pythonosc.osc_message import OscMessage

from bridge.errors import UserError
from bridge.events import Annotation, Jump, Missed, NoteVerdict, OutputEvent, Revised
from bridge.osc.sender import encode

Args = list[int | float | str]


@dataclass(frozen=True, slots=True)
class Mark:
    """One marker to make: ``t`` the performance time (s) and ``beats`` the score position
    (quarter notes from the start of the unfolded score) of the first event it stands for."""

    kind: str  # problems | jump | annotation
    t: float
    beats: float
    name: str


class Timeline:
    """The player's place as the events tell it: the last note's time, score position and
    the follower's tempo; between notes the position runs on at that tempo."""

    def __init__(self) -> None:
        self.t = 0.0
        self.beats = 0.0
        self.tempo_bpm = 0.0
        self.measure = 0

    def update(self, ev: OutputEvent) -> None:
        if isinstance(ev, NoteVerdict):
            self.t, self.beats, self.measure = ev.t, ev.position.onset_q, ev.position.measure
            self.tempo_bpm = ev.tempo_bpm or self.tempo_bpm
        elif isinstance(ev, Jump):
            self.t, self.beats, self.measure = ev.t, ev.to.onset_q, ev.to.measure

    def beats_at(self, t: float) -> float:
        """The score position (quarter notes) at performance time ``t``."""
        return self.beats + max(0.0, t - self.t) * self.tempo_bpm / 60.0


@dataclass
class _Group:
    kind: str
    t: float
    beats: float
    last_t: float
    measures: list[int]
    items: list[str]


class Grouper:
    """Turns problem events into a few marks: wrong, extra and missed notes less than
    ``gap_s`` apart make one mark (at most ``span_s`` long), so a bad passage is one
    marker, not forty. Jumps and teacher annotations make their own marks, grouped the
    same way with a shorter gap (a flurry of them is one marker too)."""

    GAPS = {"problems": (2.0, 8.0), "jump": (1.0, 4.0), "annotation": (1.0, 4.0)}  # (gap_s, span_s)

    def __init__(self) -> None:
        self.open: dict[str, _Group] = {}
        self.problems = 0  # events folded into marks

    def add(self, ev: OutputEvent, where: Timeline) -> list[Mark]:
        """The marks this event closes (call before ``where.update(ev)``)."""
        item = _item(ev, where)
        if item is None:
            return self.expire(ev.t)
        kind, t, beats, measure, text = item
        done = self.expire(t)
        if kind == "jump":  # the player moved: what was open belongs to the old place
            done += self._close("problems")
        g = self.open.get(kind)
        gap, span = self.GAPS[kind]
        if g is not None and (t - g.last_t > gap or t - g.t > span):
            done += self._close(kind)
            g = None
        if g is None:
            g = self.open[kind] = _Group(kind, t, beats, t, [], [])
        g.last_t = max(g.last_t, t)
        g.measures.append(measure)
        g.items.append(text)
        self.problems += 1
        return done

    def expire(self, now: float) -> list[Mark]:
        """Close the groups nothing has joined for longer than their gap."""
        return [m for k, g in list(self.open.items()) if now - g.last_t > self.GAPS[k][0] for m in self._close(k)]

    def flush(self) -> list[Mark]:
        return [m for k in list(self.open) for m in self._close(k)]

    def _close(self, kind: str) -> list[Mark]:
        g = self.open.pop(kind, None)
        return [] if g is None else [Mark(kind, g.t, g.beats, mark_name(g))]


def _item(ev: OutputEvent, where: Timeline) -> tuple[str, float, float, int, str] | None:
    """(kind, t, beats, measure, text) for an event that makes a mark, else None."""
    if isinstance(ev, NoteVerdict) and ev.verdict != "correct":
        word = "wrong" if ev.verdict == "wrong_pitch" else "extra"
        return "problems", ev.t, ev.position.onset_q, ev.position.measure, word
    if isinstance(ev, Missed) and ev.sure:  # one the microphone may not have caught is no correction
        return "problems", ev.t, where.beats_at(ev.t), ev.measure, "missed"
    if isinstance(ev, Revised):  # the earlier press was an extra note after all
        return "problems", ev.of_t, where.beats_at(ev.of_t), where.measure, "extra"
    if isinstance(ev, Jump):
        return "jump", ev.t, ev.to.onset_q, ev.to.measure, f"{ev.kind} m{ev.from_measure}->m{ev.to.measure}"
    if isinstance(ev, Annotation):
        where_m = ev.measure or where.measure
        return "annotation", ev.t, where.beats_at(ev.t), where_m, f"{ev.author}: {ev.text}"
    return None


MAX_NAME = 80  # characters: marker lanes show a few dozen


def mark_name(g: _Group) -> str:
    """'m12-14: 3 wrong, 1 missed', 'back m9->m5', 'teacher: more legato'."""
    if g.kind == "problems":
        counts = [f"{g.items.count(w)} {w}" for w in ("wrong", "extra", "missed") if w in g.items]
        lo, hi = min(g.measures), max(g.measures)
        text = f"m{lo}{f'-{hi}' if hi != lo else ''}: {', '.join(counts)}"
    else:
        text = (", " if g.kind == "jump" else " | ").join(g.items)
    return text if len(text) <= MAX_NAME else text[: MAX_NAME - 3] + "..."


class Link:
    """A UDP socket to one client. Sends never block (a full buffer or an unreachable
    client costs the datagram, counted); replies are read with a deadline, and anything
    that is not OSC is counted, never raised. ``reply_port``: None when the client answers
    the port we send from (Ardour), 0 when it does not answer, else the port it answers
    on (AbletonOSC: 11001)."""

    def __init__(self, address: tuple[str, int], reply_port: int | None = None):
        self.address = address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        try:
            self.sock.connect(address)  # answers from elsewhere are not read; "nobody listens" is
            self.connected = True
        except OSError:  # no route now: send (and fail, counted) unconnected
            self.connected = False
        self.replies: socket.socket | None = self.sock if reply_port is None else None
        if reply_port:
            self.replies = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.replies.setblocking(False)
            try:
                self.replies.bind(("0.0.0.0", reply_port))
            except OSError:
                self.replies.close()
                self.replies = None  # someone else listens there: no answers for us
        self.sent = self.failed = self.unreadable = 0
        self.refused = False  # the client's host said nobody listens on that port

    def send(self, address: str, *args: int | float | str) -> bool:
        try:
            data = encode((address, list(args))).build().dgram
            self.sock.send(data) if self.connected else self.sock.sendto(data, self.address)
        except OSError as e:  # full buffer, refused, unreachable: drop, never stall
            self.failed += 1
            self.refused |= isinstance(e, ConnectionRefusedError)
            return False
        self.sent += 1
        return True

    def receive(self, timeout: float) -> tuple[str, list] | None:
        """The next OSC message the client sends within ``timeout`` s (garbage skipped)."""
        if self.replies is None:
            return None
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            if not select.select([self.replies], [], [], left)[0]:
                return None
            try:
                data = self.replies.recv(65536)
                message = OscMessage(data)
                return message.address, list(message.params)
            except OSError:  # ICMP port unreachable from an earlier send: nobody listens there
                self.refused = True
                return None
            except Exception:  # noqa: BLE001 - any parse failure: the client said something that is not OSC
                self.unreadable += 1
        return None

    def drain(self) -> None:
        """Forget answers to earlier questions."""
        while self.receive(0.0001) is not None:
            pass

    def close(self) -> None:
        self.sock.close()
        if self.replies is not None and self.replies is not self.sock:
            self.replies.close()


_STOP = object()


class Adapter:
    """One client at one address, in its own dialect. Subclasses set ``name`` and
    ``options`` (name -> (type, default)), implement ``place`` (make one mark, on the
    worker thread) and, for note-level messages, ``on_event`` (on the caller's thread:
    non-blocking sends only)."""

    name: ClassVar[str]
    options: ClassVar[dict[str, tuple[type, object]]] = {}
    reply_port: int | None = None
    MAX_QUEUE = 1000  # marks waiting for the client: hours of bad playing
    PACE_S = 0.005  # between marks for clients that cannot confirm: a burst is not a flood
    CLOSE_TIMEOUT_S = 30.0

    def __init__(self, address: tuple[str, int], label: str = "", **options):
        self.label = label or f"{self.name}@{address[0]}:{address[1]}"
        for key, (_kind, default) in self.options.items():
            setattr(self, key, options.get(key, default))
        self.link = Link(address, self.reply_port)
        self.where = Timeline()
        self.grouper = Grouper()
        self.counts = {"marks": 0, "placed": 0, "failed": 0, "dropped": 0, "skipped": 0}
        self.notice: Callable[[str, str], None] = _print_notice
        self._told: set[str] = set()
        self._lock = threading.Lock()
        self._last = (0.0, time.monotonic())  # (event time, wall clock) of the last event
        self._jobs: queue.Queue = queue.Queue(self.MAX_QUEUE)
        self._thread = threading.Thread(target=self._run, name=f"osc-{self.name}", daemon=True)
        self._thread.start()

    @classmethod
    def parse_options(cls, items: list[str], text: str) -> dict:
        """``['rate=44100']`` -> ``{'rate': 44100}``, or UserError naming what is wrong."""
        out = {}
        for item in items:
            key, eq, value = item.partition("=")
            if key not in cls.options or not eq:
                known = ", ".join(f"{k}=" for k in cls.options) or "none"
                raise UserError(f"OSC target {text!r}: {cls.name} has no option {item!r} (options: {known})")
            kind = cls.options[key][0]
            try:
                out[key] = kind(value)
            except ValueError:
                raise UserError(f"OSC target {text!r}: {key} must be {kind.__name__}, not {value!r}") from None
        return out

    # ------------------------------------------------------------ caller's thread

    def handle(self, ev: OutputEvent) -> None:
        """Take one output event; never blocks."""
        with self._lock:
            marks = self.grouper.add(ev, self.where)
            self.where.update(ev)
            self._last = (ev.t, time.monotonic())
        self.on_event(ev)
        for m in marks:
            self._queue(m)

    def on_event(self, ev: OutputEvent) -> None:
        """Note-level messages, where the dialect has them (non-blocking sends only)."""

    def _queue(self, mark: Mark, wait: float = 0.0) -> None:
        """Hand a mark to the worker (both threads queue: never call with ``_lock`` held)."""
        with self._lock:
            self.counts["marks"] += 1
        try:
            self._jobs.put(mark, timeout=wait) if wait else self._jobs.put_nowait(mark)
        except queue.Full:  # said by the worker: a notice from here could re-enter the caller's lock
            with self._lock:
                self.counts["dropped"] += 1

    def close(self) -> None:
        """Make the marks still open, wait until the client has them all (bounded), close."""
        with self._lock:
            marks = self.grouper.flush()
        for m in marks:
            self._queue(m, wait=1.0)
        try:
            self._jobs.put(_STOP, timeout=1.0)
        except queue.Full:
            pass
        self._thread.join(self.CLOSE_TIMEOUT_S)
        if self._thread.is_alive():
            self.tell("close", f"{self.label}: the client did not take every mark in {self.CLOSE_TIMEOUT_S:.0f} s")
        self.link.close()

    # ------------------------------------------------------------ worker thread

    def _run(self) -> None:
        while True:
            if self.counts["dropped"]:
                self.tell("queue", f"{self.label}: the client is behind; marks dropped")
            try:
                job = self._jobs.get(timeout=0.25)
            except queue.Empty:  # nothing came in: close the groups whose gap has passed
                with self._lock:
                    t, wall = self._last
                    marks = self.grouper.expire(t + time.monotonic() - wall)
                for m in marks:
                    self._queue(m)
                continue
            if job is _STOP:
                return
            try:
                ok = self.place(job)
            except Exception as e:  # noqa: BLE001 - a broken client must not end the thread
                ok = False
                self.tell("error", f"{self.label}: {type(e).__name__}: {e}")
            self.counts["placed" if ok else "skipped" if ok is None else "failed"] += 1

    def place(self, mark: Mark) -> bool | None:
        """Make one mark: True when sent (and confirmed where the client can), False when
        it failed, None when the dialect has no way to make this kind of mark."""
        raise NotImplementedError

    def tell(self, key: str, detail: str) -> None:
        """Say a problem once (the summary at the end counts them all)."""
        if key not in self._told:
            self._told.add(key)
            self.notice("output_error", detail[:200])

    def summary(self) -> str:
        """One line: how many marks were made of how many problems, and what was lost."""
        c = self.counts
        line = f"{self.label}: {c['placed']} of {c['marks']} marks placed ({self.grouper.problems} events grouped)"
        lost = [f"{c[k]} {k}" for k in ("failed", "dropped", "skipped") if c[k]]
        if self.link.unreadable:
            lost.append(f"{self.link.unreadable} unreadable replies")
        return line + (f"; {', '.join(lost)}" if lost else "")


def _print_notice(state: str, detail: str) -> None:
    print(f"pianobridge: {detail}", file=sys.stderr, flush=True)
