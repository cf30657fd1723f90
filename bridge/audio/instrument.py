"""Is this a piano? A check on an audio file before it is followed.

The note detector is trained on pianos only; played a violin, a flute or an organ it still
hears notes (a bowed note's vibrato as fresh strikes, a held one as nothing), and the
follower turns them into hundreds of false corrections. What sets a piano apart is how its
sound moves: every note starts with a jump and then only decays, while a bowed, blown or
held note swells, wavers and holds. ``envelope_features`` measures that on the log-mel
frames the detector uses; a logistic regression (``model/audio_instrument.npz``, trained by
`pianobridge train audio-instrument` on renderings of the bundled performances) turns it
into the odds of a piano. Only a recording that is clearly not a piano is refused; live
sound (``InstrumentWatch``) is judged once, on its first half minute of notes, and only
said to be no piano.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bridge.audio.features import SR, log_mel, mel_basis
from bridge.errors import UserError

MODEL = Path(__file__).resolve().parents[2] / "model" / "audio_instrument.npz"
SEGMENT_S = 15.0  # the check looks at the sound in pieces this long ...
MAX_SEGMENTS = 8  # ... the first two minutes
LAGS = (1, 4, 16)  # frames over which the level changes are measured (12 ms to 0.19 s)
QUANTILES = (2, 10, 25, 50, 75, 90, 98)
N_FEATURES = len(LAGS) * (len(QUANTILES) + 2) + 2
# refused where the mean log-odds of a piano over the segments is under this: 4 below
# every piano rendering in training and on the unseen soundfont (docs/audio.md)
REFUSE_LOGODDS = -3.0
# live, the first LIVE_SEGMENTS pieces in which the detector heard LIVE_NOTES notes or more
# are judged (talk and room noise between pieces are not)
LIVE_SEGMENTS, LIVE_NOTES = 2, 8


def envelope_features(mel: np.ndarray) -> np.ndarray | None:
    """(N_FEATURES,) features of (frames, bands) log-mel frames (``features.log_mel``), or
    None where too little of it sounds to tell: for each lag, quantiles of the level
    changes where a band sounds and the share of its rises (and falls) made in jumps;
    how the changes of neighbouring bands go together (a vibrato moves energy from one to
    the next); and how much of the spectrum sounds."""
    lev = mel.T
    floor = np.percentile(lev, 20, axis=1, keepdims=True)  # each band's background
    sounding = (lev > floor + 1.5) & (lev > lev.max() - 5)
    out = []
    for lag in LAGS:
        d = lev[:, lag:] - lev[:, :-lag]
        d = d[sounding[:, lag:] | sounding[:, :-lag]]
        if len(d) < 100:
            return None
        out += list(np.percentile(d, QUANTILES))
        up, down = d[d > 0], -d[d < 0]
        jump = 0.7 * np.sqrt(lag)
        out += [up[up > jump].sum() / max(up.sum(), 1e-9), down[down > jump].sum() / max(down.sum(), 1e-9)]
    d = (lev[:, 1:] - lev[:, :-1]) * sounding[:, 1:]
    out.append((d[:-1] * d[1:]).sum() / np.sqrt((d[:-1] ** 2).sum() * (d[1:] ** 2).sum() + 1e-9))
    out.append(sounding.mean())
    return np.array(out, np.float32)


def segments(samples: np.ndarray, limit: int | None = MAX_SEGMENTS) -> list[np.ndarray]:
    """The signal (mono, SR) in SEGMENT_S pieces (a last piece of at least half that length
    counts), silent ones left out."""
    seg = int(SEGMENT_S * SR)
    out = []
    for s in range(0, max(len(samples) - seg // 2, 1), seg):
        y = samples[s : s + seg]
        if len(y) >= seg // 2 and np.abs(y).max() > 1e-3:
            out.append(y)
        if limit and len(out) == limit:
            break
    return out


def logodds(features: np.ndarray, mean: np.ndarray, scale: np.ndarray, w: np.ndarray, b: float) -> np.ndarray:
    """(n, N_FEATURES) -> (n,) log-odds of a piano under the regression (mean, scale, w, b)."""
    return ((features - mean) / scale) @ w + b


class InstrumentCheck:
    """The trained logistic regression over ``envelope_features``."""

    def __init__(self, path: str | os.PathLike = MODEL):
        try:
            w = np.load(path)
            self.mean, self.scale, self.w, self.b = w["mean"], w["scale"], w["w"], float(w["b"])
        except (OSError, KeyError, ValueError) as e:
            raise UserError(f"not a usable instrument check: {path} ({type(e).__name__})") from None
        if self.w.shape != (N_FEATURES,):
            raise UserError(f"not a usable instrument check: {path} (made for other features)")
        self.basis = mel_basis()

    def segment_logodds(self, y: np.ndarray) -> float | None:
        """Log-odds of a piano for one piece (mono, SR); None where too little of it sounds."""
        f = envelope_features(log_mel(y, self.basis))
        return None if f is None else float(logodds(f[None], self.mean, self.scale, self.w, self.b)[0])

    def piano_logodds(self, samples: np.ndarray) -> float | None:
        """Mean log-odds of a piano over the first MAX_SEGMENTS pieces of ``samples``; None
        where nothing in it sounds enough to tell."""
        odds = [o for y in segments(samples) if (o := self.segment_logodds(y)) is not None]
        return float(np.mean(odds)) if odds else None


class InstrumentWatch:
    """The check on live sound, fed block by block: the mean log-odds of a piano over the
    first LIVE_SEGMENTS pieces of SEGMENT_S in which the detector heard notes, given once."""

    def __init__(self, check: InstrumentCheck, notes: int = 0):
        self.check = check
        self.blocks: list[np.ndarray] = []
        self.size = 0
        self.notes_before = notes  # notes heard before the piece being collected
        self.odds: list[float] = []

    def push(self, block: np.ndarray, notes: int) -> float | None:
        """Take a block (mono, SR) and the count of notes heard so far; the verdict (mean
        log-odds) when it is reached, else None (and always None after it)."""
        if len(self.odds) == LIVE_SEGMENTS:
            return None
        self.blocks.append(block)
        self.size += len(block)
        if self.size < SEGMENT_S * SR:
            return None
        if notes - self.notes_before >= LIVE_NOTES:
            odds = self.check.segment_logodds(np.concatenate(self.blocks))
            if odds is not None:
                self.odds.append(odds)
        self.blocks, self.size, self.notes_before = [], 0, notes
        return float(np.mean(self.odds)) if len(self.odds) == LIVE_SEGMENTS else None


def require_piano(samples: np.ndarray, name: str) -> None:
    """UserError for a recording that is clearly not a piano."""
    odds = InstrumentCheck().piano_logodds(samples)
    if odds is not None and odds < REFUSE_LOGODDS:
        raise UserError(f"{name} does not sound like a piano ({not_piano(odds)}): pianobridge follows pianos")


def not_piano(odds: float) -> str:
    """Why a sound was taken for no piano."""
    return f"its notes swell and hold instead of decaying; piano log-odds {odds:.1f}"
