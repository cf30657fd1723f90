"""Training of the expression model (torch; only this module and model.py need it).

``pianobridge train expression ASAP_DIR [--recipe JSON] [--out model/expression.npz]``; with
``torchrun --nproc_per_node N -m bridge.cli train expression ...`` each process trains on its
own random chunks and gradients are averaged across processes every step (data parallel,
gloo backend on CPU). Rank 0 validates, keeps the best step and writes the weights.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from bridge import asap
from bridge.errors import UserError
from bridge.expression.data import (
    ChunkArrays,
    Performance,
    Piece,
    chunk_arrays,
    is_validation,
    prepare,
    usable,
)
from bridge.expression.features import N_FEATURES
from bridge.expression.model import Critic, ExpressionNet, beat_mean, perf_beat_features
from bridge.expression.network import Scale
from bridge.expression.render import MODEL_DIR, place

# the shipped recipe is the default, so a plain `train expression DATA` makes the shipped file
DEFAULT_RECIPE = json.loads((MODEL_DIR / "expression.recipe.json").read_text())


@dataclass
class Chunk:
    x: torch.Tensor
    beat: torch.Tensor
    beat_bar: torch.Tensor
    bar_phr: torch.Tensor
    vel: torch.Tensor  # scaled, 0 where not played
    dev: torch.Tensor
    art: torch.Tensor
    pedal: torch.Tensor
    played: torch.Tensor  # 1/0 per note
    art_ok: torch.Tensor
    log_spq: torch.Tensor  # scaled, per beat; nan filled with the chunk's mean
    spq_ok: torch.Tensor


def tensors(arrays: ChunkArrays) -> Chunk:
    return Chunk(*(torch.tensor(a) for a in arrays))


def make_chunk(piece: Piece, perf: Performance, b0: int, b1: int) -> Chunk:
    """The notes of beats [b0, b1) of a performance as tensors (see `data.chunk_arrays`)."""
    return tensors(chunk_arrays(piece, perf, b0, b1))


def masked_mse(pred: torch.Tensor, target: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
    return ((pred - target) ** 2 * ok).sum() / ok.sum().clamp(min=1)


def chord_spq(onset_q: np.ndarray, timed: np.ndarray, *onsets: np.ndarray) -> list[np.ndarray]:
    """For each set of note onsets (s): seconds per quarter between successive score onsets (a
    chord: its notes' mean onset), the local tempo eval_expression.py correlates; only between
    chords whose notes are all ``timed``."""
    qs, k = np.unique(np.round(onset_q, 4), return_inverse=True)
    count = np.bincount(k, minlength=len(qs))
    known = np.bincount(k, weights=~timed, minlength=len(qs)) == 0
    ok = known[1:] & known[:-1]
    return [(np.diff(np.bincount(k, weights=on, minlength=len(qs)) / count) / np.diff(qs))[ok] for on in onsets]


def generator_losses(net: ExpressionNet, c: Chunk, w: dict, fusion: bool, gen: torch.Generator):
    """Reconstruction losses of one chunk, and the encoder output to reuse for the critic."""
    nb = int(c.beat.max()) + 1
    enc = net.encode_score(c.x, c.beat, c.beat_bar, c.bar_phr)
    real = perf_beat_features(c.vel, c.dev, c.art, c.log_spq, c.x[:, 0], c.beat, nb, c.played)
    perf = perf_ok = None
    kl = torch.zeros(())
    if fusion:  # the player's past beats in, the central style
        z = torch.zeros(net.z_dim)
        perf, perf_ok = real, beat_mean(c.played, c.beat, nb)[:, 0] > 0
    else:
        mu, logvar = net.posterior(enc[1], real)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(net.z_dim, generator=gen)
        kl = -0.5 * torch.mean(1 + logvar - mu**2 - logvar.exp())
    out_b, out_n = net(c.x, c.beat, c.beat_bar, c.bar_phr, z, perf, perf_ok, enc=enc)
    vel = out_b[c.beat, 1] + out_n[:, 0]
    trend_t = beat_mean(c.vel * c.played, c.beat, nb)[:, 0] / beat_mean(c.played, c.beat, nb)[:, 0].clamp(min=1e-6)
    trend_ok = (beat_mean(c.played, c.beat, nb)[:, 0] > 0).float()
    lsp = out_b[:, 0]
    m = c.spq_ok.sum().clamp(min=1)
    shape = (lsp - (lsp * c.spq_ok).sum() / m) - (c.log_spq - (c.log_spq * c.spq_ok).sum() / m)
    losses = {
        "velocity": masked_mse(vel, c.vel, c.played),
        "trend": masked_mse(out_b[:, 1], trend_t, trend_ok),
        "tempo": masked_mse(lsp, c.log_spq, c.spq_ok),
        "tempo_shape": masked_mse(shape, torch.zeros_like(shape), c.spq_ok),
        "dev": masked_mse(out_n[:, 1], c.dev, c.played),
        "art": masked_mse(out_n[:, 2], c.art, c.art_ok),
        "pedal": (F.binary_cross_entropy_with_logits(out_n[:, 3], c.pedal, reduction="none") * c.played).sum()
        / c.played.sum().clamp(min=1),
        "kl": kl,
    }
    total = sum(w[k] * v for k, v in losses.items())
    return total, losses, enc, real


def generated_beats(net: ExpressionNet, c: Chunk, enc, gen: torch.Generator) -> torch.Tensor:
    """Beat summary of a rendition with z drawn from the prior (what the critic judges)."""
    nb = int(c.beat.max()) + 1
    z = torch.randn(net.z_dim, generator=gen)
    out_b, out_n = net(c.x, c.beat, c.beat_bar, c.bar_phr, z, enc=enc)
    vel = out_b[c.beat, 1] + out_n[:, 0]
    return perf_beat_features(vel, out_n[:, 1], out_n[:, 2], out_b[:, 0], c.x[:, 0], c.beat, nb)


def degraded_beats(c: Chunk, kind: int, gen: torch.Generator) -> torch.Tensor:
    """Beat summary of the chunk's real performance spoiled one way (extra negatives for the
    critic): 0 velocities flattened to their mean, 1 velocities shuffled within each phrase,
    2 metronomic timing, 3 timing jittered (about 30 ms)."""
    nb = int(c.beat.max()) + 1
    vel, dev, art, lsp = c.vel.clone(), c.dev.clone(), c.art.clone(), c.log_spq.clone()
    played = c.played > 0
    if kind == 0:
        vel[played] = vel[played].mean()
    elif kind == 1:
        phrase = c.bar_phr[c.beat_bar[c.beat]]
        for p in torch.unique(phrase):
            ix = torch.nonzero((phrase == p) & played)[:, 0]
            vel[ix] = vel[ix[torch.randperm(len(ix), generator=gen)]]
    elif kind == 2:
        mean = (lsp * c.spq_ok).sum() / c.spq_ok.sum().clamp(min=1)
        art = art + (lsp[c.beat] - mean) * Scale.SPQ_STEP  # the same seconds at another local tempo
        lsp = torch.full_like(lsp, float(mean))
        dev = torch.zeros_like(dev)
    else:
        spq = torch.exp(lsp * Scale.SPQ_STEP + Scale.SPQ_MID)
        dev = dev + torch.randn(dev.shape, generator=gen) * 0.03 / spq[c.beat] * Scale.DEV
        lsp = lsp + torch.randn(lsp.shape, generator=gen) * 0.04 / spq / Scale.SPQ_STEP
    return perf_beat_features(vel, dev, art, lsp, c.x[:, 0], c.beat, nb, c.played)


def split(pieces: list[Piece], perfs: list[Performance]) -> tuple[list[int], list[int]]:
    val = [k for k, p in enumerate(perfs) if is_validation(pieces[p.piece].folder)]
    train = [k for k, p in enumerate(perfs) if not is_validation(pieces[p.piece].folder)]
    return train, val


def draw_window(n_beats: int, chunk_beats: int, rng: np.random.Generator) -> tuple[int, int]:
    """Beats [b0, b1) of one training chunk of a piece of ``n_beats`` beats.

    A window may hang over either end of the piece by up to three quarters of its length (and is
    cut there): with windows only inside the piece, its first and last beats, where players take
    their time to open and to close, would be drawn once for every ``chunk_beats`` draws of a
    beat in the middle.
    """
    hang = 3 * chunk_beats // 4
    b0 = int(rng.integers(-hang, n_beats - chunk_beats + hang + 1))
    return max(b0, 0), min(b0 + chunk_beats, n_beats)


def sample_chunk(pieces, perfs, train, rng: np.random.Generator, chunk_beats: int) -> Chunk:
    while True:
        perf = perfs[train[rng.integers(len(train))]]
        piece = pieces[perf.piece]
        arrays = chunk_arrays(piece, perf, *draw_window(piece.tree.n_beats, chunk_beats, rng))
        if usable(arrays):
            return tensors(arrays)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = ~(np.isnan(a) | np.isnan(b))
    if ok.sum() < 3 or np.std(a[ok]) < 1e-9 or np.std(b[ok]) < 1e-9:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


@torch.no_grad()
def validate(net: ExpressionNet, pieces, perfs, val: list[int], max_beats: int = 400) -> dict[str, float]:
    """Mean per-performance r of velocity, beat tempo (spq), tempo between successive onsets
    (reported, not in the score) and articulation at z = 0, on the
    first ``max_beats`` beats of each validation performance."""
    net.eval()
    rs: dict[str, list[float]] = {"vel_r": [], "tempo_r": [], "ioi_r": [], "art_r": []}
    for k in val:
        perf = perfs[k]
        piece = pieces[perf.piece]
        t, nb = piece.tree, min(piece.tree.n_beats, max_beats)
        c = make_chunk(piece, perf, 0, nb)
        out_b, out_n = net(c.x, c.beat, c.beat_bar, c.bar_phr, torch.zeros(net.z_dim))
        vel = (out_b[c.beat, 1] + out_n[:, 0]).numpy()
        ok = c.played.numpy() > 0
        rs["vel_r"].append(pearson(vel[ok], c.vel.numpy()[ok]))
        sok = c.spq_ok.numpy() > 0
        rs["tempo_r"].append(pearson(out_b[:, 0].numpy()[sok], c.log_spq.numpy()[sok]))
        # notes placed as a rendition places them, the performance's from its own targets
        sel = t.beat < nb
        where = (t.beat_start_q[:nb], t.beat_len_q[:nb], t.beat[sel], piece.onset_q[sel])
        played_on = place(*where, c.log_spq.numpy(), c.dev.numpy())[0]
        model_on = place(*where, out_b[:, 0].numpy(), out_n[:, 1].numpy())[0]
        timed = (c.played * c.spq_ok[c.beat]).numpy() > 0
        rs["ioi_r"].append(pearson(*chord_spq(piece.onset_q[sel], timed, model_on, played_on)))
        aok = c.art_ok.numpy() > 0
        rs["art_r"].append(pearson(out_n[:, 2].numpy()[aok], c.art.numpy()[aok]))
    net.train()
    out = {k: float(np.nanmean(v)) for k, v in rs.items()}
    out["score"] = out["vel_r"] + out["tempo_r"] + out["art_r"]
    return out


def export(net: ExpressionNet, critic: Critic | None, recipe: dict, path: Path, figures: dict) -> None:
    """One network and its critic as a weights file of one member (`merge_members` joins them)."""
    arrays = {f"g.{k}": v.detach().numpy().astype(np.float32) for k, v in net.state_dict().items()}
    if critic is not None:
        arrays.update({f"c.{k}": v.detach().numpy().astype(np.float32) for k, v in critic.state_dict().items()})
    meta = dict(recipe, members=1, n_features=N_FEATURES, validation=figures, critic=critic is not None)
    arrays["recipe"] = np.array(json.dumps(meta))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def train(asap: Path, exclude: Path, cache: Path, out: Path, recipe: dict, progress: bool = True) -> dict:
    """Train, validate, write the best weights to ``out``; returns the validation figures."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    torch.set_num_threads(int(os.environ.get("PIANOBRIDGE_THREADS", "1")))
    torch.manual_seed(recipe["seed"])  # the same initial weights in every process
    if rank == 0:  # one process prepares (or reads) the cache, the others read it afterwards
        pieces, perfs = prepare(asap, exclude, cache, progress=progress)
    if world > 1:
        dist.barrier()
    if rank != 0:
        pieces, perfs = prepare(asap, exclude, cache, progress=False)
    train_ix, val_ix = split(pieces, perfs)
    if not train_ix or not val_ix:
        raise UserError("too few (n)ASAP performances for a training and a validation split")
    w = recipe["weights"]
    net = ExpressionNet(N_FEATURES, recipe["model"])
    critic = Critic(N_FEATURES, recipe["model"]["d"]) if recipe["critic"] else None
    opt = torch.optim.AdamW(net.parameters(), lr=recipe["lr"], weight_decay=1e-4)
    copt = torch.optim.Adam(critic.parameters(), lr=recipe["critic_lr"], betas=(0.5, 0.9)) if critic else None
    steps = recipe["steps"]
    warm = max(1, steps // 20)  # linear warm-up, then cosine decay to zero

    def lr_at(i: int) -> float:
        return (i + 1) / warm if i < warm else 0.5 * (1 + math.cos(math.pi * (i - warm) / max(steps - warm, 1)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    rng = np.random.default_rng(recipe["seed"] * 1000 + rank)
    gen = torch.Generator().manual_seed(recipe["seed"] * 1000 + rank)
    best: dict = {"score": -math.inf}
    history = []
    t0 = time.time()
    from rich.progress import Progress

    def all_reduce(params) -> None:
        if world > 1:
            for p in params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                dist.all_reduce(p.grad)
                p.grad /= world

    with Progress(disable=not progress or rank != 0) as bar:
        task = bar.add_task("training the expression model", total=steps)
        for step in range(1, steps + 1):
            chunks = [sample_chunk(pieces, perfs, train_ix, rng, recipe["chunk_beats"]) for _ in range(recipe["batch"])]
            fusion = rng.random(len(chunks)) < recipe["fusion_prob"]
            opt.zero_grad()
            made = []
            for c, fu in zip(chunks, fusion):
                total, _, enc, real = generator_losses(net, c, w, bool(fu), gen)
                if critic is not None:
                    # with adv 0 the critic still learns from the renditions, which then need no graph
                    with torch.set_grad_enabled(bool(w["adv"])):
                        fake = generated_beats(net, c, enc, gen)
                    score_b = beat_mean(c.x, c.beat, int(c.beat.max()) + 1)
                    if w["adv"]:
                        total = total - w["adv"] * critic(score_b, fake).mean()
                    spoiled = degraded_beats(c, int(rng.integers(4)), gen)
                    made.append((score_b, real.detach(), fake.detach(), spoiled))
                (total / len(chunks)).backward()
            all_reduce(net.parameters())
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            if critic is not None:
                copt.zero_grad()
                for score_b, real, fake, spoiled in made:  # hinge loss; renditions and spoiled copies are fakes
                    d_loss = F.relu(1 - critic(score_b, real)).mean() + F.relu(1 + critic(score_b, fake)).mean()
                    d_loss = d_loss + recipe["spoiled_weight"] * F.relu(1 + critic(score_b, spoiled)).mean()
                    (d_loss / len(made)).backward()
                all_reduce(critic.parameters())
                copt.step()
            bar.advance(task)
            if rank == 0 and (step % recipe["eval_every"] == 0 or step == steps):
                fig = validate(net, pieces, perfs, val_ix)
                fig.update(step=step, minutes=round((time.time() - t0) / 60, 2))
                history.append(fig)
                bar.console.print(
                    " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in fig.items())
                )
                if fig["score"] > best["score"]:
                    best = fig
                    export(net, critic, recipe, out, {"best": best, "history": history})
    if rank == 0:
        best = dict(best, pieces=len(pieces), performances=len(perfs), train=len(train_ix), val=len(val_ix),
                    processes=world, minutes=round((time.time() - t0) / 60, 2))  # fmt: skip
        # the figures of the best step and the whole history go into the file's recipe
        with np.load(out, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays["recipe"]))
        meta["validation"] = {"best": best, "history": history}
        arrays["recipe"] = np.array(json.dumps(meta))
        np.savez(out, **arrays)
    if world > 1:  # the group stays up for the next member (train_command ends it)
        dist.barrier()
    return best


def load_recipe(path: str | None) -> dict:
    recipe = json.loads(json.dumps(DEFAULT_RECIPE))
    if path:
        try:
            given = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise UserError(f"cannot read the recipe {path}: {e}") from None
        for k, v in given.items():
            if isinstance(v, dict) and isinstance(recipe.get(k), dict):
                recipe[k].update(v)
            else:
                recipe[k] = v
    return recipe


class Ensemble(torch.nn.Module):
    """Members' outputs averaged, as `network.ExpressionNetwork` averages them (for `validate`)."""

    def __init__(self, members: list[ExpressionNet]) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(members)
        self.z_dim = members[0].z_dim

    def forward(self, *args):
        outs = [m(*args) for m in self.members]
        return torch.stack([o[0] for o in outs]).mean(0), torch.stack([o[1] for o in outs]).mean(0)


def merge_members(parts: list[Path], out: Path, pieces, perfs, val: list[int]) -> dict:
    """One weights file from members trained apart: member k's generator and critic under
    "g{k}." and "c{k}." (k = 0 keeps "g." and "c."); the ensemble is validated as a whole."""
    arrays: dict[str, np.ndarray] = {}
    metas, nets = [], []
    for k, part in enumerate(parts):
        with np.load(part, allow_pickle=False) as z:
            metas.append(json.loads(str(z["recipe"])))
            gen = {}
            for name in z.files:
                if name == "recipe":
                    continue
                head, rest = name.split(".", 1)
                arrays[f"{head}{k or ''}.{rest}"] = z[name]
                if head == "g":
                    gen[rest] = torch.tensor(z[name])
        net = ExpressionNet(N_FEATURES, metas[0]["model"])
        net.load_state_dict(gen)
        nets.append(net)
    fig = validate(Ensemble(nets), pieces, perfs, val)
    best = dict(fig, members=[m["validation"]["best"] for m in metas])
    best.update({k: metas[0]["validation"]["best"][k] for k in ("pieces", "performances", "train", "val", "processes")})
    best["minutes"] = round(sum(m["validation"]["best"]["minutes"] for m in metas), 2)
    meta = dict(metas[0], members=len(parts), validation={"best": best, "history": []})
    arrays["recipe"] = np.array(json.dumps(meta))
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(out)
    for part in parts:
        part.unlink()
    return best


def train_command(args) -> int:
    """`pianobridge train expression ASAP_DIR`: --recipe, --steps, --seed, --members, --out, --exclude, --prepared."""
    import sys

    from bridge.expression.render import DEFAULT_WEIGHTS
    from bridge.musicxml import cache_dir

    recipe = load_recipe(args.recipe)
    if args.steps:
        recipe["steps"] = args.steps
    recipe["seed"] = args.seed
    members = args.members or recipe["members"]
    exclude = Path(args.exclude) if args.exclude else asap.EXCLUSIONS
    if not exclude.is_file():
        raise UserError(f"no exclusion list at {exclude} (give --exclude)")
    cache = Path(args.prepared) if args.prepared else cache_dir() / "expression"
    out = Path(args.out) if args.out else DEFAULT_WEIGHTS
    rank0 = int(os.environ.get("RANK", "0")) == 0
    if members == 1:
        best = train(Path(args.pig), exclude, cache, out, recipe)
    else:  # member k is the recipe with seed + k; each is trained alone, then they are merged
        parts = [out.with_name(f"{out.stem}.member{k}.npz") for k in range(members)]
        for k, part in enumerate(parts):
            train(Path(args.pig), exclude, cache, part, dict(recipe, seed=args.seed + k))
    if dist.is_initialized():  # once, after every member: set up again, a group hangs under torchrun
        dist.destroy_process_group()
    if rank0:
        from bridge.expression.calibrate import calibrate, fit_style

        pieces, perfs = prepare(Path(args.pig), exclude, cache, progress=False)
        train_idx, val = split(pieces, perfs)
        if members > 1:
            best = merge_members(parts, out, pieces, perfs, val)
        fit_style(out, pieces, perfs, train_idx, recipe["chunk_beats"])
        calibrate(out, pieces, perfs, val)
        print(f"pianobridge: expression weights -> {out} (validation: {json.dumps(best)})", file=sys.stderr)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # gloo's threads can abort the interpreter's shutdown (SIGABRT, nothing on stderr; once in
        # about 40 runs under load here, pytorch/pytorch#179291): a torchrun process leaves without it
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0
