"""Is the player practising one hand alone? Hands-separate practice is how most pianists
learn a piece, and a follower that expects both hands takes the missing one for a run of
missed notes, loses its place where the hand that plays moves alone, and calls notes of
the other hand wrong (docs/benchmarks.md, "One hand alone").

``HandsWatch`` weighs what became of each hand's last notes (played or tried, or passed
unplayed) and the last presses. Where one hand's last NOTES notes were all but unplayed,
the other hand played at least half of its own, and every recent press was that hand's
(or a key in its range), that hand plays alone; the engine then follows its part of the
score only. Where the follower lost the player (one hand's notes can fit the whole score
nowhere), the last presses are looked for in their order instead: one hand's part
explains them, clearly more of them than the whole score does. Both hands play again
once the last presses are the whole score's notes in their order, clearly more of them
than the hand's part explains. No time is needed.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from bridge.follow.transpose import PressWindow, in_order, pitch_table
from bridge.score import HANDS, Score, hand_part

NOTES = 16  # the last resolved notes of each hand weighed, and the last presses
ABSENT = 1  # a hand that played at most this many of its last NOTES ...
PRESENT = 8  # ... while the other played at least this many of its own plays alone, ...
NEAR = 2  # ... and each of the last NOTES presses was its note, or a key this near its range
# both hands again: look while TROUBLE of the RECENT last presses were not correct, every
# EVERY presses; the whole score explains EXPLAINS of the last PRESSES in their order, and
# MARGIN more than the hand's part does, at LOOKS looks in a row
TROUBLE, RECENT, EVERY = 2, 8, 4
PRESSES, EXPLAINS, MARGIN, LOOKS = 24, 22, 3, 2


class HandsWatch:
    """Per note outcome, whether the player went over to one hand alone, and per press
    while one does, whether both play again. ``alone``: the hand playing alone, None while
    both do; ``part``: the score as followed (`hand_part`, or the whole of it)."""

    def __init__(self, score: Score, like: HandsWatch | None = None) -> None:
        """``like``: an earlier watch of the same score, whose parts and pitch tables this
        fresh one shares."""
        self.score = self.part = score
        if like is not None and like.score is score:
            self.table, self.parts, self.tables = like.table, like.parts, like.tables
        else:
            self.table = pitch_table(score)
            # each hand's part, made once: a switch or a look on the note path only reads them
            self.parts = {h: hand_part(score, h) for h in HANDS if any(n.hand == h for n in score.notes)}
            self.tables = {h: pitch_table(p) for h, p in self.parts.items()}
        self.part_table = self.table
        self.alone: str | None = None
        self.outcomes = {h: deque(maxlen=NOTES) for h in HANDS}  # per hand: played or not
        self.keys: deque[tuple[int, str | None]] = deque(maxlen=NOTES)  # (pitch, hand of its note) per press
        self.window = PressWindow(PRESSES, TROUBLE, RECENT, EVERY)  # the last keys, as written
        self.looks = 0  # looks in a row that heard the other hands
        self.heard: str | None = None  # the hand the looks while lost heard alone

    def resolved(self, pitch: int, correct: bool, hand: str | None, missed: list[str]) -> str | None:
        """A press while both hands are expected and the follower is sure of its place: its
        key (as written), whether it was correct, the hand of the note it played or tried
        (None: an extra note), and the hands of the notes it left behind unplayed. The hand
        now playing alone where it changed, else None. Weighed once all are in: a jump
        passes notes of both hands, in the score's order."""
        self.window.add(pitch, correct)  # the last presses, for a look once the follower is lost
        self.keys.append((pitch, hand))
        for h in missed:
            self.outcomes[h].append(False)
        if hand is not None:
            self.outcomes[hand].append(True)
        for h in HANDS:
            mine, theirs = self.outcomes[h], self.outcomes[other_hand(h)]
            if len(mine) == len(theirs) == NOTES and sum(mine) >= PRESENT and sum(theirs) <= ABSENT and self._only(h):
                self._go_alone(h)
                return h
        return None

    def lost(self, written: int, correct: bool) -> tuple[str, int] | None:
        """A press while both hands are expected and the follower has lost the player
        (whose notes then tell nothing of the hands, `resolved`). Where one hand plays
        alone, the follower can lose the player for good, its part's notes fitting the
        whole score nowhere: the last presses are looked for, in their order, in each
        hand's part and in the whole score, and a part that explains EXPLAINS of them and
        MARGIN more than the whole score, at LOOKS looks in a row, is that hand alone:
        then (that hand, the event of its part the last press was on), else None."""
        if not self.window.add(written, correct):
            return None
        presses = list(self.window.presses)
        whole = (self.table, len(self.score.events))
        hand = None
        for h, table in self.tables.items():
            part = clearly(presses, (table, len(self.parts[h].events)), whole)
            if part is not None:
                hand, end = h, part[1]
                break
        self.looks = self.looks + 1 if hand is not None and hand == self.heard else int(hand is not None)
        self.heard = hand
        if hand is None or self.looks < LOOKS:
            return None
        self._go_alone(hand)
        return hand, end

    def _go_alone(self, hand: str) -> None:
        self.alone, self.part, self.part_table = hand, self.parts[hand], self.tables[hand]
        self.window.clear()
        self.looks, self.heard = 0, None

    def _only(self, hand: str) -> bool:
        """Every one of the last NOTES presses played a note of ``hand``, or a key within
        NEAR of the range of those: a hand that plays notes the score does not have (an
        embellished repeat) is still heard."""
        own = [p for p, h in self.keys if h == hand]
        return len(self.keys) == NOTES and all(
            h == hand or (h is None and min(own, default=128) - NEAR <= p <= max(own, default=-1) + NEAR)
            for p, h in self.keys
        )

    def press(self, written: int, correct: bool) -> int | None:
        """A press while one hand plays alone (its key as written, and whether it was
        correct); where both hands play again, the event of the whole score it was on,
        else None. Where the music leaves several places equally likely, the first: a
        player who goes back to play together what they practised alone starts before
        the place they reached, and the follower moves on from an earlier twin where the
        music parts (a later one it could only reach by a search)."""
        if not self.window.add(written, correct):
            return None
        presses = list(self.window.presses)
        whole = clearly(presses, (self.table, len(self.score.events)), (self.part_table, len(self.part.events)))
        both = whole is not None
        self.looks = self.looks + 1 if both else 0
        if not both or self.looks < LOOKS:
            return None
        self.alone, self.part, self.part_table = None, self.score, self.table
        for o in self.outcomes.values():
            o.clear()
        self.keys.clear()
        self.window.clear()
        return whole[1]


def clearly(presses: list[int], by: tuple[np.ndarray, int], than: tuple[np.ndarray, int]) -> tuple[int, int] | None:
    """Where ``presses`` are notes of one score in their order clearly more than of another
    (each given as its `pitch_table` and its number of events): EXPLAINS of them, and MARGIN
    more than the other explains, as (how many, the event of the last press placed) of
    `in_order`; else None."""
    found = in_order(*by, presses, [0], EXPLAINS).get(0)
    if found is None or in_order(*than, presses, [0], found[0] - MARGIN + 1):
        return None
    return found


def other_hand(hand: str) -> str:
    return HANDS[1 - HANDS.index(hand)]


def describe(hand: str | None) -> str:
    """A ``hands`` status's detail: the hand (or "both") first, then what it means."""
    if hand is None:
        return "both: both hands again; the whole score followed"
    return f"{hand}: the {hand} hand alone; its part followed, the {other_hand(hand)} hand's notes not expected"
