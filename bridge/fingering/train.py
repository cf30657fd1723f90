"""Training of the fingering network (torch; only this module needs it).

Data: PIG pieces 031-150 (``FingeringFiles/NNN-A_fingering.txt``); 001-030 are the
test split and are never read here. Each annotation file gives two sequences, one per
hand, the left hand mirrored (see `features`). The loss is the linear-chain CRF's
negative log-likelihood on random windows of those sequences.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bridge.errors import UserError
from bridge.fingering import LEFT, RIGHT, KeyNote, hand_arrays
from bridge.fingering.decode import HandPlan, avoid_clashes, transition_scores, viterbi
from bridge.fingering.features import N_FEATURES, hand_order, note_features
from bridge.fingering.hands import hand_transitions
from bridge.fingering.pig import read_pig

FILE_RE = re.compile(r"^(\d{3})-(\d+)_fingering\.txt$")
TEST_PIECES = range(1, 31)


@dataclass
class Sequence:
    piece: int
    x: np.ndarray  # (n, N_FEATURES)
    y: np.ndarray  # (n,) first finger, 0-based
    onset: np.ndarray
    offset: np.ndarray
    pitch: np.ndarray  # mirrored for the left hand


def fingering_files(pig_dir: str | Path) -> list[tuple[int, Path]]:
    """(piece, path) of the PIG training files under pig_dir (it may be the dataset's root)."""
    root = Path(pig_dir)
    if (root / "FingeringFiles").is_dir():
        root = root / "FingeringFiles"
    elif (root / "PianoFingeringDataset_v1.2" / "FingeringFiles").is_dir():
        root = root / "PianoFingeringDataset_v1.2" / "FingeringFiles"
    if not root.is_dir():
        raise UserError(f"not a folder: {pig_dir}")
    files = []
    for p in sorted(root.iterdir()):
        m = FILE_RE.match(p.name)
        if m and int(m.group(1)) not in TEST_PIECES:
            files.append((int(m.group(1)), p))
    if not files:
        raise UserError(f"no PIG training files (NNN-A_fingering.txt, NNN > 030) in {root}")
    return files


def load_sequences(
    files: list[tuple[int, Path]], task: str = "fingering", tempos: tuple[float, ...] = (1.0,)
) -> list[Sequence]:
    """Fingering: one sequence per hand and file, labelled by finger; hands: one sequence
    per file in (chord, pitch) order, labelled by hand. Each file is read once per
    factor in ``tempos`` with its times stretched by it (augmentation)."""
    seqs = []
    for (piece, path), tempo in ((f, t) for f in files for t in tempos):
        pig = [replace(n, onset=n.onset * tempo, offset=n.offset * tempo) for n in read_pig(path)]
        if task == "hands":
            onset = np.array([n.onset for n in pig])
            offset = np.array([n.offset for n in pig])
            pitch = np.array([n.pitch for n in pig])
            order = hand_order(onset, pitch)
            onset, offset, pitch = onset[order], offset[order], pitch[order]
            y = np.array([pig[i].hand for i in order])
            seqs.append(Sequence(piece, note_features(onset, offset, pitch), y, onset, offset, pitch))
            continue
        notes = [KeyNote(n.onset, n.offset, n.pitch, n.hand) for n in pig]
        for hand in (RIGHT, LEFT):
            idx, onset, offset, pitch = hand_arrays(notes, hand)
            if len(idx) < 2:
                continue
            y = np.array([pig[i].fingers[0] - 1 if pig[i].fingers else -1 for i in idx])
            if (y < 0).any():
                raise UserError(f"{path}: notes without a finger")
            seqs.append(Sequence(piece, note_features(onset, offset, pitch), y, onset, offset, pitch))
    return seqs


def _net(states: int, hidden: int, layers: int, dropout: float):
    import torch
    from torch import nn

    class CrfNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(N_FEATURES, hidden, layers, batch_first=True, bidirectional=True, dropout=dropout)
            self.drop = nn.Dropout(dropout)
            self.unary = nn.Linear(2 * hidden, states)
            self.pair = nn.Linear(4 * hidden, states * states)

        def forward(self, x):
            h = self.drop(self.lstm(x)[0])
            unary = self.unary(h)
            pair = self.pair(torch.cat([h[:, :-1], h[:, 1:]], -1)).view(x.shape[0], -1, states, states)
            return unary, pair

    return CrfNet()


def crf_nll(unary, pair, y, mask):
    """Mean negative log-likelihood of the gold fingers y (B, T) under the chain CRF."""
    import torch

    b = torch.arange(y.shape[0])
    alpha = unary[:, 0]
    gold = unary[b, 0, y[:, 0]]
    for t in range(1, y.shape[1]):
        m = mask[:, t]
        step = torch.logsumexp(alpha[:, :, None] + pair[:, t - 1], 1) + unary[:, t]
        alpha = torch.where(m[:, None], step, alpha)
        gold = gold + m * (unary[b, t, y[:, t]] + pair[b, t - 1, y[:, t - 1], y[:, t]])
    return (torch.logsumexp(alpha, 1) - gold).sum() / mask.sum()


def _batch(seqs: list[Sequence], rng: np.random.Generator, size: int, window: int):
    import torch

    lengths = np.array([len(s.y) for s in seqs], dtype=float)
    picks = rng.choice(len(seqs), size=size, p=lengths / lengths.sum())
    xs = np.zeros((size, window, N_FEATURES), np.float32)
    ys = np.zeros((size, window), np.int64)
    mask = np.zeros((size, window), bool)
    for r, k in enumerate(picks):
        s = seqs[k]
        start = int(rng.integers(0, max(1, len(s.y) - window + 1)))
        n = min(window, len(s.y) - start)
        # windows start mid-passage, so the features at the cut are not edge features
        xs[r, :n] = s.x[start : start + n]
        ys[r, :n] = s.y[start : start + n]
        mask[r, :n] = True
    return torch.from_numpy(xs), torch.from_numpy(ys), torch.from_numpy(mask)


def evaluate(potentials, seqs: list[Sequence], task: str = "fingering", stretch_weight: float = 1.0) -> float:
    """Mean over pieces of the share of notes whose decoded finger (or hand) is the annotator's."""
    per_piece: dict[int, list[float]] = {}
    for s in seqs:
        unary, pair = potentials(s.x)
        if task == "hands":
            decoded = viterbi(unary, hand_transitions(pair, s.onset, s.pitch))
        else:
            trans = transition_scores(pair, s.onset, s.offset, s.pitch, "medium", stretch_weight)
            plan = HandPlan.decode(unary, trans)
            avoid_clashes(plan, s.onset, s.offset, s.pitch)
            decoded = plan.fingers - 1
        per_piece.setdefault(s.piece, []).extend((decoded == s.y).tolist())
    return float(np.mean([np.mean(v) for v in per_piece.values()]))


def train_member(
    seqs: list[Sequence],
    states: int,
    seed: int,
    steps: int,
    hidden: int,
    layers: int,
    dropout: float,
    lr: float,
    on_step=None,
) -> dict[str, np.ndarray]:
    """Train one CRF network; returns its weights as numpy arrays."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = _net(states, hidden, layers, dropout)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    net.train()
    for step in range(steps):
        x, y, mask = _batch(seqs, rng, 32, 128)
        unary, pair = net(x)
        loss = crf_nll(unary, pair, y, mask)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        sched.step()
        if on_step is not None:
            on_step(step, loss.item(), lambda: _numpy_weights(net))
    return _numpy_weights(net)


def _numpy_weights(net) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}


# chosen on the held-out pieces (--holdout), never on 001-030
RECIPES = {
    "fingering": {"states": 5, "hidden": 64, "layers": 2, "dropout": 0.5, "lr": 3e-3, "steps": 600, "members": 4},
    "hands": {"states": 2, "hidden": 64, "layers": 2, "dropout": 0.5, "lr": 3e-3, "steps": 300, "members": 3},
}
TEMPOS = (0.8, 1.0, 1.25)  # time-stretch augmentation


def train_command(args) -> int:
    """``pianobridge train TASK PIG_DIR``: train an ensemble with a progress bar, save it."""
    import importlib.util

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from bridge.fingering.network import MODEL_DIR, CrfNet, FingeringModel, save_weights

    if importlib.util.find_spec("torch") is None:
        raise UserError("training needs torch: pip install torch") from None
    recipe = dict(RECIPES[args.task])
    recipe["steps"] = args.steps or recipe["steps"]
    recipe["members"] = args.members or recipe["members"]
    files = fingering_files(args.pig)
    train = load_sequences([f for f in files if not (args.holdout and f[0] % 5 == 0)], args.task, TEMPOS)
    held = load_sequences([f for f in files if f[0] % 5 == 0], args.task) if args.holdout else []
    members = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.3f}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns) as progress:
        for k in range(recipe["members"]):
            task = progress.add_task(
                f"{args.task} network {k + 1}/{recipe['members']}", total=recipe["steps"], loss=0.0
            )
            members.append(
                train_member(
                    train,
                    recipe["states"],
                    args.seed + k,
                    recipe["steps"],
                    recipe["hidden"],
                    recipe["layers"],
                    recipe["dropout"],
                    recipe["lr"],
                    on_step=lambda step, loss, _w, task=task: progress.update(task, advance=1, loss=loss),
                )
            )
    pieces = sorted({s.piece for s in train})
    info = {
        "task": args.task,
        **recipe,
        "seed": args.seed,
        "tempos": TEMPOS,
        "data": f"PIG v1.2 pieces {', '.join(_ranges(pieces))} ({sum(len(s.y) for s in train) // len(TEMPOS)} notes)",
        "licence": "trained on PIG: nonprofit academic use only",
    }
    out = Path(args.out) if args.out else MODEL_DIR / f"{args.task}.npz"
    out.parent.mkdir(parents=True, exist_ok=True)
    save_weights(out, members, info)
    print(f"pianobridge: wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    if held:
        model = FingeringModel([CrfNet(m, recipe["layers"]) for m in members], info)
        print(
            f"held-out pieces ({len({s.piece for s in held})}): accuracy {evaluate(model.potentials, held, args.task):.4f}"
        )
    return 0


def _ranges(numbers: list[int]) -> list[str]:
    out: list[list[int]] = []
    for n in numbers:
        if out and n == out[-1][1] + 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return [f"{a:03d}" if a == b else f"{a:03d}-{b:03d}" for a, b in out]
