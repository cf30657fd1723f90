"""Keeping C libraries (libjack, alsa-lib, FFmpeg, TFLite) from writing on the user's terminal."""

from __future__ import annotations

import contextlib
import os
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
