"""Audio blocks in, the engine's input events out, causally and interleaved with the engine.

``detect`` is the one path from samples to events for files and live input: blocks go
through the streaming spectrogram and the network, and each frame's decision is taken with
the pitches the engine expects at that moment, so the events that came before it have
been followed already.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from bridge.audio.detector import Expected, NoteDetector
from bridge.audio.features import Spectrogram
from bridge.events import Missed, NoteOff, NoteOn, NoteVerdict, OutputEvent

BLOCK = 4096  # samples a file is cut into (186 ms): any size gives the same events
# A note reported missed whose key's onset estimate reached HEARD_BAR within HEARD_WITHIN_S
# of its due time was most likely played and not caught (on the detector's held-out pieces
# this keeps 1 in 4 false "missed" and 2 in 3 true ones in del10, docs/audio.md); the
# press that reports it (and its onset's rise, 50 ms) is left out
HEARD_BAR, HEARD_WITHIN_S, PRESS_S = 0.05, 0.15, 0.05


def detect(
    blocks: Iterable[np.ndarray],
    detector: NoteDetector,
    expected: Callable[[], Expected] = set,
    spectrogram: Spectrogram | None = None,
    finish: bool = True,
) -> Iterator[NoteOn | NoteOff]:
    """Note events from mono blocks at SR, in time order. ``expected`` is asked before
    each frame's decision; ``finish`` releases the keys still sounding at the end."""
    spec = spectrogram or Spectrogram()
    for block in blocks:
        detector.push(spec.push(block))
        while detector.ready():
            yield from detector.decide(expected())
    if finish:
        yield from detector.flush()


def blocks_of(samples: np.ndarray, size: int = BLOCK) -> Iterator[np.ndarray]:
    """A signal as consecutive blocks (as a device would deliver it)."""
    for s in range(0, len(samples), size):
        yield samples[s : s + size]


class FileDetection:
    """An audio file as the engine's input: read (UserError for a bad file or one that is
    not a piano), then detected frame by frame as the engine follows."""

    def __init__(self, path: str, network_path: str | None = None):
        from bridge.audio.detector import MODEL, Gate, Network
        from bridge.audio.files import read_audio
        from bridge.audio.instrument import require_piano

        self.samples, self.warnings = read_audio(path)
        require_piano(self.samples, Path(path).name)
        self.detector = NoteDetector(Network(network_path or MODEL), gate=Gate())
        self.notes = 0

    def events(self, expected: Callable[[], Expected]) -> Iterator[NoteOn | NoteOff]:
        for ev in detect([self.samples], self.detector, expected):
            self.notes += isinstance(ev, NoteOn)
            yield ev

    def stamp(self, ev: OutputEvent) -> None:
        stamp(ev, self.detector)


def stamp(ev: OutputEvent, detector: NoteDetector) -> None:
    """Put on an output event what only the audio knows: on a verdict when the detector
    decided on its note (``detected_t``), on a missed note whether it was heard."""
    if isinstance(ev, NoteVerdict):
        ev.detected_t = detector.decided.pop((ev.t, ev.pitch), None)
    elif isinstance(ev, Missed):
        judge_missed(ev, detector)


def judge_missed(ev: Missed, detector: NoteDetector, t0: float = 0.0) -> None:
    """Make a missed note unsure (``sure`` False) where it may have been played unheard.
    ``t0``: the detector's audio start on the event's clock."""
    if ev.due_t is None:
        return
    lo, hi = ev.due_t - HEARD_WITHIN_S - t0, min(ev.due_t + HEARD_WITHIN_S, ev.t - PRESS_S) - t0
    peak = detector.onset_peak(ev.pitch, lo, hi)
    ev.sure = peak is None or peak < HEARD_BAR
