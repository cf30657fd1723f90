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


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _lstm_direction(x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """One LSTM direction over x (n, d) with torch's gate order (input, forget, cell, output)."""
    n, hidden = len(x), w_hh.shape[1]
    gates_in = x @ w_ih.T + bias
    w_hh_t = w_hh.T.copy()
    h = np.zeros(hidden, dtype=x.dtype)
    c = np.zeros(hidden, dtype=x.dtype)
    out = np.empty((n, hidden), dtype=x.dtype)
    for t in range(n):
        g = gates_in[t] + h @ w_hh_t
        i, f, cell, o = (
            _sigmoid(g[:hidden]),
            _sigmoid(g[hidden : 2 * hidden]),
            np.tanh(g[2 * hidden : 3 * hidden]),
            _sigmoid(g[3 * hidden :]),
        )
        c = f * c + i * cell
        h = o * np.tanh(c)
        out[t] = h
    return out


class CrfNet:
    """One trained member: numpy arrays named as in the torch state dict."""

    def __init__(self, params: dict[str, np.ndarray], layers: int):
        self.p = params
        self.layers = layers

    def potentials(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = x
        for layer in range(self.layers):
            parts = []
            for suffix, reverse in (("", False), ("_reverse", True)):
                name = f"l{layer}{suffix}"
                seq = h[::-1] if reverse else h
                out = _lstm_direction(
                    seq,
                    self.p[f"lstm.weight_ih_{name}"],
                    self.p[f"lstm.weight_hh_{name}"],
                    self.p[f"lstm.bias_ih_{name}"] + self.p[f"lstm.bias_hh_{name}"],
                )
                parts.append(out[::-1] if reverse else out)
            h = np.concatenate(parts, 1)
        unary = h @ self.p["unary.weight"].T + self.p["unary.bias"]
        both = np.concatenate([h[:-1], h[1:]], 1)
        k = unary.shape[1]
        pair = (both @ self.p["pair.weight"].T + self.p["pair.bias"]).reshape(-1, k, k)
        return unary, pair


class FingeringModel:
    """An ensemble of `CrfNet` members whose potentials are averaged."""

    def __init__(self, members: list[CrfNet], info: dict):
        self.members = members
        self.info = info

    @classmethod
    def load(cls, path: str | Path | None = None) -> FingeringModel:
        """Weights from ``path``, else from `weights_path` (the fingering network)."""
        path = Path(path) if path else weights_path(None)
        if not path.exists():
            raise UserError(
                f"no fingering weights at {path}: train them with `pianobridge train fingering PIG_DIR` "
                f"or point --weights (or {WEIGHTS_ENV}) at a weights file"
            )
        try:
            data = np.load(path, allow_pickle=False)
            info = json.loads(str(data["info"]))
        except (OSError, ValueError, KeyError) as e:
            raise UserError(f"not a pianobridge fingering weights file: {path} ({e})") from None
        members = []
        for k in range(info["members"]):
            prefix = f"m{k}."
            params = {key[len(prefix) :]: data[key].astype(np.float32) for key in data.files if key.startswith(prefix)}
            members.append(CrfNet(params, info["layers"]))
        return cls(members, info)

    def potentials(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Averaged (unary (n, 5), pair (n-1, 5, 5)) potentials for one hand's features."""
        if len(x) == 0:
            k = self.info.get("states", 5)
            return np.zeros((0, k), np.float32), np.zeros((0, k, k), np.float32)
        results = [m.potentials(x) for m in self.members]
        unary = np.mean([r[0] for r in results], 0)
        pair = np.mean([r[1] for r in results], 0)
        return unary, pair


def save_weights(path: str | Path, members: list[dict[str, np.ndarray]], info: dict) -> None:
    arrays = {f"m{k}.{name}": v.astype(np.float32) for k, m in enumerate(members) for name, v in m.items()}
    info = {**info, "members": len(members)}
    np.savez_compressed(path, info=np.array(json.dumps(info)), **arrays)
