"""`pianobridge train audio`: render (n)ASAP performances to audio and train the note
detector (needs torch; the shipped model is ONNX and runs without it).

Data: every performance under the given folders (laid out as benchmarks/asap_wide.py
writes them) except nasap-dev's pieces and their versions (what the follower is measured
on) and the HELD_OUT pieces (kept for choosing thresholds). Each performance is rendered
once with one of the TRAIN_SOUNDFONTS (alternating), cut into 30 s segments, three
quarters of them put through a random room and microphone (`render.room`). TimGM6mb is
never used in training or tuning: it is the unseen piano sound the figures report.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from bridge.audio.detector import CONTEXT, KEYS, LOOKAHEAD, LOWEST
from bridge.audio.render import render_piece
from bridge.errors import UserError

TRAIN_SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf3/MuseScore_General.sf3")
HELD_OUT = (  # allowed pieces kept out of training to choose the detector's thresholds on
    "Bach_Fugue_bwv_857",
    "Beethoven_Piano_Sonatas_21-1",
    "Chopin_Etudes_op_10_4",
    "Liszt_Transcendental_Etudes_4",
    "Haydn_Keyboard_Sonatas_39-1",
    "Schubert_Impromptu_op.90_D.899_3",
)
VERSION = re.compile(r"_(no_repeat|repeat|no_2_repeat|no_first_repeat|extra_repeat|no_trio)$")
FIRST = 49  # pieces in list order before the shuffled rest (see train_command)


def _key(name: str) -> str:
    key, prev = name, None
    while key != prev:
        key, prev = VERSION.sub("", key), key
    return key


def training_pieces(folders: list[Path], nasap_dev: Path) -> list[Path]:
    """Piece folders to train on: not a version of a nasap-dev piece, not HELD_OUT."""
    banned = {_key(p.name) for p in nasap_dev.iterdir()} | {_key(n) for n in HELD_OUT}
    out = []
    for f in folders:
        for p in sorted(f.iterdir()):
            if (p / "performance.mid").is_file() and _key(p.name) not in banned:
                out.append(p)
    return out


def build_data(pieces: list[Path], out: Path, workers: int = 2, offset: int = 0) -> None:
    """Render and featurise every piece into ``out`` (skipping ones already there); the
    soundfont alternates along ``pieces`` (``offset`` shifts it, and the rooms' seeds)."""
    from rich.progress import track

    out.mkdir(parents=True, exist_ok=True)
    jobs = []
    for i, p in enumerate(pieces):
        prefix = out / p.name
        if not any(out.glob(p.name + "-*.npz")):
            k = i + offset
            jobs.append((str(p / "performance.mid"), TRAIN_SOUNDFONTS[k % len(TRAIN_SOUNDFONTS)], k, str(prefix)))
    with ProcessPoolExecutor(workers) as ex:
        futs = [ex.submit(render_piece, *j) for j in jobs]
        for f in track(futs, description="rendering"):
            f.result()


STACK = (-12, 0, 12, 19, 24, 28, 31, 34, 36)  # semitones of harmonics 1/2, 1, 2, ..., 8 above a key


def semitone_matrix() -> np.ndarray:
    """(pitches, N_MELS) linear interpolation of the log-mel frames at the semitones from
    12 below A0 to 36 above C8 (0 above the top mel band): the network's log-frequency
    view, where every key's harmonics lie at the same offsets."""
    import librosa

    from bridge.audio.features import FMAX, FMIN, N_MELS

    centres = librosa.mel_frequencies(N_MELS + 2, fmin=FMIN, fmax=FMAX)[1:-1]
    pitches = np.arange(LOWEST + min(STACK), LOWEST + KEYS + max(STACK))
    w = np.zeros((len(pitches), N_MELS), np.float32)
    for r, m in enumerate(pitches):
        f = 440.0 * 2 ** ((m - 69) / 12)
        if f > centres[-1]:
            continue
        k = int(np.clip(np.searchsorted(centres, f) - 1, 0, N_MELS - 2))
        a = float(np.clip((f - centres[k]) / (centres[k + 1] - centres[k]), 0, 1))
        w[r, k], w[r, k + 1] = 1 - a, a
    return w


def network(channels: int = 32):
    """Log-mel frames (batch, time, 229) -> per-key onset and sounding logits and onset
    velocity (batch, time - CONTEXT, 3 * 88). The frames are read at semitones and
    stacked by harmonic, so one set of small convolutions serves every key (a key's
    pattern is the same shifted); a learned per-key bias adds what differs. Valid
    convolutions in time only: output i sees input frames i .. i + CONTEXT and stands for
    frame i + CONTEXT - LOOKAHEAD."""
    import torch
    from torch import nn

    c = channels

    def block(cin, cout, k, dil=1):
        return nn.Sequential(
            nn.Conv2d(cin, cout, k, padding=(0, k[1] // 2), dilation=(dil, 1)), nn.BatchNorm2d(cout), nn.ReLU()
        )

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("semitones", torch.from_numpy(semitone_matrix()))
            idx = np.array([[k - min(STACK) + h for k in range(KEYS)] for h in STACK])
            self.register_buffer("stack", torch.from_numpy(idx.reshape(-1)))
            self.register_buffer("key", torch.linspace(-1, 1, KEYS).reshape(1, 1, 1, KEYS))
            self.norm = nn.BatchNorm2d(len(STACK))
            self.body = nn.Sequential(
                block(len(STACK) + 1, c, (3, 5)),
                block(c, c, (3, 3)),
                block(c, c, (3, 1)),
                block(c, c, (3, 1), dil=2),
                block(c, c, (3, 1)),
            )
            self.head = nn.Conv2d(c, 3, 1)
            self.bias = nn.Parameter(torch.zeros(1, 3, 1, KEYS))

        def forward(self, x):
            b, t, _ = x.shape
            s = torch.matmul(x, self.semitones.t())  # (b, t, pitches)
            h = s[:, :, self.stack].reshape(b, t, len(STACK), KEYS).permute(0, 2, 1, 3)
            h = torch.cat([self.norm(h), self.key.expand(b, 1, t, KEYS)], dim=1)
            o = self.head(self.body(h)) + self.bias  # (b, 3, t - CONTEXT, keys)
            return o.permute(0, 2, 1, 3).reshape(b, o.shape[2], 3 * KEYS)

    return Net()


class Windows:
    """Random training windows over the rendered segments, held in one block of memory on
    ``device`` (a GPU's memory holds many hours of frames, so no batch waits on the CPU)."""

    def __init__(self, files: list[Path], length: int, rng: np.random.Generator, device: str = "cpu"):
        import torch

        xs, ys = [], []
        for f in files:
            d = np.load(f)
            if len(d["x"]) > length + CONTEXT:
                xs.append(d["x"])
                ys.append(np.concatenate([d["onset"], d["frame"], d["vel"]], axis=1))
        self.sizes = np.array([len(a) for a in xs])
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        self.x = torch.from_numpy(np.concatenate(xs)).to(device)  # float16 frames
        self.y = torch.from_numpy(np.concatenate(ys)).to(device)  # uint8 targets
        self.length, self.rng, self.device = length, rng, device

    def batch(self, n: int):
        """(frames (n, length + CONTEXT, N_MELS), targets (n, length, 3 * KEYS)) float32 tensors."""
        import torch

        idx = self.rng.choice(len(self.sizes), n, p=self.sizes / self.sizes.sum())
        s = self.starts[idx] + self.rng.integers(0, self.sizes[idx] - self.length - CONTEXT)
        s = torch.from_numpy(s).to(self.device)[:, None]
        x = self.x[s + torch.arange(self.length + CONTEXT, device=self.device)].float()
        y = self.y[s + CONTEXT - LOOKAHEAD + torch.arange(self.length, device=self.device)].float()
        return x, y


def segment_files(data: Path) -> list[Path]:
    """The network's training segments: the first rendering of each performance in
    ``data``, the further ones (``--renders``) in its render-K folders."""
    return sorted(data.glob("*.npz")) + sorted(data.glob("render-*/*.npz"))


def train(
    data: Path,
    out: Path,
    minutes: float,
    seed: int = 0,
    log=print,
    resume: Path | None = None,
    channels: int = 32,
    batch: int = 16,
    device: str = "cpu",
) -> None:
    """Train on the segments under ``data`` for ``minutes`` and write the ONNX model; the
    torch weights go to ``out`` with the suffix .pt as it goes (``resume`` starts from such
    a file: a run may continue another). On a CUDA ``device`` the network runs in bfloat16."""
    import torch
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    torch.set_num_threads(int(os.environ.get("PIANOBRIDGE_THREADS", "1")))
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    files = segment_files(data)
    if not files:
        raise UserError(f"no training segments in {data}")
    val_files = files[::25]
    train_files = [f for f in files if f not in set(val_files)]
    tr = Windows(train_files, 128, rng, device)
    va = Windows(val_files, 256, np.random.default_rng(1), device)
    vx, vy = va.batch(32)
    checkpoint = out.with_suffix(".pt")
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    net = network(channels).to(device)
    if resume is not None:
        net.load_state_dict(torch.load(resume, map_location=device))
    autocast = torch.autocast("cuda", torch.bfloat16, enabled=device.startswith("cuda"))
    torch.backends.cudnn.benchmark = True  # the windows' shape never changes
    lr = 3e-3 if resume is None else 1e-3
    opt = torch.optim.AdamW(net.parameters(), lr, weight_decay=1e-4)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    deadline = time.time() + minutes * 60
    step = 0
    progress = Progress(TextColumn("training"), BarColumn(), TextColumn("{task.fields[msg]}"), TimeRemainingColumn())
    bar = progress.add_task("train", total=minutes * 60, msg="")
    progress.start()

    def losses(x, y):
        with autocast:
            o = net(x).float()
        on, fr, ve = o[..., :KEYS], o[..., KEYS : 2 * KEYS], o[..., 2 * KEYS :]
        yo, yf, yv = y[..., :KEYS], y[..., KEYS : 2 * KEYS], y[..., 2 * KEYS :] / 127.0
        l_on = bce(on, yo, pos_weight=torch.tensor(2.0, device=device))
        l_fr = bce(fr, yf)
        l_ve = ((torch.sigmoid(ve) - yv) ** 2 * yo).sum() / yo.sum().clamp(min=1)
        return l_on, l_fr, l_ve

    while time.time() < deadline:
        frac = 1 - (deadline - time.time()) / (minutes * 60)
        for g in opt.param_groups:
            g["lr"] = lr * 0.5 * (1 + np.cos(np.pi * min(frac, 1.0)))
        net.train()
        x, y = tr.batch(batch)
        l_on, l_fr, l_ve = losses(x, y)
        loss = l_on + l_fr + l_ve
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        progress.update(bar, completed=minutes * 60 - (deadline - time.time()))
        if step % 100 == 0:
            net.eval()
            with torch.no_grad():
                v = [float(a) for a in losses(vx, vy)]
            progress.update(bar, msg=f"step {step} onset {v[0]:.4f} frame {v[1]:.4f}")
            log(f"step {step} train {float(loss):.4f} val onset {v[0]:.4f} frame {v[1]:.4f} velocity {v[2]:.4f}")
            torch.save(net.state_dict(), checkpoint)
    progress.stop()
    net.eval()
    torch.save(net.state_dict(), checkpoint)
    export(net.to("cpu").float(), out)
    log(f"{step} steps; wrote {out}")


def export(net, out: Path) -> None:
    import torch

    out.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 64, 229)
    torch.onnx.export(
        net,
        (dummy,),
        str(out),
        input_names=["frames"],
        output_names=["logits"],
        dynamic_axes={"frames": {1: "time"}, "logits": {1: "time"}},
        opset_version=17,
        dynamo=False,
    )


def gate_examples(files: list[Path], net) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The gate's examples from rendered segments: every key press the detector would make
    at its lowest bar with nothing expected (features), whether a performed note of that
    key begins within 5 frames before or 4 after (each performed note claimed once), and the file."""
    from rich.progress import track

    from bridge.audio.detector import NoteDetector, Thresholds

    xs, ys, gs = [], [], []
    for g, f in enumerate(track(files, description="detecting")):
        d = np.load(f)
        det = NoteDetector(net, Thresholds(expected=0.2, other=0.2, harmonic=0.2))
        det.candidates = []
        det.push(d["x"].astype(np.float32))
        while det.ready():
            det.decide(())
        onset = d["onset"] == 1
        first = onset & ~np.vstack([np.zeros((1, KEYS), bool), onset[:-1]])
        claimed = set()
        for j, k, feats in det.candidates:
            lo = max(j - 5, 0)
            starts = [i for i in np.flatnonzero(first[lo : j + 5, k]) + lo if (i, k) not in claimed]
            if starts:
                claimed.add((min(starts, key=lambda i: abs(i - j)), k))
            xs.append(feats)
            ys.append(bool(starts))
            gs.append(g)
    return np.array(xs, np.float32), np.array(ys, np.float32), np.array(gs)


def train_gate(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, out: Path, steps: int, seed: int = 0, log=print
) -> None:
    """Fit the gate (two hidden layers of 32) on the examples and write its numpy weights;
    every fifth file is held out and the gate's ranking AUC there reported."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    val = groups % 5 == 0
    mean, scale = x[~val].mean(axis=0), x[~val].std(axis=0) + 1e-3
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], 32),
        torch.nn.ReLU(),
        torch.nn.Linear(32, 32),
        torch.nn.ReLU(),
        torch.nn.Linear(32, 1),
    )
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    xt, yt = torch.from_numpy((x - mean) / scale), torch.from_numpy(y)
    train_rows = np.flatnonzero(~val)
    for _ in range(steps):
        b = torch.from_numpy(rng.choice(train_rows, 512))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(xt[b])[:, 0], yt[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        p = net(xt[torch.from_numpy(np.flatnonzero(val))])[:, 0].numpy()
    log(f"held-out files: gate AUC {auc(p, y[val]):.3f}, onset probability alone {auc(x[val, 0], y[val]):.3f}")
    layers = net[::2]
    weights = {f"w{i}": m.weight.detach().numpy().T for i, m in enumerate(layers)}
    weights |= {f"b{i}": m.bias.detach().numpy() for i, m in enumerate(layers)}
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, mean=mean, scale=scale, **weights)
    log(f"{len(y)} examples ({y.mean():.2f} real); wrote {out}")


def auc(score: np.ndarray, label: np.ndarray) -> float:
    """Probability that a random real example outranks a random false one."""
    rank = np.empty(len(score))
    rank[np.argsort(score)] = np.arange(len(score))
    pos = label == 1
    return float((rank[pos].mean() - (pos.sum() - 1) / 2) / max((~pos).sum(), 1))


def ordered_pieces(root: Path, nasap_dev: Path) -> list[Path]:
    """The training performances in the order the network takes them: the first 49 (Bach
    and Beethoven, rendered first), then a seeded shuffle of the rest for variety."""
    if not root.is_dir():
        raise UserError(f"(n)ASAP folder not found: {root} (lay it out with benchmarks/asap_wide.py)")
    folders = [root / s for s in ("tune", "val") if (root / s).is_dir()] or [root]
    if not nasap_dev.is_dir():
        raise UserError(f"nasap-dev folder not found: {nasap_dev} (its pieces are kept out of training)")
    pieces = training_pieces(folders, nasap_dev)
    rest = pieces[FIRST:]
    np.random.default_rng(0).shuffle(rest)
    return pieces[:FIRST] + rest


def gate_command(args: argparse.Namespace) -> int:
    """CLI entry: `pianobridge train audio-gate ASAP_WIDE [--pieces N]`: the performances
    after the network's first N (never heard by it), each rendered twice (both training
    soundfonts, other rooms), give the gate's examples."""
    from bridge.audio.detector import GATE, MODEL, Network

    heard = args.pieces or 120  # the performances the network was trained on
    pieces = ordered_pieces(Path(args.pig), Path(args.nasap_dev))[heard:]
    if not pieces:
        raise UserError(f"no performances after the network's first {heard} under {args.pig}")
    cache = Path(args.cache)
    print(f"pianobridge: {len(pieces)} performances, rendered twice -> {cache}/gate-a, gate-b")
    build_data(pieces, cache / "gate-a", args.workers)
    build_data(pieces, cache / "gate-b", args.workers, offset=1)  # each piece with the other soundfont
    files = sorted((cache / "gate-a").glob("*.npz")) + sorted((cache / "gate-b").glob("*.npz"))
    x, y, groups = gate_examples(files, Network(MODEL))
    train_gate(x, y, groups, Path(args.out or GATE), args.steps or 6000, args.seed)
    return 0


def check_device(name: str) -> None:
    """One line for a ``--device`` torch cannot train on here, before minutes of rendering."""
    import torch

    try:
        torch.zeros(1, device=name)
    except (RuntimeError, AssertionError) as e:  # an unknown name; a device not built in or not present
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot train on --device {name}: {reason}") from None


def train_command(args: argparse.Namespace) -> int:
    """CLI entry: `pianobridge train audio ASAP_WIDE [--out model/audio.onnx]`."""
    if args.task == "audio-gate":
        return gate_command(args)
    check_device(args.device)
    root = Path(args.pig)
    pieces = ordered_pieces(root, Path(args.nasap_dev))[: args.pieces or None]
    if not pieces:
        raise UserError(f"no performances to train on under {root}")
    cache = Path(args.cache)
    print(f"pianobridge: {len(pieces)} performances, rendered {args.renders} time(s) -> {cache}")
    for r in range(args.renders):  # each rendering with the next soundfont and other rooms
        build_data(pieces, cache / f"render-{r}" if r else cache, args.workers, offset=r)
    out = Path(args.out or Path(__file__).resolve().parents[2] / "model" / "audio.onnx")
    resume = Path(args.resume) if args.resume else None
    train(
        cache, out, args.minutes, args.seed, resume=resume, channels=args.channels, batch=args.batch, device=args.device
    )
    return 0
