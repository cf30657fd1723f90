"""Assess how a performance shapes each phrase against the expression model (numpy only).

The core API for live use takes time and notes as arguments and never reads a clock::

    assessor = Assessor(score, net)               # once per score (about 0.1-0.5 s)
    assessor.phrases                              # [(first_measure, last_measure), ...]
    result = assessor.assess_phrase(k, played)    # well under 50 ms for a phrase
    result.text                                   # "bars 5-8: dynamics flat (range 6 against 18-30 expected)"

``played`` maps score note index -> (onset_s, offset_s or None, velocity) for the notes
played so far (those before phrase ``k`` are the context: they enter the model through its
performance stream, so the expectation follows this player's level and tempo). The expected
range of each statistic is the model's value (z = 0 with the player's past, as training fuses
a performance) widened by how far human
phrases fall from it on the validation split (:mod:`bridge.expression.calibrate`); the critic
gives the realism score, ``agreement`` how closely the player follows the central rendition,
and ``together`` how typical of human phrases the spread of its chords' notes is.
:func:`assess_performance` does the same for a whole MIDI file, aligned to the score by the
project's follower.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bridge.errors import UserError
from bridge.expression.features import played_targets
from bridge.expression.network import ExpressionNetwork, Scale, beat_mean, perf_beat_features, single_blas
from bridge.expression.render import Inputs, place, score_inputs
from bridge.score import Score

CONTEXT_BEATS = 32  # beats before a phrase that the model sees (score and performance)
RATIO_STATS = ("range", "tempo_qpm")  # calibrated as log ratios; the others as differences
MIN_PLAYED = 0.5  # a phrase with fewer of its notes played is not assessed
MIN_CHORDS = 3  # a phrase's chord spread is measured over this many chords or more
ARPEGGIO = 36  # the column of features.note_features marking the notes of a rolled chord
SPREAD_LEVELS = np.linspace(0.0, 1.0, 21)  # the levels of the human chord spreads calibrate stores


@dataclass
class PhraseAssessment:
    """One phrase: what was played against the model's range for it (10th-90th percentile)."""

    first_measure: int
    last_measure: int
    played: int  # score notes of the phrase that were played
    level: float  # mean velocity
    level_expected: tuple[float, float]
    range: float  # spread of the beat loudness (90th - 10th percentile, velocity)
    range_expected: tuple[float, float]
    swell: float  # loudness change over the phrase (velocity; > 0 crescendo)
    swell_expected: tuple[float, float]
    tempo_qpm: float
    tempo_expected: tuple[float, float]
    tempo_change: float  # % speed change over the phrase (> 0 pressing on)
    tempo_change_expected: tuple[float, float]
    articulation: float  # median log(played / notated length at the local tempo)
    articulation_expected: tuple[float, float]
    chord_spread_ms: float  # median distance of a chord's notes from their mean onset
    chord_spread_expected: tuple[float, float]  # 10th-90th percentile of human phrases
    realism: float  # the critic's score, 0-1 (higher: more like a human performance)
    agreement: float  # -1..1: r of played and central-rendition velocities and local tempo, averaged
    together: float  # 0-1: how typical of human phrases the chord spread is (1: the median)
    score: float  # 0-1: realism, agreement and together averaged (what the degradation benchmark ranks by)
    text: str
    measures: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def passage_stats(vel: np.ndarray, log_spq: np.ndarray, art: np.ndarray, beat: np.ndarray, nb: int) -> dict:
    """Loudness level, range and swell, tempo, tempo change and articulation of a passage:
    ``vel``/``art`` per note (nan: not played), ``log_spq`` per beat, ``beat`` in 0..nb-1."""
    ok = ~np.isnan(vel)
    cnt = np.bincount(beat[ok], minlength=nb)
    bv = np.bincount(beat[ok], weights=vel[ok], minlength=nb) / np.maximum(cnt, 1)
    has = cnt > 0
    pos = np.linspace(0, 1, nb)
    loud = bv[has]
    swell = float(np.polyfit(pos[has], loud, 1)[0]) if has.sum() >= 3 else 0.0
    tok = ~np.isnan(log_spq)
    slope = float(np.polyfit(pos[tok], log_spq[tok], 1)[0]) if tok.sum() >= 3 else 0.0
    return {
        "level": float(np.mean(vel[ok])) if ok.any() else float("nan"),
        "range": float(np.percentile(loud, 90) - np.percentile(loud, 10)) if len(loud) else 0.0,
        "swell": swell,
        "tempo_qpm": float(60.0 / np.exp(np.median(log_spq[tok]))) if tok.any() else float("nan"),
        "tempo_change": float(100.0 * (np.exp(-slope) - 1.0)),
        "articulation": float(np.nanmedian(art)) if np.any(~np.isnan(art)) else float("nan"),
    }


def chord_spread(on: np.ndarray, q: np.ndarray) -> float:
    """Median distance in ms of a chord's notes from their mean onset ``on`` (s; nan: not
    played), over the chords of score onsets ``q`` with two notes played or more; nan with
    fewer than MIN_CHORDS of them (a phrase's one chord may be rolled unwritten, as a closing
    chord often is). Pianists strike a chord's notes within 5-20 ms of each other (the melody
    a little ahead); notes placed at random drift further apart, a sequencer's not at all."""
    ok = ~np.isnan(on)
    on = on[ok]
    _, inv, cnt = np.unique(np.round(q[ok], 4), return_inverse=True, return_counts=True)
    in_chord = cnt[inv] > 1
    if (cnt > 1).sum() < MIN_CHORDS:
        return float("nan")
    mean = np.bincount(inv, weights=on) / cnt
    return float(1000.0 * np.median(np.abs(on - mean[inv])[in_chord]))


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.std(a) < 1e-9 or np.std(b) < 1e-9:
        return 0.0 if len(a) >= 3 else float("nan")  # a flat performance follows nothing
    return float(np.corrcoef(a, b)[0, 1])


class Assessor:
    """The model's expectations for one score, phrase by phrase."""

    def __init__(self, score: Score | Inputs, net: ExpressionNetwork) -> None:
        self.net = net
        self.has_critic = bool(net.critics)  # the no-critic ablation has none: realism is nan
        self.inp: Inputs = score if isinstance(score, Inputs) else score_inputs(score)
        # the spread of human phrases around the central rendition, measured on the validation
        # split after training (see calibrate); without it the band is the central value itself
        self.calibration: dict = net.recipe.get("calibration", {})
        t = self.inp.tree
        self.phrases: list[tuple[int, int]] = list(t.phrases)
        # note index range of each phrase (notes are in onset order, phrases follow it)
        edges = np.searchsorted(t.phrase, np.arange(len(self.phrases) + 1))
        self.note_span = [(int(edges[k]), int(edges[k + 1])) for k in range(len(self.phrases))]
        beat_phrase = t.measure_phrase[t.beat_measure]
        bedges = np.searchsorted(beat_phrase, np.arange(len(self.phrases) + 1))
        self.beat_span = [(int(bedges[k]), int(bedges[k + 1])) for k in range(len(self.phrases))]
        self._enc: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}

    def band(self, key: str, centre: float) -> tuple[float, float]:
        """The 10th-90th percentile range of human phrases with this central value: the
        residuals measured on the validation split, added (or, for range and tempo,
        multiplied)."""
        q = self.calibration.get(key)
        if q is None or np.isnan(centre):
            return (round(centre, 3), round(centre, 3))
        if key in RATIO_STATS:
            return (round(centre * float(np.exp(q[0])), 3), round(centre * float(np.exp(q[1])), 3))
        return (round(centre + q[0], 3), round(centre + q[1], 3))

    def together(self, spread_ms: float) -> tuple[float, tuple[float, float]]:
        """How typical of human phrases a chord spread is (twice its smaller tail among the
        validation phrases' spreads: 1 at their median, 0 beyond all of them) and their
        10th-90th percentile; nan without a calibration or a chord."""
        q = self.calibration.get("chord_spread_ms")
        if q is None:
            return float("nan"), (float("nan"), float("nan"))
        band = (q[2], q[18])
        if np.isnan(spread_ms):
            return float("nan"), band
        f = float(np.interp(spread_ms, q, SPREAD_LEVELS))
        return 2.0 * min(f, 1.0 - f), band

    def _encoded(self, k: int, x, beat, beat_bar, bar_phr):
        """The score encoding of phrase k's window (it depends on the score alone)."""
        if k not in self._enc:
            self._enc[k] = self.net.encode_score(x, beat, beat_bar, bar_phr)
        return self._enc[k]

    def window(self, k: int) -> tuple[int, int]:
        b0, b1 = self.beat_span[k]
        return max(b0 - CONTEXT_BEATS, 0), b1

    @single_blas
    def assess_phrase(self, k: int, played: dict[int, tuple[float, float | None, int]]) -> PhraseAssessment:
        """Phrase ``k`` as played; ``played`` may hold earlier notes too (context)."""
        if not 0 <= k < len(self.phrases):
            raise UserError(f"no phrase {k}: the score has {len(self.phrases)}")
        inp, t = self.inp, self.inp.tree
        wb0, wb1 = self.window(k)
        pb0 = self.beat_span[k][0] - wb0
        sel = np.flatnonzero((t.beat >= wb0) & (t.beat < wb1))
        n0 = sel[0] if len(sel) else 0
        beat = t.beat[sel] - wb0
        nb = wb1 - wb0
        bars, beat_bar = np.unique(t.beat_measure[wb0:wb1], return_inverse=True)
        _, bar_phr = np.unique(t.measure_phrase[bars], return_inverse=True)
        n = len(sel)
        on, off, vel = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        for i, (o, f, v) in played.items():
            j = i - n0
            if 0 <= j < n:
                on[j], vel[j] = o, v
                off[j] = np.nan if f is None else f
        sub = _sub_tree(t, wb0, wb1)
        got = played_targets(sub, inp.onset_q[sel], inp.duration_q[sel], inp.grace[sel], on, off, vel)
        in_phrase = beat >= pb0
        n_played = int((~np.isnan(vel) & in_phrase).sum())
        first, last = self.phrases[k]
        if n_played < MIN_PLAYED * in_phrase.sum() or n_played < 3:
            nan, no_band = float("nan"), (float("nan"), float("nan"))
            return PhraseAssessment(
                first, last, n_played, *[v for _ in range(7) for v in (nan, no_band)], nan, nan, nan, nan,
                f"{bar_span(first, last)}: too few notes played to assess",
            )  # fmt: skip
        x = inp.feats[sel]
        # the performance stream: the player's beats before the phrase, in network units
        vn = (np.nan_to_num(vel) - Scale.VEL_MID) / Scale.VEL_STEP
        lsp_n = (got.log_spq - Scale.SPQ_MID) / Scale.SPQ_STEP
        lsp_fill = np.where(np.isnan(lsp_n), np.nanmean(lsp_n) if np.any(~np.isnan(lsp_n)) else 0.0, lsp_n)
        ok_note = (~np.isnan(vel)).astype(np.float32)
        perf = perf_beat_features(
            vn, np.nan_to_num(got.dev) * Scale.DEV, np.nan_to_num(got.art), lsp_fill, x[:, 0], beat, nb, ok_note
        )
        perf_ok = (np.bincount(beat, weights=ok_note, minlength=nb) > 0) & (np.arange(nb) < pb0)
        enc = self._encoded(k, x, beat, beat_bar, bar_phr)
        phrase_notes = in_phrase
        pbeat = beat[phrase_notes] - pb0
        pnb = nb - pb0
        pn = np.flatnonzero(phrase_notes)
        z = np.zeros(self.net.z_dim, np.float32)  # the central rendition, following the player's past
        ob, on_ = self.net.forward(x, beat, beat_bar, bar_phr, z, perf if pb0 > 0 else None, perf_ok, enc=enc, notes=pn)
        mv = Scale.VEL_MID + Scale.VEL_STEP * (ob[beat[pn], 1] + on_[:, 0])
        mv = np.where(np.isnan(vel[pn]), np.nan, mv)  # the same notes as the player's
        lsp = ob[pb0:, 0] * Scale.SPQ_STEP + Scale.SPQ_MID
        centre = passage_stats(mv, lsp, on_[:, 2], pbeat, pnb)
        agreement = self._agreement(sel[pn], vel[pn], on[pn], mv, ob, on_, beat[pn], sub)
        mine = passage_stats(vel[phrase_notes], got.log_spq[pb0:], got.art[phrase_notes], pbeat, pnb)
        band = {key: self.band(key, centre[key]) for key in mine}
        # rolled chords and grace notes are spread as written
        struck = ~inp.grace[sel[pn]] & (x[pn, ARPEGGIO] == 0)
        spread = chord_spread(on[pn][struck], inp.onset_q[sel[pn]][struck])
        together, band["chord_spread_ms"] = self.together(spread)
        realism = float("nan")
        if self.has_critic:
            logits = self.net.critic(beat_mean(x, beat, nb), perf)[pb0:]
            realism = float(1.0 / (1.0 + np.exp(-np.mean(logits))))
        score = float(np.nanmean([realism, 0.5 * (agreement + 1.0), together]))
        self.last_stats = (mine, centre)  # for calibrate()
        measures = self._measures(vel, got.log_spq, beat, t, wb0, pb0)
        text = describe(first, last, {**mine, "chord_spread_ms": spread}, band)
        return PhraseAssessment(
            first, last, n_played, round(mine["level"], 2), band["level"], round(mine["range"], 2), band["range"],
            round(mine["swell"], 2), band["swell"], round(mine["tempo_qpm"], 2), band["tempo_qpm"],
            round(mine["tempo_change"], 2), band["tempo_change"], round(mine["articulation"], 3),
            band["articulation"], round(spread, 1), band["chord_spread_ms"], round(realism, 4), round(agreement, 4),
            round(together, 4), round(score, 4), text, measures,
        )  # fmt: skip

    def _agreement(self, notes, vel, on, model_vel, ob, on_, b, sub) -> float:
        """Mean Pearson r between the player and the central rendition over the phrase's
        ``notes`` (score indices; ``b`` their beats in the window ``sub``): velocities, and
        seconds per quarter between successive score onsets (as eval_expression.py measures
        tempo)."""
        played = ~np.isnan(vel)
        rs = [_pearson(vel[played], model_vel[played])]
        q = self.inp.onset_q[notes]
        model_on, _ = place(sub.beat_start_q, sub.beat_len_q, b, q, ob[:, 0], on_[:, 1])
        ok = played & ~self.inp.grace[notes]
        uq, inv = np.unique(np.round(q[ok], 4), return_inverse=True)
        if len(uq) >= 4:
            cnt = np.bincount(inv)
            t_player = np.bincount(inv, weights=on[ok]) / cnt
            t_model = np.bincount(inv, weights=model_on[ok]) / cnt
            rs.append(_pearson(np.diff(t_player) / np.diff(uq), np.diff(t_model) / np.diff(uq)))
        rs = [r for r in rs if not np.isnan(r)]
        return float(np.mean(rs)) if rs else float("nan")

    def _measures(self, vel, log_spq, beat, t, wb0, pb0) -> list[dict]:
        """Played loudness and tempo of each bar of the phrase."""
        out = []
        bar_of_beat = t.beat_measure[wb0 + pb0 : wb0 + len(log_spq)]
        for m in np.unique(bar_of_beat):
            bs = np.flatnonzero(t.beat_measure[wb0 : wb0 + len(log_spq)] == m)
            notes = np.isin(beat, bs) & ~np.isnan(vel)
            lsp = log_spq[bs]
            out.append({
                "measure": int(t.measure_numbers[m]),
                "level": round(float(np.mean(vel[notes])), 2) if notes.any() else None,
                "tempo_qpm": round(float(60 / np.exp(np.nanmedian(lsp))), 2) if np.any(~np.isnan(lsp)) else None,
            })  # fmt: skip
        return out


def _sub_tree(t, b0: int, b1: int):
    """The beat-level part of the tree for beats [b0, b1) (what played_targets reads)."""
    from bridge.expression.features import Tree

    sel = (t.beat >= b0) & (t.beat < b1)
    return Tree(
        beat=t.beat[sel] - b0, measure=t.measure[sel], phrase=t.phrase[sel], beat_start_q=t.beat_start_q[b0:b1],
        beat_len_q=t.beat_len_q[b0:b1], beat_measure=t.beat_measure[b0:b1], measure_phrase=t.measure_phrase,
        measure_numbers=t.measure_numbers, phrases=t.phrases,
    )  # fmt: skip


# what a figure below / above its expected band is called
OUTSIDE = (
    ("range", "dynamics flat (range {v:.0f} against {lo:.0f}-{hi:.0f} expected)",
     "dynamics exaggerated (range {v:.0f} against {lo:.0f}-{hi:.0f} expected)"),
    ("swell", "crescendo to bar {last} missing ({v:+.0f} against {lo:+.0f}..{hi:+.0f})",
     "diminuendo to bar {last} missing ({v:+.0f} against {lo:+.0f}..{hi:+.0f})"),
    ("level", "soft (level {v:.0f} against {lo:.0f}-{hi:.0f})", "loud (level {v:.0f} against {lo:.0f}-{hi:.0f})"),
    ("tempo_change", "dragging into bar {last} ({v:+.0f}% against {lo:+.0f}..{hi:+.0f}%)",
     "rushing into bar {last} ({v:+.0f}% against {lo:+.0f}..{hi:+.0f}%)"),
    ("articulation", "more detached than expected", "more legato than expected"),
    ("chord_spread_ms", None, "chords not together (spread {v:.1f} ms against {lo:.1f}-{hi:.1f} expected)"),
)  # fmt: skip


def describe(first: int, last: int, mine: dict, band: dict) -> str:
    """One line on what falls outside the expected range, e.g. 'bars 5-8: dynamics flat (range 6
    against 18-30 expected); crescendo to bar 8 missing; rushing into bar 8'."""
    notes = []
    for key, below, above in OUTSIDE:
        lo, hi = band[key]
        v = mine[key]
        # a swell is missing only where the band says which way it should go
        if v < lo and below and (key != "swell" or lo > 0):
            notes.append(below.format(v=v, lo=lo, hi=hi, last=last))
        elif v > hi and (key != "swell" or hi < 0):
            notes.append(above.format(v=v, lo=lo, hi=hi, last=last))
    return f"{bar_span(first, last)}: " + ("; ".join(notes) if notes else "within the expected range")


def bar_span(first: int, last: int) -> str:
    """'bars 5-8', or 'bar 22' for a phrase of one bar."""
    return f"bar {first}" if first == last else f"bars {first}-{last}"


def align_performance(score: Score, midi_path: str | Path) -> dict[int, tuple[float, float | None, int]]:
    """Score note index -> (onset_s, offset_s, velocity) of the correct notes of a MIDI file,
    as the project's follower matches them; UserError when under half the score is found."""
    from bridge.events import NoteVerdict
    from bridge.midifile import read_notes, read_performance
    from bridge.replay import new_engine, run_engine

    events = read_performance(midi_path)
    index = {(n.note_id, n.pass_no): i for i, n in enumerate(score.notes)}
    ends = {}
    for o, f, p, _ in read_notes(midi_path):
        ends[(round(o, 6), p)] = f
    played: dict[int, tuple[float, float | None, int]] = {}
    for ev in run_engine(new_engine(score, fingering=False), events):
        if isinstance(ev, NoteVerdict) and ev.verdict == "correct" and ev.match is not None:
            i = index.get((ev.match.note_id, ev.match.pass_no))
            if i is not None and i not in played:
                played[i] = (ev.t, ends.get((round(ev.t, 6), ev.pitch)), ev.velocity)
    if len(played) < 0.5 * len(score.notes):
        raise UserError(
            f"the performance does not match the score: {len(played)} of {len(score.notes)} score notes found in it"
        )
    return played


def assess_performance(score: Score, midi_path: str | Path, net: ExpressionNetwork) -> dict:
    """Every phrase of a MIDI performance assessed; JSON-ready."""
    played = align_performance(score, midi_path)
    a = Assessor(score, net)
    phrases = [a.assess_phrase(k, played).to_dict() for k in range(len(a.phrases))]
    real = [p["realism"] for p in phrases if not np.isnan(p["realism"])]
    curves = played_curves(a, played)
    return {
        "score": score.title, "performance": str(midi_path), "notes_matched": len(played),
        "notes": len(score.notes), "realism": round(float(np.mean(real)), 4) if real else None,
        "phrases": phrases, "curves": curves,
    }  # fmt: skip


def played_curves(a: Assessor, played: dict) -> dict:
    """Beat loudness and tempo of the whole performance and of the central rendition (the plot)."""
    inp, t = a.inp, a.inp.tree
    n = len(inp.beat)
    on, off, vel = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    for i, (o, f, v) in played.items():
        on[i], vel[i] = o, v
        off[i] = np.nan if f is None else f
    got = played_targets(t, inp.onset_q, inp.duration_q, inp.grace, on, off, vel)
    ob, on_ = a.net.forward(inp.feats, inp.beat, inp.beat_bar, inp.bar_phr, a.net.centres())
    mv = Scale.VEL_MID + Scale.VEL_STEP * (ob[inp.beat, 1] + on_[:, 0])
    ok = ~np.isnan(vel)
    cnt = np.bincount(inp.beat[ok], minlength=t.n_beats)
    loud = np.where(
        cnt > 0, np.bincount(inp.beat[ok], weights=vel[ok], minlength=t.n_beats) / np.maximum(cnt, 1), np.nan
    )
    model_loud = np.bincount(inp.beat, weights=mv, minlength=t.n_beats) / np.maximum(
        np.bincount(inp.beat, minlength=t.n_beats), 1
    )
    return {
        "beat_bar": [int(x) for x in t.measure_numbers[t.beat_measure]],
        "played_loudness": [None if np.isnan(x) else round(float(x), 2) for x in loud],
        "model_loudness": [round(float(x), 2) for x in model_loud],
        "played_qpm": [None if np.isnan(x) else round(float(60 / np.exp(x)), 2) for x in got.log_spq],
        "model_qpm": [round(float(60 / np.exp(x * Scale.SPQ_STEP + Scale.SPQ_MID)), 2) for x in ob[:, 0]],
    }


def write_json(result: dict, path: str | Path) -> None:
    try:
        Path(path).write_text(json.dumps(result, indent=1, allow_nan=False, default=_plain))
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror}") from None
    except ValueError:  # a nan left in: write it as null
        Path(path).write_text(json.dumps(_no_nan(result), indent=1, default=_plain))


def _plain(x):
    return float(x) if isinstance(x, np.floating) else int(x)


def _no_nan(x):
    if isinstance(x, dict):
        return {k: _no_nan(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_no_nan(v) for v in x]
    return None if isinstance(x, float) and np.isnan(x) else x


def plot_assessment(result: dict, path: str | Path) -> None:
    """Played against modelled beat loudness and tempo, with the phrase boundaries."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = result["curves"]
    x = np.arange(len(c["model_loudness"]))
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    played_l = np.array([np.nan if v is None else v for v in c["played_loudness"]])
    played_t = np.array([np.nan if v is None else v for v in c["played_qpm"]])
    a1.plot(x, played_l, label="played", color="C0")
    # the shapes are compared: the model's curves are drawn at the player's mean level and tempo
    shift = np.nanmean(played_l) - np.mean(c["model_loudness"])
    scale = np.nanmedian(played_t) / np.median(c["model_qpm"])
    a1.plot(x, np.array(c["model_loudness"]) + shift, label="model (central), at the player's level/tempo", color="C1")
    a1.set_ylabel("beat loudness (velocity)")
    a2.plot(x, played_t, label="played", color="C0")
    a2.plot(x, np.array(c["model_qpm"]) * scale, label="model (central)", color="C1")
    a2.set_ylabel("tempo (quarters/min)")
    bars = c["beat_bar"]
    starts = {p["first_measure"] for p in result["phrases"]}
    for b in range(1, len(bars)):
        if bars[b] != bars[b - 1] and bars[b] in starts:
            for ax in (a1, a2):
                ax.axvline(b, color="0.8", lw=0.8)
    a2.set_xlabel("beat (grey lines: phrase starts)")
    a1.legend(loc="upper right")
    a1.set_title(result["score"])
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=90)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror}") from None
    finally:
        plt.close(fig)
