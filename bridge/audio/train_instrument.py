"""`pianobridge train audio-instrument`: fit the piano check (``bridge.audio.instrument``).

Every MIDI performance in a folder (the bundled ones: scores/performances) is rendered with
FluidSynth as each General MIDI piano (programs 0-3) and as each of SUSTAINED's bowed,
blown, sung, organ and synthesised sounds, with both TRAIN_SOUNDFONTS, cut into
SEGMENT_S pieces, three quarters of them put through a random room and microphone
(`render.room`). A logistic regression over ``envelope_features`` tells the two apart.
Plucked and struck instruments other than the piano (harpsichord, guitar, vibraphone) are
neither: their notes decay as a piano's do, and following them does no harm. TimGM6mb is
never used here: the held-out figures are on it, with every performance.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from bridge.audio.features import log_mel, mel_basis
from bridge.audio.instrument import (
    MAX_SEGMENTS,
    MODEL,
    N_FEATURES,
    REFUSE_LOGODDS,
    envelope_features,
    logodds,
    segments,
)
from bridge.audio.render import fluidsynth_render, room
from bridge.audio.train import TRAIN_SOUNDFONTS
from bridge.errors import UserError

PIANOS = (0, 1, 2, 3)  # acoustic grand, bright, electric grand, honky-tonk
# organs, accordion, harmonica; bowed strings and ensembles; voices; brass; reeds; flutes; synth leads, pads
SUSTAINED = (16, 19, 20, 21, 22, 40, 41, 42, 44, 48, 49, 50, 52, 53, 56, 57, 60, 61, 64, 65, 68, 71, 73, 74, 80,
             81, 89, 90)  # fmt: skip
PLUCKED = (6, 11, 24, 46)  # reported, not trained on: harpsichord, vibraphone, guitar, harp
UNSEEN = "/usr/share/sounds/sf2/TimGM6mb.sf2"


def as_program(midi: str | os.PathLike, program: int, out: str) -> None:
    """A copy of ``midi`` played by General MIDI ``program`` on every channel it uses."""
    import mido

    m = mido.MidiFile(midi)
    for track in m.tracks:
        for msg in [x for x in track if x.type == "program_change"]:
            track.remove(msg)
        for ch in sorted({x.channel for x in track if hasattr(x, "channel")}):
            track.insert(0, mido.Message("program_change", channel=ch, program=program))
    m.save(out)


def rendered_features(midi: str, program: int, soundfont: str, seed: int) -> np.ndarray:
    """(segments, N_FEATURES): ``midi`` rendered as ``program``, three pieces in four
    through a random room."""
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "p.mid")
        as_program(midi, program, path)
        x = fluidsynth_render(path, soundfont)
    basis = mel_basis()
    out = []
    for y in segments(x, limit=None):
        f = envelope_features(log_mel(room(y, rng) if rng.random() < 0.75 else y, basis))
        if f is not None:
            out.append(f)
    return np.array(out, np.float32).reshape(-1, N_FEATURES)


def examples(
    midis: list[Path], programs: tuple[int, ...], soundfonts: tuple[str, ...], workers: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features of every rendering of every performance as every program: per segment, its
    features, its program and the rendering it comes from."""
    from rich.progress import track

    jobs = [
        (str(m), p, sf, i)
        for i, (sf, p, m) in enumerate((s, p, m) for s in soundfonts for p in programs for m in midis)
    ]
    with ProcessPoolExecutor(workers) as ex:
        futs = [ex.submit(rendered_features, *j) for j in jobs]
        done = [f.result() for f in track(futs, description=f"rendering {len(jobs)}")]
    x = np.concatenate(done)
    prog = np.concatenate([np.full(len(f), j[1]) for f, j in zip(done, jobs, strict=True)])
    rendering = np.concatenate([np.full(len(f), i) for i, f in enumerate(done)])
    return x, prog, rendering


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Class-balanced L2 logistic regression on standardised features: mean, scale, w, b."""
    from scipy.optimize import minimize

    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / scale
    weight = np.where(y == 1, 0.5 / max(y.mean(), 1e-9), 0.5 / max(1 - y.mean(), 1e-9)) / len(y)

    def loss(p: np.ndarray) -> tuple[float, np.ndarray]:
        s = z @ p[:-1] + p[-1]
        # log(1 + exp(-s)) for pianos, log(1 + exp(s)) for the rest, stably
        m = np.where(y == 1, -s, s)
        nll = np.logaddexp(0, m)
        g = weight * np.where(y == 1, -1, 1) / (1 + np.exp(-m))
        return float(weight @ nll + l2 * p[:-1] @ p[:-1]), np.append(z.T @ g + 2 * l2 * p[:-1], g.sum())

    p = minimize(loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B").x
    return mean.astype(np.float32), scale.astype(np.float32), p[:-1].astype(np.float32), float(p[-1])


def report(odds: np.ndarray, prog: np.ndarray, rendering: np.ndarray, label: str, log=print) -> None:
    """Per group of programs, over whole renderings as `follow` judges a file (the mean over
    its first MAX_SEGMENTS pieces): the lowest and median log-odds, and the share refused."""
    files = np.unique(rendering)
    mean = np.array([odds[rendering == r][:MAX_SEGMENTS].mean() for r in files])
    prog = np.array([prog[rendering == r][0] for r in files])
    for name, group in (("pianos", PIANOS), ("sustained", SUSTAINED), ("plucked", PLUCKED)):
        o = mean[np.isin(prog, group)]
        if len(o):
            log(
                f"{label} {name}: {len(o)} renderings, log-odds min {o.min():.1f} median {np.median(o):.1f} "
                f"max {o.max():.1f}, refused {np.mean(o < REFUSE_LOGODDS):.3f}"
            )


def instrument_command(args: argparse.Namespace) -> int:
    """CLI entry: `pianobridge train audio-instrument MIDI_FOLDER [--out model/audio_instrument.npz]`."""
    folder = Path(args.pig)
    midis = sorted(folder.glob("*.mid")) if folder.is_dir() else []
    if not midis:
        raise UserError(f"no MIDI performances (*.mid) in {folder}")
    x, prog, rendering = examples(midis, PIANOS + SUSTAINED, TRAIN_SOUNDFONTS, args.workers)
    y = np.isin(prog, PIANOS).astype(float)
    mean, scale, w, b = fit_logistic(x, y)
    report(logodds(x, mean, scale, w, b), prog, rendering, "training")
    xu, pu, ru = examples(midis, PIANOS + SUSTAINED + PLUCKED, (UNSEEN,), args.workers)
    report(logodds(xu, mean, scale, w, b), pu, ru, "TimGM6mb (unseen)")
    out = Path(args.out or MODEL)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, mean=mean, scale=scale, w=w, b=np.float32(b))
    print(f"pianobridge: {len(y)} segments ({y.mean():.2f} piano); wrote {out}")
    return 0
