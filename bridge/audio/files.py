"""Audio files in: any format libsndfile reads (WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF,
...), any rate and channel count, as mono float32 at the detector's rate."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from bridge.audio.features import N_FFT, SR
from bridge.errors import UserError
from bridge.userfiles import read_bytes

MAX_AUDIO_BYTES = 1 << 30  # an hour of 48 kHz stereo 24-bit WAV is about 1 GB
MAX_SECONDS = 2 * 3600  # longer is not one performance
SILENT_DBFS = -60.0  # peak level under which a file holds nothing to follow
CLIPPED_SHARE = 0.01  # samples at full scale beyond this share: the recording clipped


MIDI_SUFFIXES = (".mid", ".midi", ".smf", ".kar")


def is_midi(path: str | os.PathLike) -> bool:
    """True for a file named as MIDI or starting like a Standard MIDI File (else it is
    taken for audio): a damaged ``.mid`` gets the MIDI reader's message, not the audio one."""
    if Path(path).suffix.lower() in MIDI_SUFFIXES:
        return True
    if not os.path.isfile(path):  # a pipe or device would block the peek: the reader refuses it
        return False
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"MThd"
    except OSError:
        return False  # the reader says what is wrong with it


def to_mono(x: np.ndarray, sr: int) -> np.ndarray:
    """(samples, channels) at ``sr`` -> mono float32 at SR (channels averaged, soxr resampling)."""
    import soxr

    mono = x.mean(axis=1) if x.ndim == 2 else x
    mono = mono.astype(np.float32, copy=False)
    return mono if sr == SR else soxr.resample(mono, sr, SR).astype(np.float32)


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
    """Mono float32 samples at SR and warnings (a clipped recording) for one line each.
    UserError for a file that is not audio, holds no sound or too little of it."""
    import soundfile as sf

    p = Path(path)
    data = read_bytes(p, "audio file", MAX_AUDIO_BYTES)
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            if f.frames > MAX_SECONDS * f.samplerate:
                raise UserError(f"audio file too long: {p} ({f.frames / f.samplerate / 60:.0f} minutes)")
            sr = f.samplerate
            x = f.read(dtype="float32", always_2d=True)
    except sf.LibsndfileError as e:
        raise UserError(f"not a readable audio or MIDI file: {p} ({e.error_string or e})") from None
    except (RuntimeError, TypeError, ValueError) as e:  # a truncated or damaged stream
        raise UserError(f"not a readable audio file: {p} ({e})") from None
    if len(x) == 0 or not np.isfinite(x).all():
        raise UserError(f"the audio file holds no usable samples: {p}")
    mono = to_mono(x, sr)
    if len(mono) < N_FFT:
        raise UserError(f"the audio file is too short to hold a note: {p} ({len(x) / sr * 1000:.0f} ms)")
    peak = float(np.abs(mono).max())
    if peak <= 10 ** (SILENT_DBFS / 20):
        raise UserError(f"the audio file is silent: {p} (peak {20 * np.log10(max(peak, 1e-12)):.0f} dBFS)")
    warnings = []
    clipped = float(np.mean(np.abs(x) >= 0.999))
    if clipped > CLIPPED_SHARE:
        warnings.append(f"{p.name}: {100 * clipped:.1f}% of the samples are at full scale (clipped recording)")
    return mono, warnings
