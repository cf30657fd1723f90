"""The expression network in torch (training only; :mod:`bridge.expression.network` runs it in numpy).

A hierarchical attention encoder over the score, after VirtuosoNet's HAN:

    notes  -- MLP, two convolutions over neighbouring notes
    beats  -- attention pooling of their notes, windowed self-attention over beats
    bars   -- attention pooling of their beats, windowed self-attention over bars
    phrases-- attention pooling of their bars, windowed self-attention over phrases

Each beat gets its bar and phrase back, plus a style vector ``z`` (a CVAE: an encoder
sees the performance in training; at inference the styles fitted after training,
:func:`bridge.expression.calibrate.fit_style`, whose centre is the central interpretation). The performance so far can enter at the beat level through gated,
causal cross-attention (``perf``); without it that block is skipped, so the model runs
unchanged. Heads: per beat log seconds per quarter and a loudness trend; per note the
velocity deviation from that trend, the timing deviation inside the beat, articulation and
sustain pedal. The critic scores beat-level performance curves given the score.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# target scaling shared with the numpy side (bridge.expression.network)
from bridge.expression.network import PERF_DIM

N_OUT_BEAT = 2  # log spq, loudness trend
N_OUT_NOTE = 4  # velocity deviation, timing deviation, articulation, pedal logit


def gelu(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


def seg_pool(h: torch.Tensor, score: torch.Tensor, idx: torch.Tensor, n: int) -> torch.Tensor:
    """Softmax-weighted sum of the rows of ``h`` within each segment ``idx`` (n segments)."""
    top = torch.full((n,), -1e9, dtype=h.dtype).scatter_reduce(0, idx, score, "amax", include_self=True)
    e = torch.exp(score - top[idx])
    tot = torch.zeros(n, dtype=h.dtype).index_add(0, idx, e)
    w = e / tot[idx]
    return torch.zeros(n, h.shape[1], dtype=h.dtype).index_add(0, idx, w[:, None] * h)


class Pool(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.score = nn.Linear(d, 1)

    def forward(self, h: torch.Tensor, idx: torch.Tensor, n: int) -> torch.Tensor:
        return seg_pool(h, self.score(h)[:, 0], idx, n)


class Attention(nn.Module):
    """Multi-head attention within +-window positions, with a learned bias per head and offset;
    ``causal`` lets a query see only keys before it (the performance so far)."""

    def __init__(self, d: int, heads: int, window: int, causal: bool = False) -> None:
        super().__init__()
        self.h, self.w, self.causal = heads, window, causal
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.o = nn.Linear(d, d)
        self.bias = nn.Parameter(torch.zeros(heads, 2 * window + 1))

    def forward(self, x: torch.Tensor, mem: torch.Tensor | None = None, key_ok: torch.Tensor | None = None):
        mem = x if mem is None else mem
        n, d = x.shape
        dh = d // self.h
        q = self.q(x).view(n, self.h, dh).transpose(0, 1)
        k, v = self.kv(mem).view(mem.shape[0], 2, self.h, dh).permute(1, 2, 0, 3)
        off = torch.arange(mem.shape[0])[None, :] - torch.arange(n)[:, None]
        allowed = off.abs() <= self.w
        if self.causal:
            allowed = allowed & (off < 0)
        if key_ok is not None:
            allowed = allowed & key_ok[None, :]
        logits = q @ k.transpose(1, 2) / math.sqrt(dh) + self.bias[:, off.clamp(-self.w, self.w) + self.w]
        logits = logits.masked_fill(~allowed[None], -1e9)
        p = torch.softmax(logits, -1) * allowed.any(1)[None, :, None]  # a query with no key gets nothing
        return self.o((p @ v).transpose(0, 1).reshape(n, d))


class Block(nn.Module):
    """Pre-norm attention + feed-forward."""

    def __init__(self, d: int, heads: int, window: int) -> None:
        super().__init__()
        self.n1, self.n2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.att = Attention(d, heads, window)
        self.f1, self.f2 = nn.Linear(d, 2 * d), nn.Linear(2 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.att(self.n1(x))
        return x + self.f2(gelu(self.f1(self.n2(x))))


class Conv(nn.Module):
    """A residual 1-D convolution over notes in score order (kernel 5)."""

    def __init__(self, d: int, k: int = 5) -> None:
        super().__init__()
        self.k = k
        self.norm = nn.LayerNorm(d)
        self.lin = nn.Linear(k * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.pad(self.norm(x), (0, 0, self.k // 2, self.k // 2))
        stacked = torch.cat([y[i : i + x.shape[0]] for i in range(self.k)], 1)
        return x + gelu(self.lin(stacked))


class ExpressionNet(nn.Module):
    def __init__(self, n_feat: int, cfg: dict) -> None:
        super().__init__()
        d, heads = cfg["d"], cfg["heads"]
        self.cfg = cfg
        self.hier = cfg.get("hierarchical", True)
        self.inp1, self.inp2 = nn.Linear(n_feat, 2 * d), nn.Linear(2 * d, d)
        self.convs = nn.ModuleList([Conv(d) for _ in range(2)])
        self.pool_beat = Pool(d)
        if self.hier:
            self.beat_att = Block(d, heads, cfg["beat_window"])
            self.pool_bar, self.bar_att = Pool(d), Block(d, heads, cfg["bar_window"])
            self.pool_phr, self.phr_att = Pool(d), Block(d, heads, cfg["phrase_window"])
            self.up_bar, self.up_phr = nn.Linear(d, d), nn.Linear(d, d)
        else:  # the ablation: the same number of attention layers, all over notes
            self.note_att = nn.ModuleList([Block(d, heads, cfg["note_window"]) for _ in range(3)])
        self.beat_norm = nn.LayerNorm(d)
        self.z_dim = cfg["z_dim"]
        self.up_z = nn.Linear(self.z_dim, d)
        # the performance stream: gated cross-attention from each beat to the beats played before it
        self.perf_in = nn.Linear(PERF_DIM, d)
        self.perf_norm = nn.LayerNorm(d)
        self.cross = Attention(d, heads, cfg["beat_window"], causal=True)
        self.gate = nn.Parameter(torch.zeros(1))
        self.beat_f1, self.beat_f2 = nn.Linear(d, 2 * d), nn.Linear(2 * d, d)
        self.beat_out = nn.Linear(d, N_OUT_BEAT)
        self.note_f1, self.note_f2 = nn.Linear(2 * d, 2 * d), nn.Linear(2 * d, d)
        self.note_out = nn.Linear(d, N_OUT_NOTE)
        # the CVAE's posterior (training only): score + performance -> z
        self.enc1, self.enc2 = nn.Linear(d + PERF_DIM, d), nn.Linear(d, 2 * self.z_dim)

    def encode_score(self, x, beat, beat_bar, bar_phr):
        nb, nm, nphr = int(beat.max()) + 1, int(beat_bar.max()) + 1, int(bar_phr.max()) + 1
        h = self.inp2(gelu(self.inp1(x)))
        for c in self.convs:
            h = c(h)
        if self.hier:
            b = self.beat_att(self.pool_beat(h, beat, nb))
            m = self.bar_att(self.pool_bar(b, beat_bar, nm))
            p = self.phr_att(self.pool_phr(m, bar_phr, nphr))
            b = b + self.up_bar(m)[beat_bar] + self.up_phr(p)[bar_phr[beat_bar]]
        else:
            for blk in self.note_att:
                h = blk(h)
            b = self.pool_beat(h, beat, nb)
        return h, self.beat_norm(b)

    def posterior(self, h_beat, perf_beat):
        s = gelu(self.enc1(torch.cat([h_beat, perf_beat], 1))).mean(0)
        mu, logvar = self.enc2(s).chunk(2)
        return mu, logvar.clamp(-6, 4)

    def forward(self, x, beat, beat_bar, bar_phr, z, perf_beat=None, perf_ok=None, enc=None):
        """Per-beat (B, 2) and per-note (N, 4) outputs in scaled units (see network.Scale)."""
        h, b = self.encode_score(x, beat, beat_bar, bar_phr) if enc is None else enc
        b = b + self.up_z(z)[None, :]
        if perf_beat is not None:
            mem = self.perf_norm(self.perf_in(perf_beat))
            b = b + torch.tanh(self.gate) * self.cross(b, mem, perf_ok)
        b = b + self.beat_f2(gelu(self.beat_f1(b)))
        out_b = self.beat_out(b)
        n = gelu(self.note_f1(torch.cat([h, b[beat]], 1)))
        out_n = self.note_out(self.note_f2(n) + h)
        return out_b, out_n


class Critic(nn.Module):
    """Score-conditioned sequence critic over beats: conv layers over [score, performance] beat
    features, one realism logit per beat (averaged over a passage)."""

    def __init__(self, n_feat: int, d: int) -> None:
        super().__init__()
        self.inp = nn.Linear(n_feat + PERF_DIM, d)
        self.convs = nn.ModuleList([Conv(d) for _ in range(3)])
        self.out = nn.Linear(d, 1)

    def forward(self, score_beat: torch.Tensor, perf_beat: torch.Tensor) -> torch.Tensor:
        h = gelu(self.inp(torch.cat([score_beat, perf_beat], 1)))
        for c in self.convs:
            h = c(h)
        return self.out(h)[:, 0]


def beat_mean(v: torch.Tensor, beat: torch.Tensor, nb: int) -> torch.Tensor:
    """Mean of per-note rows within each beat (0 for an empty beat)."""
    v2 = v if v.dim() == 2 else v[:, None]
    tot = torch.zeros(nb, v2.shape[1], dtype=v.dtype).index_add(0, beat, v2)
    cnt = torch.zeros(nb, dtype=v.dtype).index_add(0, beat, torch.ones_like(beat, dtype=v.dtype))
    return tot / cnt.clamp(min=1)[:, None]


def perf_beat_features(vel, dev, art, log_spq, pitch, beat, nb, ok_note=None):
    """Beat-level summary of a performance (scaled units), the input of the critic and of the
    performance stream: log spq, the same centred on the passage, mean and spread of velocity,
    how velocity follows pitch inside the beat (voicing), mean and spread of the timing
    deviation, articulation; over the notes ``ok_note`` marks as played."""
    w = torch.ones_like(vel) if ok_note is None else ok_note
    cnt = torch.zeros(nb, dtype=vel.dtype).index_add(0, beat, w).clamp(min=1e-6)

    def mean(v):
        return torch.zeros(nb, dtype=vel.dtype).index_add(0, beat, v * w) / cnt

    mv, md = mean(vel), mean(dev)
    sv = torch.sqrt(mean((vel - mv[beat]) ** 2) + 1e-4)
    sd = torch.sqrt(mean((dev - md[beat]) ** 2) + 1e-4)
    voicing = mean((vel - mv[beat]) * (pitch - mean(pitch)[beat]))
    return torch.stack([log_spq, log_spq - log_spq.mean(), mv, sv, voicing, md, sd, mean(art)], 1)
