"""Render a score expressively with the trained network (numpy only) and write it as CSV or MIDI."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bridge.errors import UserError
from bridge.expression.features import N_FEATURES, Tree, note_features, phrase_tree
from bridge.expression.network import ExpressionNetwork, Scale, single_blas
from bridge.score import Score

MODEL_DIR = Path(__file__).resolve().parents[2] / "model"
DEFAULT_WEIGHTS = MODEL_DIR / "expression.npz"
GRACE_S = 0.07  # a grace note's sounding length (it has no notated duration)
MAX_NOTES = 50_000  # past this, a score is refused rather than rendered for minutes


@dataclass
class Inputs:
    """The score as the network reads it."""

    feats: np.ndarray
    tree: Tree
    beat: np.ndarray
    beat_bar: np.ndarray
    bar_phr: np.ndarray
    onset_q: np.ndarray
    duration_q: np.ndarray
    grace: np.ndarray


@dataclass
class Rendition:
    velocity: np.ndarray  # (N,) 1-127
    onset_s: np.ndarray  # (N,)
    duration_s: np.ndarray  # (N,)
    pedal: np.ndarray  # (N,) probability that the sustain pedal is down at the onset
    spq: np.ndarray  # (B,) seconds per quarter of each beat
    trend: np.ndarray  # (B,) beat loudness trend, in velocity


def load_network(path: str | Path | None = None) -> ExpressionNetwork:
    net = ExpressionNetwork.load(path or DEFAULT_WEIGHTS)
    if net.recipe.get("n_features") != N_FEATURES:
        raise UserError(f"expression weights are for another feature set: {path or DEFAULT_WEIGHTS}")
    return net


def score_inputs(score: Score) -> Inputs:
    if not score.notes:
        raise UserError("the score has no notes to render")
    if len(score.notes) > MAX_NOTES:
        raise UserError(f"the score has {len(score.notes)} notes; the expression model renders at most {MAX_NOTES}")
    tree = phrase_tree(score)
    return Inputs(
        note_features(score, tree), tree, tree.beat, tree.beat_measure, tree.measure_phrase,
        np.array([n.onset_q for n in score.notes]), np.array([n.duration_q for n in score.notes]),
        np.array([n.grace for n in score.notes], bool),
    )  # fmt: skip


def place(
    beat_start_q: np.ndarray, beat_len_q: np.ndarray, beat: np.ndarray, onset_q: np.ndarray,
    out_spq: np.ndarray, out_dev: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Each note's onset (s) and each beat's seconds per quarter from the network's beat tempo
    and timing deviation outputs: beat times from the tempo curve, each note placed in its
    beat and moved by its deviation."""
    spq = np.exp(out_spq * Scale.SPQ_STEP + Scale.SPQ_MID)
    span_q = np.diff(np.append(beat_start_q, beat_start_q[-1] + beat_len_q[-1]))
    beat_t = np.concatenate([[0.0], np.cumsum(spq * span_q)])[:-1]
    dev = np.clip(out_dev / Scale.DEV, -0.5, 0.5)
    onset = beat_t[beat] + (onset_q - beat_start_q[beat]) * spq[beat] + dev * spq[beat] * beat_len_q[beat]
    return onset, spq


def decode(inp: Inputs, out_b: np.ndarray, out_n: np.ndarray) -> Rendition:
    """Network outputs -> velocities and times (`place`), durations from articulation."""
    t = inp.tree
    b = inp.beat
    onset, spq = place(t.beat_start_q, t.beat_len_q, b, inp.onset_q, out_b[:, 0], out_n[:, 1])
    onset -= min(onset.min(), 0.0)
    # a grace note tied into its main note (a rolled chord written out) is held with it
    short = inp.grace & (inp.duration_q <= 0)
    dur = np.where(short, GRACE_S, np.exp(np.clip(out_n[:, 2], -4, 2)) * spq[b] * np.maximum(inp.duration_q, 1e-3))
    vel_n = out_b[b, 1] + out_n[:, 0]
    velocity = np.clip(np.round(Scale.VEL_MID + Scale.VEL_STEP * vel_n), 1, 127)
    pedal = 1.0 / (1.0 + np.exp(-out_n[:, 3]))
    trend = Scale.VEL_MID + Scale.VEL_STEP * out_b[:, 1]
    return Rendition(velocity, onset, np.maximum(dur, 0.02), pedal, spq, trend)


@single_blas
def render(score: Score, net: ExpressionNetwork, z: np.ndarray | None = None, inp: Inputs | None = None) -> Rendition:
    """One interpretation: ``z`` None is the central one (each member at the centre of its styles)."""
    inp = inp or score_inputs(score)
    z = net.centres() if z is None else z.astype(np.float32)
    out_b, out_n = net.forward(inp.feats, inp.beat, inp.beat_bar, inp.bar_phr, z)
    return decode(inp, out_b, out_n)


@single_blas
def interpretations(score: Score, net: ExpressionNetwork, seed: int | None, samples: int) -> list[Rendition]:
    """``samples`` renditions: the central one when no seed is given (then samples must be 1),
    else style vectors drawn with that seed from the styles pianists of one piece differ by
    (``ExpressionNetwork.draw``). An ensemble's members take turns (sample i is member i mod
    K): averaging them would average the styles away."""
    inp = score_inputs(score)
    if seed is None and samples == 1:
        return [render(score, net, None, inp)]
    rng = np.random.default_rng(0 if seed is None else seed)
    enc = net.encode_score(inp.feats, inp.beat, inp.beat_bar, inp.bar_phr)
    out = []
    for i in range(samples):
        k = i % net.members
        z = net.draw(k, rng)
        out.append(decode(inp, *net.forward(inp.feats, inp.beat, inp.beat_bar, inp.bar_phr, z, enc=enc, member=k)))
    return out


def write_csv(score: Score, rend: Rendition, path: str | Path) -> None:
    """The eval_expression.py contract: note_id,pass,velocity,onset_s,duration_s per score note."""
    with open(path, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["note_id", "pass", "velocity", "onset_s", "duration_s"])
        for n, v, o, d in zip(score.notes, rend.velocity, rend.onset_s, rend.duration_s):
            wr.writerow([n.note_id, n.pass_no, int(v), f"{o:.4f}", f"{d:.4f}"])


def write_midi(score: Score, rend: Rendition, path: str | Path) -> None:
    """The rendition as a one-track MIDI file, with the sustain pedal pressed where the model
    expects it (lifted and pressed again at each pedalled beat)."""
    import mido

    tpq, tempo = 480, 500_000  # ticks per quarter at 120 qpm: a tick is 1/960 s
    events: list[tuple[float, int, mido.Message]] = []
    for n, v, o, d in zip(score.notes, rend.velocity, rend.onset_s, rend.duration_s):
        events.append((o, 1, mido.Message("note_on", note=n.pitch, velocity=int(v))))
        events.append((o + d, 0, mido.Message("note_off", note=n.pitch, velocity=0)))
    t = score_inputs(score).tree
    first = np.full(t.n_beats, np.inf)
    np.minimum.at(first, t.beat, rend.onset_s)
    ped = np.zeros(t.n_beats)
    np.maximum.at(ped, t.beat, rend.pedal)
    for b in np.flatnonzero(ped > 0.5):
        events.append((max(first[b] - 0.01, 0.0), 0, mido.Message("control_change", control=64, value=0)))
        events.append((first[b] + 0.03, 2, mido.Message("control_change", control=64, value=127)))
    end = max(o + d for o, d in zip(rend.onset_s, rend.duration_s))
    events.append((end, 3, mido.Message("control_change", control=64, value=0)))
    events.sort(key=lambda e: (e[0], e[1]))
    mid = mido.MidiFile(ticks_per_beat=tpq)
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=tempo)])
    mid.tracks.append(track)
    now = 0
    for sec, _, msg in events:
        tick = int(round(sec * tpq * 1e6 / tempo))
        track.append(msg.copy(time=max(tick - now, 0)))
        now = max(tick, now)
    try:
        mid.save(path)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror}") from None
