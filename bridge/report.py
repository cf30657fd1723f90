"""Pictures of a followed performance: alignment path, tempo and dynamics."""

from __future__ import annotations

import os
from array import array
from bisect import bisect_right
from collections import Counter, OrderedDict
from collections.abc import Iterable
from pathlib import Path

from bridge.score import Score
from bridge.userfiles import cannot_write

VERDICT_STYLE = {
    "correct": ("#2e7d32", "o", "correct"),
    "wrong_pitch": ("#c62828", "X", "wrong pitch"),
    "extra": ("#ef6c00", "P", "extra"),
}
VERDICTS = list(VERDICT_STYLE)
RECENT = 4096  # presses a `revised` event may still reach back to (it names one a few seconds back)
EXACT_US = 100_000  # latencies below this are counted exactly; above, to three significant digits


def revised_notes(results: list[dict]) -> list[dict]:
    """The ``note`` records with later ``revised`` events applied: a press that a
    better-timed press of the same key took its note from counts as extra."""
    revised = {(r["of_t"], r["pitch"]) for r in results if r["type"] == "revised"}
    return [
        {**r, "verdict": "extra", "match": None} if (r["t"], r["pitch"]) in revised else r
        for r in results
        if r["type"] == "note"
    ]


class FollowRecord:
    """What the summary and the plot need of a followed performance, gathered event by
    event in bounded memory: counts, and latencies counted by value (a percentile then
    comes out exactly as from the sorted list); with ``notes``, for the plot, one row of
    plain numbers per press in typed arrays (some 30 bytes a press, not a dict)."""

    def __init__(self, notes: bool = False):
        self.notes = notes
        self.played = self.missed_count = self.unheard_count = self.jumps_count = self.corrections_count = 0
        self.verdicts: Counter[str] = Counter()
        self.timing: Counter[str] = Counter()
        self.loudness: Counter[str] = Counter()
        self.latency: Counter[int] = Counter()
        self.last_position: dict | None = None
        self._recent: OrderedDict[tuple[float, int], tuple[int, str]] = OrderedDict()
        # per press, for the plot: time, score position, verdict (index into VERDICTS),
        # velocity, expected velocity (0: none) and tempo
        self.t, self.onset_q, self.tempo = array("d"), array("d"), array("d")
        self.verdict, self.velocity, self.expected = array("b"), array("h"), array("h")
        self.missed: list[tuple[float, str, int]] = []
        self.jumps: list[tuple[float, str, int]] = []
        self.corrections: list[tuple[float, float, str]] = []  # time, score position, "4 for 3"
        self.phrases: list[str] = []  # what the expression events said, in words

    @classmethod
    def of(cls, results: Iterable[dict], notes: bool = False) -> FollowRecord:
        record = cls(notes)
        for r in results:
            record.add(r)
        return record

    def add(self, r: dict) -> None:
        kind = r["type"]
        if kind == "note":
            self._note(r)
        elif kind == "revised":
            self._revise((r["of_t"], r["pitch"]))
        elif kind == "missed" and not r.get("sure", True):
            self.unheard_count += 1  # audio: may have been played, not caught
        elif kind == "missed":
            self.missed_count += 1
            if self.notes:
                self.missed.append((r["t"], r["note_id"], r["pass"]))
        elif kind == "jump":
            self.jumps_count += 1
            if self.notes:
                self.jumps.append((r["t"], r["kind"], r["to"]["measure"]))
        elif kind == "expression":
            self.phrases.append(r["text"])
        elif kind == "fingering_correction":
            self.corrections_count += 1
            press = self._recent.get((r["t"], r["pitch"]))
            if self.notes and press is not None:
                played, told = r["played"], r["suggested"]
                text = f"{played['finger']} for {told['finger']}"
                if played["hand"] != told["hand"]:
                    text = (
                        f"{played['hand'][0].upper()}{played['finger']} for {told['hand'][0].upper()}{told['finger']}"
                    )
                self.corrections.append((r["t"], self.onset_q[press[0]], text))

    def _note(self, r: dict) -> None:
        self.played += 1
        self.verdicts[r["verdict"]] += 1
        if r.get("timing"):
            self.timing[r["timing"]] += 1
        if r.get("loudness"):
            self.loudness[r["loudness"]] += 1
        us = int(r["latency_us"])
        self.latency[us if us < EXACT_US else int(float(f"{us:.3g}"))] += 1
        self.last_position = r["position"]
        self._recent[(r["t"], r["pitch"])] = (len(self.t), r["verdict"])
        if len(self._recent) > RECENT:
            self._recent.popitem(last=False)
        if self.notes:
            self.t.append(r["t"])
            self.onset_q.append(r["position"]["onset_q"])
            self.tempo.append(r["tempo_bpm"])
            self.verdict.append(VERDICTS.index(r["verdict"]))
            self.velocity.append(r["velocity"])
            self.expected.append(r.get("velocity_expected") or 0)

    def _revise(self, key: tuple[float, int]) -> None:
        """The press at ``key`` was an extra note after all (see `revised_notes`)."""
        index, verdict = self._recent.get(key, (-1, "extra"))
        if verdict == "extra":
            return
        self.verdicts[verdict] -= 1
        self.verdicts["extra"] += 1
        self._recent[key] = (index, "extra")
        if self.notes:
            self.verdict[index] = VERDICTS.index("extra")

    def latency_at(self, q: float) -> int:
        """The latency at rank ``int(q * (n - 1))`` of the sorted latencies (q = 0.5: n // 2)."""
        rank = self.played // 2 if q == 0.5 else int(q * (self.played - 1))
        seen = 0
        for us in sorted(self.latency):
            seen += self.latency[us]
            if seen > rank:
                return us
        raise ValueError("no latencies")

    def passed_at(self, reported_t: float, onset_q: float) -> float:
        """When the player went past a score onset: the last press before the report whose
        position was at or before it (a missed note is reported some time after)."""
        for i in range(bisect_right(self.t, reported_t) - 1, -1, -1):
            if self.onset_q[i] <= onset_q:
                return self.t[i]
        return reported_t


def plot_follow(results: Iterable[dict] | FollowRecord, score: Score, path: str | os.PathLike) -> None:
    """Save a three-panel picture (PNG unless the name says another format matplotlib
    writes): where the follower put each key press (errors, missed notes and jumps
    marked), the local tempo, and played against expected velocity."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rec = results if isinstance(results, FollowRecord) else FollowRecord.of(results, notes=True)
    t, verdict = np.asarray(rec.t), np.asarray(rec.verdict)
    fig, (ax_pos, ax_tempo, ax_vel) = plt.subplots(
        3, 1, figsize=(11, 8.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.2, 1.2]}
    )
    # the format from the name when matplotlib knows it, else PNG: a name without a
    # suffix (`/dev/full`) is written as given, never with a suffix added
    fmt = Path(path).suffix[1:].lower()
    fmt = fmt if fmt in fig.canvas.get_supported_filetypes() else "png"
    for code, (name, (color, marker, label)) in enumerate(VERDICT_STYLE.items()):
        these = verdict == code
        if these.any():
            size = 8 if name == "correct" else 40
            ax_pos.scatter(
                t[these],
                np.asarray(rec.onset_q)[these],
                s=size,
                c=color,
                marker=marker,
                label=f"{label} ({these.sum()})",
                zorder=3,
            )
    onset_of = {(n.note_id, n.pass_no): n.onset_q for n in score.notes}
    missed = [
        (rec.passed_at(at, q), q)
        for at, note_id, pass_no in rec.missed
        if (q := onset_of.get((note_id, pass_no))) is not None
    ]
    if missed:
        ax_pos.scatter(*zip(*missed), s=30, facecolors="none", edgecolors="#6a1b9a", label=f"missed ({len(missed)})")
    if rec.corrections:
        at, q, texts = zip(*rec.corrections)
        ax_pos.scatter(at, q, s=90, facecolors="none", edgecolors="#ef6c00", lw=1.5, label=f"finger ({len(at)})")
        for k, (x, y, text) in enumerate(rec.corrections):  # neighbours' labels alternate sides
            below = (4, -11) if k % 2 == 0 else (-30, 6)
            ax_pos.annotate(text, (x, y), xytext=below, textcoords="offset points", fontsize=7, color="#ef6c00")
    for at, kind, measure in rec.jumps:
        ax_pos.axvline(at, color="#1565c0", ls="--", lw=1)
        ax_pos.annotate(f"{kind} → m{measure}", (at, ax_pos.get_ylim()[1]), fontsize=8, color="#1565c0")
    ax_pos.set_ylabel("score position (quarters)")
    ax_pos.set_title(f"{score.title}: where each key press landed")
    ax_pos.legend(loc="upper left", fontsize=8)
    ax_pos.grid(alpha=0.3)

    if len(t):
        ax_tempo.plot(t, np.asarray(rec.tempo), color="#37474f", lw=1)
    ax_tempo.set_ylabel("tempo (bpm)")
    ax_tempo.grid(alpha=0.3)

    ax_vel.scatter(t, np.asarray(rec.velocity), s=4, c="#455a64", label="played")
    expected = np.asarray(rec.expected)
    if (expected > 0).any():
        ax_vel.step(
            t[expected > 0], expected[expected > 0], where="post", color="#d81b60", lw=1.5, label="dynamic mark"
        )
    ax_vel.set_ylabel("velocity")
    ax_vel.set_xlabel("performance time (s)")
    ax_vel.legend(loc="upper left", fontsize=8)
    ax_vel.grid(alpha=0.3)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110, format=fmt)
    except OSError as e:
        raise cannot_write(path, e) from None
    finally:
        plt.close(fig)
