"""Key presses and releases from audio frames, causally, with the shipped network.

The network (model/audio.onnx, trained by `pianobridge train audio`) gives per-key onset,
sounding and velocity estimates for each frame once it has seen LOOKAHEAD frames after
it. ``NoteDetector`` turns them into the engine's ``NoteOn``/``NoteOff`` input events
frame by frame, each with the audio time at which it was decided (``decided``).

Score-informed: ``decide`` takes the pitches the follower expects next. An expected key
needs less onset evidence than an unexpected one, and an unexpected key an octave, a
twelfth or two octaves above a sounding key (where its harmonics are), or an octave below
it, needs more: a clearly struck wrong note still comes out as a wrong note. An expected
key that would not have passed as an unexpected one comes out as a faint press
(``NoteOn.sure`` False), which the engine believes only as the note the score expects.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bridge.audio.features import HOP, N_FFT, N_MELS, SR, frame_time
from bridge.errors import UserError
from bridge.events import NoteOff, NoteOn

LOWEST, KEYS = 21, 88
CONTEXT = 12  # frames the network's valid convolutions eat in time (9 before a frame, the frame, LOOKAHEAD)
LOOKAHEAD = 3  # frames after a frame the network sees before it decides on it (35 ms)
MODEL = Path(__file__).resolve().parents[2] / "model" / "audio.onnx"
HARMONICS = (12, 19, 24)  # semitones from a sounding key to its 2nd, 3rd and 4th harmonic
# where an unexpected key is suspect while a key sounds: its harmonics, and an octave below
# (the network's commonest confusion after harmonics)
SUSPECT = HARMONICS + (-12,)
# what the follower expects next: pitches, or pitches with when each is due (audio time, s;
# nan where not known), which lets a key due now pass the gate on less evidence
Expected = Collection[int] | Mapping[int, float]
GATE = Path(__file__).resolve().parents[2] / "model" / "audio_gate.npz"
HISTORY = 12  # frames of network outputs the gate looks back over (139 ms)
# seconds of onset estimates kept to tell a missed note from one not heard
EVIDENCE_FRAMES = int(8.0 * SR / HOP)
SINCE_CAP_S = 2.0  # "struck long ago" for the gate


@dataclass(frozen=True)
class Thresholds:
    """Onset probabilities a key must reach: ``expected`` for keys the follower expects,
    ``harmonic`` for unexpected keys where a sounding note's harmonics lie (or an octave
    below it), ``near`` for other unexpected keys a tone or a semitone from an expected one
    (where wrong notes land), ``other`` for the rest; ``release`` the sounding probability
    below which a key is up; a key struck again within ``repeat_s`` is the same press (the
    onset estimate often fires twice on one note). A key that passes must then convince the
    gate (``Gate``) with probability ``gate_expected`` (expected keys) or ``gate_other``
    (any other); an expected key whose note is due within ``due_s`` of the onset, by the
    follower's tempo, needs only ``gate_due`` (the gate's doubts are mostly second detections
    and harmonics, which come when the key is not due), and an unexpected key a tone or a
    semitone from such a key, itself not struck, ``gate_near_due`` (a wrong note played in
    its place)."""

    expected: float = 0.1
    near: float = 0.15
    other: float = 0.7
    harmonic: float = 0.85
    release: float = 0.4
    repeat_s: float = 0.1
    gate_expected: float = 0.3
    gate_other: float = 0.85
    gate_due: float = 0.1
    due_s: float = 0.08
    gate_near_due: float = 0.6


class Network:
    """The ONNX network: log-mel frames in, per-key probabilities out (no torch needed)."""

    def __init__(self, path: str | os.PathLike = MODEL, threads: int = 1):
        import onnxruntime as ort

        if not Path(path).is_file():
            raise UserError(f"audio model not found: {path} (`pianobridge train audio` writes it)")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types for a bad file
            raise UserError(f"not a usable audio model: {path} ({type(e).__name__})") from None

    def __call__(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(n + CONTEXT, N_MELS) frames -> onset, sounding, velocity (n, 88) for the frames
        CONTEXT - LOOKAHEAD .. n + CONTEXT - LOOKAHEAD - 1 of the input."""
        logits = self.session.run(None, {"frames": frames[None].astype(np.float32)})[0][0]
        p = 1 / (1 + np.exp(-logits))
        return p[:, :KEYS], p[:, KEYS : 2 * KEYS], p[:, 2 * KEYS :]


class Gate:
    """A second look at each key the thresholds let through: a small network over what the
    detector's own frame-by-frame network cannot see (the key's and its fundamentals' last
    half second: when each was last struck and how hard, whether it still sounds) gives
    the probability that the strike is a real key press, not the network firing again on
    a sounding note or on a harmonic of one (``pianobridge train audio-gate``)."""

    def __init__(self, path: str | os.PathLike = GATE):
        try:
            w = np.load(path)
            self.mean, self.scale = w["mean"], w["scale"]
            self.layers = [(w[f"w{i}"], w[f"b{i}"]) for i in range(3)]
        except (OSError, KeyError, ValueError) as e:
            raise UserError(f"not a usable audio gate: {path} ({type(e).__name__})") from None

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """(n, features) as ``NoteDetector._gate_features`` makes them -> (n,) probabilities that each strike is real."""
        h = (features - self.mean) / self.scale
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return 1 / (1 + np.exp(-h[:, 0]))


# keys whose state the gate reads beside a key's own: its fundamentals (an octave, a twelfth
# and two octaves below) and the key an octave above (the ghost an octave below a note)
GATE_RELATIVES = (-12, -19, -24, 12)


class NoteDetector:
    """Frames in (in order, any number at a time), network outputs queued per frame;
    ``decide`` turns the next frame's outputs into note events."""

    CHUNK = 2048  # frames per network call when many are waiting (a file)

    def __init__(self, network: Network, thresholds: Thresholds = Thresholds(), gate: Gate | None = None):
        self.net, self.th, self.gate = network, thresholds, gate
        self._ctx = np.zeros((0, N_MELS), np.float32)  # frames kept for the next call's context
        self._rows: deque[tuple[np.ndarray, np.ndarray, np.ndarray]] = deque()
        self._next = 0  # index of the next frame to decide
        self._pushed = 0  # frames pushed so far
        self.sounding: dict[int, float] = {}  # pitch -> onset time, keys down now
        self._armed = np.ones(KEYS, bool)
        self._low = np.zeros(KEYS, int)  # consecutive frames under the release threshold
        self._struck = np.full(KEYS, -(10**9))  # frame of each key's last onset
        self.decided: dict[tuple[float, int], float] = {}  # (onset t, pitch) -> when decided
        # the gate's view of the past, from the network's outputs alone (not from what was
        # decided, so that it reads the same whatever the thresholds and the score say)
        self._past_on = np.zeros((HISTORY, KEYS), np.float32)
        self._past_fr = np.zeros((HISTORY, KEYS), np.float32)
        self._rise = np.full(KEYS, -(10**9))  # frame the onset estimate last rose past 0.5
        self._rise_vel = np.zeros(KEYS, np.float32)
        self._fallen = np.ones(KEYS, bool)  # it fell under 0.25 since
        self._onsets = np.zeros((EVIDENCE_FRAMES, KEYS), np.float32)  # frame j in row j % EVIDENCE_FRAMES
        self._kept = 0  # frames written there so far
        # (frame, key index, features) of every key the thresholds let through, when a
        # list: the gate's training examples
        self.candidates: list[tuple[int, int, np.ndarray]] | None = None

    def push(self, frames: np.ndarray) -> None:
        """Run the network over new frames; their outputs wait for ``decide``."""
        if not len(frames):
            return
        if self._pushed == 0:  # silence before the start stands in for the missing past
            self._ctx = np.full((CONTEXT - LOOKAHEAD, N_MELS), frames[0].min(), np.float32)
        buf = np.concatenate([self._ctx, frames])
        self._pushed += len(frames)
        for s in range(0, max(len(buf) - CONTEXT, 0), self.CHUNK):
            on, fr, ve = self.net(buf[s : s + self.CHUNK + CONTEXT])
            self._rows.extend(zip(on, fr, ve, strict=True))
        self._ctx = buf[-CONTEXT:] if len(buf) > CONTEXT else buf

    def ready(self) -> int:
        """Frames whose outputs are waiting for ``decide``."""
        return len(self._rows)

    def decide(self, expected: Expected = ()) -> list[NoteOn | NoteOff]:
        """The events of the next waiting frame, given the pitches the follower expects."""
        on, fr, ve = self._rows.popleft()
        j = self._next
        self._next += 1
        t_frame = float(frame_time(j))
        decided_at = float(frame_time(j + LOOKAHEAD))
        harmonic = np.zeros(KEYS, bool)
        for p in self.sounding:
            for h in SUSPECT:
                if 0 <= p + h - LOWEST < KEYS:
                    harmonic[p + h - LOWEST] = True
        wanted = np.zeros(KEYS, bool)
        for p in expected:
            if 0 <= p - LOWEST < KEYS:
                wanted[p - LOWEST] = True
        near = np.zeros(KEYS, bool)
        for d in (1, 2):
            near[d:] |= wanted[:-d]
            near[:-d] |= wanted[d:]
        low = fr < self.th.release
        self._low = np.where(low, self._low + 1, 0)
        # each key's bar, but for an unexpected key where a harmonic lies (known only as the
        # keys below it are decided)
        unexpected = np.where(near, self.th.near, self.th.other)
        bar = np.where(wanted, self.th.expected, unexpected)
        hits = []
        rested = (j - self._struck) * HOP / SR >= self.th.repeat_s
        for k in np.nonzero((on >= np.minimum(bar, self.th.harmonic)) & self._armed & rested)[0]:  # low keys first
            need = self.th.harmonic if harmonic[k] and not wanted[k] else bar[k]
            if on[k] >= need:
                hits.append(k)
                for h in HARMONICS:  # a key struck now puts its harmonics under suspicion at once
                    if k + h < KEYS:
                        harmonic[k + h] = True
        # the bar each key faces as an unexpected one, now that the keys struck are known: an
        # octave below one of them is suspect too
        struck = set(hits)
        alone = np.where(harmonic, self.th.harmonic, unexpected)
        alone[[k - 12 for k in struck if k >= 12]] = self.th.harmonic
        hits = [k for k in hits if wanted[k] or on[k] >= alone[k]]
        # expected keys that would not have passed as unexpected ones (here, or at the gate
        # below): believed only as the note the score expects
        faint = {k for k in hits if wanted[k] and on[k] < alone[k]}
        if hits and (self.gate is not None or self.candidates is not None):
            feats = self._gate_features(np.array(hits), on, fr, ve, j)
            if self.candidates is not None:
                self.candidates.extend(zip([j] * len(hits), hits, feats, strict=True))
            if self.gate is not None:
                real = self.gate(feats)
                as_unexpected = [self._gate_bar(k, False, expected, t_frame, struck) for k in hits]
                faint |= {k for k, r, b in zip(hits, real, as_unexpected, strict=True) if wanted[k] and r < b}
                bars = [
                    self._gate_bar(k, True, expected, t_frame, struck) if wanted[k] else b
                    for k, b in zip(hits, as_unexpected, strict=True)
                ]
                hits = [k for k, r, b in zip(hits, real, bars, strict=True) if r >= b]
        self._remember(on, fr, ve, j)
        self._armed = np.where(on < 0.5 * bar, True, self._armed)
        self._armed[hits] = False
        self._struck[hits] = j
        t_on = round(t_frame - HOP / SR / 2, 4)  # the onset lies in the last hop of this frame's window
        out: list[NoteOn | NoteOff] = []
        for k in hits:  # a key struck again ends its sounding note first
            p = int(k) + LOWEST
            if self.sounding.pop(p, None) is not None:
                out.append(NoteOff(t_on, p))
        for k in hits:
            p = int(k) + LOWEST
            out.append(NoteOn(t_on, p, int(np.clip(round(float(ve[k]) * 127), 1, 127)), sure=k not in faint))
            self.sounding[p] = t_on
            self.decided[(t_on, p)] = round(decided_at, 4)
        for p in [p for p in self.sounding if self._low[p - LOWEST] >= 2 and self.sounding[p] < t_on]:
            del self.sounding[p]
            out.append(NoteOff(round(t_frame, 4), p))
        return out

    def _gate_bar(self, k: int, wanted: bool, expected: Expected, t_frame: float, struck: Collection[int]) -> float:
        """The gate's bar for key index ``k`` (``wanted``: expected): lower where the key is
        due now, or for an unexpected key, where an expected key a tone or a semitone away is
        due now and not among the keys ``struck`` in this frame (a wrong note in its place)."""
        due = expected if isinstance(expected, Mapping) else {}
        onset = t_frame - HOP / SR / 2

        def due_now(i: int) -> bool:
            return abs(onset - due.get(i + LOWEST, math.nan)) <= self.th.due_s

        if wanted:
            return self.th.gate_due if due_now(k) else self.th.gate_expected
        if any(due_now(k + d) and k + d not in struck for d in (-2, -1, 1, 2)):
            return self.th.gate_near_due
        return self.th.gate_other

    def _gate_features(self, ks: np.ndarray, on: np.ndarray, fr: np.ndarray, ve: np.ndarray, j: int) -> np.ndarray:
        """(len(ks), 12 + 4 * len(GATE_RELATIVES)): for each key index, the network's outputs now and just
        before, and for it and its GATE_RELATIVES how long since each was last struck, how
        hard, and whether it sounds now."""
        po, pf = self._past_on, self._past_fr
        since = np.minimum((j - self._rise) * HOP / SR, SINCE_CAP_S)
        lo, hi = np.clip(ks - 1, 0, KEYS - 1), np.clip(ks + 1, 0, KEYS - 1)
        cols = [
            on[ks],
            po[-3:, ks].max(axis=0),  # rising through the last frames, or already up
            po[:-3, ks].max(axis=0),  # an earlier peak within the history
            pf[-4, ks],  # sounding before this onset
            fr[ks],
            ve[ks],
            since[ks],
            self._rise_vel[ks],
            np.maximum(on[lo], on[hi]),  # the neighbours' onsets (a smeared strike)
            ks / (KEYS - 1),
            np.full(len(ks), (on >= 0.5).sum() / 10),  # keys struck in this frame
            np.full(len(ks), (fr >= 0.5).sum() / 10),  # keys sounding
        ]
        for d in GATE_RELATIVES:
            r = ks + d
            ok = (r >= 0) & (r < KEYS)
            r = np.clip(r, 0, KEYS - 1)
            cols += [
                np.where(ok, on[r], 0.0),
                np.where(ok, fr[r], 0.0),
                np.where(ok, since[r], SINCE_CAP_S),
                np.where(ok, self._rise_vel[r], 0.0),
            ]
        return np.stack(cols, axis=1).astype(np.float32)

    def _remember(self, on: np.ndarray, fr: np.ndarray, ve: np.ndarray, j: int) -> None:
        rose = (on >= 0.5) & self._fallen
        self._rise[rose], self._rise_vel[rose] = j, ve[rose]
        self._fallen = (self._fallen & ~rose) | (on < 0.25)
        self._past_on = np.roll(self._past_on, -1, axis=0)
        self._past_fr = np.roll(self._past_fr, -1, axis=0)
        self._past_on[-1], self._past_fr[-1] = on, fr
        self._onsets[j % EVIDENCE_FRAMES] = on
        self._kept = j + 1

    def onset_peak(self, pitch: int, t_lo: float, t_hi: float) -> float | None:
        """The largest onset estimate of ``pitch``'s key over the decided frames with onset
        times in [``t_lo``, ``t_hi``] (audio time); None when none of them is held any more
        (or yet). Another thread may ask while frames are decided: a row being overwritten
        lies 8 s back, at the far end of what is held."""
        k = pitch - LOWEST
        half = HOP / SR / 2  # a frame's onset time lies half a hop before its end (``decide``)
        kept = self._kept
        first = max(int(np.ceil(((t_lo + half) * SR - N_FFT) / HOP)), kept - EVIDENCE_FRAMES + 1, 0)
        last = min(int(np.floor(((t_hi + half) * SR - N_FFT) / HOP)), kept - 1)
        if not 0 <= k < KEYS or last < first:
            return None
        return float(self._onsets[np.arange(first, last + 1) % EVIDENCE_FRAMES, k].max())

    def flush(self) -> list[NoteOff]:
        """Keys still sounding at the end of the audio."""
        t = float(frame_time(self._next)) if self._next else 0.0
        out = [NoteOff(t, p) for p in sorted(self.sounding)]
        self.sounding.clear()
        return out
