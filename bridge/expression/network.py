"""The expression network's forward pass in numpy: what rendering and assessment run.

Weights are a ``.npz`` written by :mod:`bridge.expression.train` (torch): the state dicts of
the generator (``g.``) and the critic (``c.``), and the recipe as JSON (``recipe``). The layer
names and the maths mirror :mod:`bridge.expression.model` one for one; a test checks that
both give the same numbers.
"""

from __future__ import annotations

import functools
import json
import math
import zipfile
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

from bridge.errors import UserError

_BLAS = ThreadpoolController()


def single_blas(fn):
    """Run ``fn`` with one BLAS thread: its matrices are small, and OpenBLAS's threads cost
    several times the work itself (4x on a loaded 2-core machine)."""

    @functools.wraps(fn)
    def wrapper(*args, **kw):
        with _BLAS.limit(limits=1, user_api="blas"):
            return fn(*args, **kw)

    return wrapper


PERF_DIM = 8  # beat summary of a performance: see perf_beat_features


class Scale:
    """Targets in network units: velocity (v - 64) / 16, log spq (x + 0.7) / 0.5,
    timing deviation * 10 (in beats), articulation / 1 (log ratio)."""

    VEL_MID, VEL_STEP = 64.0, 16.0
    SPQ_MID, SPQ_STEP = -0.7, 0.5
    DEV = 10.0


def gelu(x: np.ndarray) -> np.ndarray:
    # the tanh form, as torch's approximate="tanh"; in place, since x**3 and the temporaries
    # cost 3-4 times the tanh itself
    y = x * x
    y *= 0.044715
    y += 1.0
    y *= x
    y *= 0.7978845608028654
    np.tanh(y, out=y)
    y += 1.0
    y *= x
    y *= 0.5
    return y


def layer_norm(x: np.ndarray, w: dict, name: str) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * w[name + ".weight"] + w[name + ".bias"]


def linear(x: np.ndarray, w: dict, name: str) -> np.ndarray:
    return x @ w[name + ".weight"].T + w[name + ".bias"]


def seg_pool(h: np.ndarray, score: np.ndarray, idx: np.ndarray, n: int) -> np.ndarray:
    top = np.full(n, -1e9, dtype=h.dtype)
    np.maximum.at(top, idx, score)
    e = np.exp(score - top[idx])
    tot = np.zeros(n, dtype=h.dtype)
    np.add.at(tot, idx, e)
    out = np.zeros((n, h.shape[1]), dtype=h.dtype)
    np.add.at(out, idx, (e / tot[idx])[:, None] * h)
    return out


def pool(h: np.ndarray, idx: np.ndarray, n: int, w: dict, name: str) -> np.ndarray:
    return seg_pool(h, linear(h, w, name + ".score")[:, 0], idx, n)


def attention(x, w, name, heads, window, mem=None, key_ok=None, causal=False):
    mem = x if mem is None else mem
    n, d = x.shape
    dh = d // heads
    q = linear(x, w, name + ".q").reshape(n, heads, dh).transpose(1, 0, 2)
    kv = linear(mem, w, name + ".kv").reshape(mem.shape[0], 2, heads, dh).transpose(1, 2, 0, 3)
    k, v = kv[0], kv[1]
    off = np.arange(mem.shape[0])[None, :] - np.arange(n)[:, None]
    allowed = np.abs(off) <= window
    if causal:
        allowed &= off < 0
    if key_ok is not None:
        allowed &= key_ok[None, :]
    bias = w[name + ".bias"][:, np.clip(off, -window, window) + window]
    logits = q @ k.transpose(0, 2, 1) / math.sqrt(dh) + bias  # a numpy float64 would upcast
    logits = np.where(allowed[None], logits, -1e9)
    logits -= logits.max(-1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(-1, keepdims=True)
    p *= allowed.any(1)[None, :, None]
    return linear((p @ v).transpose(1, 0, 2).reshape(n, d), w, name + ".o")


def block(x, w, name, heads, window):
    x = x + attention(layer_norm(x, w, name + ".n1"), w, name + ".att", heads, window)
    return x + linear(gelu(linear(layer_norm(x, w, name + ".n2"), w, name + ".f1")), w, name + ".f2")


def conv(x, w, name, k=5):
    y = np.pad(layer_norm(x, w, name + ".norm"), ((k // 2, k // 2), (0, 0)))
    stacked = np.concatenate([y[i : i + x.shape[0]] for i in range(k)], 1)
    return x + gelu(linear(stacked, w, name + ".lin"))


class ExpressionNetwork:
    """The trained generator and critic, or an ensemble of them (``recipe["members"]``
    networks trained with different seeds: the central rendition and the critic are their
    average); ``load`` checks the file."""

    def __init__(self, weights: dict[str, np.ndarray], recipe: dict) -> None:
        self.w = weights
        self.recipe = recipe
        self.cfg = recipe["model"]
        self.hier = self.cfg.get("hierarchical", True)
        self.z_dim = self.cfg["z_dim"]
        # member k's generator is stored under "g{k}." and its critic under "c{k}." ("g.", "c." for k = 0)
        prefixes = [""] + [str(k) for k in range(1, int(recipe.get("members", 1)))]
        self.generators = ["g" + p + "." for p in prefixes]
        self.critics = ["c" + p + "." for p in prefixes if f"c{p}.inp.weight" in weights]
        self.members = len(self.generators)

    @classmethod
    def load(cls, path: str | Path) -> ExpressionNetwork:
        try:
            with np.load(path, allow_pickle=False) as z:
                weights = {k: z[k].astype(np.float32) for k in z.files if k != "recipe"}
                recipe = json.loads(str(z["recipe"]))
            net = cls(weights, recipe)
            for g in net.generators:
                net.w[g + "inp1.weight"]  # noqa: B018 - a file without the generator is not ours
        except FileNotFoundError:
            raise UserError(f"expression weights not found: {path}") from None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError, TypeError):
            raise UserError(f"expression weights are damaged or not ours: {path}") from None
        return net

    def encode_score(self, x, beat, beat_bar, bar_phr) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per member, the note and beat encodings of the score (they depend on the score alone)."""
        return [self._encode(g, x, beat, beat_bar, bar_phr) for g in self.generators]

    def _encode(self, g: str, x, beat, beat_bar, bar_phr):
        w, c = self.w, self.cfg
        nb, nm, nphr = int(beat.max()) + 1, int(beat_bar.max()) + 1, int(bar_phr.max()) + 1
        h = linear(gelu(linear(x, w, g + "inp1")), w, g + "inp2")
        for i in range(2):
            h = conv(h, w, g + f"convs.{i}")
        if self.hier:
            b = block(pool(h, beat, nb, w, g + "pool_beat"), w, g + "beat_att", c["heads"], c["beat_window"])
            m = block(pool(b, beat_bar, nm, w, g + "pool_bar"), w, g + "bar_att", c["heads"], c["bar_window"])
            p = block(pool(m, bar_phr, nphr, w, g + "pool_phr"), w, g + "phr_att", c["heads"], c["phrase_window"])
            b = b + linear(m, w, g + "up_bar")[beat_bar] + linear(p, w, g + "up_phr")[bar_phr[beat_bar]]
        else:
            for i in range(3):
                h = block(h, w, g + f"note_att.{i}", c["heads"], c["note_window"])
            b = pool(h, beat, nb, w, g + "pool_beat")
        return h, layer_norm(b, w, g + "beat_norm")

    def forward(self, x, beat, beat_bar, bar_phr, z, perf_beat=None, perf_ok=None, enc=None, notes=None, member=None):
        """(B, 2) beat and (N, 4) note outputs in network units, as the torch model; ``notes``
        (indices) limits the note outputs to those notes. ``z`` is one style vector for every
        member, or one row per member (see :meth:`centres`). ``member`` None averages the
        members' outputs; an index takes that member's alone (a drawn interpretation)."""
        ks = range(self.members) if member is None else [member]
        zs = np.broadcast_to(z, (self.members, self.z_dim))
        outs = [
            self._forward(self.generators[k], x, beat, beat_bar, bar_phr, zs[k], perf_beat, perf_ok,
                          None if enc is None else enc[k], notes)
            for k in ks
        ]  # fmt: skip
        if len(outs) == 1:
            return outs[0]
        return np.mean([o[0] for o in outs], 0), np.mean([o[1] for o in outs], 0)

    def _forward(self, g: str, x, beat, beat_bar, bar_phr, z, perf_beat, perf_ok, enc, notes):
        w, c = self.w, self.cfg
        h, b = self._encode(g, x, beat, beat_bar, bar_phr) if enc is None else enc
        b = b + linear(z[None, :].astype(np.float32), w, g + "up_z")
        if perf_beat is not None:
            mem = layer_norm(linear(perf_beat, w, g + "perf_in"), w, g + "perf_norm")
            cross = attention(b, w, g + "cross", c["heads"], c["beat_window"], mem, perf_ok, causal=True)
            b = b + np.tanh(w[g + "gate"]) * cross
        b = b + linear(gelu(linear(b, w, g + "beat_f1")), w, g + "beat_f2")
        out_b = linear(b, w, g + "beat_out")
        if notes is not None:
            h, beat = h[notes], beat[notes]
        n = gelu(linear(np.concatenate([h, b[beat]], 1), w, g + "note_f1"))
        out_n = linear(linear(n, w, g + "note_f2") + h, w, g + "note_out")
        return out_b, out_n

    def posterior(self, k: int, beat_enc: np.ndarray, perf_beat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Member ``k``'s style posterior (mean, log variance) for a performance of a passage,
        from the passage's beat encoding (``encode_score``) and the performance's beat features."""
        g = self.generators[k]
        s = gelu(linear(np.concatenate([beat_enc, perf_beat], 1), self.w, g + "enc1")).mean(0)
        out = linear(s[None, :], self.w, g + "enc2")[0]
        return out[: self.z_dim], np.clip(out[self.z_dim :], -6.0, 4.0)

    def style(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Member ``k``'s distribution of styles, (mean, covariance): how pianists of one piece
        differ (fitted after training, :func:`bridge.expression.calibrate.fit_style`); the
        prior N(0, I) for weights without it."""
        fitted = self.recipe.get("style")
        if not fitted:
            return np.zeros(self.z_dim, np.float32), np.eye(self.z_dim, dtype=np.float32)
        return np.asarray(fitted[k]["mean"], np.float32), np.asarray(fitted[k]["cov"], np.float32)

    def centres(self) -> np.ndarray:
        """(members, z_dim): each member's central style, what the central rendition plays."""
        return np.stack([self.style(k)[0] for k in range(self.members)])

    def draw(self, k: int, rng: np.random.Generator) -> np.ndarray:
        """A style vector for member ``k`` drawn from its distribution of styles."""
        mean, cov = self.style(k)
        return (mean + np.linalg.cholesky(cov.astype(np.float64)) @ rng.standard_normal(self.z_dim)).astype(np.float32)

    def critic(self, score_beat: np.ndarray, perf_beat: np.ndarray) -> np.ndarray:
        """Realism logit per beat (higher: more like a human performance), the members' mean."""
        w = self.w
        logits = []
        for c in self.critics:
            h = gelu(linear(np.concatenate([score_beat, perf_beat], 1), w, c + "inp"))
            for i in range(3):
                h = conv(h, w, c + f"convs.{i}")
            logits.append(linear(h, w, c + "out")[:, 0])
        return np.mean(logits, 0)


def beat_mean(v: np.ndarray, beat: np.ndarray, nb: int) -> np.ndarray:
    v2 = v if v.ndim == 2 else v[:, None]
    tot = np.zeros((nb, v2.shape[1]), dtype=np.float32)
    np.add.at(tot, beat, v2)
    cnt = np.bincount(beat, minlength=nb).astype(np.float32)
    return tot / np.maximum(cnt, 1)[:, None]


def perf_beat_features(vel, dev, art, log_spq, pitch, beat, nb, ok_note=None) -> np.ndarray:
    """numpy twin of :func:`bridge.expression.model.perf_beat_features` (nan-free inputs)."""
    wgt = np.ones_like(vel) if ok_note is None else ok_note
    cnt = np.maximum(np.bincount(beat, weights=wgt, minlength=nb), 1e-6)

    def mean(v):
        return np.bincount(beat, weights=v * wgt, minlength=nb) / cnt

    mv, md = mean(vel), mean(dev)
    sv = np.sqrt(mean((vel - mv[beat]) ** 2) + 1e-4)
    sd = np.sqrt(mean((dev - md[beat]) ** 2) + 1e-4)
    voicing = mean((vel - mv[beat]) * (pitch - mean(pitch)[beat]))
    cols = [log_spq, log_spq - log_spq.mean(), mv, sv, voicing, md, sd, mean(art)]
    return np.stack(cols, 1).astype(np.float32)
