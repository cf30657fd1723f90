"""Piano keyboard geometry and its calibration onto a camera image (pure).

Keyboard coordinates are millimetres on the key surface: x from the left edge of the
lowest key, y from the front edge (player side) to the back. A calibration maps them to
image pixels with a homography from the keyboard's four corners.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bridge.errors import UserError
from bridge.userfiles import MAX_IMAGE_PIXELS, read_text, write_bytes

WHITE_W = 23.5  # mm, one white key
WHITE_L = 150.0
BLACK_W = 13.7
BLACK_L = 95.0
MAX_CALIBRATION_BYTES = 1 << 20  # a calibration with every key's outline is about 20 KB
_BLACK = {1, 3, 6, 8, 10}
# black key centres, in white-key widths from the C below: the black keys' backs split the
# octave into 12 near-equal parts, so neighbours in a group sit 7/12 of a white key apart
# and C#-D# centre on D, F#-G#-A# on G#. Real overhead frames show exactly this: gaps of
# 1.16 and 1.76 white keys (piano-hands-dev, measured on three full keyboards).
BLACK_CENTRE = {1: 11 / 12, 3: 25 / 12, 6: 46 / 12, 8: 5.0, 10: 74 / 12}
_WHITE_INDEX = {0: 0, 2: 1, 4: 2, 5: 3, 7: 4, 9: 5, 11: 6}


def is_black(pitch: int) -> bool:
    return pitch % 12 in _BLACK


def white_count(low: int, high: int) -> int:
    return sum(not is_black(p) for p in range(low, high + 1))


def _white_ordinal(pitch: int) -> int:
    """White keys from C-1 up to this (white) key."""
    return 7 * (pitch // 12) + _WHITE_INDEX[pitch % 12]


@dataclass(frozen=True)
class Keyboard:
    """The keys from ``low`` to ``high`` (MIDI numbers of white keys)."""

    low: int = 21
    high: int = 108

    def __post_init__(self):
        whole = all(isinstance(k, int) and not isinstance(k, bool) for k in (self.low, self.high))
        if not whole or not 0 <= self.low < self.high <= 127 or is_black(self.low) or is_black(self.high):
            raise UserError(
                f"a keyboard runs from a white key to a higher white key, MIDI 0-127, not {self.low!r:.20}-{self.high!r:.20}"
            )

    @property
    def width(self) -> float:
        return white_count(self.low, self.high) * WHITE_W

    def centre_x(self, pitch: int) -> float:
        """Key centre along the keyboard (mm)."""
        if not is_black(pitch):
            return (_white_ordinal(pitch) - _white_ordinal(self.low) + 0.5) * WHITE_W
        c = pitch - pitch % 12
        return (_white_ordinal(c) - _white_ordinal(self.low) + BLACK_CENTRE[pitch % 12]) * WHITE_W

    def press_point(self, pitch: int) -> tuple[float, float]:
        """Where a fingertip usually presses the key (mm): the front of a white key, the middle of a black one."""
        return self.centre_x(pitch), (WHITE_L - 0.55 * BLACK_L) if is_black(pitch) else 0.25 * WHITE_L

    def distance(self, pitch: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Distance (mm) from points to the key's top surface (0 inside)."""
        half = (BLACK_W if is_black(pitch) else WHITE_W) / 2
        dx = np.maximum(np.abs(x - self.centre_x(pitch)) - half, 0)
        return np.hypot(dx, self._beyond_ends(pitch, y))

    def centre_distance(self, pitch: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Distance (mm) from points to the key's centre line, over the key's length: a
        fingertip presses a key near its middle, while a neighbour resting on the same
        wide white key sits off to one side."""
        return np.hypot(x - self.centre_x(pitch), self._beyond_ends(pitch, y))

    def _beyond_ends(self, pitch: int, y: np.ndarray) -> np.ndarray:
        """How far (mm) points lie in front of or behind the key (0 along it)."""
        front = WHITE_L - BLACK_L if is_black(pitch) else 0.0
        return np.maximum(np.maximum(front - y, y - WHITE_L), 0)

    def corners(self) -> np.ndarray:
        """Front-left, front-right, back-right, back-left (mm)."""
        return np.array([[0.0, 0.0], [self.width, 0.0], [self.width, WHITE_L], [0.0, WHITE_L]])


@dataclass
class Calibration:
    """Where the keyboard is in the image: its corners (pixels, in `Keyboard.corners`
    order) and its key range."""

    image_size: tuple[int, int]
    corners: np.ndarray  # (4, 2) pixels
    keyboard: Keyboard

    def __post_init__(self):
        size = self.image_size
        if not (
            len(size) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in size)
            and size[0] * size[1] <= MAX_IMAGE_PIXELS
        ):
            raise UserError(f"the image size must be width, height in pixels (at most {MAX_IMAGE_PIXELS:,} pixels)")
        self.corners = corner_points(self.corners)
        x, y = self.corners.T
        # the turn at each corner: one sign all round for a quadrilateral that is not
        # folded or flat (either sign: the player may sit at either side of the image)
        turns = (np.roll(x, -1) - x) * (np.roll(y, -2) - np.roll(y, -1)) - (np.roll(y, -1) - y) * (
            np.roll(x, -2) - np.roll(x, -1)
        )
        if (
            not (np.all(turns > 0) or np.all(turns < 0))
            or abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) < 2
        ):
            raise UserError(
                "the keyboard corners do not make a quadrilateral (front-left, front-right, back-right, back-left)"
            )
        self.to_image = homography(self.keyboard.corners(), self.corners)
        self.to_keys = np.linalg.inv(self.to_image)

    def image_points(self, xy_mm: np.ndarray) -> np.ndarray:
        return apply(self.to_image, xy_mm)

    def key_points(self, xy_px: np.ndarray) -> np.ndarray:
        """Image pixels to keyboard mm (on the key surface)."""
        return apply(self.to_keys, xy_px)

    def key_polygons(self) -> dict[int, list[list[float]]]:
        out = {}
        for p in range(self.keyboard.low, self.keyboard.high + 1):
            cx = self.keyboard.centre_x(p)
            half, y0 = (BLACK_W / 2, WHITE_L - BLACK_L) if is_black(p) else (WHITE_W / 2, 0.0)
            quad = np.array([[cx - half, y0], [cx + half, y0], [cx + half, WHITE_L], [cx - half, WHITE_L]])
            out[p] = np.round(self.image_points(quad), 1).tolist()
        return out

    def to_json(self) -> dict:
        return {
            "image_size": list(self.image_size),
            "corners": np.round(self.corners, 2).tolist(),
            "corner_order": ["front_left", "front_right", "back_right", "back_left"],
            "lowest_key": self.keyboard.low,
            "highest_key": self.keyboard.high,
            "keys": {str(p): poly for p, poly in self.key_polygons().items()},
        }

    def save(self, path: str | Path) -> None:
        write_bytes(path, (json.dumps(self.to_json()) + "\n").encode())

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        text = read_text(path, "calibration file", MAX_CALIBRATION_BYTES)
        try:
            d = json.loads(text)
            if not isinstance(d, dict) or not isinstance(d["image_size"], list):
                raise ValueError("not an object with an image_size list")
            return cls(tuple(d["image_size"]), d["corners"], Keyboard(d["lowest_key"], d["highest_key"]))
        except KeyError as e:
            raise UserError(f"not a keyboard calibration: {path} (no {e})") from None
        except (ValueError, TypeError, RecursionError, UserError) as e:
            raise UserError(f"not a keyboard calibration: {path} ({e})") from None


def corner_points(value: object) -> np.ndarray:
    """Four corners (x, y) in pixels as a (4, 2) array of finite numbers, or `UserError`."""
    try:
        pts = np.asarray(value, dtype=float)
    except (ValueError, TypeError):
        pts = np.zeros(0)
    if pts.shape != (4, 2) or not np.isfinite(pts).all():
        raise UserError("the keyboard corners must be 4 points x,y of finite numbers in pixels")
    return pts


def homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 3x3 projective map taking four points src to dst (direct linear transform)."""
    rows = []
    for (x, y), (u, v) in zip(src, dst):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y, -u])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y, -v])
    _, _, vt = np.linalg.svd(np.asarray(rows, float))
    h = vt[-1].reshape(3, 3)
    return h / h[2, 2]


def apply(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, float)
    q = np.c_[pts.reshape(-1, 2), np.ones(pts.size // 2)] @ h.T
    return (q[:, :2] / q[:, 2:3]).reshape(pts.shape)
