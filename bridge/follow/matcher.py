"""Note verdicts: which score note a key press was, and whether it was right.

Given where the follower puts the player after a note, the matcher decides
correct / wrong_pitch / extra, the timing deviation against the local tempo, the
loudness against the dynamic mark in force, and which score notes were passed
without being played. Pure: times are passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bridge.follow.follower import FollowerStep
from bridge.score import Score

# MIDI velocity a mark asks for (middle of the usual range of a digital piano)
DYNAMIC_VELOCITY = {
    "pppp": 20,
    "ppp": 28,
    "pp": 38,
    "p": 50,
    "mp": 62,
    "mf": 74,
    "f": 88,
    "ff": 100,
    "fff": 112,
    "ffff": 120,
    "sf": 96,
    "sfz": 100,
    "sffz": 108,
    "rfz": 96,
    "fp": 88,
}


@dataclass(frozen=True)
class MatcherParams:
    near_semitones: int = 2  # a wrong note this close stands in for a score note
    # a played pitch is looked for this far around the follower's position (seconds at the
    # running tempo, and at least this many events back); notes further behind count as
    # missed. Ahead of the follower only near-simultaneous notes: had the player moved on,
    # the follower would have moved too, so a pitch further ahead is a wrong note.
    search_back_s: float = 0.6
    search_ahead_s: float = 0.06
    search_events: int = 2
    reclaim_margin_s: float = 0.0  # a better-timed press takes a note back from an early one
    # the follower weighed timing with its whole model: its event wins unless another
    # note's due time is this much nearer
    follower_bonus_s: float = 0.3
    timing_tol_s: float = 0.05  # on time within max(this, timing_tol_beats * quarter)
    timing_tol_beats: float = 0.12
    loudness_tol: int = 22  # velocity units


@dataclass(frozen=True)
class Judgement:
    verdict: str
    note: int | None  # index into Score.notes of the matched note
    intended: int | None  # for wrong_pitch: the note it stood in for
    timing_s: float | None
    timing: str | None
    velocity_expected: int | None
    loudness: str | None
    missed: tuple[int, ...]  # score notes passed without being played
    took_from: float | None = None  # press time of the earlier press that held ``note``


@dataclass
class Matcher:
    score: Score
    params: MatcherParams = field(default_factory=MatcherParams)

    def __post_init__(self) -> None:
        self.played: set[int] = set()
        # when each played note was struck and when the tempo said it was due
        self.struck: dict[int, tuple[float, float]] = {}
        self.attempted: set[int] = set()
        self.heard: set[int] = set()  # taken before a step back freed them: never missed
        self.final_upto = 0  # events before this were checked for missed notes
        self.reported: set[int] = set()  # notes reported missed (once each per pass)
        self.event = 0  # the follower's event at the last press
        # two voices on one key at one onset (a unison): one press plays them all
        self.unison: dict[int, tuple[int, ...]] = {}
        for ev in self.score.events:
            for k in ev.notes:
                same = tuple(j for j in ev.notes if self.score.notes[j].pitch == self.score.notes[k].pitch)
                if len(same) > 1:
                    self.unison[k] = same

    def judge(self, step: FollowerStep, pitch: int, t: float, velocity: int) -> Judgement:
        c = step.event
        if step.jumped_from is not None:
            self.jump_to(c)
        elif c < self.event:
            # the follower stepped back: the presses that took it ahead took notes that are
            # still to come, so everything from here on may be taken again; but a note a
            # press took was most likely played (early, or before the step back), so it is
            # not reported missed if no later press takes it
            self.heard |= self._forget_from(c)
            self.final_upto = min(self.final_upto, c)
        self.event = c
        note = self._nearest(c, pitch, t, step)
        intended = took_from = None
        if note is not None:
            verdict = "correct"
            if note in self.played:
                took_from = self.struck[note][0]
            same = self.unison.get(note, (note,))
            # the key sounds the longest of them: its release is judged against that one
            note = max(same, key=lambda k: self.score.notes[k].duration_q)
            due = self.due(self.score.notes[note].onset_q, step)
            self.played.update(same)
            self.struck.update((k, (t, due)) for k in same)
        else:
            near = self.params.near_semitones
            for e in (c, c + 1):
                intended = self._find(e, lambda n: 0 < abs(n.pitch - pitch) <= near, closest_to=pitch)
                if intended is not None:
                    break
            verdict = "wrong_pitch" if intended is not None else "extra"
            if intended is not None:
                same = self.unison.get(intended, (intended,))
                self.attempted.update(same)

        timing_s = timing = None
        if note is not None and step.timed:
            timing_s = t - self.due(self.score.notes[note].onset_q, step)
            tol = max(self.params.timing_tol_s, self.params.timing_tol_beats * step.sec_per_quarter)
            timing = "early" if timing_s < -tol else "late" if timing_s > tol else "on_time"

        ref = note if note is not None else intended
        vel_exp = loud = None
        if ref is not None and self.score.notes[ref].dynamic in DYNAMIC_VELOCITY:
            vel_exp = DYNAMIC_VELOCITY[self.score.notes[ref].dynamic]
            dv = velocity - vel_exp
            loud = "loud" if dv > self.params.loudness_tol else "soft" if dv < -self.params.loudness_tol else "ok"

        missed = self._pass_to(self._window(c, step.sec_per_quarter)[0])
        return Judgement(verdict, note, intended, timing_s, timing, vel_exp, loud, missed, took_from)

    def jump_to(self, event: int) -> None:
        """The player was moved to ``event``: what lies between is neither played nor missed."""
        self._forget_from(event)
        first = self.score.events[event].notes[0]
        self.reported = {k for k in self.reported if k < first}  # a new pass from here
        self.heard = {k for k in self.heard if k < first}
        self.final_upto = event

    def finish(self, last_event: int) -> tuple[int, ...]:
        """At the end of play: notes up to the last position that were never played."""
        return self._pass_to(last_event + 1)

    def _pass_to(self, upto: int) -> tuple[int, ...]:
        """The player has moved past events before ``upto``: their unplayed notes are missed."""
        ev = self.score.events
        missed = tuple(
            k
            for e in range(self.final_upto, min(upto, len(ev)))
            for k in ev[e].notes
            if k not in self.played and k not in self.attempted and k not in self.reported and k not in self.heard
        )
        self.reported.update(missed)
        self.final_upto = max(self.final_upto, upto)
        return missed

    def _nearest(self, c: int, pitch: int, t: float, step: FollowerStep) -> int | None:
        """The note of this pitch around event c the player most likely meant: the unplayed
        one whose due time, by the running tempo, is nearest to now."""
        ev, notes = self.score.events, self.score.notes
        lo, hi = self._window(c, step.sec_per_quarter)
        lo = max(lo, self.final_upto)
        best, best_cost = None, float("inf")
        for e in range(lo, hi):
            for k in ev[e].notes:
                if notes[k].pitch != pitch:
                    continue
                # how far from its due time (by the running tempo) this press would be
                cost = abs(t - self.due(ev[e].onset_q, step))
                if k in self.played:
                    # an earlier press took this note well before it was due; this one is
                    # closer to time, so that press was most likely an extra note
                    t_k, due = self.struck.get(k, (t, t))
                    if abs(t - due) + self.params.reclaim_margin_s >= abs(t_k - due):
                        continue
                    cost += self.params.reclaim_margin_s
                if e == c:
                    cost -= self.params.follower_bonus_s
                if cost < best_cost:
                    best, best_cost = k, cost
        return best

    @staticmethod
    def due(note_event_q: float, step: FollowerStep) -> float:
        """When a note at this onset was due, by the tempo since the previous event."""
        return step.reference_t + (note_event_q - step.reference_q) * step.sec_per_quarter

    def _window(self, c: int, spq: float) -> tuple[int, int]:
        """Events [lo, hi) near event c where a key press may still belong."""
        ev, p = self.score.events, self.params
        q = ev[c].onset_q
        lo = max(0, c - p.search_events)
        while lo > 0 and (q - ev[lo - 1].onset_q) * spq <= p.search_back_s:
            lo -= 1
        hi = min(len(ev), c + 1)
        while hi < len(ev) and (ev[hi].onset_q - q) * spq <= p.search_ahead_s:
            hi += 1
        return lo, hi

    def _find(self, e: int, ok, closest_to: int) -> int | None:
        if not 0 <= e < len(self.score.events):
            return None
        cands = [
            k
            for k in self.score.events[e].notes
            if k not in self.played and k not in self.attempted and ok(self.score.notes[k])
        ]
        if not cands:
            return None
        return min(cands, key=lambda k: abs(self.score.notes[k].pitch - closest_to))

    def _forget_from(self, event: int) -> set[int]:
        """The notes from ``event`` on are to be played again; returns those a press had taken."""
        first = self.score.events[event].notes[0]
        freed = {k for k in self.played | self.attempted if k >= first}
        self.played -= freed
        self.attempted -= freed
        for k in freed:  # one by one: the notes struck since the start are thousands
            self.struck.pop(k, None)
        return freed
