"""The fingering network's forward pass in numpy, so that fingering needs no torch.

A bidirectional LSTM over one hand's notes gives every note a score for each finger
(unary, shape (n, 5)) and every pair of neighbouring notes a score for each pair of
fingers (pair, shape (n-1, 5, 5), [previous finger, this finger]): a linear-chain CRF
whose potentials depend on the whole passage. Training (``bridge.fingering.train``)
uses torch and writes the weights this module reads; tests check the two agree.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bridge.errors import UserError

WEIGHTS_ENV = "PIANOBRIDGE_FINGERING_WEIGHTS"
MODEL_DIR = Path(__file__).resolve().parents[2] / "model"


def weights_path(fingering_weights: str | Path | None, kind: str = "fingering") -> Path:
    """Where the ``kind`` ("fingering" or "hands") weights are: beside the fingering
    weights given (--weights or the environment), else in the project's model/ folder."""
    import os

    given = fingering_weights or os.environ.get(WEIGHTS_ENV)
    folder = Path(given).parent if given else MODEL_DIR
    if kind == "fingering" and given:
        return Path(given)
    return folder / f"{kind}.npz"


def _lstm(x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """S independent LSTMs stepped together over x (S, n, d), torch's gate order (input,
    forget, cell, output): one Python loop for every member and direction, whose per-step
    overhead is what a plan costs. The sigmoid gates are pre-scaled by 1/2 so that one tanh
    serves all four gates (sigmoid(a) = (1 + tanh(a / 2)) / 2)."""
    s, n, hidden = x.shape[0], x.shape[1], w_hh.shape[2]
    scale = np.full(4 * hidden, 0.5, x.dtype)
    scale[2 * hidden : 3 * hidden] = 1.0
    gates_in = ((np.matmul(x, w_ih.transpose(0, 2, 1)) + bias[:, None]) * scale).transpose(1, 0, 2)
    gates_in = np.ascontiguousarray(gates_in)[:, :, None]  # (n, S, 1, 4 hidden)
    w_hh_t = np.ascontiguousarray(w_hh.transpose(0, 2, 1)) * scale
    out = np.empty((n, s, 1, hidden), dtype=x.dtype)
    h = np.zeros((s, 1, hidden), dtype=x.dtype)
    c = np.zeros((s, 1, hidden), dtype=x.dtype)
    g = np.empty((s, 1, 4 * hidden), dtype=x.dtype)
    i, f, cell, o = (g[..., k * hidden : (k + 1) * hidden] for k in range(4))
    for t in range(n):
        np.matmul(h, w_hh_t, out=g)
        g += gates_in[t]
        np.tanh(g, out=g)
        c = 0.5 * ((f + 1.0) * c + (i + 1.0) * cell)
        h = out[t]
        np.tanh(c, out=h)
        h *= 0.5 * (o + 1.0)
    return out.reshape(n, s, hidden).transpose(1, 0, 2)


def _potentials(members: list[CrfNet], x: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(unary (n, 5), pair (n-1, 5, 5)) of each member for one hand's features x (n, d)."""
    m = len(members)
    h = np.broadcast_to(x, (m, *x.shape))
    for layer in range(members[0].layers):
        w = {  # forward directions of every member, then their reverse directions
            kind: np.stack([net.p[f"lstm.{kind}_l{layer}{d}"] for d in ("", "_reverse") for net in members])
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        }
        out = _lstm(np.concatenate([h, h[:, ::-1]]), w["weight_ih"], w["weight_hh"], w["bias_ih"] + w["bias_hh"])
        h = np.concatenate([out[:m], out[m:, ::-1]], 2)
    result = []
    for net, hm in zip(members, h, strict=True):
        unary = hm @ net.p["unary.weight"].T + net.p["unary.bias"]
        both = np.concatenate([hm[:-1], hm[1:]], 1)
        k = unary.shape[1]
        result.append((unary, (both @ net.p["pair.weight"].T + net.p["pair.bias"]).reshape(-1, k, k)))
    return result


class CrfNet:
    """One trained member: numpy arrays named as in the torch state dict."""

    def __init__(self, params: dict[str, np.ndarray], layers: int):
        self.p = params
        self.layers = layers

    def potentials(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _potentials([self], x)[0]


class FingeringModel:
    """An ensemble of `CrfNet` members whose potentials are averaged."""

    def __init__(self, members: list[CrfNet], info: dict):
        self.members = members
        self.info = info

    @classmethod
    def load(cls, path: str | Path | None = None, task: str | None = None) -> FingeringModel:
        """Weights from ``path``, else from `weights_path` (the fingering network);
        ``task`` ("fingering" or "hands") is what the file must hold (None: either)."""
        path = Path(path) if path else weights_path(None)
        if not path.exists():
            raise UserError(
                f"no fingering weights at {path}: train them with `pianobridge train fingering PIG_DIR` "
                f"or point --weights (or {WEIGHTS_ENV}) at a weights file"
            )
        arrays, info = _read_weights(path, task)
        members = []
        for k in range(info["members"]):
            prefix = f"m{k}."
            params = {key[len(prefix) :]: a.astype(np.float32) for key, a in arrays.items() if key.startswith(prefix)}
            members.append(CrfNet(params, info["layers"]))
        return cls(members, info)

    def potentials(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Averaged (unary (n, 5), pair (n-1, 5, 5)) potentials for one hand's features."""
        if len(x) == 0:
            k = self.info.get("states", 5)
            return np.zeros((0, k), np.float32), np.zeros((0, k, k), np.float32)
        results = _potentials(self.members, x)
        unary = np.mean([r[0] for r in results], 0)
        pair = np.mean([r[1] for r in results], 0)
        return unary, pair


STATES = {"fingering": 5, "hands": 2}  # what each task's network scores: fingers, hands
# on disk and unpacked: the shipped weights are 2-3 MB; a zip's index of this size already takes 200 MB
MAX_WEIGHTS_BYTES = 32 << 20
MAX_ARRAYS = 1024  # the shipped weights hold 61 and 81
MAX_MEMBERS, MAX_LAYERS, MAX_INFO_CHARS = 32, 8, 1 << 16


def _read_weights(path: Path, task: str | None) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays and the info of a weights file, every array's name, type and shape
    checked from the headers in the zip before anything is unpacked (a few MB can claim
    gigabytes); `UserError` naming the file for anything that is not as `save_weights`
    writes it."""
    import zipfile

    from bridge.userfiles import regular_file

    regular_file(path, "weights file", MAX_WEIGHTS_BYTES)
    what = f"{task} weights" if task else "weights"

    def bad(why: str) -> UserError:
        return UserError(f"not pianobridge {what}: {path} ({why})")

    try:
        with zipfile.ZipFile(path) as z:
            entries = z.infolist()
            if len(entries) > MAX_ARRAYS or sum(e.file_size for e in entries) > MAX_WEIGHTS_BYTES:
                raise bad(f"more than {MAX_ARRAYS} arrays or {MAX_WEIGHTS_BYTES >> 20} MB unpacked")
            shapes = {}
            for e in entries:
                with z.open(e) as f:
                    version = np.lib.format.read_magic(f)
                    if version not in ((1, 0), (2, 0)):
                        raise bad(f"{e.filename}: not a numpy array")
                    read_header = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read_header(f)
                if dtype.hasobject or int(np.prod(shape)) * dtype.itemsize > e.file_size:
                    raise bad(f"{e.filename}: not a numpy array of numbers")
                shapes[e.filename.removesuffix(".npy")] = (shape, dtype)
            info = _check_info(shapes.pop("info", None), task, z, bad)
            wanted = _expected_shapes(info, shapes, bad)
            for name, (shape, dtype) in shapes.items():
                if name not in wanted:
                    raise bad(f"an array the network does not have: {name!r}")
                if dtype.kind != "f" or shape != wanted[name]:
                    raise bad(f"{name} is {dtype} {shape}, not float {wanted[name]}")
            missing = set(wanted) - set(shapes)
            if missing:
                raise bad(f"no array {sorted(missing)[0]!r}")
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in wanted}, info
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:  # a broken zip or npy header
        raise bad(str(e)[:200]) from None


def _check_info(header, task: str | None, z, bad) -> dict:
    """The JSON info array of a weights file, checked: members and layers in range, states the task's."""
    if header is None:
        raise bad("no info")
    shape, dtype = header
    if shape != () or dtype.kind != "U" or dtype.itemsize > 4 * MAX_INFO_CHARS:
        raise bad("info is not one string")
    with z.open("info.npy") as f:
        text = str(np.lib.format.read_array(f, allow_pickle=False))
    try:
        info = json.loads(text)
    except (ValueError, RecursionError):
        raise bad("info is not JSON") from None
    if not isinstance(info, dict):
        raise bad("info is not a JSON object")
    kind = info.get("task", task or "fingering")
    if not isinstance(kind, str) or kind not in STATES or (task and kind != task):
        raise bad(f"it holds {kind!r} weights")
    if info.get("states") != STATES[kind]:
        raise bad(f"{kind} weights score {STATES[kind]} states, not {info.get('states')!r:.40}")
    for key, top in (("members", MAX_MEMBERS), ("layers", MAX_LAYERS)):
        value = info.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= top:
            raise bad(f"info {key} must be a whole number 1-{top}, not {value!r:.40}")
    return info


def _expected_shapes(info: dict, shapes: dict, bad) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every array the network of ``info`` has (hidden size from each member's first layer)."""
    from bridge.fingering.features import N_FEATURES

    states, wanted = info["states"], {}
    for k in range(info["members"]):
        first = shapes.get(f"m{k}.lstm.weight_hh_l0", ((0,), None))[0]
        if len(first) != 2 or not 0 < first[1] <= 4096 or first[0] != 4 * first[1]:
            raise bad(f"m{k}.lstm.weight_hh_l0 is missing or not (4 x hidden, hidden)")
        hidden = first[1]
        for layer in range(info["layers"]):
            for side in ("", "_reverse"):
                name = f"m{k}.lstm.{{}}_l{layer}{side}"
                wanted[name.format("weight_ih")] = (4 * hidden, N_FEATURES if layer == 0 else 2 * hidden)
                wanted[name.format("weight_hh")] = (4 * hidden, hidden)
                wanted[name.format("bias_ih")] = wanted[name.format("bias_hh")] = (4 * hidden,)
        wanted |= {
            f"m{k}.unary.weight": (states, 2 * hidden),
            f"m{k}.unary.bias": (states,),
            f"m{k}.pair.weight": (states * states, 4 * hidden),
            f"m{k}.pair.bias": (states * states,),
        }
    return wanted


def save_weights(path: str | Path, members: list[dict[str, np.ndarray]], info: dict) -> None:
    arrays = {f"m{k}.{name}": v.astype(np.float32) for k, m in enumerate(members) for name, v in m.items()}
    info = {**info, "members": len(members)}
    np.savez_compressed(path, info=np.array(json.dumps(info)), **arrays)
