"""Causal log-mel frames, computed block by block.

A frame covers the N_FFT samples that end at its time stamp, so a frame never uses sound
after its stamp; feeding a signal in any block sizes gives the same frames as feeding it
whole (training and file reading take the whole signal, live input takes device blocks).
"""

from __future__ import annotations

import numpy as np

SR = 22050  # every signal is resampled to this rate
N_FFT = 2048  # 93 ms: resolves the bass's harmonics
HOP = 256  # 11.6 ms between frames
N_MELS = 229
FMIN, FMAX = 30.0, 8000.0
FRAME_S = HOP / SR
CHUNK = 256  # frames transformed at a time


def mel_basis():
    """The mel filterbank the network was trained with, transposed ((N_FFT // 2 + 1,
    N_MELS), sparse: each band spans a few FFT bins)."""
    import librosa
    from scipy import sparse

    basis = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX).astype(np.float32)
    return sparse.csr_matrix(basis.T)


_WINDOW = np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann, as librosa's


def frame_time(index: int | np.ndarray) -> float | np.ndarray:
    """Audio time (s) at the end of frame ``index``: when its samples are all in."""
    return (np.asarray(index) * HOP + N_FFT) / SR


def log_mel(samples: np.ndarray, basis) -> np.ndarray:
    """(frames, N_MELS) log-mel magnitudes of every full frame in ``samples`` (mono, SR),
    frame i covering samples [i*HOP, i*HOP + N_FFT)."""
    from scipy.fft import rfft

    n = 1 + (len(samples) - N_FFT) // HOP if len(samples) >= N_FFT else 0
    out = np.zeros((max(n, 0), N_MELS), np.float32)
    if n <= 0:
        return out
    frames = np.lib.stride_tricks.sliding_window_view(samples.astype(np.float32, copy=False), N_FFT)[::HOP]
    for s in range(0, n, CHUNK):  # in pieces that stay in cache: a whole file at once thrashes memory
        mag = np.abs(rfft(frames[s : s + CHUNK] * _WINDOW, axis=1))
        out[s : s + CHUNK] = np.log1p(1000.0 * (mag @ basis))
    return out


class Spectrogram:
    """Streaming log-mel: ``push`` samples, get the frames they complete."""

    def __init__(self, basis=None):
        self.basis = mel_basis() if basis is None else basis
        self._buf = np.zeros(0, np.float32)
        self.frames_out = 0  # index of the next frame

    def push(self, samples: np.ndarray) -> np.ndarray:
        self._buf = np.concatenate([self._buf, samples.astype(np.float32, copy=False)])
        out = log_mel(self._buf, self.basis)
        if len(out):
            self._buf = self._buf[len(out) * HOP :]
            self.frames_out += len(out)
        return out
