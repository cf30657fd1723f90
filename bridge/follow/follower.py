"""Score follower: where in the score is the player, after each key press?

Two trackers share one probabilistic model of playing from a score:

* the **local tracker** is online time warping in forward-algorithm form (Dixon 2005's
  banded incremental alignment, with probabilities instead of path costs): a belief over
  score events inside a moving band around the current position. Per note it may stay
  on the current event (another chord note, an extra note), advance one or a few events
  (skipping is paid per skipped event) or step back one or two. Pitch and timing against
  the running tempo score each move. Its cost per note is fixed by the band, not by the
  score's length;
* the **relocaliser** runs the same model over the whole score, started from a prior
  that favours the score start, bar starts and a restart a little behind the player. It
  wakes after a pause or when the local tracker stops explaining what is played, runs
  for a few notes (more while it has settled on one place and leads the band) and takes
  over only when its evidence beats the local tracker's by a wide likelihood margin. It
  then hands back by resetting the band at its position.

Chord notes struck close together are one event; the follower tracks which pitches of
the current event were already played so that repeated notes move on.

Confidence is the band's mass on its place, capped while a search runs by the search's
mass there, and after a jump while the music since sounds note for note at another place
nearby: where the notes cannot tell two places apart, the follower says so.

Time is passed in (seconds, any origin); nothing here reads a clock.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass

import numpy as np

from bridge.score import Score, figure_spans

N_PITCH = 128
TWIN_LONGEST = 64  # events: a run of identical music this long counts as "as long as it lasts"
TWIN_REACH_Q = 32.0  # quarters: a twin further away than a jump usually goes is not confused
RESTART_GAP_S = 5.0  # a jump within this long after a gap of a second or more may be a restart
ALT_WEIGHT = 0.5  # search prior mass on the place a return to the twin left
TWIN_CARRY_Q = 8.0  # quarters: after a pause, how far on from the last sure place going on may start


def pitch_keys(events: list[tuple[int, ...]]) -> np.ndarray:
    """One number per event, equal for events that sound the same pitches."""
    ids: dict[tuple[int, ...], int] = {}
    return np.array([ids.setdefault(tuple(sorted(set(e))), len(ids) + 1) for e in events], dtype=np.uint64)


def twin_runs(key: np.ndarray, onsets: np.ndarray, longest: int = TWIN_LONGEST) -> np.ndarray:
    """Per event, how many events ending there (up to ``longest``) sound pitch for pitch
    the same (``key``: `pitch_keys`) as the events ending at another place within
    ``TWIN_REACH_Q`` quarters: after a jump, the notes cannot tell that place from this
    one until more events than this were played."""
    n = len(key)
    run = np.zeros(n, dtype=np.int64)
    mul = np.uint64(0x9E3779B97F4A7C15)
    h = key.copy()  # hash of the ``width`` events ending at each event (from width - 1 on)
    with np.errstate(over="ignore"):
        for width in range(1, min(longest, n) + 1):
            if width > 1:
                h[width - 1 :] = h[width - 2 : n - 1] * mul + key[width - 1 :]
            idx = np.arange(width - 1, n)
            # equal windows sorted by onset: an event's nearest twin is next to it
            order = idx[np.lexsort((onsets[idx], h[idx]))]
            pair = (h[order[1:]] == h[order[:-1]]) & (onsets[order[1:]] - onsets[order[:-1]] <= TWIN_REACH_Q)
            if not pair.any():
                break
            run[order[1:][pair]] = width
            run[order[:-1][pair]] = width
    return run


def window(y: np.ndarray, width: int) -> np.ndarray:
    """Read-only rows of ``width`` consecutive values of ``y``, one per start (a view,
    no copy; numpy's sliding_window_view and as_strided check more than they cost to use)."""
    s = y.strides[0]
    view = np.ndarray((len(y) - width + 1, width), y.dtype, y, 0, (s, s))
    view.flags.writeable = False
    return view


def row_sums(w: np.ndarray) -> np.ndarray:
    """``w.sum(axis=1)`` for a few columns, added in the same order: numpy's reduction
    along a short row costs five times as much over the whole score."""
    out = w[:, 0].copy()
    for i in range(1, w.shape[1]):
        out += w[:, i]
    return out


def timing_fit(expected: np.ndarray, since: np.ndarray | float, sigma: float) -> np.ndarray:
    """How well moves fit the running tempo: log-normal in the ratio of the time since
    their source event was entered (``since``, 0.04 s already added) to the time the
    score distance takes (``expected``, overwritten); 0.04 s on both keeps a chord's
    quick notes from reading as any tempo at all."""
    expected += 0.04
    r = np.divide(since, expected, out=expected)
    np.log(r, out=r)
    r /= sigma
    np.square(r, out=r)
    r *= -0.5
    return np.exp(r, out=r)


@dataclass(frozen=True)
class FollowerParams:
    """Model constants; defaults were tuned on nasap-dev with the follow yardstick."""

    max_advance: int = 6  # events one note may move forward in the band
    max_back: int = 2
    band_back: int = 12  # band extent around the current event
    band_ahead: int = 24
    p_near: float = 0.05  # emission of a pitch within 2 semitones of a score pitch
    p_other: float = 0.004  # emission of an unrelated pitch when moving
    p_extra: float = 0.012  # staying put with an extra note
    p_chord: float = 1.0  # staying put with another note of the current chord
    p_figure: float = 0.5  # staying put with a note of a trill, turn or mordent
    chord_spread_s: float = 0.12  # typical spread of one chord's notes
    p_back: tuple[float, ...] = (0.006, 0.002)
    skip_note: float = 0.08  # probability a single-note event is left out
    skip_grace: float = 0.7  # a left-out grace note (players drop them far more readily)
    # leaving an event with notes of it unplayed, per note: without it one voice played
    # alone fits any passage where that voice sounds with others, as well as where it is
    # alone (a fugue's subject at the top and in a later entry)
    p_unplayed: float = 0.7
    # the same, in the band too, for a move onto an event that sounds the same pitches:
    # leaving a chord half struck to strike the same chord again is what a chord's own
    # notes look like when some "move on" to its repeat, and belief that leaks there while
    # the chord is struck must not outvote the chord it leaked from (and a strike of such
    # a chord skipped whole pays no more than this for each of its notes)
    p_unplayed_same: float = 0.3
    timing_sigma: float = 0.5  # of log(actual / expected) inter-onset interval
    timing_floor: float = 0.04
    pause_s: float = 1.0  # a gap this long (and pause_quarters at the tempo) wakes the relocaliser
    pause_quarters: float = 2.0
    # after a pause: "the top" is the first event (a performance's first note may land
    # further in: its prior decays by 2 a quarter), and the next note goes on past the
    # last one as often as it sounds again there
    top_decay: float = 8.0
    here_next: float = 0.5
    reloc_back_q: float = 12.0  # how far back restarts typically go (decay, quarters)
    # prior mass on: here, a little back, a little ahead, the top, anywhere. After a pause
    # players mostly restart; when the notes stop fitting mid-flow they as often skipped on.
    reloc_mix_pause: tuple[float, ...] = (0.2, 0.35, 0.1, 0.15, 0.2)
    reloc_mix_surprise: tuple[float, ...] = (0.25, 0.2, 0.2, 0.1, 0.25)
    # a pause while a search still leads the band: in slow music every long note is a
    # pause, and the player mostly goes on from where the search has them
    reloc_mix_running: tuple[float, ...] = (0.6, 0.1, 0.05, 0.1, 0.15)
    reloc_notes: int = 14  # notes the relocaliser runs before it sleeps again ...
    reloc_notes_leading: int = 42  # ... unless it leads the band elsewhere: then up to this many
    reloc_gain: float = 1.0  # ... while its margin grows by this over its last reloc_notes // 2 notes
    # a search woken while the place a search took the player from is still in doubt
    # (`origin`) looks, with this share of its "a little back" and "a little ahead",
    # around where carrying on from that place leads
    reloc_origin: float = 0.5
    reloc_llr: float = 7.0  # log-likelihood margin the relocaliser needs to take over
    reloc_peak: float = 0.3  # posterior mass near its best place it needs to take over ...
    reloc_ratio: float = 2.0  # ... and how many times the runner-up's that must be,
    reloc_llr_sure: float = 20.0  # unless its margin over the band is past this
    surprise_window: int = 3  # wake when surprise_count of the last notes were unlikely
    surprise_count: int = 2
    surprise_lik: float = 0.05
    # after a jump, while every event since sounds note for note somewhere else too, the
    # notes cannot tell the two places apart: confidence no more than this (below the
    # engine's confidence_low line)
    twin_confidence: float = 0.3
    # where a search looks back and ahead from: the last place the follower was sure of
    # (this confident on this many events in a row), not wherever a guess left it: in a
    # cadenza or a passage played off the page the guesses wander, and the player is
    # still near where they left the score
    anchor_confidence: float = 0.9
    anchor_events: int = 4
    # after the search moved the player, music that sounds note for note near the place
    # they left, this many events in a row, may mean they never left (a slip that fitted
    # elsewhere): confidence no more than twin_confidence while it lasts
    twin_events: int = 8
    # a place behind the band's own may also be timed from when it was itself entered, at
    # this weight: in a repeated figure the band can run a strike ahead of the player, and
    # the strike they are on must survive, timed as they play it, until a note that only it
    # explains (a melody note the band would call extra) brings the band back. Places ahead
    # stay timed from the band's event: there a leak must keep paying
    band_behind: float = 0.3
    tempo_rate: float = 0.2
    tempo_window_s: float = 4.0  # entries older than this (or before a pause or jump) are not used


@dataclass(frozen=True)
class FollowerStep:
    """What the follower believes after one note."""

    event: int  # score event index the note belongs to
    entered: bool  # this note is the first one played on that event
    confidence: float  # posterior mass on that event and its neighbours
    sec_per_quarter: float
    jumped_from: int | None  # set when the relocaliser moved the position
    reference_q: float  # anchor for timing: onset (quarters) ...
    reference_t: float  # ... and time (s) of the previous event the player entered
    timed: bool  # the anchor is real (not the first note, not right after a jump)


class _Model:
    """Score tables shared by both trackers."""

    def __init__(self, score: Score, p: FollowerParams):
        ev = score.events
        self.n = n = len(ev)
        self.q = np.array([e.onset_q for e in ev], dtype=np.float64)
        # grace notes are struck in quick succession just before the main note
        shift = np.zeros(n)
        run = 0
        for e in reversed(ev):
            run = run + 1 if e.grace else 0
            shift[e.index] = 0.08 * run
        self.tq = self.q - shift
        has = np.zeros((N_PITCH, n), dtype=bool)
        for e in ev:
            has[list(e.pitches), e.index] = True
        near = np.zeros_like(has)
        for s in (-2, -1, 1, 2):
            near[max(0, s) : N_PITCH + min(0, s)] |= has[max(0, -s) : N_PITCH - max(0, s)]
        self.has = has
        # pitches an ornament (trill, turn, ...) may sound while its note lasts
        self.figure = np.zeros_like(has)
        # pitch -> (first event, end event, written pitch) of the long trills it would sound
        # an octave from the page (an edition's ottava)
        self.octave_trill: dict[int, list[tuple[int, int, int]]] = {}
        ours = {k for e in ev for k in e.notes}  # a hand's part has the other hand's notes too
        for k, (lo, hi, around) in figure_spans(score.notes).items():
            if k not in ours:
                continue
            nt = score.notes[k]
            span = (self.q >= lo) & (self.q < hi)
            for pitch in around:
                self.figure[max(0, pitch - 2) : pitch + 3] |= span
            if nt.duration_q >= 1.0 and any("trill" in o for o in nt.ornaments):
                at = np.flatnonzero(span)  # events are in onset order: one run
                entry = (int(at[0]), int(at[-1]) + 1, nt.pitch)
                for d in (-12, -11, -10, 12, 13, 14):
                    # not on a key the score itself strikes meanwhile
                    if 0 <= nt.pitch + d < N_PITCH and not has[nt.pitch + d, span].any():
                        self.octave_trill.setdefault(nt.pitch + d, []).append(entry)
        self.spread = np.array([p.chord_spread_s * (3.0 if e.arpeggiated else 1.0) for e in ev])
        self.em_move = np.where(has, 1.0, np.where(near, p.p_near, p.p_other))
        self.n_pitches = has.sum(axis=0).astype(np.float64)
        self.key = pitch_keys([e.pitches for e in ev])
        self.twin_run = twin_runs(self.key, self.q)
        self.class_key = pitch_keys([tuple(k % 12 for k in e.pitches) for e in ev])  # octaves aside
        # which written notes each event plays: another pass of a repeat plays the same ones
        ids: dict[str, int] = {}
        self.written = np.array([ids.setdefault(score.notes[e.notes[0]].note_id, len(ids)) for e in ev])
        log_skip = np.array(
            [math.log(p.skip_grace if e.grace else max(p.skip_note ** len(e.pitches), 1e-3)) for e in ev]
        )
        # advance[j, i]: what moving onto event j from event j - (D - i) pays for the events
        # skipped in between (D = max_advance), laid out to multiply a sliding window of
        # the belief; 0 where the source would lie before the score
        D = p.max_advance
        self.advance = np.zeros((n, D))
        # same[j, D - d]: event j sounds the pitches of event j - d
        self.same = np.zeros((n, D), dtype=bool)
        for d in range(1, D + 1):
            self.same[d:, D - d] = self.key[d:] == self.key[:-d]
        # a strike of a repeated chord left out whole (skipped on the way to the same chord)
        # costs no more than leaving all its notes unplayed: the two sound the same, and only
        # the next different note tells them apart
        whole = np.maximum(np.log(p.p_unplayed_same) * self.n_pitches, log_skip)
        for d in range(1, D + 1):
            j = np.arange(d, n)
            cost = np.zeros(len(j))
            for e in range(1, d):
                cost += np.where(self.same[j, D - e], whole[j - e], log_skip[j - e])
            self.advance[j, D - d] = np.exp(cost)
        bar = np.array([e.bar_start for e in ev], dtype=bool)
        self.bar_weight = np.where(bar, 5.0, 1.0)
        self.bar_weight[0] = 5.0

    def sources(self, x: np.ndarray, pad: float) -> np.ndarray:
        """``x`` over events [lo, hi) laid out per move: [j, i] is x at the event D - i
        before lo + j (``pad`` where that lies before lo)."""
        D = self.advance.shape[1]
        y = np.empty(len(x) + D - 1)
        y[:D] = pad
        y[D:] = x[:-1]
        return window(y, D)

    def source_events(self, lo: int, hi: int) -> np.ndarray:
        """The events moves onto [lo, hi) come from, in the order `window` lays them out
        (the first event where the source would lie before the score)."""
        return np.maximum(np.arange(lo - self.advance.shape[1], hi - 1), 0)

    def moves(self, a: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """The belief ``a`` over events [lo, hi) carried forward: [j, i] is what reaches
        event lo + j from D - i events before it, paid for the events skipped."""
        return self.sources(a, 0.0) * self.advance[lo:hi]


class _Tracker:
    """Forward belief over events in [lo, hi); the band is the whole score for the relocaliser."""

    def __init__(self, model: _Model, params: FollowerParams, banded: bool):
        self.m, self.p, self.banded = model, params, banded
        self.alpha = np.zeros(model.n)
        # expected number of an event's pitches played since it was entered, on the
        # paths that are there: leaving it pays for the rest
        self.filled = np.zeros(model.n)
        # when the mass on each event arrived there, so that each place in a many-peaked
        # belief can be timed from its own last event
        self.entered_at = np.zeros(model.n)
        self.lo, self.hi = 0, model.n
        self.pos = 0
        self.entry_t = 0.0  # time the player entered self.pos
        self.ref_q, self.ref_t = 0.0, 0.0  # the event entered before self.pos
        self.played: dict[int, set[int]] = {}
        self.heard: deque[int] = deque(maxlen=8)  # the last pitches played, wherever placed
        self.span: tuple[int, int, np.ndarray, np.ndarray] | None = None  # see `_span`

    def reset(self, prior: np.ndarray, pos: int) -> None:
        self.alpha = prior / prior.sum()
        self.filled[:] = 0.0
        self.pos = pos
        self.played = {}
        self._set_band()

    def _set_band(self) -> None:
        if self.banded:
            lo = max(0, self.pos - self.p.band_back)
            hi = min(self.m.n, self.pos + self.p.band_ahead + 1)
            self.alpha[:lo] = 0.0
            self.alpha[hi:] = 0.0
            self.lo, self.hi = lo, hi

    def update(self, pitch: int, t: float, spq: float, sigma: float | None, fresh: bool) -> float:
        """Fold one note into the belief; returns its likelihood under this tracker.

        ``fresh``: the belief is a prior over where the next note lands (after a reset),
        so the note is placed directly instead of moving from a previous event.
        ``sigma``: spread of log(actual / expected) time to the next event; None after a
        pause, when the time since the last note says nothing about the score distance.
        """
        m, p = self.m, self.p
        lo, hi = self.lo, self.hi
        a = self.alpha[lo:hi]
        em = m.em_move[pitch, lo:hi]
        filled = self.filled[lo:hi]
        if fresh:
            new = a * em
            filled[:] = 1.0
            self.entered_at[lo:hi] = t
        else:
            # move: advance d events, paying for each skipped event, or step back
            unplayed = np.maximum(m.n_pitches[lo:hi] - filled, 0.0)
            if self.banded:
                # the band follows one place through ornaments and left-out notes that the
                # cost would make it doubt; choosing between places is the search's work.
                # Only a chord left half struck for its own repeat pays here
                w = m.moves(a, lo, hi)
                w *= np.where(m.same[lo:hi], m.sources(p.p_unplayed_same**unplayed, 1.0), 1.0)
            else:
                w = m.moves(a * p.p_unplayed**unplayed, lo, hi)
            if sigma is not None:
                # timing: the time since the source event was entered against its
                # distance to the target in the score at the running tempo. The band
                # times every move from the one event it believes in, which keeps a
                # stray path paying for its timing on every note (places behind it get
                # `band_behind`); the whole-score search weighs far-apart places, so each
                # is timed from its own event
                src, distance = self._span()
                g = timing_fit(distance * spq, window(t - self.entered_at[src] + 0.04, p.max_advance), sigma)
                if self.banded:
                    own = np.maximum(m.tq[lo:hi, None] - m.tq[self.pos], 0.0) * spq
                    g = self._behind(timing_fit(own, t - self.entry_t + 0.04, sigma), g, window(src, p.max_advance))
                g += p.timing_floor
                w *= g
            move = row_sums(w)
            for d, pb in enumerate(p.p_back, start=1):
                if hi - lo > d:
                    move[:-d] += a[d:] * pb
            # stay: another note of this chord not played yet, or an extra note
            chord = m.has[pitch, lo:hi].astype(np.float64)
            for j, ps in self.played.items():
                if lo <= j < hi and pitch in ps:
                    chord[j - lo] = 0.0
            # another note of a chord comes within its spread of the chord's entry
            g_chord = np.exp(-0.5 * (np.maximum(0.0, t - self.entered_at[lo:hi]) / m.spread[lo:hi]) ** 2)
            if self.banded:
                band = np.exp(-0.5 * (max(0.0, t - self.entry_t) / m.spread[lo:hi]) ** 2)
                g_chord = self._behind(band, g_chord, np.arange(lo, hi))
            g_chord = g_chord + 0.05
            stay_chord = a * (p.p_chord * g_chord * chord)
            figure = p.p_figure * m.figure[pitch, lo:hi]
            if self.banded and pitch in m.octave_trill:
                figure += self._octave_trill(pitch)
            stay = stay_chord + a * (p.p_extra + figure)
            move *= em
            new = move + stay
            # a move enters with this note; a chord note adds one; an extra note none
            filled[:] = (move + stay_chord + stay * filled) / np.maximum(new, 1e-300)
            self.entered_at[lo:hi] = np.where(move > stay, t, self.entered_at[lo:hi])
        total = float(new.sum())
        if not total > 0.0:
            new = np.full(hi - lo, 1.0)
            total = 1e-300
        self.alpha[lo:hi] = new / new.sum()
        self.heard.append(pitch)
        return total

    def _span(self) -> tuple[np.ndarray, np.ndarray]:
        """The source events of moves onto the events of [lo, hi) (`_Model.source_events`)
        and the quarters each move covers laid out as `_Model.sources` (no less than 0).
        Kept while [lo, hi) stays: the whole-score search's never moves."""
        lo, hi = self.lo, self.hi
        if self.span is None or self.span[:2] != (lo, hi):
            m = self.m
            src = m.source_events(lo, hi)
            distance = np.maximum(m.tq[lo:hi, None] - window(m.tq[src], m.advance.shape[1]), 0.0)
            self.span = (lo, hi, src, distance)
        return self.span[2], self.span[3]

    def _octave_trill(self, pitch: int) -> np.ndarray:
        """Over the band: ``p_figure`` where ``pitch`` is a long trill's an octave
        from the page, unless the last notes played sound the trill at the page's octave.
        The band's only: to the whole-score search a long trill's span would explain a
        dozen more pitches than any other place, a sink for notes played off the page."""
        lo, hi = self.lo, self.hi
        out = np.zeros(hi - lo)
        for first, end, written in self.m.octave_trill[pitch]:
            if first < hi and end > lo and not any(abs(q - written) <= 2 for q in self.heard):
                out[max(first, lo) - lo : min(end, hi) - lo] = self.p.p_figure
        return out

    def _behind(self, band: np.ndarray, own: np.ndarray, at: np.ndarray) -> np.ndarray:
        """The band's timing fit ``band``; for places behind its event (``at`` before
        ``pos``) the better of that and ``band_behind`` times the place's own fit ``own``."""
        return np.where(at < self.pos, np.maximum(band, self.p.band_behind * own), band)

    def commit(self, t: float, fresh: bool = False) -> tuple[int, bool]:
        """Move to the best event after an update; returns (event, entered it now).
        After a fresh placement the event counts as entered even if it is the old one."""
        lo = self.lo
        best = lo + int(np.argmax(self.alpha[lo : self.hi]))
        entered = fresh or best != self.pos
        if entered:
            self.ref_q, self.ref_t = float(self.m.tq[self.pos]), self.entry_t
            # back on an earlier event, the pitches the band used up there and ahead are still
            # to come, as the matcher forgets those notes too: a stray note that took the band
            # ahead must not use up a pitch of the chord it took it to, and notes the band took
            # early on the event it comes back to (in a repeated figure, the strike before's)
            # must not send the same notes on to the strike after
            ahead = best - 1 if best < self.pos else best + self.p.band_back
            self.pos, self.entry_t = best, t
            self.played = {j: ps for j, ps in self.played.items() if best - self.p.band_back <= j <= ahead}
            self._set_band()
        return best, entered

    def shifted(self, x: np.ndarray, d: int) -> np.ndarray:
        """``x`` (over the whole score) as it lies over the band, moved ``d`` events on;
        zero elsewhere and where that would leave the score."""
        lo, hi = max(self.lo, -d), min(self.hi, self.m.n - d)
        out = np.zeros(self.m.n)
        out[lo + d : hi + d] = x[lo:hi]
        return out

    def mass_near(self, j: int, width: int = 1) -> float:
        return float(self.alpha[max(0, j - width) : j + width + 1].sum())


class Follower:
    """Online position tracking over one score; feed it note-ons in time order."""

    def __init__(self, score: Score, params: FollowerParams | None = None, like: Follower | None = None):
        """``like``: an earlier follower of the same score and params, whose score tables
        (read only; about 10 ms to build for 4,000 notes) this one shares."""
        self.score = score
        self.p = params or FollowerParams()
        self.m = like.m if like is not None and like.score is score and like.p == self.p else _Model(score, self.p)
        self.local = _Tracker(self.m, self.p, banded=True)
        self.reloc = _Tracker(self.m, self.p, banded=False)
        tempo = next((n.tempo_qpm for n in score.notes if n.tempo_qpm), None)
        self.spq = 60.0 / tempo if tempo else 0.5
        self.n_tempo = 0
        self.tempo_obs: list[float] = []
        self.entries: list[tuple[float, float]] = []  # (onset, time) of recently entered events
        self.last_t: float | None = None
        self.reloc_left = 0
        self.reloc_llr = 0.0
        self.reloc_margins: list[float] = []  # the margin after each of the search's last notes
        self.reloc_seen = 0  # notes since the search last restarted from a prior
        self.reloc_weighed = 0  # ... and since it started (a pause mid-search restarts it)
        self.reloc_paused = False  # the search was woken by a pause
        self.since_jump: int | None = None  # events entered since the search moved the player
        # after the search moved the player: the place they left (then that place's twin
        # as both move on), where they may still be; None once that no longer matters
        self.origin: int | None = None
        self.twin_held = False  # the last event entered sounds the same near the origin
        # after going back to where carrying on leads from a jump that followed a pause: how
        # many events the place the search had found lies from the band's (the player may have
        # restarted there after all; where the two places part, a search looks there too)
        self.alt_shift: int | None = None
        self.alt_left = 0  # events entered until that place is forgotten
        # after `jump_to` with doubt: how many events from the band the place lies that has
        # sounded the same since; None once the two part
        self.doubt_shift: int | None = None
        self.jump_origin_q = self.jump_q = 0.0  # the last jump's (origin, target) onsets
        self.jump_paused = False  # ... and whether the player paused before it
        self.jump_event = 0  # ... and the event it went to
        self.origin_t = 0.0  # when the player was last at ``origin`` (had they stayed)
        self.last_gap_t = -math.inf  # the last note after a gap of pause_s or more
        self.anchor = 0  # the last event the follower was sure of
        self.anchor_t = 0.0  # ... and when the player was there
        self.sure_run = 0  # events entered in a row with a sure place
        self.history: list[tuple[int, float, float | None, float]] = []
        self.local.reset(self._start_prior(), 0)

    # -- priors -------------------------------------------------------------

    def _start_prior(self, decay: float = 2.0) -> np.ndarray:
        prior = np.zeros(self.m.n)
        first = self.m.q[0]
        near_start = self.m.q <= first + 8.0
        prior[near_start] = np.exp(-decay * (self.m.q[near_start] - first))
        return prior * self.m.bar_weight

    def _reloc_prior(self, mix: tuple[float, ...], here_from: _Tracker) -> np.ndarray:
        """Where a player who stopped or went astray carries on: most often a little
        behind (the nearer the likelier, which also breaks ties between identical
        passages), at the top, or a little ahead; bar starts are favoured. "Here" is
        ``here_from``'s belief: the band's, or a search already under way."""
        m, p = self.m, self.p
        cur_q = m.q[self.anchor]

        def norm(w: np.ndarray) -> np.ndarray:
            return w / max(w.sum(), 1e-300)

        here = np.zeros(m.n)
        here[here_from.lo : here_from.hi] = here_from.alpha[here_from.lo : here_from.hi]
        # the next note either sounds again on the last event (the rest of a chord, a
        # re-struck note) or goes on to the following ones
        here = (1.0 - p.here_next) * norm(here) + p.here_next * norm(row_sums(m.moves(here, 0, m.n)))
        back, ahead = self._around(cur_q)
        if self.origin is not None and p.reloc_origin > 0.0:
            # the search that moved the player may have been wrong (a slip that fitted
            # far away): once the music there parts from what they play, they may be
            # where carrying on from the place they left leads, as likely as near the
            # place the search sent them
            lead = m.q[self.origin] + (self.last_t - self.origin_t) / self.spq
            back_o, ahead_o = self._around(lead)
            k = p.reloc_origin
            back = (1.0 - k) * norm(back) + k * norm(back_o)
            ahead = (1.0 - k) * norm(ahead) + k * norm(ahead_o)
        w = mix
        return (
            w[0] * norm(here)
            + w[1] * norm(back * m.bar_weight)
            + w[2] * norm(ahead * m.bar_weight)
            + w[3] * norm(self._start_prior(p.top_decay))
            + w[4] * norm(m.bar_weight.copy())
        )

    def _around(self, cur_q: float) -> tuple[np.ndarray, np.ndarray]:
        """Prior shapes a little behind (within 64 quarters) and ahead (within 32) of
        onset ``cur_q``, the nearer the likelier."""
        dist = cur_q - self.m.q
        back = np.where((dist >= -0.5) & (dist <= 64.0), np.exp(-np.maximum(dist, 0.0) / self.p.reloc_back_q), 0.0)
        ahead = np.where((dist < -0.5) & (dist >= -32.0), np.exp(dist / self.p.reloc_back_q), 0.0)
        return back, ahead

    # -- the step -------------------------------------------------------------

    def observe(self, pitch: int, t: float) -> FollowerStep:
        """Fold in one note-on (MIDI pitch, time in seconds)."""
        p = self.p
        first = self.last_t is None
        gap = math.inf if first else t - self.last_t
        paused = gap >= max(p.pause_s, p.pause_quarters * self.spq)
        self.last_t = t
        if first:  # the first note lands at the anchor (the top, or where a teacher said)
            self.anchor_t = t
        if gap >= p.pause_s:
            # in slow music a restart need not look like a pause: notes before a gap of a
            # second are not replayed into a later search
            self.history = []
            self.last_gap_t = t
        sigma = None if paused else p.timing_sigma

        if paused and not first:
            self._wake_relocaliser(replay=(), mix=p.reloc_mix_pause, paused=True)
        lik_local = self.local.update(pitch, t, self.spq, sigma=sigma, fresh=first)
        prev_pos = self.local.pos
        pos, entered = self.local.commit(t, fresh=first)
        self.history = (self.history + [(pitch, t, sigma, lik_local)])[-p.surprise_window :]

        jumped_from = None
        searching = self.reloc_left > 0
        if searching:
            self._relocalise_step(pitch, t, sigma, lik_local)
        elif sum(1 for h in self.history if h[3] < p.surprise_lik) >= p.surprise_count:
            self._wake_relocaliser(replay=self.history, mix=p.reloc_mix_surprise, paused=False)
        elif gap >= p.pause_s and lik_local < p.surprise_lik:
            # in slow music every note may follow a gap of a second, which empties the
            # history: a note the band cannot explain after one is a restart's first
            self._wake_relocaliser(replay=self.history, mix=p.reloc_mix_pause, paused=True)
        if searching or self.reloc_left > 0:
            gpos = self.reloc.pos
            far = abs(self.m.q[gpos] - self.m.q[pos]) > 1.0
            if far and self.reloc_llr > p.reloc_llr and self._reloc_decided(gpos):
                jumped_from = pos
                self._take_over(gpos, t)
                pos, entered = gpos, True
            elif not far and self.reloc_seen >= 4:
                self.reloc_left = 0  # it agrees with the band: nothing to relocate
            elif far and self.reloc_left == 0 and self.reloc_llr > 0.0 and self.reloc_weighed < p.reloc_notes_leading:
                # settled on one place that explains the notes better than the band, but
                # short of the margin: where the two places sound alike the margin grows
                # slowly, and a search put to sleep just short of it left the player lost
                # until a later wake. A search split between places sleeps, and so does one
                # woken by unlikely notes that no longer gains on the band (a place that
                # sounds like the band's took those notes, and the band is right)
                self.reloc_left = int((self.reloc_paused or self._gaining()) and self._reloc_decided(gpos))

        if entered and jumped_from is None and self.local.pos != prev_pos:
            self._update_tempo()
        if entered and self.alt_shift is not None:
            self.alt_left -= 1
            if self.alt_left <= 0:
                self.alt_shift = None
        if entered and self.doubt_shift is not None:
            other = pos + self.doubt_shift
            if not (0 <= other < self.m.n and self.m.key[other] == self.m.key[pos]):
                self.doubt_shift = None
        if entered and self.since_jump is not None:
            self.since_jump = self.since_jump + 1 if self.since_jump < TWIN_LONGEST else None
        if entered and self.origin is not None:
            twin = self._stayed_twin(pos, self.origin, self.m.key)
            if twin is not None and self._carried_on(twin, pos):
                jumped_from, pos = pos, twin
                self._return_to(twin)
            else:
                # the same music with notes an octave off (an edition's ottava, or the
                # player's) fits the new place better, but the player may not have left:
                # unsure, though the search is not sent there (figuration recurs octaves aside)
                loose = None if twin is not None else self._stayed_twin(pos, self.origin, self.m.class_key)
                self.twin_held = twin is not None or loose is not None
                if twin is not None:
                    # unsure; and should the places part, the search looks where the player
                    # would be had they stayed
                    self.origin = self.anchor = twin
                    self.origin_t = self.anchor_t = t
                elif loose is None and self.since_jump is None:
                    self.origin = None
        confidence = self._confidence(pos)
        if self.twin_held or self.doubt_shift is not None:
            confidence = min(confidence, p.twin_confidence)
        if entered:
            self.sure_run = self.sure_run + 1 if confidence >= p.anchor_confidence else 0
            if self.sure_run >= p.anchor_events:
                self.anchor, self.anchor_t = pos, t
        return FollowerStep(
            event=pos,
            entered=entered,
            confidence=confidence,
            sec_per_quarter=self.spq,
            jumped_from=jumped_from,
            reference_q=self.local.ref_q,
            reference_t=self.local.ref_t,
            # ref_t stays 0 until a second event is entered: before that there is no anchor
            timed=not first and jumped_from is None and self.local.ref_t > 0.0,
        )

    def _confidence(self, pos: int) -> float:
        """The band's mass on its place; while a search runs and has weighed two notes or
        more, no more than the search's mass within a quarter of that place. The band
        renormalises over its own places only, so it stays sure of a place that no
        longer explains the notes, and where the same notes fit several places the
        search splits its mass between them: the follower says it does not know."""
        conf = self.local.mass_near(pos)
        if self.reloc_left > 0 and self.reloc_weighed >= 2:
            near = np.abs(self.m.q - self.m.q[pos]) <= 1.0
            conf = min(conf, float(self.reloc.alpha[near].sum()))
        if self.since_jump is not None and self.m.twin_run[pos] >= self.since_jump:
            conf = min(conf, self.p.twin_confidence)
        return conf

    def _stayed_twin(self, pos: int, origin: int, key: np.ndarray) -> int | None:
        """After the search moved the player from ``origin``: a place near it where the
        last ``twin_events`` events up to ``pos`` sound the same (``key``: `pitch_keys`,
        pitch for pitch or octaves aside). The notes that moved the player may have been a
        slip and the player may never have left; then the notes cannot tell the two places
        apart until they part."""
        m, k = self.m, self.p.twin_events
        if pos < k - 1:
            return None
        near = np.flatnonzero((np.abs(m.q - m.q[origin]) <= TWIN_REACH_Q) & (np.abs(m.q - m.q[pos]) > 1.0))
        near = near[near >= k - 1]
        same = self._sounds_as(key, near, pos)
        if not same.any():
            return None
        twins = near[same]
        return int(twins[np.argmin(np.abs(m.q[twins] - m.q[origin]))])

    def _carried_on(self, twin: int, pos: int) -> bool:
        """``twin`` lies on from the place the player left, within the reach of a player
        who carried on, and the jump was long: the notes that moved them were a slip or a
        difference of edition, and carrying on is by far the likelier reading of the same
        notes. After a pause or a breath players do restart far away, and notes that fitted
        only the far place (a lead-in of its own) say they did; but where every event since
        the jump sounds the same as going on from where the player was (a return of the
        opening after a held note, taken for a restart at the top), the notes never told
        the two apart and the prior favours going on. A short jump is the band's to weigh."""
        m = self.m
        ahead = m.q[twin] - self.jump_origin_q
        if abs(self.jump_q - self.jump_origin_q) <= TWIN_REACH_Q or ahead < -1.0:
            return False
        if not self.jump_paused:
            return True
        start = twin - (pos - self.jump_event)
        if not 0 <= start <= twin:  # start <= twin: the band is at or past the jump's event
            return False
        same = bool((m.key[self.jump_event : pos + 1] == m.key[start : twin + 1]).all())
        return same and -1.0 <= m.q[start] - self.jump_origin_q <= TWIN_CARRY_Q

    def _return_to(self, twin: int) -> None:
        """Move the band's belief, as it stands, onto the same music at ``twin``."""
        loc, m = self.local, self.m
        d, dq = twin - loc.pos, float(m.tq[twin] - m.tq[loc.pos])
        alpha, filled = loc.shifted(loc.alpha, d), loc.shifted(loc.filled, d)
        loc.alpha, loc.filled = alpha / max(alpha.sum(), 1e-300), filled
        loc.pos, loc.ref_q = twin, loc.ref_q + dq
        loc.played = {j + d: ps for j, ps in loc.played.items() if 0 <= j + d < m.n}
        loc._set_band()
        self.entries = [(q + dq, t) for q, t in self.entries]
        self.origin = self.since_jump = None
        self.twin_held = False
        self.anchor, self.anchor_t = twin, self.last_t
        self.alt_shift = -d if self.jump_paused else None
        self.alt_left = 2 * TWIN_LONGEST

    def _relocalise_step(self, pitch: int, t: float, sigma: float | None, lik_local: float) -> None:
        fresh = self.reloc_seen == 0
        lik = self.reloc.update(pitch, t, self.spq, sigma=None if fresh else sigma, fresh=fresh)
        self.reloc.commit(t, fresh=fresh)
        self.reloc_llr += math.log(max(lik, 1e-300)) - math.log(max(lik_local, 1e-300))
        self.reloc_margins = (self.reloc_margins + [self.reloc_llr])[-self.p.reloc_notes :]
        self.reloc_seen += 1
        self.reloc_weighed += 1
        self.reloc_left -= 1

    def _reloc_decided(self, best: int) -> bool:
        """The search's best place clearly beats any other: music that recurs note for
        note leaves several places equally likely, and the prior then has to decide.
        Once the band explains the notes far worse than either place, the better one is
        taken: a place in the right passage beats flagging every note."""
        a, q = self.reloc.alpha, self.m.q
        peak = self.reloc.mass_near(best, 2)
        if peak <= self.p.reloc_peak:
            return False
        elsewhere = np.abs(q - q[best]) > 1.0
        if self.reloc_llr > self.p.reloc_llr_sure or not elsewhere.any():
            return True
        second = int(np.argmax(np.where(elsewhere, a, -1.0)))
        # the runner-up's own neighbourhood only: in slow music (events a quarter or more
        # apart) it is often the best place's neighbour, and counting the best place in
        # its mass blocked every take-over until the search's margin passed the sure line
        near = slice(max(0, second - 2), second + 3)
        return peak > self.p.reloc_ratio * float((a[near] * elsewhere[near]).sum())

    def _gaining(self) -> bool:
        """The search's margin over the band grew by ``reloc_gain`` over its last
        ``reloc_notes // 2`` notes: it is still gathering evidence, not level with the band."""
        k, m = self.p.reloc_notes // 2, self.reloc_margins
        return len(m) > k and m[-1] - m[-1 - k] > self.p.reloc_gain

    def jump_to(self, event: int, doubt: bool = False) -> None:
        """Told where the player is (a teacher's jump): the next note lands at ``event``
        or just after it, with no timing expectation carried over. ``doubt``: the place
        was read from the last notes rather than told (the hands watch's alignment); where
        the music before it sounds pitch for pitch the same at another place, the player
        may be there instead, and the follower says it is unsure (``twin_confidence``)
        until the two places part."""
        prior = np.zeros(self.m.n)
        prior[event : event + 3] = (1.0, 0.3, 0.1)[: self.m.n - event]
        self.local.reset(prior, event)
        self.anchor = event
        self.last_t = None
        self.reloc_left = 0
        self.history = []
        self.entries = []
        self.since_jump = None  # told, not guessed
        self.origin = None
        self.twin_held = False
        self.alt_shift = None
        self.doubt_shift = self._twin_shift(event - 1) if doubt else None

    def _twin_shift(self, at: int) -> int | None:
        """How many events from ``at`` the first other place lies whose last ``twin_events``
        events sound pitch for pitch the same as those up to ``at`` (the first: a player
        who starts again goes back; near the top, the events the score has before it, at
        least half as many); another pass of the same written notes does not count, as a
        repeat is reached through its first pass. None where there is none."""
        m, k = self.m, self.p.twin_events
        if at < k - 1:
            return None
        j = np.arange(k // 2 - 1, m.n)
        same = (np.abs(m.q[j] - m.q[at]) > 1.0) & (m.written[j] != m.written[at]) & self._sounds_as(m.key, j, at)
        found = np.flatnonzero(same)
        return int(j[found[0]]) - at if len(found) else None

    def _sounds_as(self, key: np.ndarray, places: np.ndarray, pos: int) -> np.ndarray:
        """Per event in ``places``, whether the last ``twin_events`` events up to it sound
        as those up to ``pos`` do (``key``: `pitch_keys`); events the score does not have
        before its start count as the same."""
        back = np.arange(self.p.twin_events)
        before = places[:, None] - back
        return ((before < 0) | (key[np.maximum(before, 0)] == key[pos - back])).all(axis=1)

    def mark_played(self, event: int, pitch: int) -> None:
        """The matcher tells us a pitch of an event was consumed (repeated notes move on)."""
        self.local.played.setdefault(event, set()).add(pitch)

    def _wake_relocaliser(self, replay, mix: tuple[float, ...], paused: bool) -> None:
        """Start a whole-score search; ``replay`` are the recent (pitch, t, sigma,
        local likelihood) that made the band look wrong, searched again from before them.
        A pause while a search still runs and explains the notes better than the band (in
        slow music every long note is a pause) restarts it from its own belief, mostly as
        "here" (`reloc_mix_running`), and keeps the evidence it gathered against the band:
        starting over from the band threw away notes that had already found where the
        player went, and the prior of a pause, which favours the top, took the next note
        of a restart in slow music back to the first."""
        running = self.reloc_left > 0 and self.reloc_seen > 0 and self.reloc_llr > 0.0
        self.reloc_paused = paused
        here, mix = (self.reloc, self.p.reloc_mix_running) if running else (self.local, mix)
        prior = self._reloc_prior(mix, here)
        if self.alt_shift is not None and not paused:
            # the place the band took the player from, moved on with them: where music that
            # sounded the same at both parts, the notes now tell which one it was
            alt = self.local.shifted(self.local.alpha, self.alt_shift)
            if alt.sum() > 0.0:
                prior = (1.0 - ALT_WEIGHT) * prior / prior.sum() + ALT_WEIGHT * alt / alt.sum()
        self.reloc.reset(prior, self.local.pos)
        self.reloc.entry_t = self.local.entry_t
        self.reloc.ref_q, self.reloc.ref_t = self.local.ref_q, self.local.ref_t
        self.reloc_left = self.p.reloc_notes + len(replay)
        self.reloc_llr = self.reloc_llr if running else 0.0
        self.reloc_margins = self.reloc_margins if running else []
        self.reloc_weighed = self.reloc_weighed if running else 0
        self.reloc_seen = 0
        for pitch, t, sigma, lik_local in replay:
            self._relocalise_step(pitch, t, sigma, lik_local)
        self.history = []

    def _take_over(self, gpos: int, t: float) -> None:
        loc = self.local
        loc.alpha[:] = 0.0
        loc.pos = gpos
        loc.entry_t = t
        loc.ref_q, loc.ref_t = self.reloc.ref_q, self.reloc.ref_t
        loc.played = {}
        loc._set_band()
        loc.alpha[loc.lo : loc.hi] = self.reloc.alpha[loc.lo : loc.hi]
        loc.filled[loc.lo : loc.hi] = self.reloc.filled[loc.lo : loc.hi]
        loc.alpha /= max(loc.alpha.sum(), 1e-300)
        self.reloc_left = 0
        self.history = []
        self.entries = []
        self.since_jump = 0
        self.sure_run = 0
        self.origin, self.origin_t = self.anchor, self.anchor_t
        self.twin_held = False
        self.jump_origin_q, self.jump_q = float(self.m.q[self.anchor]), float(self.m.q[gpos])
        self.jump_event = gpos
        self.alt_shift = self.doubt_shift = None
        # a pause woke the search, or a gap of a second came just before (in slow music
        # a restart after a breath is not long enough to count as a pause)
        self.jump_paused = self.reloc_paused or t - self.last_gap_t <= RESTART_GAP_S

    def _update_tempo(self) -> None:
        """Beat length over the last half quarter or more of entered events: fast runs
        update it too, and one misplaced note moves it little."""
        loc = self.local
        q_now, t_now = float(self.m.tq[loc.pos]), loc.entry_t
        self.entries = [(q, t) for q, t in self.entries if t_now - t <= self.p.tempo_window_s and q < q_now]
        span = next(((q, t) for q, t in reversed(self.entries) if q_now - q >= 0.5), None)
        self.entries.append((q_now, t_now))
        if span is None or t_now <= span[1]:
            return
        obs = (t_now - span[1]) / (q_now - span[0])
        # the median of recent beat lengths shrugs off one misread interval
        self.tempo_obs = (self.tempo_obs + [min(max(obs, self.spq / 2.0), self.spq * 2.0)])[-5:]
        obs = statistics.median(self.tempo_obs)  # numpy's costs ten times as much on five numbers
        rate = max(self.p.tempo_rate, 1.0 / (1 + self.n_tempo))
        self.spq = math.exp((1 - rate) * math.log(self.spq) + rate * math.log(obs))
        self.n_tempo += 1
