"""Training data for the expression model from (n)ASAP note alignments (training only).

Every performance of every score folder that the exclusion list allows (see
`bridge.asap`, which the follower's wide validation set uses too)
becomes per-note targets on the project's own unfolded score:

- velocity (0-127);
- a beat-level tempo curve, ``log`` seconds per quarter, through the performed onsets of the
  beats (a beat without a note is interpolated between its neighbours);
- the note's timing deviation inside its beat, in beats, against that curve;
- articulation, ``log(performed duration / (seconds per quarter * notated quarters))``;
- the sustain pedal (down at the note's onset).

Prepared arrays are cached in one ``.npz`` keyed by the exclusion list, this module's version
and the source of the code that makes them.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from bridge import asap
from bridge.errors import UserError
from bridge.expression.features import Tree, note_features, phrase_tree, played_targets
from bridge.expression.network import Scale
from bridge.musicxml import parse_score
from bridge.score import Score

ROOT = Path(__file__).resolve().parents[2]
# bump when targets or features change: the cache key changes with it (3: the 3/8 tree,
# 4: tempo terms held through rit. and a tempo, sf and fp only on their own notes, 5: written
# cresc. and dim. read as hairpins, 6: meno and più mosso held as a change of pace, 7: an
# upbeat bar opens the first phrase without counting as one of its bars, 9: how near the close
# the note is; 8 was a trial, never shipped; 11: voices ranked in their staff, notes under a
# held note, the end of a slur, the hand's reach to its next notes, an articulation for a grace
# note tied into its chord; 13: how soon the same key is struck again; 10 and 12 were trials;
# 14: the hand of each staff of a part on three or four staves, `musicxml.staff_hands`)
DATA_VERSION = 14
# ASAP folders that hold a Vienna 4x22 piece (evaluation only): Chopin op.10 no.3, op.38,
# Mozart K331 (any movement: a version of the same sonata) and Schubert D783
VIENNA_FOLDERS = ("Chopin/Etudes_op_10/3", "Chopin/Ballades/2", "Mozart/Piano_Sonatas/11-", "Schubert/D783")
MATCH_TOLERANCE_S = 0.005  # an alignment row names a performed note by pitch and onset


def is_vienna(folder: str) -> bool:
    return any(folder.startswith(v) for v in VIENNA_FOLDERS)


def training_folders(listing: list[str], excluded: set[str]) -> dict[str, list[str]]:
    """Score folder -> aligned performances, without excluded pieces and Vienna 4x22 pieces."""
    return {f: perfs for f, perfs in asap.select(listing, excluded).items() if not is_vienna(f)}


def is_validation(folder: str) -> bool:
    """One piece in eight (all versions of it together) is held out for validation."""
    return hashlib.sha256(asap.piece_key(folder).encode()).digest()[0] % 8 == 0


@dataclass
class Performance:
    piece: int  # index into the piece list
    velocity: np.ndarray  # (N,) nan where the score note was not played
    dev: np.ndarray  # (N,) timing deviation inside the beat, in beats
    art: np.ndarray  # (N,) log articulation
    pedal: np.ndarray  # (N,) 0/1
    log_spq: np.ndarray  # (B,) log seconds per quarter of each beat, nan where unknown


@dataclass
class Piece:
    folder: str
    feats: np.ndarray  # (N, F)
    tree: Tree
    duration_q: np.ndarray  # (N,)
    onset_q: np.ndarray  # (N,)


class ChunkArrays(NamedTuple):
    """The notes of some beats of a performance: beats, bars and phrases numbered from 0,
    targets in network units, free of nan, with masks of what is known."""

    x: np.ndarray  # (N, F) score features
    beat: np.ndarray
    beat_bar: np.ndarray
    bar_phr: np.ndarray
    vel: np.ndarray  # 0 where not played
    dev: np.ndarray
    art: np.ndarray
    pedal: np.ndarray
    played: np.ndarray  # 1/0 per note
    art_ok: np.ndarray
    log_spq: np.ndarray  # per beat; unknown beats filled with the chunk's mean
    spq_ok: np.ndarray


def chunk_arrays(piece: Piece, perf: Performance, b0: int, b1: int) -> ChunkArrays:
    """The notes of beats [b0, b1) of a performance."""
    t = piece.tree
    sel = np.flatnonzero((t.beat >= b0) & (t.beat < b1))
    beat = t.beat[sel] - b0
    bars, beat_bar = np.unique(t.beat_measure[b0:b1], return_inverse=True)
    _, bar_phr = np.unique(t.measure_phrase[bars], return_inverse=True)
    vel = (perf.velocity[sel] - Scale.VEL_MID) / Scale.VEL_STEP
    played = ~np.isnan(vel)
    art = perf.art[sel]
    lsp = (perf.log_spq[b0:b1] - Scale.SPQ_MID) / Scale.SPQ_STEP
    spq_ok = ~np.isnan(lsp)
    fill = np.nanmean(lsp) if spq_ok.any() else 0.0

    def f(a):
        return np.nan_to_num(a, nan=0.0).astype(np.float32)

    return ChunkArrays(
        piece.feats[sel].astype(np.float32), beat, beat_bar, bar_phr, f(vel), f(perf.dev[sel] * Scale.DEV),
        f(art), f(perf.pedal[sel]), f(played), f(~np.isnan(art)), np.where(spq_ok, lsp, fill).astype(np.float32),
        f(spq_ok),
    )  # fmt: skip


def usable(chunk: ChunkArrays) -> bool:
    """A chunk with enough played notes and timed beats to learn from."""
    return chunk.played.sum() >= 8 and chunk.spq_ok.sum() >= 4


def read_midi(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(onset, offset, pitch, velocity) rows of a MIDI file's notes and its sustain-pedal
    (time, down) changes."""
    import mido

    mid = mido.MidiFile(file=io.BytesIO(data))
    t = 0.0
    down: dict[int, list[int]] = {}
    notes: list[list[float]] = []
    pedal: list[tuple[float, float]] = []
    for msg in mid:
        t += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            down.setdefault(msg.note, []).append(len(notes))
            notes.append([t, -1.0, msg.note, msg.velocity])
        elif msg.type in ("note_off", "note_on") and down.get(msg.note):
            notes[down[msg.note].pop(0)][1] = t
        elif msg.type == "control_change" and msg.control == 64:
            pedal.append((t, float(msg.value >= 64)))
    arr = np.array(notes, float).reshape(-1, 4)
    arr[arr[:, 1] < 0, 1] = t
    return arr, np.array(pedal, float).reshape(-1, 2)


def performance_targets(
    score: Score, tree: Tree, notes: np.ndarray, pedal: np.ndarray, rows: list[tuple[str, int, float]]
) -> Performance | None:
    """Targets of one performance (see the module docstring); None when under half the score
    notes can be found in it."""
    index = {f"{n.note_id}-{n.pass_no}": i for i, n in enumerate(score.notes)}
    n = len(score.notes)
    vel, on, off = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    by_pitch: dict[int, np.ndarray] = {}
    for p in np.unique(notes[:, 2]).astype(int):
        by_pitch[p] = np.flatnonzero(notes[:, 2] == p)
    for xml_id, pitch, onset in rows:
        i = index.get(xml_id)
        cand = by_pitch.get(pitch)
        if i is None or cand is None:
            continue
        j = cand[np.argmin(np.abs(notes[cand, 0] - onset))]
        if abs(notes[j, 0] - onset) < MATCH_TOLERANCE_S:
            vel[i], on[i], off[i] = notes[j, 3], notes[j, 0], notes[j, 1]
    if np.isnan(vel).mean() > 0.5:
        return None
    onset_q = np.array([x.onset_q for x in score.notes])
    dur_q = np.array([x.duration_q for x in score.notes])
    grace = np.array([x.grace for x in score.notes], bool)
    t = played_targets(tree, onset_q, dur_q, grace, on, off, vel)
    ped = np.zeros(n)
    if len(pedal):
        k = np.searchsorted(pedal[:, 0], np.nan_to_num(on) + 0.01) - 1
        ped = np.where(k >= 0, pedal[np.maximum(k, 0), 1], 0.0)
    ped = np.where(np.isnan(on), np.nan, ped)
    return Performance(-1, vel, t.dev, t.art, ped, t.log_spq)


def _code_digest() -> str:
    """The source of the modules that make the arrays: a trial's cache left under a version
    number is never read back for another version of the code (on 2026-12-06 a trial's version
    10 from the day before was trained on in place of the new version 10)."""
    bridge = ROOT / "bridge"
    parts = ("expression/data.py", "expression/features.py", "musicxml.py", "score.py", "asap.py")
    return hashlib.sha256(b"".join((bridge / p).read_bytes() for p in parts)).hexdigest()


# read once, as the modules are imported: a run that reads the source again when it prepares
# keys its arrays by files edited since it started, and another run with those edits would
# read this run's arrays as its own (it happened on 2026-12-06)
CODE_DIGEST = _code_digest()


def prepare(asap_dir: Path, exclude: Path, cache: Path, progress: bool = True) -> tuple[list[Piece], list[Performance]]:
    """Pieces and performances of the allowed (n)ASAP folders, from the cache when it is there."""
    if not asap_dir.exists():
        raise UserError(f"no such folder: {asap_dir}")
    excluded = asap.read_exclusions(exclude)
    key = hashlib.sha256(f"{DATA_VERSION}|{sorted(excluded)}|{CODE_DIGEST}".encode()).hexdigest()[:16]
    path = cache / f"expression-data-{key}.npz"
    if path.is_file():
        return load_cache(path)
    src = asap.Source(asap_dir)
    folders = training_folders(list(src.listing()), excluded)
    if not folders:
        raise UserError(f"no aligned (n)ASAP performances in {asap_dir}")
    pieces: list[Piece] = []
    perfs: list[Performance] = []
    from rich.progress import track

    for folder, names in track(list(folders.items()), description="preparing (n)ASAP", disable=not progress):
        data = src.read(f"{folder}/xml_score.musicxml")
        if data is None:
            continue
        try:
            score = parse_score(data, folder)
        except UserError:
            continue
        tree = phrase_tree(score)
        piece = Piece(
            folder, note_features(score, tree), tree,
            np.array([x.duration_q for x in score.notes]), np.array([x.onset_q for x in score.notes]),
        )  # fmt: skip
        got = []
        for name in names:
            midi = src.read(f"{folder}/{name}.mid")
            tsv = src.read(f"{folder}/{name}{asap.ALIGN_SUFFIX}")
            if midi is None or tsv is None:
                continue
            notes, pedal = read_midi(midi)
            perf = performance_targets(score, tree, notes, pedal, asap.alignment_rows(tsv))
            if perf is not None:
                perf.piece = len(pieces)
                got.append(perf)
        if got:
            pieces.append(piece)
            perfs.extend(got)
    cache.mkdir(parents=True, exist_ok=True)
    save_cache(path, pieces, perfs)
    return pieces, perfs


TREE_FIELDS = ("beat", "measure", "phrase", "beat_start_q", "beat_len_q", "beat_measure", "measure_phrase",
               "measure_numbers")  # fmt: skip
PERF_FIELDS = ("velocity", "dev", "art", "pedal", "log_spq")


def save_cache(path: Path, pieces: list[Piece], perfs: list[Performance]) -> None:
    arrays: dict[str, np.ndarray] = {"folders": np.array([p.folder for p in pieces])}
    for i, p in enumerate(pieces):
        arrays[f"p{i}_feats"] = p.feats
        arrays[f"p{i}_duration_q"] = p.duration_q
        arrays[f"p{i}_onset_q"] = p.onset_q
        for f in TREE_FIELDS:
            arrays[f"p{i}_{f}"] = getattr(p.tree, f)
        arrays[f"p{i}_phrases"] = np.array(p.tree.phrases, int).reshape(-1, 2)
    arrays["perf_piece"] = np.array([q.piece for q in perfs], int)
    for k, q in enumerate(perfs):
        for f in PERF_FIELDS:
            arrays[f"q{k}_{f}"] = getattr(q, f)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def load_cache(path: Path) -> tuple[list[Piece], list[Performance]]:
    z = np.load(path, allow_pickle=False)
    pieces = []
    for i, folder in enumerate(z["folders"]):
        tree = Tree(**{f: z[f"p{i}_{f}"] for f in TREE_FIELDS}, phrases=[tuple(x) for x in z[f"p{i}_phrases"]])
        pieces.append(Piece(str(folder), z[f"p{i}_feats"], tree, z[f"p{i}_duration_q"], z[f"p{i}_onset_q"]))
    perfs = [Performance(int(p), *(z[f"q{k}_{f}"] for f in PERF_FIELDS)) for k, p in enumerate(z["perf_piece"])]
    return pieces, perfs
