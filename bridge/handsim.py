"""Synthetic hand-landmark streams over a calibrated keyboard (pure).

Renders what a camera above the keys would see while notes are played with given
fingers: a kinematic model of two hands (fingertips travel to their keys and press
them, the hand shifts, the thumb passes under, the hands move independently), 21
MediaPipe-ordered landmarks per hand projected through a pinhole camera, and the
detector's typical failures as noise (`Noise`). Streams have the JSONL landmark format
of DESIGN.md. Used by the finger-attribution benchmark and its tests, and meant as the
seed of hand-motion synthesis.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bridge.keyboard import WHITE_L, Calibration, Keyboard


@dataclass(frozen=True)
class HandStyle:
    """How one player's hand is built and moves. The defaults are the hand the camera
    code was first tuned on; `HandStyle.random` draws others, so that a benchmark can
    tell a decision that knows hands from one that knows this one hand."""

    spacing: float = 21.0  # mm between neighbouring fingertips of a relaxed hand
    hover: float = 15.0  # mm above the keys
    dip: float = -9.0  # a pressed key's surface
    press_s: float = 0.06  # fingertip travel down to the key bed
    reach_s: float = 0.15  # a fingertip moves to its next key this long before the onset
    tip_y: float = 35.0  # resting fingertips, mm behind the keys' front edge (the thumb 20 mm nearer)
    palm: float = 62.0  # knuckles to resting fingertips, mm
    curl: float = 0.0  # resting fingers drawn in towards the palm, mm (the playing one reaches out)
    sympathy: float = 0.0  # share of a press that the neighbouring fingers follow
    lift_s: float = 0.06  # a released fingertip's rise back to the hover height

    @classmethod
    def random(cls, rng: np.random.Generator) -> HandStyle:
        """A plausible other hand: a small or large one, flat or curled, a shallow or a
        deep press, quick or slow motion, neighbours that move along."""
        return cls(
            spacing=rng.uniform(17.0, 25.0),
            hover=rng.uniform(6.0, 30.0),
            dip=rng.uniform(-11.0, -5.0),
            press_s=rng.uniform(0.025, 0.1),
            reach_s=rng.uniform(0.08, 0.25),
            tip_y=rng.uniform(20.0, 55.0),
            palm=rng.uniform(50.0, 78.0),
            curl=rng.uniform(0.0, 25.0),
            sympathy=rng.uniform(0.0, 0.35),
            lift_s=rng.uniform(0.03, 0.12),
        )


@dataclass(frozen=True)
class PlayedNote:
    onset: float
    offset: float
    pitch: int
    hand: str  # "left" | "right"
    finger: int  # 1-5


@dataclass
class Camera:
    """A pinhole camera above the keyboard, looking at its middle; the keyboard's back
    is at the top of the image."""

    keyboard: Keyboard = field(default_factory=Keyboard)
    size: tuple[int, int] = (1920, 1080)
    height: float = 850.0  # mm above the keys
    back: float = -150.0  # mm in front of the keyboard's front edge (negative: over the player)
    focal: float = 1500.0  # px
    side: float = 0.0  # mm off the keyboard's middle, along it
    yaw: float = 0.0  # degrees the image is turned about the view axis

    def __post_init__(self):
        w = self.keyboard.width
        self.position = np.array([w / 2 + self.side, self.back, self.height])
        forward = np.array([w / 2, WHITE_L / 2, 0.0]) - self.position
        self.forward = forward / np.linalg.norm(forward)
        right = np.cross(self.forward, [0.0, 1.0, 0.0])
        right /= np.linalg.norm(right)
        up = np.cross(right, self.forward)
        a = np.radians(self.yaw)
        self.right = np.cos(a) * right + np.sin(a) * up
        self.up = np.cross(self.right, self.forward)
        # fit the keyboard's width into 94% of the frame
        span = np.ptp(self.project(np.c_[self.keyboard.corners(), np.zeros(4)])[:, 0])
        self.focal *= 0.94 * self.size[0] / span

    def project(self, xyz: np.ndarray) -> np.ndarray:
        """(n, 3) mm -> (n, 3): x, y pixels, and depth as MediaPipe gives it: relative to
        the first point (the wrist), larger = farther, in units of the image width."""
        p = np.asarray(xyz, float) - self.position
        depth = p @ self.forward
        u = self.size[0] / 2 + self.focal * (p @ self.right) / depth
        v = self.size[1] / 2 - self.focal * (p @ self.up) / depth
        z = (depth - depth[0]) * self.focal / (depth[0] * self.size[0])
        return np.c_[u, v, z]

    @classmethod
    def random(cls, rng: np.random.Generator) -> Camera:
        """Another mounting: higher or lower, further over the player or over the keys,
        off to one side and turned a little, at 720p or 1080p."""
        size = (1280, 720) if rng.random() < 0.4 else (1920, 1080)
        return cls(
            size=size,
            height=rng.uniform(650.0, 1150.0),
            back=rng.uniform(-320.0, 40.0),
            side=rng.uniform(-150.0, 150.0),
            yaw=rng.uniform(-6.0, 6.0),
        )

    def calibration(self) -> Calibration:
        corners = self.project(np.c_[self.keyboard.corners(), np.zeros(4)])[:, :2]
        return Calibration(self.size, corners, self.keyboard)


@dataclass(frozen=True)
class Noise:
    """What goes wrong in real detection, with its strength."""

    jitter_px: float = 0.0  # landmark position noise (sd)
    miss: float = 0.0  # share of hand detections missing
    occlude: float = 0.0  # share of fingertips hidden (reported near the finger's middle joint)
    calibration_px: float = 0.0  # error of the calibration corners (sd)
    clock_offset_s: float = 0.0  # camera clock minus MIDI clock
    swap: float = 0.0  # share of frames with the handedness labels swapped

    def scaled(self, k: float) -> Noise:
        """Every failure ``k`` times as strong (shares of frames or tips capped at 1)."""
        return Noise(
            jitter_px=k * self.jitter_px,
            miss=min(1.0, k * self.miss),
            occlude=min(1.0, k * self.occlude),
            calibration_px=k * self.calibration_px,
            clock_offset_s=k * self.clock_offset_s,
            swap=min(1.0, k * self.swap),
        )

    @classmethod
    def level(cls, strength: float) -> Noise:
        """One knob from none (0) to harsh (1); 0.5 is "moderate" (see docs/camera.md)."""
        s = strength
        return cls(
            jitter_px=8.0 * s,
            miss=0.2 * s,
            occlude=0.2 * s,
            calibration_px=12.0 * s,
            clock_offset_s=0.08 * s,
            swap=0.04 * s,
        )


# what issue 18 calls moderate: a decent webcam over the keys in a lit room
MODERATE = Noise(jitter_px=3.0, miss=0.03, occlude=0.05, calibration_px=4.0, clock_offset_s=0.04, swap=0.01)


def _smooth(a: float) -> float:
    a = min(max(a, 0.0), 1.0)
    return a * a * (3 - 2 * a)


class _HandModel:
    """One hand's fingertips and palm over time, from its notes."""

    def __init__(self, notes: list[PlayedNote], keyboard: Keyboard, side: str, style: HandStyle):
        self.style = style
        self.notes = sorted(notes, key=lambda n: n.onset)
        self.kb = keyboard
        self.sign = 1.0 if side == "right" else -1.0
        self.onsets = np.array([n.onset for n in self.notes])
        anchors: dict[float, list[float]] = {}
        for n in self.notes:
            anchors.setdefault(round(n.onset, 3), []).append(self.kb.centre_x(n.pitch) - self.offset(n.finger))
        self.anchor_t = np.array(sorted(anchors))
        self.anchor_x = np.array([np.mean(anchors[t]) for t in self.anchor_t])

    def offset(self, finger: int) -> float:
        return self.sign * (finger - 3) * self.style.spacing

    def hand_x(self, t: float) -> float:
        if len(self.anchor_t) == 0:
            return self.kb.width / 2 + self.sign * 200
        k = int(np.searchsorted(self.anchor_t, t, side="right"))
        if k == 0:
            return float(self.anchor_x[0])
        if k == len(self.anchor_t):
            return float(self.anchor_x[-1])
        t0, t1 = self.anchor_t[k - 1], self.anchor_t[k]
        start = max(t0, t1 - 0.3)  # the hand moves on shortly before it has to
        return float(
            self.anchor_x[k - 1]
            + (self.anchor_x[k] - self.anchor_x[k - 1]) * _smooth((t - start) / max(t1 - 0.02 - start, 1e-3))
        )

    def tips(self, t: float) -> np.ndarray:
        """(5, 3) fingertip positions (mm) at time t."""
        s = self.style
        hx = self.hand_x(t)
        rest_y = s.tip_y - s.curl
        tips = np.array([[hx + self.offset(f), rest_y if f > 1 else rest_y - 20.0, s.hover] for f in range(1, 6)])
        lo = np.searchsorted(self.onsets, t - 10.0)
        hi = np.searchsorted(self.onsets, t + s.reach_s)
        sink = np.zeros(5)  # how far each finger is pulled down by its pressing neighbours
        for n in self.notes[lo:hi]:
            if t > n.offset + s.lift_s:
                continue
            x, y = self.kb.press_point(n.pitch)
            tip = tips[n.finger - 1]
            if t < n.onset:  # on its way to the key
                a = _smooth((t - (n.onset - s.reach_s)) / s.reach_s)
                tip[0] += (x - tip[0]) * a
                tip[1] += (y - tip[1]) * a
                down = _smooth((t - (n.onset - s.press_s)) / s.press_s)
            elif t <= n.offset:
                tip[:2] = (x, y)
                down = 1.0
            else:  # released: lifting off
                tip[:2] = (x, y)
                down = 1.0 - _smooth((t - n.offset) / s.lift_s)
            tip[2] = s.hover + (s.dip - s.hover) * down
            for k in (n.finger - 2, n.finger):
                if 0 <= k < 5:
                    sink[k] = max(sink[k], s.sympathy * down)
        resting = tips[:, 2] == s.hover
        tips[resting, 2] += (s.dip - s.hover) * sink[resting]
        return tips

    def landmarks(self, t: float) -> np.ndarray:
        """(21, 3) MediaPipe-ordered points (mm)."""
        tips = self.tips(t)
        hx = self.hand_x(t)
        pts = np.zeros((21, 3))
        knuckle_y = tips[1:, 1].mean() - self.style.palm
        pts[0] = (hx + self.sign * 8.0, knuckle_y - 85.0, 55.0)  # wrist
        for f in range(2, 6):
            base = 4 * (f - 1) + 1
            mcp = np.array([hx + 0.75 * self.offset(f), knuckle_y, 48.0])
            tip = tips[f - 1]
            pts[base] = mcp
            pts[base + 1] = mcp + 0.45 * (tip - mcp) + (0, 0, 18.0)
            pts[base + 2] = mcp + 0.75 * (tip - mcp) + (0, 0, 10.0)
            pts[base + 3] = tip
        cmc = np.array([hx + self.offset(1) * 0.2, knuckle_y - 55.0, 40.0])
        tip = tips[0]
        pts[1] = cmc
        pts[2] = cmc + 0.4 * (tip - cmc) + (0, 0, 8.0)
        pts[3] = cmc + 0.72 * (tip - cmc) + (0, 0, 6.0)
        pts[4] = tip
        return pts


def render(
    notes: list[PlayedNote],
    camera: Camera,
    noise: Noise = Noise(),
    fps: float = 30.0,
    seed: int = 0,
    style: HandStyle | tuple[HandStyle, HandStyle] = HandStyle(),
) -> list[dict]:
    """Landmark stream frames ``{"t", "hands": [...]}`` covering the notes. ``style``: the
    player's hand (or the left and the right one)."""
    rng = np.random.default_rng(seed)
    styles = style if isinstance(style, tuple) else (style, style)
    hands = {
        side: _HandModel([n for n in notes if n.hand == side], camera.keyboard, side, s)
        for side, s in zip(("left", "right"), styles)
    }
    end = max(n.offset for n in notes) + 0.5
    frames = []
    for k in range(int(end * fps) + 1):
        t = k / fps
        out = []
        for side, model in hands.items():
            if not model.notes or rng.random() < noise.miss:
                continue
            pts = camera.project(model.landmarks(t))
            for tip in (4, 8, 12, 16, 20):
                if rng.random() < noise.occlude:  # the tip is hidden: the detector guesses near the DIP joint
                    pts[tip, :2] = pts[tip - 1, :2] + rng.normal(0, 6.0, 2)
                    pts[tip, 2] = pts[tip - 1, 2]
            if noise.jitter_px:
                pts[:, :2] += rng.normal(0, noise.jitter_px, (21, 2))
                # depth is the detector's weakest output: twice the jitter, in image widths
                pts[:, 2] += rng.normal(0, 2 * noise.jitter_px / camera.size[0], 21)
            pts[:, :2] = np.round(pts[:, :2], 2)
            pts[:, 2] = np.round(pts[:, 2], 5)
            out.append({"handedness": side, "score": 0.95, "landmarks": pts.tolist()})
        if len(out) == 2 and rng.random() < noise.swap:
            out[0]["handedness"], out[1]["handedness"] = out[1]["handedness"], out[0]["handedness"]
        frames.append({"t": round(t + noise.clock_offset_s, 4), "hands": out})
    return frames


def noisy_calibration(camera: Camera, noise: Noise, seed: int = 0) -> Calibration:
    """The calibration a user would have: the true keyboard outline moved as a whole (a
    shift of ``calibration_px`` sd, and the rotation and scale that move its ends by as
    much), the way a calibration fitted to all the keys errs. Independent errors at four
    clicked corners are worse: on a long thin keyboard they bend the middle by a key."""
    true = camera.calibration()
    rng = np.random.default_rng(seed + 1)
    sd = noise.calibration_px
    centre = true.corners.mean(0)
    half = np.ptp(true.corners[:, 0]) / 2
    angle, scale = rng.normal(0, sd / half), 1 + rng.normal(0, sd / half)
    c, s = np.cos(angle), np.sin(angle)
    moved = (true.corners - centre) @ np.array([[c, -s], [s, c]]).T * scale + centre + rng.normal(0, sd, 2)
    return Calibration(true.image_size, moved, true.keyboard)
