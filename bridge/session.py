"""The session log: every input and output event, appended as it happens.

One JSON object per line: a header (``"type":"session"``: score path and hash, start time,
settings), then each event with ``"dir": "in"`` or ``"out"``. Each line goes to the OS in
one write and is flushed at once, so a killed bridge loses at most the event in flight;
a thread of its own runs ``fsync`` every ``sync_every_s`` (a disk flush can take
milliseconds, which the player must not wait for), so a power cut loses at most that much.
``replay`` feeds the logged inputs through a fresh engine and checks that the logged
outputs come out again, identically.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bridge.errors import UserError
from bridge.events import (
    MAX_SECONDS,
    Annotation,
    Command,
    Control,
    HandFrame,
    InputEvent,
    NoteOff,
    NoteOn,
    OutputEvent,
    Status,
    check_hands,
    finite_number,
    json_line,
    seconds,
)
from bridge.score import PLAYING
from bridge.userfiles import numbered_lines

INPUT_TYPES = {cls.type: cls for cls in (NoteOn, NoteOff, Control, Status, Command, Annotation, HandFrame)}
# differ run to run, or come from outside the engine (the audio detector's decision time):
# logged, but not part of what a replay must reproduce
VOLATILE = ("latency_us", "detected_t", "sure")


def default_dir() -> Path:
    return Path(os.environ.get("PIANOBRIDGE_SESSIONS") or Path.home() / "pianobridge-sessions")


def new_session_path(directory: str | os.PathLike | None = None) -> Path:
    d = Path(directory) if directory else default_dir()
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return d / f"session-{stamp}-{os.getpid()}.jsonl"


class SessionLog:
    """Append-only, crash-safe JSONL log of one session.

    A full or failing disk never stops the session: lines that cannot be written wait in
    memory (up to ``max_pending_bytes``, then whole lines are dropped and counted) and go
    out in order as soon as a write succeeds again, so the file never holds half a line
    followed by another. ``on_fault(state, detail)``, if set, hears of each change:
    ``log_write_failed``, ``log_resumed``, ``log_lines_dropped``."""

    def __init__(
        self,
        path: str | os.PathLike,
        score_path: str,
        settings: dict | None = None,
        sync_every_s: float = 0.5,
        max_pending_bytes: int = 32 << 20,
        retry_every_s: float = 0.25,
    ):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as e:
            raise UserError(f"cannot write session log {self.path}: {e.strerror}") from None
        if os.fstat(self.fd).st_size:  # a second session after the first: replay refuses such a log
            os.close(self.fd)
            raise UserError(f"session log {self.path} already holds a session (give each session its own file)")
        self.sync_every_s, self.max_pending_bytes, self.retry_every_s = sync_every_s, max_pending_bytes, retry_every_s
        self.on_fault: Callable[[str, str], None] | None = None
        self.pending = bytearray()  # what the disk has not taken yet, whole lines (the first may be a tail)
        self.dropped = 0
        self.failing_since: float | None = None
        self._next_try = 0.0
        self._lock = threading.Lock()
        self.closed = threading.Event()
        self.syncer = threading.Thread(target=self._sync, name="session-fsync", daemon=True)
        score_bytes = Path(score_path).read_bytes()
        header = {
            "type": "session",
            "version": 1,
            "score": str(Path(score_path).resolve()),
            "score_sha256": hashlib.sha256(score_bytes).hexdigest(),
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "settings": settings or {},
        }
        try:  # a disk that is full from the start is the user's to fix before playing
            self._put(json_line(header).encode())
        except OSError as e:
            os.close(self.fd)
            raise UserError(f"cannot write session log {self.path}: {e.strerror}") from None
        self.syncer.start()

    def _put(self, data: bytes) -> None:
        """Write all of ``data``; a short write goes on from where it stopped. On an
        OSError, what was not written is in ``self.pending`` and the error is raised."""
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
            except OSError:
                self.pending[:0] = view
                raise
            view = view[n:]

    def _write(self, obj: dict) -> None:
        # one os.write per line where the disk allows: a kill between writes never leaves half a line
        data = json_line(obj).encode()
        notices: list[tuple[str, str]] = []
        with self._lock:
            if self.fd < 0:
                return
            if self.pending:
                if len(self.pending) + len(data) > self.max_pending_bytes:
                    self.dropped += 1
                    if self.dropped == 1:
                        notices.append(("log_lines_dropped", "the disk is still failing: lines are being dropped"))
                else:
                    self.pending += data
                self._retry(notices)
            else:
                try:
                    self._put(data)
                except OSError as e:
                    self._failed(e, notices)
        self._tell(notices)

    def _retry(self, notices: list[tuple[str, str]], force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next_try:
            return  # a full disk answers at once, but not on every note
        data, self.pending = bytes(self.pending), bytearray()
        try:
            self._put(data)
        except OSError as e:
            self._failed(e, notices)
            return
        lost = f", {self.dropped} lines lost" if self.dropped else ""
        notices.append(("log_resumed", f"session log written again after {now - self.failing_since:.1f} s{lost}"))
        self.failing_since, self.dropped = None, 0

    def _failed(self, e: OSError, notices: list[tuple[str, str]]) -> None:
        self._next_try = time.monotonic() + self.retry_every_s
        if self.failing_since is None:
            self.failing_since = time.monotonic()
            notices.append(("log_write_failed", f"cannot write the session log ({e.strerror}); keeping it in memory"))

    def _tell(self, notices: list[tuple[str, str]]) -> None:
        for state, detail in notices:
            if self.on_fault:
                self.on_fault(state, detail)

    def _sync(self) -> None:
        while not self.closed.wait(self.sync_every_s):
            notices: list[tuple[str, str]] = []
            with self._lock:
                if self.pending:
                    self._retry(notices)
            # outside the lock: a flush to disk can take milliseconds, and the consumer's
            # writes must not wait for it (close joins this thread before closing the fd)
            with contextlib.suppress(OSError):
                os.fsync(self.fd)
            self._tell(notices)

    def log_in(self, ev: InputEvent) -> None:
        self._write({"dir": "in", **ev.to_dict()})

    def log_out(self, ev: OutputEvent) -> None:
        self._write({"dir": "out", **ev.to_dict()})

    def log_notice(self, ev: Status) -> None:
        """What the bridge itself noticed (a failing disk, a stalled stage, dropped input):
        kept in the log but not an output of the engine, so `replay` does not expect it."""
        self._write({"dir": "notice", **ev.to_dict()})

    def log_derived(self, ev: OutputEvent) -> None:
        """An output computed beside the engine from its outputs (a phrase's expression),
        on a thread of its own when live: kept in the log, not expected by `replay`."""
        self._write({"dir": "derived", **ev.to_dict()})

    def close(self) -> int:
        """Flush, sync and close; returns how many bytes could not be written."""
        self.closed.set()
        self.syncer.join()
        notices: list[tuple[str, str]] = []
        with self._lock:
            if self.fd < 0:
                return 0
            if self.pending:
                self._retry(notices, force=True)
            left = len(self.pending)
            with contextlib.suppress(OSError):
                os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1
        return left


@dataclass
class Session:
    header: dict
    inputs: list[InputEvent]
    outputs: list[dict]


MAX_LINE = 1 << 20  # bytes: a camera frame is about 2 KB, an OSC annotation under 64 KB
MAX_SESSION_BYTES = 4 << 30  # some 30 hours with the camera on; replay reads it line by line
HEADER_TYPES = {"score": str, "score_sha256": str, "settings": dict}  # what replay needs of the header


def read_session(path: str | os.PathLike) -> Session:
    """A whole session log in memory; `replay` streams it instead (`check_session`,
    `session_events`), so that a long session does not fill memory."""
    header, _, _ = check_session(path)
    inputs: list[InputEvent] = []
    outputs: list[dict] = []
    for direction, ev in session_events(path):
        (inputs if direction == "in" else outputs).append(ev)
    return Session(header, inputs, outputs)


def check_score(session: str | os.PathLike, header: dict, score: str | os.PathLike) -> None:
    """A `UserError` unless ``score`` is the file ``session`` (whose header is ``header``)
    was recorded on: the log names its score by the file's sha256."""
    from bridge.musicxml import MAX_SCORE_BYTES
    from bridge.userfiles import read_bytes

    if hashlib.sha256(read_bytes(score, "score", MAX_SCORE_BYTES)).hexdigest() != header["score_sha256"]:
        raise UserError(
            f"{session} was recorded on {header['score']}, and {score} is not that file as it was then"
            " (its sha256 differs)"
        )


def check_session(path: str | os.PathLike) -> tuple[dict, int, int]:
    """The header of a session log and its numbers of input and output events, once every
    line has been checked: a bad line is one `UserError` naming it, before any work."""
    header = _header(path)
    counts = {"in": 0, "out": 0}
    for direction, _ in session_events(path):
        counts[direction] += 1
    return header, counts["in"], counts["out"]


def session_events(path: str | os.PathLike, only: str | None = None) -> Iterator[tuple[str, InputEvent | dict]]:
    """("in", InputEvent) and ("out", dict) in the order logged (``only``: one of them),
    read line by line; the bridge's own notices and derived outputs are skipped."""
    records = _records(path)
    next(records)  # the header
    for n, r in records:
        if not isinstance(r, dict):
            raise UserError(f"{path}:{n}: not a JSON object")
        direction = r.pop("dir", None)
        if direction in ("notice", "derived") or (only and direction != only):
            continue
        if direction == "in":
            yield "in", _input_event(r, f"{path}:{n}")
        elif direction == "out":
            if not isinstance(r.get("type"), str):
                raise UserError(f'{path}:{n}: an output event needs a "type"')
            yield "out", r
        elif r.get("type") == "session":
            raise UserError(f"{path}:{n}: a second session starts here (give each session its own log)")
        else:
            raise UserError(f'{path}:{n}: not a session event ("dir" must be "in", "out", "notice" or "derived")')


def _records(path: str | os.PathLike) -> Iterator[tuple[int, object]]:
    """(line number, JSON value) for each line; a torn last line (a power cut) is left out."""
    for n, line, last in numbered_lines(path, "session log", MAX_SESSION_BYTES, MAX_LINE):
        try:
            r = json.loads(line)
        except (ValueError, RecursionError):
            if last:
                return
            raise UserError(f"{path}:{n}: not JSON") from None
        yield n, r


def _header(path: str | os.PathLike) -> dict:
    with contextlib.closing(_records(path)) as records:
        first = next(records, (1, None))[1]
    if not isinstance(first, dict) or first.get("type") != "session":
        raise UserError(f"{path} is not a pianobridge session log")
    for key, kind in HEADER_TYPES.items():
        if not isinstance(first.get(key), kind):
            raise UserError(f"{path}:1: the session header needs {key!r} ({kind.__name__})")
    if first.get("version", 1) != 1:
        raise UserError(f"{path}:1: session log version {first['version']!r}: this pianobridge reads version 1")
    settings = first["settings"]
    if not isinstance(settings.get("fingering", False), bool) or not isinstance(
        settings.get("calibration"), str | None
    ):
        raise UserError(f"{path}:1: settings.fingering must be true or false and settings.calibration a path")
    if settings.get("playing", "auto") not in PLAYING:
        raise UserError(f"{path}:1: settings.playing must be auto, both, right or left")
    return first


_RANGES = {"pitch": 127, "velocity": 127, "control": 127, "value": 127, "channel": 15}


def _input_event(r: dict, where: str) -> InputEvent:
    """A logged input event, every field checked against its dataclass."""
    kind = r.pop("type", None)
    cls = INPUT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise UserError(f"{where}: unknown input event type (known: {', '.join(INPUT_TYPES)})")
    if "pass" in r:
        r["pass_no"] = r.pop("pass")
    spec = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(r) - set(spec)
    if unknown:
        raise UserError(f"{where}: {cls.type} has no field {', '.join(sorted(unknown))}")
    for name, f in spec.items():
        if name not in r:
            if f.default is dataclasses.MISSING:
                raise UserError(f"{where}: {cls.type} needs {name!r}")
            continue
        value = r[name]
        if f.type == "float":
            ok = seconds(value) if name == "t" else finite_number(value)
            want = f"a number of seconds, 0-{MAX_SECONDS:g}" if name == "t" else "a finite number"
        elif f.type == "int":
            top = _RANGES.get(name, 2**31 - 1)
            ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= top
            want = f"a whole number 0-{top}"
        elif f.type == "str":
            ok, want = isinstance(value, str), "text"
        elif f.type == "bool":
            ok, want = isinstance(value, bool), "true or false"
        else:  # the hands of a camera frame
            try:
                r[name] = check_hands(value)
                continue
            except ValueError as e:
                raise UserError(f"{where}: {e}") from None
        if not ok:
            raise UserError(f"{where}: {cls.type} {name!r} must be {want}, not {value!r:.40}")
    return cls(**r)


def stable(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in VOLATILE}


def first_difference(logged: Iterable[dict], replayed: Iterator[dict]) -> tuple[int, dict | None, dict | None] | None:
    """Compare logged outputs with a replay's, in order; the replay may run on past the
    log's end (the event in flight when the bridge died). None when they agree."""
    for n, want in enumerate(logged):
        got = next(replayed, None)
        if got is None or stable(got) != stable(want):
            return n, want, got
    return None
