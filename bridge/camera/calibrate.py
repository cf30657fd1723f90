"""Find the keyboard and its keys in an overhead image (adapter: pixels in, a
`Calibration` out).

The black keys give the key grid: they are the dark blobs in the band where dark and
light alternate most; the gaps between them come in a short (inside a group) and a long
(E-F, B-C) kind, and a group of two is C#-D#. The width of the keyboard in white keys
tells its size (88, 76, 61, 49 keys) and so its lowest key. The white keys' back and
front edges are the steps out of the white keys; the player sits on the side away from
the black keys; the keys' lean (a vanishing point) is read off the black keys. The
keyboard is taken to lie level across the image, low keys on the left; `--corners`
overrides for any other view.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bridge.camera.detect import keyboard_rows, luma
from bridge.errors import UserError
from bridge.keyboard import BLACK_CENTRE, BLACK_L, WHITE_L, WHITE_W, Calibration, Keyboard, is_black, white_count

# common keyboards: (lowest, highest) MIDI key
SIZES = [(21, 108), (28, 103), (36, 96), (36, 84), (48, 72)]


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
    gray = luma(rgb)
    h, w = gray.shape
    rows = keyboard_rows(gray)
    xs = black_keys(gray, rows)
    if len(xs) < 5:
        raise UserError("no keyboard found in the image (too few black keys); give --corners and --keys")
    to_white = _key_grid(xs)
    if to_white is None:
        raise UserError("the black keys do not show the 2-3 pattern of a keyboard; give --corners and --keys")
    # the keyboard's ends: the outermost columns of the band that are mostly key surface
    top, bottom = rows
    level = gray[top : bottom + 1].mean(0)
    cols = np.flatnonzero(level > 0.4 * np.percentile(level, 95))
    x_left, x_right = (cols[0], cols[-1] + 1) if len(cols) else (0, w)
    u_left, u_right = to_white(x_left), to_white(x_right)
    n_white = u_right - u_left
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
    span = white_count(*keys)
    first_c = next(c for c in range(keys[0], keys[1] + 1) if c % 12 == 0)
    c_edge = keyboard.centre_x(first_c) / WHITE_W - 0.5  # keyboard's left edge to that C, in white keys
    lefts = [7 * k - c_edge for k in range(-12, 13)]
    left = min(lefts, key=lambda u0: abs(u0 - u_left) + abs(u0 + span - u_right))
    a, b, c = _fit_along(keyboard, xs, to_white(xs) - left)
    upper, lower = _key_ends(gray, rows, xs)
    back, front = (upper, lower) if _player_below(gray, xs, (upper, lower)) else (lower, upper)
    slope, lean = _slant(gray, rows, xs, back, front)
    # where the black keys were found along the keyboard: their middle
    black_middle = back + BLACK_L / WHITE_L / 2 * (front - back)
    middle = (back + front) / 2
    corners = []
    for x_mm, y_mm in keyboard.corners():
        # the keys' length in the image shrinks with their distance from the camera, which
        # is what makes the keyboard's scale change along it; keeping the keys' sides
        # upright, this makes the corners' homography reproduce the fit along the keys
        scale = (1 + c * keyboard.width / 2) / (1 + c * x_mm)
        y = middle + (front - back) / 2 * scale * (1 if y_mm == 0 else -1)
        x = (a + b * x_mm) / (1 + c * x_mm)
        corners.append([x + (y - black_middle) * (slope * x + lean), y])
    corners = np.array(corners)
    return Calibration((w, h), corners, keyboard)


def _key_grid(xs: np.ndarray) -> Callable[[np.ndarray], np.ndarray] | None:
    """The map from pixels along the keyboard to white keys from the left edge of a C
    that puts the most black keys found on the keyboard's pattern (`BLACK_CENTRE`); None
    if no map fits. A search rather than reading gaps, because hands hide black keys.
    The key width may change along the keyboard (perspective, a wide lens: 7% across
    full keyboards in real frames), so the search includes a steady change of key width
    from one end to the other."""
    gaps = np.diff(xs)
    base = np.median(gaps[gaps < 1.5 * np.median(gaps)])
    pattern = np.array(sorted(BLACK_CENTRE.values()))
    shifts = np.arange(0.0, 7.0, 0.05)
    centre, half = xs.mean(), max(np.ptp(xs) / 2, 1.0)
    best, best_score = None, 0.0
    for white in np.linspace(0.6 * base, 1.25 * base, 131):
        for slope in np.linspace(-0.05, 0.05, 11):
            u = (xs - centre) / white * (1 + slope * (xs - centre) / half)
            # where each black key falls inside its octave, in white keys from a C
            d = ((u % 7.0)[:, None, None] - shifts[None, :, None] - pattern[None, None, :]) % 7.0
            d = np.minimum(d, 7.0 - d).min(2)
            score = (d < 0.2).sum(0) - 0.5 * d.mean(0)
            k = int(score.argmax())
            if score[k] > best_score:
                best, best_score = (white, slope, shifts[k]), float(score[k])
    if best is None or best_score < max(5.0, 0.7 * len(xs)):
        return None
    white, slope, shift = best
    return lambda x: (np.asarray(x) - centre) / white * (1 + slope * (np.asarray(x) - centre) / half) - shift


def _fit_along(keyboard: Keyboard, xs: np.ndarray, at: np.ndarray) -> tuple[float, float, float]:
    """Pixels along the keyboard as a projective function of millimetres, (a + b x) /
    (1 + c x), fitted to the black keys found (``xs``, px) that lie near a black key of
    the keyboard by their first placing (``at``, in white keys from its left edge)."""
    black = [p for p in range(keyboard.low, keyboard.high + 1) if is_black(p)]
    mm = np.array([keyboard.centre_x(p) for p in black])
    nearest = np.abs(at[:, None] - mm[None, :] / WHITE_W).argmin(1)
    close = np.abs(at - mm[nearest] / WHITE_W) < 0.4
    x_mm, x_px = mm[nearest[close]], xs[close]
    if len(x_mm) < 4:
        raise UserError("too few black keys on the keyboard's pattern; give --corners and --keys")
    # x_px = (a + b x) / (1 + c x)  <=>  x_px = a + b x - c x x_px
    design = np.c_[np.ones_like(x_mm), x_mm, -x_mm * x_px]
    a, b, c = np.linalg.lstsq(design, x_px, rcond=None)[0]
    return float(a), float(b), float(c)


def _white_columns(xs: np.ndarray) -> np.ndarray:
    """x (px) of the white keys between the black keys of a group (D, G and A)."""
    gaps = np.diff(xs)
    return ((xs[:-1] + xs[1:]) / 2)[gaps < 1.3 * np.median(gaps)]


def _edge(gray: np.ndarray, x: float, lo: int, hi: int, sign: int) -> int | None:
    """Row of the sharpest step in column ``x`` between rows ``lo`` and ``hi``: from dark
    above to bright below (``sign`` 1) or the other way (-1); None if no clear step."""
    h, w = gray.shape
    c, lo, hi = int(round(x)), max(0, lo - 2), min(h, hi + 2)
    column = gray[lo:hi, max(0, c - 1) : min(w, c + 2)].mean(1)
    rise = sign * (column[4:] - column[:-4])  # centred 2 rows on
    if len(rise) == 0 or rise.max() < 30:
        return None
    return lo + 2 + int(rise.argmax())


def _key_ends(gray: np.ndarray, rows: tuple[int, int], xs: np.ndarray) -> tuple[float, float]:
    """Rows (px) where the white keys end, above and below: the sharpest step out of
    the white keys between the black keys of a group, medians over the keys (hands
    cover some)."""
    top, bottom = rows
    start, reach = (top + bottom) // 2, int(1.5 * max(bottom - top, 10))
    columns = _white_columns(xs)
    ups = [r for r in (_edge(gray, x, start - reach, start, 1) for x in columns) if r is not None]
    downs = [r for r in (_edge(gray, x, start, start + reach, -1) for x in columns) if r is not None]
    if len(ups) < 3 or len(downs) < 3:
        raise UserError("the white keys' front and back edges are not clear; give --corners and --keys")
    return float(np.median(ups)), float(np.median(downs))


def _slant(gray: np.ndarray, rows: tuple[int, int], xs: np.ndarray, back: float, front: float) -> tuple[float, float]:
    """How the keys lean: px sideways per px down, as ``slope * x + lean`` at x (px) along
    the keyboard. Seen from the side or through a wide lens the keys' long edges meet at
    a vanishing point, so the lean changes steadily along the keyboard. Measured from
    the middle of each black key at two depths; 0 when too few keys show it."""
    import cv2

    top, bottom = rows
    threshold, _ = cv2.threshold(gray[top : bottom + 1], 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    gap = np.median(np.diff(xs))
    depths = [int(round(back + t * BLACK_L / WHITE_L * (front - back))) for t in (0.2, 0.7)]
    if not all(0 <= d < gray.shape[0] for d in depths) or depths[0] == depths[1]:
        return 0.0, 0.0
    centres = []
    for d in depths:
        # dark runs across the row as wide as a black key (half a gap), by their middles
        edges = np.flatnonzero(np.diff(np.r_[0, (gray[d] < threshold).astype(int), 0]))
        starts, ends = edges[::2], edges[1::2]
        keyish = ((ends - starts) > 0.25 * gap) & ((ends - starts) < 0.8 * gap)
        middles = ((starts + ends - 1) / 2)[keyish]
        if len(middles) == 0:
            return 0.0, 0.0
        nearest = middles[np.abs(middles[None, :] - xs[:, None]).argmin(1)]
        centres.append(np.where(np.abs(nearest - xs) < 0.4 * gap, nearest, np.nan))
    lean = (centres[1] - centres[0]) / (depths[1] - depths[0])
    ok = np.isfinite(lean)
    if ok.sum() < 6:
        return 0.0, 0.0
    # a line through the leans, refitted without the keys a hand or a shadow moved
    fit = np.polyfit(xs[ok], lean[ok], 1)
    miss = np.abs(np.polyval(fit, xs[ok]) - lean[ok])
    keep = miss <= max(3 * np.median(miss), 0.02)
    if keep.sum() >= 6:
        fit = np.polyfit(xs[ok][keep], lean[ok][keep], 1)
    return float(fit[0]), float(fit[1])


def _player_below(gray: np.ndarray, xs: np.ndarray, ends: tuple[float, float]) -> bool:
    """Whether the player sits below the keyboard in the image: the black keys fill the
    back 95 mm of the 150 mm keys, so they are darker in the half away from the player."""
    upper, lower = (int(round(r)) for r in ends)
    middle = (upper + lower) // 2
    w = gray.shape[1]
    cols = np.clip(np.round(xs).astype(int), 0, w - 1)
    # medians: a glow along the back edge or a hand lights or darkens part of a half
    return bool(np.median(gray[upper:middle, cols]) <= np.median(gray[middle:lower, cols]))


def overlay(rgb: np.ndarray, calibration: Calibration) -> np.ndarray:
    """The image with every key outlined and the Cs named, for the user to check."""
    import cv2

    out = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR).copy()
    for pitch, poly in calibration.key_polygons().items():
        pts = np.array(poly, np.int32)
        black = is_black(pitch)
        cv2.polylines(out, [pts], True, (0, 0, 255) if black else (0, 200, 0), 1, cv2.LINE_AA)
        if pitch % 12 == 0:
            x, y = pts[0]
            cv2.putText(
                out, f"C{pitch // 12 - 1}", (int(x) + 2, int(y) - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 0), 1
            )
    return out
