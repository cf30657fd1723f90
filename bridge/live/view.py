"""A live terminal view of the bridge (rich): where the player is and how it is going."""

from __future__ import annotations

import threading
from collections import Counter, deque

from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from bridge.events import Expression, FingeringCorrection, Jump, Missed, NoteVerdict, OutputEvent, Revised, Status

COLOURS = {"correct": "green", "wrong_pitch": "bold red", "extra": "yellow"}
NOTE_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]


def note_name(pitch: int) -> str:
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


class TerminalView:
    """Call it with each output event (consumer thread); it redraws a few times a second."""

    def __init__(self, title: str):
        self.title = title
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.recent: deque[Text] = deque(maxlen=8)
        self.last: NoteVerdict | None = None
        self.status = "waiting for the first note"
        self.correction: Text | None = None
        self.phrase: Text | None = None  # how the last phrase was shaped (expression)
        self.live = Live(self.render(), refresh_per_second=8, transient=False)

    def __enter__(self) -> TerminalView:
        self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.live.update(self.render())
        self.live.__exit__(*exc)

    def __call__(self, ev: OutputEvent) -> None:
        with self.lock:
            if isinstance(ev, NoteVerdict):
                self.last = ev
                self.counts[ev.verdict] += 1
                timing = f" {ev.timing_ms:+.0f} ms" if ev.timing_ms is not None else ""
                finger = ev.printed_finger or ev.suggested_finger
                finger = f" finger {finger}" if finger else ""
                self.recent.appendleft(
                    Text.assemble(
                        (f"{note_name(ev.pitch):4s} {ev.verdict:11s}", COLOURS[ev.verdict]),
                        f" m{ev.position.measure}{timing}{finger}",  # a printed finger is the score's text
                    )
                )
            elif isinstance(ev, Missed):
                word, colour = ("missed", "magenta") if ev.sure else ("not heard", "dim")
                self.counts[word] += 1
                self.recent.appendleft(
                    Text.assemble((f"{note_name(ev.pitch):4s} {word:11s}", colour), f" m{ev.measure}")
                )
            elif isinstance(ev, Revised):
                self.counts["correct"] -= 1
                self.counts["extra"] += 1
                self.recent.appendleft(
                    Text.assemble((f"{note_name(ev.pitch):4s} extra      ", COLOURS["extra"]), " (the earlier press)")
                )
            elif isinstance(ev, Jump):
                self.recent.appendleft(Text(f"jump {ev.kind} to measure {ev.to.measure}", "cyan"))
            elif isinstance(ev, FingeringCorrection):
                self.counts["corrections"] += 1
                played, told = ev.played, ev.suggested
                hand = f" ({played.hand} hand, not {told.hand})" if played.hand != told.hand else ""
                ahead = " ".join(str(r.finger) for r in ev.replanned[:5])
                self.correction = Text.assemble(
                    (f"{note_name(ev.pitch)} finger {played.finger} for {told.finger}{hand}", "bold dark_orange"),
                    f"  then {ahead}" if ahead else "",
                )
            elif isinstance(ev, Expression):
                self.phrase = Text(ev.text)
            elif isinstance(ev, Status):
                self.status = f"{ev.state} {ev.detail}".strip()
        self.live.update(self.render())

    def render(self) -> Group:
        # the title and the status come from outside (a score, an OSC sender): plain Text,
        # never markup, where a `[/]` would stop the view
        t = Table(title=Text(f"pianobridge · {self.title}", style="table.title"), show_header=False, expand=False)
        last = self.last
        if last is not None:
            p = last.position
            t.add_row("position", f"measure {p.measure}, beat {p.beat:g}")
            t.add_row("tempo", f"{last.tempo_bpm:.0f} bpm")
            t.add_row("confidence", f"{p.confidence:.2f}")
        c = self.counts
        unheard = f" · {c['not heard']} not heard" if c["not heard"] else ""
        t.add_row(
            "notes",
            f"{c['correct']} correct · {c['wrong_pitch']} wrong · {c['extra']} extra · {c['missed']} missed{unheard}",
        )
        if self.correction is not None:
            t.add_row("fingering", self.correction)
        if self.phrase is not None:
            t.add_row("last phrase", self.phrase)
        t.add_row("status", Text(self.status))
        return Group(t, Text("\n").join(self.recent) if self.recent else Text(" "))
