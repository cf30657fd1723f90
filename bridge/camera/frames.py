"""Frames from still images, video files and cameras (OpenCV), as RGB arrays."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bridge.errors import UserError
from bridge.native import quiet_stderr
from bridge.userfiles import MAX_IMAGE_PIXELS

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass
class Frame:
    source: str
    index: int | None  # frame number in a video; None for a still image
    t: float | None  # seconds: video time, or the shared monotonic clock for a camera
    rgb: np.ndarray


def is_image(path: str) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def check_inputs(paths: list[str]) -> int:
    """Raise `UserError` for the first path that is missing or cannot be an image or video:
    cheap checks (a file header, a video's first frame) made before any work starts.
    Returns the pixels of the largest still image (0 if none)."""
    import cv2

    largest = 0
    for path in paths:
        p = Path(path)
        if is_image(path):
            largest = max(largest, image_pixels(p))
            if not cv2.haveImageReader(str(p)):
                raise UserError(f"cannot read image: {p}")
        else:
            _open_video(p)[0].release()
    return largest


def image_pixels(path: str | Path) -> int:
    """The pixels of an image file, from its header; `UserError` if it is not an image or
    has more than MAX_IMAGE_PIXELS: checked before decoding, since a small file can
    unpack to gigabytes."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"no such image: {p}")
    size = _header_size(p)
    if size is None:
        raise UserError(f"cannot read image: {p}")
    return size[0] * size[1]


def _header_size(p: Path) -> tuple[int, int] | None:
    """Width and height from the header of a picture in any format PIL knows (None for
    anything else, a video say); `UserError` if over MAX_IMAGE_PIXELS."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(p) as im:  # reads the header only
                width, height = im.size
    except Image.DecompressionBombError:  # PIL's own limit, far above ours
        raise _too_large(p, "the picture") from None
    except (OSError, ValueError, SyntaxError):  # what PIL raises for a file it cannot parse
        return None
    _check_size(p, width, height)
    return width, height


def _check_size(source: object, width: float, height: float) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise _too_large(source, f"{width:.0f}x{height:.0f} pixels")


def _too_large(source: object, what: str) -> UserError:
    return UserError(f"{source}: {what} is more than pianobridge reads ({MAX_IMAGE_PIXELS // 10**6} megapixels)")


def _check_capture(cap, source: object) -> None:
    """`UserError` (the capture released) if a camera's or video's frames are too large;
    the size is known once it is open, before a frame is decoded."""
    import cv2

    try:
        _check_size(source, cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    except UserError:
        cap.release()
        raise


def _open_video(p: Path):
    """An open capture and its first frame (BGR), or `UserError`."""
    import cv2

    if not p.is_file():
        raise UserError(f"no such image or video: {p}")
    _header_size(p)  # FFmpeg decodes a picture (named like a video) as it opens it
    with quiet_stderr():  # FFmpeg describes a broken file at length on fd 2
        cap = cv2.VideoCapture(str(p))
        if cap.isOpened():
            _check_capture(cap, p)
        ok, bgr = cap.read() if cap.isOpened() else (False, None)
    if not ok:
        cap.release()
        raise UserError(f"cannot read video: {p}")
    return cap, bgr


def read_image(path: str) -> Frame:
    """One still image."""
    import cv2

    p = Path(path)
    image_pixels(p)
    bgr = cv2.imread(str(p))
    if bgr is None:
        raise UserError(f"cannot read image: {p}")
    return Frame(path, None, None, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def read_frames(paths: list[str]) -> Iterator[Frame]:
    """Every still image, and every frame of every video, in order."""
    import cv2

    for path in paths:
        if is_image(path):
            yield read_image(path)
            continue
        cap, bgr = _open_video(Path(path))
        ok = True
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        k = 0
        while ok:
            yield Frame(path, k, k / fps, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            ok, bgr = cap.read()
            k += 1
        cap.release()


def grab_frame(source: str) -> np.ndarray:
    """One RGB frame: the image, the first frame of a video, or a frame from a camera index."""
    import cv2

    if source.isdigit():
        with quiet_stderr():
            cap = cv2.VideoCapture(int(source))
            if cap.isOpened():
                _check_capture(cap, f"camera {source}")
            ok, bgr = cap.read() if cap.isOpened() else (False, None)
            cap.release()
        if not ok:
            raise UserError(f"no camera {source}")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return next(read_frames([source])).rgb


class CameraCapture:
    """Reads a camera (index) or a video file on its own thread and hands each frame,
    stamped with ``clock()`` (the clock MIDI events use), to ``on_frame``. A consumer
    that is still busy with the last frame gets the newest one next: older frames are
    dropped and counted, so the camera never falls behind the music."""

    def __init__(
        self,
        source: int | str,
        on_frame: Callable[[Frame], None],
        clock: Callable[[], float] = time.monotonic,
        on_end: Callable[[], None] | None = None,
    ):
        import cv2

        with quiet_stderr():
            self.cap = cv2.VideoCapture(source)
        if not self.cap.isOpened():
            raise UserError(f"cannot open camera or video: {source}")
        _check_capture(self.cap, source)
        self.source, self.on_frame, self.clock, self.on_end = str(source), on_frame, clock, on_end
        self.dropped = 0
        self.read = 0
        self._latest: Frame | None = None
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._closing = False
        self.threads = [
            threading.Thread(target=self._grab, name="camera-grab", daemon=True),
            threading.Thread(target=self._deliver, name="camera-deliver", daemon=True),
        ]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def _grab(self) -> None:
        import cv2

        while not self._stop.is_set():
            ok, bgr = self.cap.read()
            t = self.clock()
            if not ok:
                break
            frame = Frame(self.source, self.read, t, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            self.read += 1
            with self._ready:
                if self._latest is not None:
                    self.dropped += 1
                self._latest = frame
                self._ready.notify()
        self._stop.set()
        with self._ready:
            self._ready.notify()

    def _deliver(self) -> None:
        while True:
            with self._ready:
                while self._latest is None and not self._stop.is_set():
                    self._ready.wait()
                frame, self._latest = self._latest, None
            if frame is None:
                if self.on_end is not None and not self._closing:  # the camera (or the file) stopped
                    self.on_end()
                return
            self.on_frame(frame)

    def wait(self, timeout: float | None = None) -> None:
        for t in self.threads:
            t.join(timeout)

    def close(self) -> None:
        self._closing = True
        self._stop.set()
        self.wait(2.0)
        self.cap.release()
