"""The engine: input events in, verdicts and position out.

One object serves offline replay, tests, benchmarks and the live runtime: it is fed
timestamped events and returns output events, and never reads a clock itself.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import deque
from dataclasses import dataclass

import numpy as np

from bridge.errors import UserError
from bridge.events import (
    Annotation,
    Command,
    Control,
    Finger,
    FingeringCorrection,
    FingerSeen,
    HandFrame,
    InputEvent,
    Jump,
    Missed,
    NoteOff,
    NoteOn,
    NoteVerdict,
    OutputEvent,
    Pedal,
    PlannedFinger,
    PlayedFinger,
    Position,
    Ref,
    Release,
    Revised,
    Sounded,
    Status,
)
from bridge.fingerid import FingerWatcher
from bridge.fingering import LEFT, Fingering, finger_text
from bridge.follow.follower import Follower, FollowerParams, FollowerStep
from bridge.follow.hands import HandsWatch
from bridge.follow.hands import describe as hands_text
from bridge.follow.matcher import Judgement, Matcher, MatcherParams
from bridge.follow.transpose import TranspositionWatch, describe
from bridge.keyboard import Calibration
from bridge.score import HANDS, PLAYING, Score, as_struck, hand_part

PEDALS = {64: "sustain", 66: "sostenuto", 67: "soft"}
ALL_NOTES_OFF = (120, 123)
CONFIDENCE_LOW, CONFIDENCE_OK = 0.4, 0.8
FINGER_SURE = 0.5  # a camera call less sure than this corrects nobody
TOLD_KEPT = 512  # suggestions kept for the camera's call, which comes within WINDOW_S
REPLAN_SHOWN = 8  # notes ahead that a correction re-plans out loud
# the camera is not to be trusted when it cannot call, or disagrees with the plan on, 6 of
# the last 12 notes; it is again when 2 or fewer of them were either
CAMERA_NOTES, CAMERA_BAD, CAMERA_GOOD = 12, 6, 2


@dataclass
class _Held:
    t_on: float
    match: Ref | None
    key_down: bool = True


class Engine:
    """Follow one performance through one score."""

    def __init__(
        self,
        score: Score,
        follower_params: FollowerParams | None = None,
        matcher_params: MatcherParams | None = None,
        fingering: Fingering | None = None,
        calibration: Calibration | None = None,
        hands: str = "auto",
    ):
        """``fingering``: the planned fingering of the score's notes (see
        `bridge.fingering.plan_score`), reported with each verdict and re-planned from
        the finger the player used. ``calibration``: the keyboard in the camera image;
        with it, camera frames (`HandFrame`) tell which finger played each note
        (`FingerSeen`) and where it was not the suggested one (`FingeringCorrection`).
        ``hands``: "right" or "left" follows that hand's part alone (hands-separate
        practice), "both" the whole score, "auto" the whole score until the player is
        heard to play one hand alone (``status hands``) and back."""
        if hands not in PLAYING:
            raise ValueError(f"hands must be auto, both, right or left, not {hands!r}")
        # its chords as a player strikes them: a chord the file wrote split is one event
        self.score = score = as_struck(score)
        self.hands_mode = hands
        # the score as followed: the whole of it, or one hand's part (same notes, its events)
        self.part = hand_part(score, hands) if hands in HANDS else score
        self.hands = HandsWatch(score) if hands == "auto" else None
        self._watch = self.hands  # the last watch made: its parts are the ones followed from then on
        self.fingering = fingering
        self.suggested = [finger_text(f) for f in fingering.fingers] if fingering else None
        self.told: dict[Ref, str] = {}  # the suggestion each sounding note's verdict gave
        self.note_index = {(n.note_id, n.pass_no): k for k, n in enumerate(score.notes)}
        self.camera_calls: deque[str] = deque(maxlen=CAMERA_NOTES)  # what it made of recent notes (_camera_quality)
        self.camera_trusted = False  # the camera's calls fitted the last notes: it may correct
        self.camera_weak = False  # said so: the next news is that it is back
        self.calibration = calibration
        self.watcher = FingerWatcher(calibration) if calibration is not None else None
        self.follower_params = follower_params or FollowerParams()
        self.matcher_params = matcher_params or MatcherParams()
        self._made: dict[int, Follower] = {}  # the last follower made per part (_new_follower)
        self.follower = self._new_follower(self.part)
        if self.hands:  # a switch to one hand, on the note path, then costs no table building
            for part in self.hands.parts.values():
                self._new_follower(part)
        self.matcher = Matcher(self.part, self.matcher_params)
        self.paused = False
        self.last_step: FollowerStep | None = None
        self.last_t = 0.0
        self.pedal_down = {name: False for name in PEDALS.values()}
        self.sostenuto_held: set[int] = set()
        self.held: dict[int, _Held] = {}  # pitch -> the sounding note
        self.lost = False  # the follower's confidence fell; said once, until it recovers
        self.transposition = TranspositionWatch(self.part, self.hands.table if self.hands else None)

    # -- positions ------------------------------------------------------------

    def position(self, event: int, confidence: float) -> Position:
        ev = self.part.events[event]
        n = self.score.notes[ev.notes[0]]
        return Position(n.note_id, n.pass_no, n.measure, n.beat, n.onset_q, round(confidence, 4))

    def expected_pitches(self, ahead: int = 3) -> dict[int, float]:
        """The pitches of the score event the follower is at and the ``ahead`` after it:
        what the player most likely plays next (read only; audio detection weighs its
        evidence with it), each with when its first note not yet played there is due by
        the running tempo (nan before the first note, or where all are played)."""
        step = self.last_step
        at = step.event if step is not None else 0
        out: dict[int, float] = {}
        for ev in self.part.events[max(at, 0) : at + ahead + 1]:
            due = Matcher.due(ev.onset_q, step) if step is not None else math.nan
            for k in ev.notes:
                p = self.score.notes[k].pitch + self.transposition.shift  # as the keyboard sounds it
                if k not in self.matcher.played and math.isnan(out.get(p, math.nan)):
                    out[p] = due
                out.setdefault(p, math.nan)
        return out

    def ref(self, note: int) -> Ref:
        n = self.score.notes[note]
        return Ref(n.note_id, n.pass_no)

    # -- feeding --------------------------------------------------------------

    def feed(self, ev: InputEvent) -> list[OutputEvent]:
        """Process one input event (in time order); returns what it produced."""
        self.last_t = ev.t
        if isinstance(ev, NoteOn) and ev.velocity:
            return [] if self.paused else self._note_on(ev)
        if isinstance(ev, NoteOn | NoteOff):
            return self._note_off(NoteOff(ev.t, ev.pitch, ev.channel))
        if isinstance(ev, Control):
            return self._control(ev)
        if isinstance(ev, Status | Annotation):  # pass through, in order with the rest
            return [ev]
        if isinstance(ev, Command):
            return self._command(ev)
        if isinstance(ev, HandFrame):
            return self._fingers(self.watcher.add_frame(ev.t, list(ev.hands))) if self.watcher else []
        return []

    def _fingers(self, calls: list[tuple[float, int, Ref | None, PlayedFinger | None]]) -> list[OutputEvent]:
        out: list[OutputEvent] = []
        for t, pitch, match, finger in calls:
            if finger is not None:
                out.append(FingerSeen(t, pitch, match, finger))
            out += self.finger_played(t, pitch, match, finger)
        return out

    def finger_played(self, t: float, pitch: int, match: Ref | None, finger: PlayedFinger | None) -> list[OutputEvent]:
        """The camera's call on the note-on at t (None: it could not tell). Returns a
        `FingeringCorrection` where the finger is not the one the note's verdict
        suggested (and re-plans that hand from it), and a status when the camera's
        evidence turns too weak to trust, or is good again."""
        sure = finger is not None and finger.confidence >= FINGER_SURE
        told = self.told.pop(match, None) if match is not None else None
        if not sure or told is None or self.fingering is None:
            return self._camera_quality(t, "weak" if not sure else "called")
        note = self.note_index[(match.note_id, match.pass_no)]
        hand, finger_told = self._planned(note, told)
        suggested = Finger(hand, finger_told)
        agrees = (finger.hand, finger.finger) == (suggested.hand, suggested.finger)
        out = self._camera_quality(t, "agrees" if agrees else "differs")
        if agrees or not self.camera_trusted:
            return out
        replanned: tuple[PlannedFinger, ...] = ()
        planned = self.fingering.replan(note, finger.finger) if finger.hand == hand else None
        if planned:
            for k, f in planned.items():
                self.suggested[k] = str(f)
            ahead = list(planned.items())[:REPLAN_SHOWN]
            replanned = tuple(PlannedFinger(*self._id(k), f) for k, f in ahead)
        out.append(FingeringCorrection(t, pitch, match, finger, suggested, replanned))
        return out

    def _planned(self, note: int | None, suggested: str | None) -> tuple[str, int] | None:
        if note is None or not suggested or self.fingering is None:
            return None
        return ("left" if self.fingering.hand_of(note) == LEFT else "right"), int(suggested.split("_")[0])

    def _id(self, note: int) -> tuple[str, int]:
        n = self.score.notes[note]
        return n.note_id, n.pass_no

    def _camera_quality(self, t: float, call: str) -> list[OutputEvent]:
        """Whether the camera can be trusted, from its recent calls ("weak": none, or not
        sure; "agrees" / "differs" with the suggestion; "called": a note with none). A
        camera that cannot see the fingers, or whose calibration does not fit the
        keyboard (a hand seen a few keys off puts other fingers on the keys, and the
        calls stop agreeing with a plan that follows the player), corrects nobody.
        It is trusted once the last CAMERA_NOTES notes fit; a status when it goes, one
        when it is back."""
        self.camera_calls.append(call)
        weak, differs = self.camera_calls.count("weak"), self.camera_calls.count("differs")
        if not self.camera_weak and (weak >= CAMERA_BAD or differs >= CAMERA_BAD):
            self.camera_trusted, self.camera_weak = False, True
            why = (
                f"no finger seen clearly on {weak}"
                if weak >= CAMERA_BAD
                else f"the fingers seen disagree with the plan on {differs}"
            )
            detail = f"{why} of the last {len(self.camera_calls)} notes: no fingering corrections until it is clear"
            return [Status(t, "camera_weak", detail + " (check the camera's view and the calibration)")]
        if not self.camera_trusted and weak + differs <= CAMERA_GOOD and len(self.camera_calls) == CAMERA_NOTES:
            self.camera_trusted = True  # at the start silently: nothing was said before
            if self.camera_weak:
                self.camera_weak = False
                return [Status(t, "camera_ok", "fingers seen clearly again")]
        return []

    def _command(self, ev: Command) -> list[OutputEvent]:
        if ev.command == "stop":
            self.paused = True
            return [Status(ev.t, "paused", "")]
        if ev.command == "start":
            self.paused = False
            return [Status(ev.t, "following", "")]
        if ev.command == "reset":
            self.follower = self._new_follower(self.part)
            self.matcher = Matcher(self.part, self.matcher_params)
            self.last_step = None
            self.lost = False  # a fresh start: a later loss of confidence is news again
            return [Status(ev.t, "reset", "")]
        if ev.command == "jump":
            target = next(
                (e.index for e in self.part.events if e.measure == ev.measure and self._pass_of(e) == ev.pass_no),
                None,
            )
            if target is None:
                return [Status(ev.t, "osc_ignored", f"no measure {ev.measure} (pass {ev.pass_no}) in the score")]
            here = self.last_step.event if self.last_step else 0
            self.follower.jump_to(target)
            self.matcher.jump_to(target)
            return [self._jump(ev.t, here, target, 1.0)]
        if ev.command == "playing":
            return self._playing(ev.t, ev.playing)
        return [Status(ev.t, "osc_ignored", f"unknown command {ev.command!r}")]

    def _playing(self, t: float, hands: str) -> list[OutputEvent]:
        """The player says what they play now (``/control/playing``; the ``hands`` of
        `Engine`): that part is followed on from the place reached (``status hands``)."""
        if hands not in PLAYING:
            return [Status(t, "osc_ignored", f"playing must be {', '.join(PLAYING[:-1])} or {PLAYING[-1]}")]
        # the same part objects at every command, so each part's follower tables are made once
        watch = self._watch = HandsWatch(self.score, like=self._watch)
        try:  # hand_part only to say that the score lacks that hand
            part = (watch.parts.get(hands) or hand_part(self.score, hands)) if hands in HANDS else self.score
        except UserError as e:
            return [Status(t, "osc_ignored", str(e))]
        self.hands_mode = hands
        self.hands = watch if hands == "auto" else None
        self._follow(part, t, self._next_in(part) if self.last_step else 0, self.hands.table if self.hands else None)
        return [Status(t, "hands", hands_text(hands if hands in HANDS else None))]

    def _jump(self, t: float, source: int, target: int, confidence: float) -> Jump:
        src, dst = self.part.events[source], self.part.events[target]
        kind = "restart" if target == 0 else "back" if dst.onset_q < src.onset_q else "ahead"
        return Jump(t, kind, src.measure, self.position(target, confidence))

    def _pass_of(self, event) -> int:
        return self.score.notes[event.notes[0]].pass_no

    def finish(self) -> list[OutputEvent]:
        """The performance ended: report notes up to the last position never played."""
        seen = self._fingers(self.watcher.finish()) if self.watcher is not None else []
        if self.last_step is None:
            return seen
        return seen + self._missed(self.matcher.finish(self.last_step.event), self.last_t, self.last_step)

    def _note_on(self, ev: NoteOn) -> list[OutputEvent]:
        """A key press, followed as the note written for it under the keyboard's
        transposition (reported with the pitch it sent); a change of transposition is
        said (``status transposed``)."""
        out: list[OutputEvent] = []
        if ev.pitch in self.held:  # re-struck while still sounding (pedal): the old one ends
            out += self._end_sounding(ev.pitch, ev.t)
        written = ev.pitch - self.transposition.shift
        written = written if 0 <= written < 128 else ev.pitch
        step = self.follower.observe(written, ev.t)
        if step.jumped_from is not None:
            out.append(self._jump(ev.t, step.jumped_from, step.event, step.confidence))
        j = self.matcher.judge(step, written, ev.t, ev.velocity)
        if j.note is not None:
            self.follower.mark_played(self._event_of(j.note, step.event), written)
        out += self._missed(j.missed, ev.t, step)
        # a press heard faintly, let through as a note the score expected, that is not that
        # note is taken for noise rather than shown as a wrong or extra note
        if j.note is not None or ev.sure:
            out += self._verdict(ev, written, step, j)
        out += self._confidence_change(ev.t, step.confidence, self.part.events[step.event].measure)
        self.last_step = step
        shift = self.transposition.press(ev.pitch, j.verdict == "correct")
        if shift is not None:
            out.append(Status(ev.t, "transposed", describe(shift)))
        return out + self._hands(ev.t, written, j)

    def _verdict(self, ev: NoteOn, written: int, step: FollowerStep, j: Judgement) -> list[OutputEvent]:
        """The press's verdict (and a ``revised`` one where it took a note from an earlier
        press); the key is held from here. ``written``: the key the player pressed, the
        keyboard's transposition taken off."""
        about = j.note if j.note is not None else j.intended
        info = self.score.notes[about] if about is not None else None
        verdict = NoteVerdict(
            t=ev.t,
            pitch=ev.pitch,
            velocity=ev.velocity,
            verdict=j.verdict,
            match=self.ref(j.note) if j.note is not None else None,
            position=self.position(step.event, step.confidence),
            intended=self.ref(j.intended) if j.intended is not None else None,
            timing_ms=round(j.timing_s * 1000.0, 1) if j.timing_s is not None else None,
            timing=j.timing,
            velocity_expected=j.velocity_expected,
            dynamic=info.dynamic if info else None,
            loudness=j.loudness,
            tempo_bpm=round(60.0 / step.sec_per_quarter, 1),
            hand=info.hand if info else None,
            printed_finger=info.fingering[0] if info and info.fingering else None,
            suggested_finger=self.suggested[about] if self.suggested and about is not None else None,
        )
        out: list[OutputEvent] = [verdict]
        if verdict.suggested_finger and verdict.match is not None:
            self.told[verdict.match] = verdict.suggested_finger
            if len(self.told) > TOLD_KEPT:  # the oldest were never called (no camera): forget them
                del self.told[next(iter(self.told))]
        if j.took_from is not None and verdict.match is not None:
            out.append(Revised(ev.t, j.took_from, ev.pitch, "extra", verdict.match.note_id, verdict.match.pass_no))
        if self.watcher is not None:
            self.watcher.note_on(ev.t, written, verdict.match, self._planned(about, verdict.suggested_finger))
        self.held[ev.pitch] = _Held(ev.t, verdict.match)
        return out

    def _confidence_change(self, t: float, confidence: float, measure: int) -> list[OutputEvent]:
        # hysteresis: one message when it drops, one when it is back
        if not self.lost and confidence < CONFIDENCE_LOW:
            self.lost = True
            return [Status(t, "confidence_low", f"measure {measure}")]
        if self.lost and confidence >= CONFIDENCE_OK:
            self.lost = False
            return [Status(t, "following", f"measure {measure}")]
        return []

    def _event_of(self, note: int, near: int) -> int:
        for e in (near, near - 1):
            if 0 <= e < len(self.part.events) and note in self.part.events[e].notes:
                return e
        return near

    def _hands(self, t: float, written: int, j: Judgement) -> list[OutputEvent]:
        """Hands-separate practice (``hands`` "auto"): where the player goes over to one
        hand alone, or back to both, follow on in that part from the place reached and
        say so (``status hands``)."""
        w = self.hands
        if w is None:
            return []
        correct = j.verdict == "correct"
        if w.alone is None and self.last_step.confidence < CONFIDENCE_LOW:  # its notes tell nothing
            found = w.lost(written, correct)
            if found is None:
                return []
            self._follow(w.part, t, min(found[1] + 1, len(w.part.events) - 1), w.part_table, doubt=True)
        elif w.alone is None:
            tried = j.note if j.note is not None else j.intended
            hand = self.score.notes[tried].hand if tried is not None else None
            alone = w.resolved(written, correct, hand, [self.score.notes[k].hand for k in j.missed])
            if alone is None:
                return []
            self._follow(w.part, t, self._next_in(w.part), w.part_table)
        else:
            at = w.press(written, correct)
            if at is None:
                return []
            self._follow(w.part, t, min(at + 1, len(w.part.events) - 1), w.part_table, doubt=True)
        return [Status(t, "hands", hands_text(w.alone))]

    def _next_in(self, part: Score) -> int:
        """The event of ``part`` the next press lands on from the place reached: the first
        after the one just played (at it, where nothing there was played)."""
        here = self.part.events[self.last_step.event]
        played = any(k in self.matcher.played for k in here.notes)
        onsets = [e.onset_q for e in part.events]
        return min((bisect_right if played else bisect_left)(onsets, here.onset_q), len(onsets) - 1)

    def _follow(self, part: Score, t: float, target: int, table: np.ndarray | None = None, doubt: bool = False) -> None:
        """Follow ``part`` (the whole score or one hand's) on from its event ``target``, at
        the tempo the player had. ``table``: its `pitch_table`, where the caller has it;
        ``doubt``: the target was read from the last presses (`Follower.jump_to`)."""
        old = self.follower
        self.part = part
        self.follower = self._new_follower(part)
        self.follower.jump_to(target, doubt)
        self.follower.spq, self.follower.n_tempo, self.follower.tempo_obs = old.spq, old.n_tempo, list(old.tempo_obs)
        self.matcher = Matcher(part, self.matcher_params)
        self.matcher.jump_to(target)
        shift = self.transposition.shift
        self.transposition = TranspositionWatch(part, table)
        self.transposition.shift = shift
        # the place just before the target: nothing there is reported missed at the end
        before = max(target - 1, 0)
        step = self.last_step
        if step is None:  # nothing played yet: the part is followed from its start
            return
        self.last_step = FollowerStep(
            before, False, step.confidence, old.spq, None, part.events[before].onset_q, t, False
        )

    def _new_follower(self, part: Score) -> Follower:
        """A fresh follower of ``part``, sharing the score tables of the last one made for it."""
        follower = self._made[id(part)] = Follower(part, self.follower_params, like=self._made.get(id(part)))
        return follower

    def _missed(self, notes: tuple[int, ...], t: float, step: FollowerStep) -> list[OutputEvent]:
        out: list[OutputEvent] = []
        for k in notes:
            n = self.score.notes[k]
            due = round(min(Matcher.due(n.onset_q, step), t), 4)
            out.append(Missed(t, n.note_id, n.pass_no, n.pitch, n.measure, n.beat, due))
        return out

    def _note_off(self, ev: NoteOff) -> list[OutputEvent]:
        h = self.held.get(ev.pitch)
        if h is None or not h.key_down:
            return []
        h.key_down = False
        out: list[OutputEvent] = [Release(ev.t, ev.pitch, round(ev.t - h.t_on, 4), h.match)]
        if not self.pedal_down["sustain"] and ev.pitch not in self.sostenuto_held:
            out += self._end_sounding(ev.pitch, ev.t)
        return out

    def _end_sounding(self, pitch: int, t: float) -> list[OutputEvent]:
        h = self.held.pop(pitch, None)
        self.sostenuto_held.discard(pitch)
        return [Sounded(t, pitch, round(t - h.t_on, 4), h.match)] if h else []

    def _control(self, ev: Control) -> list[OutputEvent]:
        if ev.control in ALL_NOTES_OFF:
            out: list[OutputEvent] = []
            for pitch in list(self.held):
                out += self._end_sounding(pitch, ev.t)
            return out
        name = PEDALS.get(ev.control)
        if name is None:
            return []
        down = ev.value >= 64
        if down == self.pedal_down[name]:
            return []
        self.pedal_down[name] = down
        out = [Pedal(ev.t, name, down, ev.value)]
        if name == "sostenuto":
            self.sostenuto_held = {p for p, h in self.held.items() if h.key_down} if down else set()
        if not down and name in ("sustain", "sostenuto"):
            for pitch, h in list(self.held.items()):
                if not h.key_down and not self.pedal_down["sustain"] and pitch not in self.sostenuto_held:
                    out += self._end_sounding(pitch, ev.t)
        return out
