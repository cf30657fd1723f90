"""Hand landmarks on overhead piano images (MediaPipe), made to find small hands.

Stock MediaPipe looks at the whole frame at 192x192, where a hand over a keyboard filmed
in 1080p is a few pixels wide. We also run it on square tiles over the keyboard (found
from the rows where black and white keys alternate), merge the hands found twice, and
decide handedness from the hand's geometry: seen from above with the palm down, the
thumb side is left of the little-finger side for the right hand, whatever the rotation.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import numpy as np

from bridge.native import quiet_stderr

TILE = 0.6  # tile side, as a share of the frame height
STEP = 0.5  # tile stride, as a share of the tile side


@dataclass
class Hand:
    """One detected hand: the player's ``handedness``, MediaPipe's score, 21 landmarks
    (x, y in pixels of the frame, z relative depth) in MediaPipe order."""

    handedness: str
    score: float
    landmarks: np.ndarray

    def to_dict(self) -> dict:
        pts = [[round(float(x), 1), round(float(y), 1), round(float(z), 4)] for x, y, z in self.landmarks]
        return {"handedness": self.handedness, "score": round(float(self.score), 4), "landmarks": pts}


def handedness_from_geometry(landmarks: np.ndarray) -> str:
    """'right' or 'left' for a palm-down hand seen from above (not mirrored)."""
    along = landmarks[9, :2] - landmarks[0, :2]  # wrist to middle knuckle
    across = landmarks[5, :2] - landmarks[17, :2]  # little-finger knuckle to index knuckle
    return "right" if along[0] * across[1] - along[1] * across[0] < 0 else "left"


def luma(rgb: np.ndarray) -> np.ndarray:
    """Grey (0.299 R + 0.587 G + 0.114 B, truncated) as uint8, a band of rows at a time:
    float copies of a whole 40-megapixel frame would take a gigabyte."""
    gray = np.empty(rgb.shape[:2], np.uint8)
    for top in range(0, len(rgb), 256):
        band = rgb[top : top + 256]
        gray[top : top + 256] = band[..., 0] * 0.299 + band[..., 1] * 0.587 + band[..., 2] * 0.114
    return gray


def keyboard_rows(gray: np.ndarray, threshold: int = 35) -> tuple[int, int]:
    """Top and bottom row of the band where keys alternate most (the black keys)."""
    h = gray.shape[0]
    edges = (np.abs(np.diff(gray.astype(np.int16), axis=1)) > threshold).sum(1).astype(float)
    k = max(3, h // 100)
    edges = np.convolve(edges, np.ones(k) / k, "same")
    rows = np.flatnonzero(edges > 0.45 * edges.max())
    if len(rows) == 0:
        return 0, h - 1
    runs = np.split(rows, np.flatnonzero(np.diff(rows) > k) + 1)
    best = max(runs, key=lambda r: edges[r].sum())
    return int(best[0]), int(best[-1])


def tile_origins(width: int, height: int, side: int, rows: tuple[int, int] | None) -> list[tuple[int, int]]:
    """Top-left corners of square tiles: one row over the keyboard band, or the whole frame."""
    stride = max(1, int(side * STEP))
    xs = sorted({*range(0, max(1, width - side + 1), stride), max(0, width - side)})
    ys = sorted({*range(0, max(1, height - side + 1), stride), max(0, height - side)})
    if rows is not None:
        top, bottom = rows
        ys = [max(ys, key=lambda y: min(y + side, bottom + 1) - max(y, top))]
    return [(x, y) for y in ys for x in xs]


def merge(hands: list[Hand]) -> list[Hand]:
    """One hand per place: of hands whose centres are closer than half a hand, the best."""
    kept: list[Hand] = []
    for hand in sorted(hands, key=lambda h: -h.score):
        centre = hand.landmarks[:, :2].mean(0)
        size = np.ptp(hand.landmarks[:, :2], 0).max()
        if all(np.linalg.norm(centre - k.landmarks[:, :2].mean(0)) > 0.5 * size for k in kept):
            kept.append(hand)
    return kept


def one_of_each(hands: list[Hand]) -> list[Hand]:
    """Two hands side by side that the geometry calls the same: the one further left is
    the left hand, since one player has one of each (the rule `bridge.fingerid` also
    follows). Hands at different heights (views of two keyboards) are left alone."""
    if len(hands) == 2 and hands[0].handedness == hands[1].handedness:
        a, b = (h.landmarks[:, 1] for h in hands)
        if min(a.max(), b.max()) > max(a.min(), b.min()):  # their rows overlap
            left, right = sorted(hands, key=lambda h: h.landmarks[:, 0].mean())
            left.handedness, right.handedness = "left", "right"
    return hands


class HandDetector:
    """MediaPipe's hand landmarker over a frame and tiles of it.

    Parameters
    ----------
    model : path of the ``.task`` bundle (see `bridge.camera.handmodel.hand_model`)
    tiles : "keyboard" (one row of tiles over the keys), "grid" (tiles over the whole
        frame: slower, finds more) or "none" (stock MediaPipe)
    video : track from frame to frame (frames must come with rising timestamps)
    """

    def __init__(self, model: str | os.PathLike, tiles: str = "keyboard", video: bool = False, confidence: float = 0.2):
        os.environ.setdefault("GLOG_minloglevel", "2")
        self.model, self.confidence, self.tiles = model, confidence, tiles
        self.still = self._landmarker(video=False)
        self.tracker = self._landmarker(video=True) if video else None
        self.last_ms = -1
        self.quiet_first = True  # the first landmarks found make MediaPipe log a warning

    def _landmarker(self, video: bool):
        from bridge.errors import UserError

        with quiet_stderr():
            from mediapipe.tasks.python import BaseOptions, vision

            options = vision.HandLandmarkerOptions(
                base_options=BaseOptions(model_asset_path=str(self.model)),
                num_hands=2,
                min_hand_detection_confidence=self.confidence,
                min_hand_presence_confidence=self.confidence,
                running_mode=vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE,
            )
            try:
                return vision.HandLandmarker.create_from_options(options)
            except (RuntimeError, ValueError) as e:
                raise UserError(
                    f"not a MediaPipe hand landmarker model: {self.model} ({str(e).splitlines()[0][:120]})"
                ) from None

    def _run(self, rgb: np.ndarray, x0: int = 0, y0: int = 0, t_ms: int | None = None) -> list[Hand]:
        import mediapipe as mp

        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        with quiet_stderr() if self.quiet_first else contextlib.nullcontext():
            if t_ms is None:
                result = self.still.detect(image)
            else:
                result = self.tracker.detect_for_video(image, t_ms)
        self.quiet_first = self.quiet_first and not result.hand_landmarks
        h, w = rgb.shape[:2]
        hands = []
        for points, labels in zip(result.hand_landmarks, result.handedness):
            pts = np.array([[p.x * w + x0, p.y * h + y0, p.z] for p in points])
            hands.append(Hand(handedness_from_geometry(pts), labels[0].score, pts))
        return hands

    def detect(self, rgb: np.ndarray, t_ms: int | None = None) -> list[Hand]:
        """Hands in an RGB frame; ``t_ms`` (video mode) is the frame's time in ms. A time
        that goes back starts another video: the hands tracked so far are forgotten."""
        if self.tracker is not None and t_ms is not None:
            if t_ms <= self.last_ms:  # MediaPipe's tracker only takes rising times
                self.tracker.close()
                self.tracker = self._landmarker(video=True)
            self.last_ms = t_ms
        hands = self._run(rgb, t_ms=t_ms if self.tracker is not None else None)
        if self.tiles == "none" or (t_ms is not None and len(hands) >= 2):
            return one_of_each(hands)
        height, width = rgb.shape[:2]
        side = min(width, int(TILE * height))
        rows = None
        if self.tiles == "keyboard":
            rows = keyboard_rows(luma(rgb))
        for x, y in tile_origins(width, height, side, rows):
            hands += self._run(rgb[y : y + side, x : x + side], x, y)
        return one_of_each(merge(hands))

    def close(self) -> None:
        for lm in (self.still, self.tracker):
            if lm is not None:
                lm.close()
