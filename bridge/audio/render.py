"""Training audio: MIDI excerpts rendered with FluidSynth, augmented, turned into frames
and per-key targets. Used by `pianobridge train audio` (and its data are never
nasap-dev pieces: see ``training_pieces``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from scipy import signal

from bridge.audio.detector import KEYS, LOWEST
from bridge.audio.features import HOP, N_FFT, SR, log_mel, mel_basis
from bridge.errors import UserError
from bridge.events import Control, NoteOff, NoteOn
from bridge.midifile import read_performance

SUSTAIN_DOWN = 64


def fluidsynth_render(midi: str | os.PathLike, soundfont: str | os.PathLike, sr: int = SR) -> np.ndarray:
    """MIDI -> mono float32 samples at ``sr`` with the FluidSynth command-line synth, as
    the yardstick renders (gain 0.7, stereo mixed down)."""
    import soundfile as sf

    if shutil.which("fluidsynth") is None:
        raise UserError("fluidsynth is not installed (Debian: apt-get install fluidsynth)")
    if not Path(soundfont).is_file():
        raise UserError(f"soundfont not found: {soundfont} (Debian: apt-get install fluid-soundfont-gm)")
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "out.wav")
        p = subprocess.run(
            ["fluidsynth", "-ni", "-q", "-g", "0.7", "-r", str(sr), "-F", wav, str(soundfont), str(midi)],
            capture_output=True,
            text=True,
        )
        if p.returncode != 0 or not os.path.isfile(wav):
            raise UserError(f"fluidsynth could not render {midi}: {p.stderr.strip()[-200:]}")
        x, _ = sf.read(wav, dtype="float32", always_2d=True)
    return x.mean(axis=1)


def notes_of(events: list) -> tuple[list[tuple[float, float, float, int, int]], list[tuple[float, bool]]]:
    """(onset, key-up, sound-end, pitch, velocity) per note, the sound end held by the
    sustain pedal, and the pedal's (time, down) changes."""
    pedal = [(e.t, e.value >= SUSTAIN_DOWN) for e in events if isinstance(e, Control) and e.control == 64]
    ped_t = np.array([t for t, _ in pedal] or [0.0])
    ped_v = np.array([d for _, d in pedal] or [False])
    open_: dict[int, list[tuple[float, int]]] = {}
    notes = []
    end = max((e.t for e in events), default=0.0)
    for e in events:
        if isinstance(e, NoteOn) and e.velocity > 0:
            if e.pitch in open_ and open_[e.pitch]:  # a re-strike ends the sounding note
                on, v = open_[e.pitch].pop(0)
                notes.append((on, e.t, e.t, e.pitch, v))
            open_.setdefault(e.pitch, []).append((e.t, e.velocity))
        elif isinstance(e, NoteOff) and open_.get(e.pitch):
            on, v = open_[e.pitch].pop(0)
            notes.append((on, e.t, _pedal_end(e.t, ped_t, ped_v, end), e.pitch, v))
    for p, lst in open_.items():
        notes += [(on, end, end, p, v) for on, v in lst]
    return sorted(notes), pedal


def _pedal_end(t: float, ped_t: np.ndarray, ped_v: np.ndarray, end: float) -> float:
    i = np.searchsorted(ped_t, t, side="right") - 1
    if i < 0 or not ped_v[i]:
        return t
    later = np.nonzero(~ped_v[i + 1 :])[0]
    return float(ped_t[i + 1 + later[0]]) if len(later) else end


def targets(notes: list, n_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame, per-key onset (the first two frames whose window holds the onset),
    sounding (onset to the pedal-held sound end, capped at 4 s of decay) and onset
    velocity (0-1) targets, uint8."""
    onset = np.zeros((n_frames, KEYS), np.uint8)
    frame = np.zeros((n_frames, KEYS), np.uint8)
    vel = np.zeros((n_frames, KEYS), np.uint8)
    for on, _up, end, pitch, v in notes:
        k = pitch - LOWEST
        if not 0 <= k < KEYS:
            continue
        i = int(np.ceil((on * SR - N_FFT) / HOP))  # first frame whose end is at or after the onset
        i = max(i, 0)
        j = int(np.ceil((min(end, on + 4.0) * SR - N_FFT) / HOP))
        if i >= n_frames:
            continue
        if on >= 0:  # a note struck before the excerpt only sounds in it
            onset[i : i + 2, k] = 1
            vel[i : i + 2, k] = v
        frame[i : max(j, i + 2), k] = 1
    return onset, frame, vel


def room(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random room and microphone: EQ (shelves, a peak, band limits), reverb from a
    decaying noise tail, gain, and noise (white or pink) at a random SNR."""
    if rng.random() < 0.8:  # microphone colouring and EQ
        lo = rng.uniform(20, 150)
        hi = rng.uniform(5000, 10000)
        sos = signal.butter(2, [lo, hi], btype="band", fs=SR, output="sos")
        x = signal.sosfilt(sos, x).astype(np.float32)
        for _ in range(rng.integers(1, 4)):
            f0 = rng.uniform(100, 6000)
            g = rng.uniform(-9, 9)
            b, a = _peak(f0, g, rng.uniform(0.5, 3))
            x = signal.lfilter(b, a, x).astype(np.float32)
    if rng.random() < 0.6:  # reverb: exponentially decaying noise, RT60 0.2-1.5 s
        rt = rng.uniform(0.2, 1.5)
        n = int(rt * SR)
        tail = rng.standard_normal(n).astype(np.float32) * np.exp(-6.9 * np.arange(n) / n).astype(np.float32)
        tail = signal.sosfilt(signal.butter(1, rng.uniform(2000, 8000), fs=SR, output="sos"), tail)
        tail *= rng.uniform(0.1, 0.6) / (np.sqrt(np.sum(tail**2)) + 1e-9)
        ir = np.concatenate([[1.0], np.zeros(int(rng.uniform(0.005, 0.03) * SR)), tail]).astype(np.float32)
        x = signal.fftconvolve(x, ir)[: len(x)].astype(np.float32)
    x = x * np.float32(10 ** (rng.uniform(-24, 6) / 20) / (np.abs(x).max() + 1e-9))
    if rng.random() < 0.7:
        snr = rng.uniform(10, 45)
        noise = rng.standard_normal(len(x)).astype(np.float32)
        if rng.random() < 0.5:  # pink-ish
            noise = signal.lfilter([0.05, -0.05], [1, -0.99], noise).astype(np.float32)
        rms = np.sqrt(np.mean(x**2)) + 1e-9
        x = x + noise * np.float32(rms / (10 ** (snr / 20)) / (np.sqrt(np.mean(noise**2)) + 1e-9))
    return np.clip(x, -1, 1).astype(np.float32)


def _peak(f0: float, gain_db: float, q: float) -> tuple[np.ndarray, np.ndarray]:
    """RBJ peaking EQ biquad."""
    a = 10 ** (gain_db / 40)
    w = 2 * np.pi * f0 / SR
    alpha = np.sin(w) / (2 * q)
    b = np.array([1 + alpha * a, -2 * np.cos(w), 1 - alpha * a])
    den = np.array([1 + alpha / a, -2 * np.cos(w), 1 - alpha / a])
    return b / den[0], den / den[0]


def render_piece(midi: str, soundfont: str, seed: int, out_prefix: str, segment_s: float = 30.0) -> int:
    """Render a whole performance once, cut it into ``segment_s`` pieces, augment three
    quarters of them (each with its own room), and save each as ``out_prefix-K.npz``
    (features float16, targets uint8). Returns the number of segments."""
    rng = np.random.default_rng(seed)
    events = read_performance(midi)
    x = fluidsynth_render(midi, soundfont)
    notes, _ = notes_of(events)
    basis = mel_basis()
    seg = int(segment_s * SR)
    k = 0
    for start in range(0, max(len(x) - N_FFT, 1), seg):
        y = x[start : start + seg + N_FFT]
        if len(y) < 4 * N_FFT:
            break
        if rng.random() < 0.75:
            y = room(y, rng)
        feats = log_mel(y, basis)
        t0 = start / SR
        local = [
            (on - t0, up - t0, end - t0, p, v) for on, up, end, p, v in notes if end > t0 and on < t0 + segment_s + 1
        ]
        onset, frame, vel = targets(local, len(feats))
        np.savez(f"{out_prefix}-{k}.npz", x=feats.astype(np.float16), onset=onset, frame=frame, vel=vel)
        k += 1
    return k
