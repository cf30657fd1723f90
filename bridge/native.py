"""Keeping C libraries (libjack, alsa-lib, FFmpeg, TFLite) from writing on the user's terminal."""

from __future__ import annotations

import contextlib
import os
import sys
import threading

_lock = threading.Lock()
_users = 0
_saved = -1


@contextlib.contextmanager
def quiet_stderr():
    """Point fd 2 at /dev/null for the duration: what C code prints there is dropped.

    fd 2 belongs to the whole process, so threads share one redirection: the first in
    makes it and the last out undoes it (two threads saving and restoring fd 2 on their
    own could leave it pointing at /dev/null for good)."""
    global _users, _saved
    with _lock:
        if _users == 0:
            _saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                os.dup2(_saved, 2)
                os.close(_saved)


NATIVE_LOG_ENV = "PIANOBRIDGE_NATIVE_LOG"


def divert_native_stderr() -> None:
    """For the command line: Python's ``sys.stderr`` keeps the terminal, and fd 2, where C
    libraries write (MediaPipe's log lines on teardown, TFLite, FFmpeg, libjack), goes to
    $PIANOBRIDGE_NATIVE_LOG if set, else nowhere.

    Scoped `quiet_stderr` blocks cannot keep up with what a new library release logs, or
    when (a landmarker logs as it is destroyed, which may be at garbage collection): one
    line of our own on stderr must stay one line whatever the libraries do."""
    saved = os.dup(2)
    sys.stderr.flush()
    sys.stderr = open(saved, "w", buffering=1, encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
    target = os.environ.get(NATIVE_LOG_ENV) or os.devnull
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError:
        fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 2)
    os.close(fd)
