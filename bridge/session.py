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

import datetime as dt
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bridge.errors import UserError
from bridge.events import (
    Annotation,
    Command,
    Control,
    HandFrame,
    InputEvent,
    NoteOff,
    NoteOn,
    OutputEvent,
    Status,
    json_line,
)

INPUT_TYPES = {cls.type: cls for cls in (NoteOn, NoteOff, Control, Status, Command, Annotation, HandFrame)}
VOLATILE = ("latency_us",)  # differs run to run; not part of what must reproduce


def default_dir() -> Path:
    return Path(os.environ.get("PIANOBRIDGE_SESSIONS") or Path.home() / "pianobridge-sessions")


def new_session_path(directory: str | os.PathLike | None = None) -> Path:
    d = Path(directory) if directory else default_dir()
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return d / f"session-{stamp}-{os.getpid()}.jsonl"


class SessionLog:
    """Append-only, crash-safe JSONL log of one session."""

    def __init__(self, path: str | os.PathLike, score_path: str, settings: dict | None = None, sync_every_s=0.5):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as e:
            raise UserError(f"cannot write session log {self.path}: {e.strerror}") from None
        self.sync_every_s = sync_every_s
        self.closed = threading.Event()
        self.syncer = threading.Thread(target=self._sync, name="session-fsync", daemon=True)
        score_bytes = Path(score_path).read_bytes()
        self._write(
            {
                "type": "session",
                "version": 1,
                "score": str(Path(score_path).resolve()),
                "score_sha256": hashlib.sha256(score_bytes).hexdigest(),
                "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "settings": settings or {},
            }
        )
        self.syncer.start()

    def _write(self, obj: dict) -> None:
        # one os.write per line: a kill between writes never leaves half a line
        os.write(self.fd, json_line(obj).encode())

    def _sync(self) -> None:
        while not self.closed.wait(self.sync_every_s):
            os.fsync(self.fd)

    def log_in(self, ev: InputEvent) -> None:
        self._write({"dir": "in", **ev.to_dict()})

    def log_out(self, ev: OutputEvent) -> None:
        self._write({"dir": "out", **ev.to_dict()})

    def close(self) -> None:
        self.closed.set()
        self.syncer.join()
        if self.fd >= 0:
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1


@dataclass
class Session:
    header: dict
    inputs: list[InputEvent]
    outputs: list[dict]


def read_session(path: str | os.PathLike) -> Session:
    """Parse a session log; a torn last line (power cut) is ignored."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"session log not found: {p}")
    lines = p.read_text(errors="replace").splitlines()
    records = []
    for i, line in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise UserError(f"{p}: line {i + 1} is not JSON") from None
    if not records or records[0].get("type") != "session":
        raise UserError(f"{p} is not a pianobridge session log")
    inputs, outputs = [], []
    for r in records[1:]:
        if r.get("dir") == "in":
            cls = INPUT_TYPES.get(r.pop("type", None))
            r.pop("dir")
            if cls is None:
                raise UserError(f"{p}: unknown input event {r}")
            if "pass" in r:
                r["pass_no"] = r.pop("pass")
            inputs.append(cls(**r))
        elif r.get("dir") == "out":
            r.pop("dir")
            outputs.append(r)
    return Session(records[0], inputs, outputs)


def stable(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in VOLATILE}


def first_difference(logged: list[dict], replayed: Iterator[dict]) -> tuple[int, dict | None, dict | None] | None:
    """Compare logged outputs with a replay's, in order; the replay may run on past the
    log's end (the event in flight when the bridge died). None when they agree."""
    for n, want in enumerate(logged):
        got = next(replayed, None)
        if got is None or stable(got) != stable(want):
            return n, want, got
    return None
