"""Keeping C libraries (libjack, alsa-lib, FFmpeg, TFLite) from writing on the user's terminal."""

from __future__ import annotations

import contextlib
import os


@contextlib.contextmanager
def quiet_stderr():
    """Point fd 2 at /dev/null for the duration: what C code prints there is dropped."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
