"""Score side of the expression model: per-note features and the note -> beat -> measure -> phrase tree.

Everything here reads only a :class:`~bridge.score.Score` (the project's loader), so a user's
MusicXML and the training scores take the same path. numpy only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from bridge.score import ACCENT_DYNAMICS, Score, ScoreNote

# loudness of each printed dynamic on a rough log scale (mf = 0)
DYNAMIC_LEVEL = {"pppp": -4.5, "ppp": -3.5, "pp": -2.5, "p": -1.5, "mp": -0.5, "mf": 0.5, "f": 1.5, "ff": 2.5,
                 "fff": 3.5, "ffff": 4.5, "fp": 1.5, "sf": 1.5, "sfz": 1.5, "sffz": 2.5, "rfz": 1.5}  # fmt: skip
# tempo terms -> a rough log2 speed (andante = 0), for scores without a metronome mark
TEMPO_TERMS = (("prestissimo", 1.6), ("presto", 1.3), ("vivace", 1.0), ("vivo", 1.0), ("allegretto", 0.5),
               ("allegro", 0.9), ("moderato", 0.3), ("andantino", 0.15), ("andante", 0.0), ("adagio", -0.6),
               ("larghetto", -0.6), ("lento", -0.8), ("largo", -1.0), ("grave", -1.0))  # fmt: skip
SLOWER = re.compile(r"\b(rit|riten|ritard|rall|allarg|smorz|calando|morendo)")
FASTER = re.compile(r"\b(accel|string|stretto)")
# a sudden change of pace against the term in force, held until a new term or "a tempo"/"tempo I"
MOSSO = ((re.compile(r"\bmeno mosso"), -0.3), (re.compile(r"\bpi[uù] mosso"), 0.3))
RESTORE = re.compile(r"\b(a tempo|tempo i\b|tempo primo)")
ARTICULATIONS = ("staccato", "staccatissimo", "accent", "strongaccent", "tenuto")
PHRASE_MEASURES = 4  # a phrase is four bars of a section, or two of a long bar (see phrase_tree)
N_VOICES = 6


@dataclass(frozen=True)
class Tree:
    """Where each note sits: beat, measure and phrase indices, and the spans of each."""

    beat: np.ndarray  # (N,) beat index of each note
    measure: np.ndarray  # (N,) measure index
    phrase: np.ndarray  # (N,) phrase index
    beat_start_q: np.ndarray  # (B,) onset of each beat in quarters (unfolded)
    beat_len_q: np.ndarray  # (B,) its length
    beat_measure: np.ndarray  # (B,) measure index of each beat
    measure_phrase: np.ndarray  # (M,) phrase index of each measure
    measure_numbers: np.ndarray  # (M,) printed measure number
    phrases: list[tuple[int, int]]  # (first, last) printed measure of each phrase

    @property
    def n_beats(self) -> int:
        return len(self.beat_start_q)


def beat_length_q(time_signature: str) -> float:
    """Length of the counted beat in quarters, as music21 counts it and so as the score's
    ``beat`` numbers count it: compound metres count dotted beats, 3/8 and 3/16 one dotted
    beat a bar (a bar of 3/8 counted in eighths put every note past its first eighth into a
    new bar, and each bar into a phrase of its own)."""
    try:
        num, den = (int(x) for x in time_signature.split("/")[:2])
    except ValueError:
        return 1.0
    if num % 3 == 0 and (num > 3 or den >= 8):
        return 3 * 4.0 / den
    return 4.0 / den


def _beats_per_measure(time_signature: str) -> float:
    try:
        num, den = (int(x) for x in time_signature.split("/")[:2])
    except ValueError:
        return 4.0
    return num * 4.0 / den / beat_length_q(time_signature)


def phrase_tree(score: Score) -> Tree:
    """Group the notes into beats, measures (in play order) and phrases.

    A phrase is :data:`PHRASE_MEASURES` measures of a section (two when a measure is eight
    quarters or longer); a section ends where play order jumps (a repeat) or the time
    signature changes, so a phrase never spans a repeat.
    """
    notes = score.notes
    n = len(notes)
    bq = np.array([beat_length_q(x.time_signature) for x in notes])
    onset = np.array([x.onset_q for x in notes])
    beat_pos = np.array([x.beat for x in notes]) - 1.0
    mstart = np.round(onset - beat_pos * bq, 3)
    bstart = np.round(onset - (beat_pos - np.floor(beat_pos + 1e-6)) * bq, 3)
    # measures in play order: a new one where the measure start moves on
    measure = np.zeros(n, int)
    numbers = [notes[0].measure] if n else []
    for i in range(1, n):
        new = mstart[i] > mstart[i - 1] + 1e-3 or notes[i].measure != notes[i - 1].measure
        measure[i] = measure[i - 1] + new
        if new:
            numbers.append(notes[i].measure)
    beat = np.zeros(n, int)
    starts = [bstart[0]] if n else []
    lens = [bq[0]] if n else []
    beat_measure = [0] if n else []
    for i in range(1, n):
        new = bstart[i] > bstart[i - 1] + 1e-3 or measure[i] != measure[i - 1]
        beat[i] = beat[i - 1] + new
        if new:
            starts.append(bstart[i])
            lens.append(bq[i])
            beat_measure.append(measure[i])
    n_meas = len(numbers)
    first_note = np.searchsorted(measure, np.arange(n_meas))
    ts = [notes[k].time_signature for k in first_note]
    mlen = [_beats_per_measure(t) * beat_length_q(t) for t in ts]
    # an upbeat bar (written short: it begins before the bar in play order before it ends, or
    # before the score does) opens a phrase and is not one of its bars, so that phrases run
    # from downbeat to downbeat as the music's do; counted, it put every later phrase a bar early
    bar_start = mstart[first_note]
    first_beat = beat_pos[first_note] < 1e-6
    measure_phrase = np.zeros(n_meas, int)
    phrases: list[tuple[int, int]] = []
    count = 0
    for m in range(n_meas):
        size = 2 if mlen[m] >= 8 else PHRASE_MEASURES
        jump = m > 0 and (numbers[m] != numbers[m - 1] + 1 or ts[m] != ts[m - 1])
        before = bar_start[m - 1] + mlen[m - 1] if m else 0.0
        upbeat = not first_beat[m] and bar_start[m] < before - 1e-3
        if m == 0 or jump or upbeat or count >= size:
            phrases.append((numbers[m], numbers[m]))
            count = 0
        count += not upbeat
        measure_phrase[m] = len(phrases) - 1
        phrases[-1] = (phrases[-1][0], numbers[m])
    return Tree(
        beat=beat,
        measure=measure,
        phrase=measure_phrase[measure] if n else np.zeros(0, int),
        beat_start_q=np.array(starts, float),
        beat_len_q=np.array(lens, float),
        beat_measure=np.array(beat_measure, int),
        measure_phrase=measure_phrase,
        measure_numbers=np.array(numbers, int),
        phrases=phrases,
    )


def _tempo_term(words: str | None) -> float | None:
    for term, speed in TEMPO_TERMS:
        if words and term in words:
            return speed
    return None


def _gradual_span(words: list[str | None], tree: Tree) -> np.ndarray:
    """True where a word is still in force within the phrase that holds the bar after the one
    it is written in: a "rit." or "calando" closes a phrase, and scores often leave out the
    "a tempo" after it (Mozart's K. 310 I would read "calando" from bar 14 to its end)."""
    n = len(words)
    on = np.ones(n, bool)
    last_measure = int(tree.measure.max()) if n else 0
    start = 0
    for i in range(1, n + 1):
        if i == n or words[i] != words[start]:
            m_next = min(int(tree.measure[start]) + 1, last_measure)
            on[start:i] = tree.phrase[start:i] <= tree.measure_phrase[m_next]
            start = i
    return on


def note_features(score: Score, tree: Tree) -> np.ndarray:
    """(N, N_FEATURES) float32 features of every score note; see the column list in the code."""
    notes = score.notes
    n = len(notes)
    pitch = np.array([x.pitch for x in notes], float)
    onset = np.array([x.onset_q for x in notes])
    dur = np.array([x.duration_q for x in notes])
    grace = np.array([x.grace for x in notes], float)
    right = np.array([x.hand == "right" for x in notes], float)
    # chord context: rank of the note among the notes struck with it, in its hand and overall
    top_all, bottom_all, top_hand, bottom_hand, size, rel_top = (np.zeros(n) for _ in range(6))
    for ev in score.events:
        idx = list(ev.notes)
        ps = pitch[idx]
        size[idx] = len(idx)
        top_all[idx] = ps == ps.max()
        bottom_all[idx] = ps == ps.min()
        rel_top[idx] = (ps - ps.max()) / 12.0
        for h in (0.0, 1.0):
            sel = [k for k in idx if right[k] == h]
            if sel:
                top_hand[sel] = pitch[sel] == pitch[sel].max()
                bottom_hand[sel] = pitch[sel] == pitch[sel].min()
    # the highest right-hand pitch sounding in a window around the note: melody tends to be on top
    beat_top = np.full(tree.n_beats, -1.0)
    np.maximum.at(beat_top, tree.beat, np.where(right > 0, pitch, -1.0))
    is_beat_top = (right > 0) & (pitch >= beat_top[tree.beat])
    uq, inv = np.unique(np.round(onset, 4), return_inverse=True)
    ioi_next = np.append(np.diff(uq), 1.0)[inv]
    ioi_prev = np.insert(np.diff(uq), 0, 1.0)[inv]
    # notes per quarter over four quarters around the note
    density = (np.searchsorted(onset, onset + 2.0) - np.searchsorted(onset, onset - 2.0)) / 4.0
    bq = tree.beat_len_q[tree.beat]
    bpm = np.array([_beats_per_measure(x.time_signature) for x in notes])
    pos_beat = (onset - tree.beat_start_q[tree.beat]) / bq  # 0 on the beat
    beat_in_bar = np.array([x.beat - 1.0 for x in notes])
    bar_frac = np.clip(beat_in_bar / np.maximum(bpm, 1), 0, 1)
    on_beat = pos_beat < 1e-3
    downbeat = on_beat & (np.floor(beat_in_bar + 1e-6) == 0)
    mid_bar = on_beat & (np.abs(np.floor(beat_in_bar + 1e-6) - bpm / 2) < 1e-6) & (bpm % 2 == 0) & (bpm >= 4)
    strength = np.where(downbeat, 1.0, np.where(mid_bar, 0.6, np.where(on_beat, 0.4, 0.0)))
    strength += np.where(~on_beat & (np.abs(pos_beat - 0.5) < 1e-3), 0.15, 0.0)
    dyn = np.array([DYNAMIC_LEVEL.get(x.dynamic or "mf", 0.5) for x in notes]) / 3.0
    accent_dyn = np.array([(x.dynamic in ACCENT_DYNAMICS) for x in notes], float)
    cresc = np.array([x.wedge == "crescendo" for x in notes], float)
    dim = np.array([x.wedge == "diminuendo" for x in notes], float)
    arts = np.array([[a in x.articulations for a in ARTICULATIONS] for x in notes], float).reshape(n, -1)
    fermata = np.array([any("fermata" in o for o in x.ornaments) for x in notes], float)
    trill = np.array([any(o in ("trill", "mordent", "invertedmordent", "turn", "tremolo") for o in x.ornaments)
                      for x in notes], float)  # fmt: skip
    arpeggio = np.array([any("arpeggio" in o for o in x.ornaments) for x in notes], float)
    slur = np.array([x.slur for x in notes], float)
    slur_end = np.array([x.slur_end for x in notes], float)
    voice = np.zeros((n, N_VOICES))
    voice[np.arange(n), np.clip(voice_rank(notes), 0, N_VOICES - 1)] = 1.0
    words = [x.words for x in notes]
    gradual = _gradual_span(words, tree)
    slower = np.array([bool(w and SLOWER.search(w)) for w in words], float) * gradual
    faster = np.array([bool(w and FASTER.search(w)) for w in words], float) * gradual
    # a tempo term (lento, allegro) holds until another replaces it: "rit." or "a tempo" after
    # it changes the pace around that point, not the piece's speed
    term, shift, held, moved = [], np.zeros(n), None, 0.0
    for i, w in enumerate(words):
        held = t if (t := _tempo_term(w)) is not None else held
        if t is not None or (w and RESTORE.search(w)):
            moved = 0.0
        # "meno mosso" moves the pace from where it is, written once for the whole passage
        moved = next((step for rx, step in MOSSO if w and rx.search(w)), moved)
        term.append(held)
        shift[i] = moved
    qpm = np.array([x.tempo_qpm or 0.0 for x in notes])
    # a metronome mark gives the speed; else a tempo term; else nothing (flag 0)
    speed = shift + np.where(qpm > 0, np.log2(np.maximum(qpm, 1.0) / 80.0), [t or 0.0 for t in term])
    has_speed = ((qpm > 0) | np.array([t is not None for t in term]) | (shift != 0)).astype(float)
    # a note after silence (nothing sounding just before it) starts a gesture
    ends = np.maximum.accumulate(onset + dur)
    after_rest = np.zeros(n)
    after_rest[1:] = (ends[:-1] < onset[1:] - 1e-3) & (onset[1:] > onset[:-1])
    n_phr = max(tree.phrase.max() + 1, 1) if n else 1
    ph_first = np.full(n_phr, np.inf)
    ph_last = np.full(n_phr, -np.inf)
    np.minimum.at(ph_first, tree.phrase, onset)
    np.maximum.at(ph_last, tree.phrase, onset + dur)
    ph_pos = (onset - ph_first[tree.phrase]) / np.maximum(ph_last - ph_first, 1e-3)[tree.phrase]
    piece_pos = onset / max(onset.max() + 1e-3, 1.0) if n else onset
    # how near the close, in beats: piece_pos cannot tell the last bar of a long piece from the
    # one before it, and the close is where players slow most (the final ritardando)
    to_end = np.exp(-(tree.n_beats - 1 - tree.beat) / 4.0)
    ts_num = np.array([_beats_per_measure(x.time_signature) for x in notes])
    cols = [
        (pitch - 64) / 16, ((pitch - 64) / 16) ** 2, np.log2(np.maximum(dur, 1 / 32)) / 3, dur / bq / 4, grace,
        right, top_all, bottom_all, top_hand, bottom_hand, is_beat_top.astype(float), size / 4, rel_top,
        np.log2(np.maximum(ioi_next, 1 / 32)) / 3, np.log2(np.maximum(ioi_prev, 1 / 32)) / 3, density / 8,
        pos_beat, bar_frac, np.sin(2 * math.pi * bar_frac), np.cos(2 * math.pi * bar_frac), on_beat.astype(float),
        downbeat.astype(float), strength, np.log2(bq), ts_num / 4, dyn, accent_dyn, cresc, dim, *arts.T, fermata,
        trill, arpeggio, slur, *voice.T, slower, faster, speed, has_speed, after_rest, ph_pos, piece_pos,
        (ph_pos < 0.02).astype(float), to_end, _under_held(notes, right), slur_end, _reach_next(pitch, onset, right),
        _key_again(pitch, onset, dur) / 4,
    ]  # fmt: skip
    return np.stack(cols, axis=1).astype(np.float32).reshape(n, N_FEATURES)


N_FEATURES = 57


def voice_rank(notes: list[ScoreNote]) -> np.ndarray:
    """Each note's voice as the rank of its number among the voices its staff uses (0 for the
    lowest number): editors number voices differently (MuseScore 5-8 in the bass staff, partitura
    on from the treble's), the order of the voices in a staff is what they share."""
    used: dict[tuple[str, int], list[int]] = {}
    for x in notes:
        used.setdefault((x.part, x.staff), []).append(x.voice)
    rank = {k: {v: i for i, v in enumerate(sorted(set(vs)))} for k, vs in used.items()}
    return np.array([rank[(x.part, x.staff)][x.voice] for x in notes], int)


def _reach_next(pitch: np.ndarray, onset: np.ndarray, right: np.ndarray) -> np.ndarray:
    """How far the hand spans, in octaves (at most 2), if it held the note while striking its
    next notes: a bass note before a chord an octave and more above it has to be let go
    (oom-pah-pah), a step in a melody can be joined."""
    out = np.zeros(len(pitch))
    for h in (0.0, 1.0):
        idx = np.flatnonzero(right == h)
        if not len(idx):
            continue
        uq, inv = np.unique(onset[idx], return_inverse=True)
        lo, hi = np.full(len(uq), np.inf), np.full(len(uq), -np.inf)
        np.minimum.at(lo, inv, pitch[idx])
        np.maximum.at(hi, inv, pitch[idx])
        has_next = inv + 1 < len(uq)
        nxt = np.minimum(inv + 1, len(uq) - 1)
        span = np.maximum(hi[nxt], pitch[idx]) - np.minimum(lo[nxt], pitch[idx])
        out[idx] = np.where(has_next, np.minimum(span / 12.0, 2.0), 0.0)
    return out


def _key_again(pitch: np.ndarray, onset: np.ndarray, dur: np.ndarray) -> np.ndarray:
    """log2 of the time until the same key is struck again over the note's written length,
    in [-1, 4] (a key not struck again within 16 quarters counts as struck at 16). At 0 the key
    is wanted again the moment the note ends, and players release it early to strike it again:
    in (n)ASAP such notes are played 0.24 log units shorter than a linear fit on the other
    columns predicts. Of two notes on one key at one onset (voices in unison), the one listed
    last waits for the next strike and the other reads as not struck again; giving both the
    next strike was trained and measured (two seed sets) and did not help (docs/expression.md)."""
    again = np.full(len(pitch), 16.0)
    nxt: dict[float, float] = {}  # pitch -> the next onset that strikes it
    for i in np.argsort(onset, kind="stable")[::-1]:
        t = nxt.get(pitch[i])
        if t is not None and t > onset[i] + 1e-6:
            again[i] = min(t - onset[i], 16.0)
        if t is None or onset[i] < t - 1e-6:
            nxt[pitch[i]] = onset[i]
    return np.clip(np.log2(again / np.maximum(dur, 1 / 32)), -1.0, 4.0)


def _under_held(notes: list[ScoreNote], right: np.ndarray) -> np.ndarray:
    """1 for a note struck under a higher note of its hand that is still held (an inner voice
    or accompaniment under a melody note), else 0. ``notes`` are in onset order."""
    out = np.zeros(len(notes))
    held: dict[float, list[tuple[float, int]]] = {0.0: [], 1.0: []}  # hand -> (end, pitch) struck earlier
    i = 0
    while i < len(notes):
        j = i
        while j < len(notes) and notes[j].onset_q == notes[i].onset_q:
            j += 1
        now = notes[i].onset_q
        for h in held:
            held[h] = [(end, p) for end, p in held[h] if end > now + 1e-6]
        for k in range(i, j):
            out[k] = any(p > notes[k].pitch for _, p in held[right[k]])
        for k in range(i, j):
            held[right[k]].append((now + notes[k].duration_q, notes[k].pitch))
        i = j
    return out


def melody_mask(notes: list[ScoreNote], feats: np.ndarray) -> np.ndarray:
    """True for notes that are the top of the right hand at their onset (a melody guess)."""
    return (feats[:, 5] > 0) & (feats[:, 8] > 0)


@dataclass(frozen=True)
class Played:
    """What a performance did with each score note, against its own beat-level tempo curve."""

    log_spq: np.ndarray  # (B,) log seconds per quarter of each beat; nan where unknown
    dev: np.ndarray  # (N,) onset deviation inside the beat, in beats (nan: not played)
    art: np.ndarray  # (N,) log(performed / notated duration at the local tempo) (nan: none)
    beat_t: np.ndarray  # (B + 1,) performed time of each beat start, and of the end


def _group_median(values: np.ndarray, group: np.ndarray, n: int) -> np.ndarray:
    """The median of ``values`` in each of the ``n`` groups (every group non-empty), as
    np.median gives it, without a Python loop over the groups."""
    ordered = values[np.lexsort((values, group))]
    counts = np.bincount(group, minlength=n)
    starts = np.cumsum(counts) - counts
    return 0.5 * (ordered[starts + (counts - 1) // 2] + ordered[starts + counts // 2])


def beat_curve(tree: Tree, onset_q: np.ndarray, grace: np.ndarray, on_s: np.ndarray) -> np.ndarray:
    """Performed time of each beat start (B+1 values, the last one the end of the last beat):
    the piecewise-linear map from score quarters to seconds through the median onset of each
    played score onset, kept increasing (an onset out of order is left out)."""
    grid = np.append(tree.beat_start_q, tree.beat_start_q[-1] + tree.beat_len_q[-1])
    ok = ~np.isnan(on_s) & ~grace
    qs, idx = np.unique(np.round(onset_q[ok], 4), return_inverse=True)
    if len(qs) < 2:
        return np.full(len(grid), np.nan)
    ts = _group_median(on_s[ok], idx, len(qs))  # each played chord's onset
    keep = []
    last = -np.inf
    for k in range(len(qs)):
        if ts[k] > last + 1e-3:
            keep.append(k)
            last = ts[k]
    qs, ts = qs[keep], ts[keep]
    if len(qs) < 2:
        return np.full(len(grid), np.nan)
    out = np.interp(grid, qs, ts)
    lo, hi = grid < qs[0], grid > qs[-1]
    out[lo] = ts[0] + (grid[lo] - qs[0]) * (ts[1] - ts[0]) / (qs[1] - qs[0])
    out[hi] = ts[-1] + (grid[hi] - qs[-1]) * (ts[-1] - ts[-2]) / (qs[-1] - qs[-2])
    return out


def played_targets(
    tree: Tree, onset_q: np.ndarray, dur_q: np.ndarray, grace: np.ndarray, on: np.ndarray, off: np.ndarray,
    vel: np.ndarray,
) -> Played:  # fmt: skip
    """Tempo curve, timing deviation and articulation of played notes (nan where not played)."""
    times = beat_curve(tree, onset_q, grace, on)
    # a beat runs to the next beat that has notes (rests in between belong to it)
    span_q = np.diff(np.append(tree.beat_start_q, tree.beat_start_q[-1] + tree.beat_len_q[-1]))
    spq = np.diff(times) / np.maximum(span_q, 1e-3)
    played_beats = np.bincount(tree.beat[~np.isnan(on)], minlength=tree.n_beats) > 0
    good = np.isfinite(spq) & (spq > 0.03) & (spq < 6.0) & played_beats
    log_spq = np.where(good, np.log(np.where(good, spq, 1.0)), np.nan)
    b = tree.beat
    local = np.where(good[b], spq[b], np.nan)
    expect = times[b] + (onset_q - tree.beat_start_q[b]) * local
    dev = np.clip((on - expect) / (local * tree.beat_len_q[b]), -0.5, 0.5)
    art = np.log(np.maximum(off - on, 0.01) / (local * np.maximum(dur_q, 1e-3)))
    # grace notes have none, but for one tied into its chord (it is held with the chord)
    art = np.where(dur_q > 0, np.clip(art, -4.0, 2.0), np.nan)
    return Played(log_spq, dev, art, times)
