"""Files the user names: read only when they are regular files of a sane size, written
so that any failure (at open, write or close: a full disk, a folder, no permission) is
one line, ``cannot write PATH: REASON``."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from bridge.errors import UserError

# camera images and video frames: a 40-megapixel RGB frame is 120 MB and the work on it a
# few times that; a small file can claim a far larger picture (a PNG of one colour)
MAX_IMAGE_PIXELS = 40_000_000


def regular_file(path: str | os.PathLike, what: str, max_bytes: int) -> Path:
    """``path`` once it is known to be a regular file of at most ``max_bytes``: reading a
    FIFO or a device would hang, a folder makes no sense, a huge file would fill memory."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise UserError(f"{what} not found: {p}") from None
    except OSError as e:
        raise UserError(f"cannot read {what} {p}: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{what} is not a regular file: {p}")
    if st.st_size > max_bytes:
        raise UserError(f"{what} is too large: {p} ({_size(st.st_size)}; at most {_size(max_bytes)})")
    return p


def read_bytes(path: str | os.PathLike, what: str, max_bytes: int) -> bytes:
    """The whole of a small regular file (see `regular_file`)."""
    p = regular_file(path, what, max_bytes)
    try:
        with open(p, "rb") as f:
            data = f.read(max_bytes + 1)  # it may have grown since the check
    except OSError as e:
        raise UserError(f"cannot read {what} {p}: {e.strerror or e}") from None
    if len(data) > max_bytes:
        raise UserError(f"{what} is too large: {p} (at most {_size(max_bytes)})")
    return data


def numbered_lines(
    path: str | os.PathLike, what: str, max_bytes: int, max_line: int
) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, line, whether it is the last) of a regular file (see `regular_file`),
    read a line at a time so that a long file never sits in memory whole; a line longer
    than ``max_line`` bytes is a `UserError` naming it."""
    p = regular_file(path, what, max_bytes)
    with open(p, "rb") as f:
        n, line = 1, f.readline(max_line + 1)
        while line:
            after = f.readline(max_line + 1)
            if len(line) > max_line:
                raise UserError(f"{p}:{n}: line longer than {max_line} bytes: not a {what} line")
            yield n, line, not after
            n, line = n + 1, after


def read_text(path: str | os.PathLike, what: str, max_bytes: int) -> str:
    return read_bytes(path, what, max_bytes).decode("utf-8", errors="replace")


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n} bytes"


def cannot_write(path: str | os.PathLike, e: OSError) -> UserError:
    return UserError(f"cannot write {path}: {e.strerror or e}")


@contextlib.contextmanager
def writing(path: str | os.PathLike, stdout: bool = False) -> Iterator[None]:
    """An OSError inside is `cannot write PATH: REASON`; a reader that went away (`| head`)
    is not an error and stays a BrokenPipeError."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as e:
        if stdout:  # Python flushes stdout once more at exit: let that go nowhere, quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise cannot_write(path, e) from None


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write a whole output file (its folder made if need be)."""
    with writing(path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)


class OutputFile:
    """A text output written as it goes, line by line ('-' is stdout)."""

    def __init__(self, path: str):
        self.path = path
        self.failed = False
        self.stdout = path == "-"
        if self.stdout:
            self.f: IO[str] = sys.stdout
            return
        with writing(path):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.f = open(path, "w", buffering=1)  # noqa: SIM115 - closed in close()

    def write(self, text: str) -> None:
        try:
            with writing(self.path, self.stdout):
                self.f.write(text)
        except UserError:
            self.failed = True
            raise

    def close(self) -> None:
        """Flush what is buffered (a full disk may say so only now) and close."""
        if self.stdout:
            if not self.failed:
                with writing(self.path, stdout=True):
                    self.f.flush()
            return
        with contextlib.suppress(OSError) if self.failed else writing(self.path):  # a failed write said why
            self.f.close()

    def __enter__(self) -> OutputFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
