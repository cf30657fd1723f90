"""Find the keyboard and its keys in an overhead image (adapter: pixels in, a
`Calibration` out).

The black keys give the key grid: they are the dark blobs in the band where dark and
light alternate most; the gaps between them come in a short (inside a group) and a long
(E-F, B-C) kind, and a group of two is C#-D#. The width of the keyboard in white keys
tells its size (88, 76, 61, 49 keys) and so its lowest key; the black keys' length gives
the white keys' front edge, on the side where the keys are bright. The keyboard is
taken to lie level across the image; `--corners` overrides for any other view.
"""

from __future__ import annotations

import numpy as np

from bridge.camera.detect import keyboard_rows
from bridge.errors import UserError
from bridge.keyboard import BLACK_L, WHITE_L, WHITE_W, Calibration, Keyboard, white_count

# common keyboards: (lowest, highest) MIDI key
SIZES = [(21, 108), (28, 103), (36, 96), (36, 84), (48, 72)]
_BLACK_CENTRES = (0.95, 1.95, 3.9, 4.95, 6.0)  # C#, D#, F#, G#, A# from the C key's left edge, in white keys


def black_keys(gray: np.ndarray, rows: tuple[int, int]) -> np.ndarray:
    """x centres (px) of the black keys in the band, left to right."""
    import cv2

    top, bottom = rows
    band = gray[top : bottom + 1]
    _, dark = cv2.threshold(band, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    # a black key is a long dark run down the band (all of it, if the band is the black
    # keys; 60% of it, if the band is the whole keyboard)
    run = np.zeros(dark.shape[1])
    longest = np.zeros(dark.shape[1])
    for row in dark > 0:
        run = (run + 1) * row
        longest = np.maximum(longest, run)
    dark_cols = longest > 0.5 * len(band)
    xs, runs = [], np.flatnonzero(np.diff(np.r_[0, dark_cols.astype(int), 0]))
    for a, b in zip(runs[::2], runs[1::2]):
        xs.append((a + b - 1) / 2)
    xs = np.array(xs)
    if len(xs) < 5:
        return xs
    widths = np.diff(runs)[::2]
    keep = (widths > 0.4 * np.median(widths)) & (widths < 2.0 * np.median(widths))
    return xs[keep]


def find_keyboard(rgb: np.ndarray, keys: tuple[int, int] | None = None) -> Calibration:
    """Calibrate from one image; ``keys`` (lowest, highest) overrides the guessed size."""
    gray = (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).astype(np.uint8)
    h, w = gray.shape
    rows = keyboard_rows(gray)
    xs = black_keys(gray, rows)
    if len(xs) < 5:
        raise UserError("no keyboard found in the image (too few black keys); give --corners and --keys")
    white, c_left = _key_grid(xs)
    if white is None:
        raise UserError("the black keys do not show the 2-3 pattern of a keyboard; give --corners and --keys")
    # the keyboard's ends: the outermost columns of the band that are mostly key surface
    player_below = _player_below(gray, rows)
    top, bottom = rows
    level = gray[top : bottom + 1].mean(0)
    cols = np.flatnonzero(level > 0.4 * np.percentile(level, 95))
    x_left, x_right = (cols[0], cols[-1] + 1) if len(cols) else (0, w)
    n_white = (x_right - x_left) / white
    if not 10 <= n_white <= 56:
        raise UserError(
            f"no keyboard found in the image (it would be {n_white:.0f} white keys wide); give --corners and --keys"
        )
    if keys is None:
        keys = min(SIZES, key=lambda k: abs(white_count(*k) - n_white))
        if abs(white_count(*keys) - n_white) > 3:  # not a common size: Cs to Cs, middle C near the middle
            octaves = max(1, round(n_white / 7))
            keys = (60 - 12 * (octaves // 2), 60 - 12 * (octaves // 2) + 12 * octaves)
    keyboard = Keyboard(*keys)
    # slide the keyboard by whole octaves so that its Cs lie on the Cs found and its ends
    # come as near the seen ends as can be
    span = white_count(*keys) * white
    first_c = next(c for c in range(keys[0], keys[1] + 1) if c % 12 == 0)
    c_edge = (keyboard.centre_x(first_c) / WHITE_W - 0.5) * white  # keyboard's left edge to that C
    lefts = [c_left + 7 * k * white - c_edge for k in range(-12, 13)]
    left = min(lefts, key=lambda x0: abs(x0 - x_left) + abs(x0 + span - x_right))
    to_px = _fit_along(keyboard, xs, left, white)
    mid = (top + bottom) / 2
    corners = []
    for x_mm, y_mm in keyboard.corners():
        # the keyboard's height in the image follows its local scale (perspective along it)
        scale = (to_px(x_mm + 1.0) - to_px(x_mm - 1.0)) / 2 / (white / WHITE_W)
        half_black = (bottom - top) / 2 * scale
        back = mid - half_black
        front = back + 2 * half_black * WHITE_L / BLACK_L
        if not player_below:
            back, front = mid + half_black, mid + half_black - 2 * half_black * WHITE_L / BLACK_L
        corners.append([to_px(x_mm), front if y_mm == 0 else back])
    corners = np.array(corners)
    return Calibration((w, h), corners, keyboard)


def _key_grid(xs: np.ndarray) -> tuple[float | None, float]:
    """White-key width and the left edge of a C key (px) that put the most black keys
    found on the keyboard's pattern (C#, D#, F#, G#, A# at 0.95, 1.95, 3.9, 4.95 and 6.0
    white keys from C). A search rather than reading gaps: hands hide black keys."""
    gaps = np.diff(xs)
    base = np.median(gaps[gaps < 1.5 * np.median(gaps)])
    pattern = np.array(sorted(_BLACK_CENTRES))
    best, best_score = (None, 0.0), 0.0
    for white in np.linspace(0.75 * base, 1.25 * base, 101):
        # where each black key falls inside its octave, in white keys from a C
        phase = (xs / white) % 7.0
        for shift in np.arange(0.0, 7.0, 0.05):
            d = (phase[:, None] - shift - pattern[None, :]) % 7.0
            d = np.minimum(d, 7.0 - d)
            score = float((d.min(1) < 0.2).sum()) - 0.5 * float(d.min(1).mean())
            if score > best_score:
                best, best_score = (white, shift * white), score
    white, c_left = best
    if white is None or best_score < max(5.0, 0.7 * len(xs)):
        return None, 0.0
    return white, c_left


def _fit_along(keyboard: Keyboard, xs: np.ndarray, left: float, white: float):
    """Pixels along the keyboard as a projective function of millimetres, fitted to the
    black keys found (each matched to the nearest black key of the first guess)."""
    black = [p for p in range(keyboard.low, keyboard.high + 1) if p % 12 in (1, 3, 6, 8, 10)]
    mm = np.array([keyboard.centre_x(p) for p in black])
    guess = left + mm / WHITE_W * white
    nearest = np.abs(xs[:, None] - guess[None, :]).argmin(1)
    close = np.abs(xs - guess[nearest]) < 0.4 * white
    x_mm, x_px = mm[nearest[close]], xs[close]
    if len(x_mm) < 6:
        return lambda x: left + x / WHITE_W * white
    # x_px = (a + b x) / (1 + c x)  <=>  x_px = a + b x - c x x_px
    design = np.c_[np.ones_like(x_mm), x_mm, -x_mm * x_px]
    a, b, c = np.linalg.lstsq(design, x_px, rcond=None)[0]
    return lambda x: (a + b * x) / (1 + c * x)


def _player_below(gray: np.ndarray, rows: tuple[int, int]) -> bool:
    """Whether the player sits below the keyboard in the image: the white keys' front,
    past the black keys, is brighter than the case beyond them."""
    top, bottom = rows
    span = max(3, (bottom - top) // 3)
    below = gray[min(gray.shape[0] - 1, bottom + 2) : min(gray.shape[0], bottom + 2 + span)]
    above = gray[max(0, top - 2 - span) : max(1, top - 2)]
    return below.mean() >= above.mean()


def overlay(rgb: np.ndarray, calibration: Calibration) -> np.ndarray:
    """The image with every key outlined and the Cs named, for the user to check."""
    import cv2

    out = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR).copy()
    for pitch, poly in calibration.key_polygons().items():
        pts = np.array(poly, np.int32)
        black = pitch % 12 in (1, 3, 6, 8, 10)
        cv2.polylines(out, [pts], True, (0, 0, 255) if black else (0, 200, 0), 1, cv2.LINE_AA)
        if pitch % 12 == 0:
            x, y = pts[0]
            cv2.putText(
                out, f"C{pitch // 12 - 1}", (int(x) + 2, int(y) - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 0), 1
            )
    return out
