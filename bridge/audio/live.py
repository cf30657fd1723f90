"""Live audio in: a sound device (sounddevice/PortAudio; through JACK on Linux) or a
recording played in real time, detected on a thread of its own and submitted to the
bridge as key presses and releases stamped on the bridge's clock.

A source delivers mono blocks with the bridge-clock time of their first sample; the audio
timeline starts at the first block, and every later time counts samples from there (a
device's sample clock is steadier than the time a callback runs). A device that stops
delivering is reported (``device_lost``), its sounding keys released, and reopened every
second until it is back (``device_connected``); the bridge keeps running throughout. A
sound that is no piano (``instrument.InstrumentWatch``) is said once per device session
(``not_piano``), and followed all the same.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace

import numpy as np

from bridge.audio.detector import Expected, NoteDetector
from bridge.audio.features import SR, Spectrogram
from bridge.audio.instrument import REFUSE_LOGODDS, InstrumentCheck, InstrumentWatch, not_piano
from bridge.audio.stream import detect, judge_missed
from bridge.errors import UserError
from bridge.events import Event, Missed, NoteOn, NoteVerdict, OutputEvent, Status

Deliver = Callable[[np.ndarray, float], None]


def input_devices() -> list[str]:
    """Names of the sound inputs PortAudio sees (with their host API)."""
    import sounddevice as sd

    apis = sd.query_hostapis()
    return [
        f"{d['name']} ({apis[d['hostapi']]['name']}, {d['max_input_channels']} in)"
        for d in sd.query_devices()
        if d["max_input_channels"] > 0
    ]


def find_device(name: str) -> int:
    """The index of the input device named ``name`` (exactly, or a unique part of it)."""
    import sounddevice as sd

    try:
        devices = [(i, d["name"]) for i, d in enumerate(sd.query_devices()) if d["max_input_channels"] > 0]
    except sd.PortAudioError as e:
        raise UserError(f"no sound system: {e}") from None
    exact = [i for i, n in devices if n == name]
    if exact:
        return exact[0]
    part = [(i, n) for i, n in devices if name.lower() in n.lower()]
    if len(part) == 1:
        return part[0][0]
    known = ", ".join(n for _, n in devices) or "none (`pianobridge ports` lists them)"
    if part:
        raise UserError(f"audio input {name!r} is ambiguous: {', '.join(n for _, n in part)}")
    raise UserError(f"no audio input named {name!r} (inputs: {known})")


class DeviceSource:
    """A PortAudio input device, mixed to mono at its own rate."""

    def __init__(self, name: str, block: int = 256):
        self.name, self.block = name, block
        self.index = find_device(name)  # a clear error before anything starts
        self.stream = None
        self._lost: list = []  # streams never closed (see close, detach), kept so their callbacks stay alive
        self.rate = 0

    def open(self, deliver: Deliver, clock: Callable[[], float]) -> None:
        import sounddevice as sd

        self.index = find_device(self.name)
        info = sd.query_devices(self.index)
        self.rate = int(info["default_samplerate"])

        def callback(indata, frames, _time, _status):
            if self.stream is stream:  # not once closed (a lost stream is never closed)
                deliver(indata.mean(axis=1).copy(), clock() - frames / self.rate)

        stream = self.stream = sd.InputStream(
            device=self.index,
            channels=min(2, int(info["max_input_channels"])),
            samplerate=self.rate,
            blocksize=self.block,
            dtype="float32",
            callback=callback,
        )
        self.stream.start()

    def alive(self) -> bool:
        return self.stream is not None and self.stream.active

    def close(self) -> None:
        stream = self.stream
        if stream is None or not stream.active:
            # gone under us (unplugged, or its JACK server stopped): PortAudio's JACK host would
            # wait forever in Pa_CloseStream for that server; left to the process's end
            self.detach()
            return
        self.stream = None
        try:
            stream.close()
        except Exception:  # noqa: BLE001 - a device going away as it closes; it is gone either way
            pass

    def detach(self) -> None:
        """Stop delivering and leave the stream to the process's end, for a process about to
        leave by ``os._exit``: closing it can abort the process (PortAudio's JACK host asserts
        when a busy server answers late) before its session log is closed."""
        if self.stream is not None:
            self._lost.append(self.stream)
        self.stream = None


class PlayedSource:
    """A recording played in real time, block by block, as a device would deliver it
    (`demo --audio`, tests)."""

    def __init__(self, samples: np.ndarray, block: int = 256, name: str = "recording"):
        self.samples, self.block, self.name = samples, block, name
        self.rate = SR
        self.done = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self, deliver: Deliver, clock: Callable[[], float]) -> None:
        def play():
            start = clock()
            for s in range(0, len(self.samples), self.block):
                due = start + (s + self.block) / SR  # a block is there once its last sample is
                wait = due - clock()
                if wait > 0 and self._stop.wait(wait):
                    return
                deliver(self.samples[s : s + self.block], start + s / SR)
            self.done.set()

        self._thread = threading.Thread(target=play, name="audio-player", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return True  # it ends, it does not vanish

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


class AudioInput:
    """Detect notes from a source and ``submit`` them; ``stamp`` puts the decision time
    on the verdicts of those notes."""

    QUEUE_BLOCKS = 2000  # about 10 s of device blocks; beyond that blocks are dropped and counted

    def __init__(
        self,
        source,
        submit: Callable[[Event], None],
        clock: Callable[[], float],
        expected: Callable[[], Expected],
        make_detector: Callable[[], NoteDetector],
    ):
        self.source, self.submit, self.clock, self.expected = source, submit, clock, expected
        self.make_detector = make_detector
        self.check = InstrumentCheck()  # a broken file is a clear error before anything starts
        self.blocks: deque = deque()
        self.dropped = 0
        self.cond = threading.Condition()
        self.decided: dict[tuple[float, int], float] = {}
        self.notes = 0
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self._session = 0  # counts device sessions: a reopened device starts a fresh detector
        self.t0: float | None = None  # bridge time of the session's first sample
        self.detector: NoteDetector | None = None  # the session's

    def _deliver(self, block: np.ndarray, t: float) -> None:
        with self.cond:
            if len(self.blocks) >= self.QUEUE_BLOCKS:
                self.dropped += 1
                return
            self.blocks.append((block, t))
            self.cond.notify()

    def _next_blocks(self, session: int):
        """Blocks of one device session, resampled to SR; ends when the session does."""
        import soxr

        resampler = None
        watch = InstrumentWatch(self.check, self.notes)
        while not self._closing.is_set():
            with self.cond:
                while not self.blocks and not self._closing.is_set() and self._session == session:
                    self.cond.wait(0.1)
                if self._session != session or (self._closing.is_set() and not self.blocks):
                    return
                block, t = self.blocks.popleft()
            if self.t0 is None:
                self.t0 = t
            if self.source.rate != SR:
                resampler = resampler or soxr.ResampleStream(self.source.rate, SR, 1, dtype="float32")
                block = resampler.resample_chunk(block)
            odds = watch.push(block, self.notes)
            if odds is not None and odds < REFUSE_LOGODDS:
                self.submit(
                    Status(round(self.clock(), 4), "not_piano", f"audio: {self.source.name}: {not_piano(odds)}")
                )
            yield block

    def _work(self) -> None:
        while not self._closing.is_set():
            session = self._session
            detector = self.detector = self.make_detector()
            self.t0 = None
            for ev in detect(self._next_blocks(session), detector, self._expected, Spectrogram()):
                t0 = self.t0 or 0.0
                if isinstance(ev, NoteOn):
                    t = round(t0 + ev.t, 4)
                    self.decided[(t, ev.pitch)] = round(t0 + detector.decided.pop((ev.t, ev.pitch)), 4)
                    self.notes += 1
                    self.submit(replace(ev, t=t))
                else:
                    self.submit(replace(ev, t=round(t0 + ev.t, 4)))

    def _expected(self) -> Expected:
        """What the follower expects, its due times moved from the bridge's clock to the audio's."""
        expected, t0 = self.expected(), self.t0
        if t0 is None or not isinstance(expected, Mapping):
            return expected
        return {p: due - t0 for p, due in expected.items()}

    def _watch(self) -> None:
        """Reopen a device that stopped delivering, and say so."""
        while not self._closing.wait(0.5):
            if self.source.alive():
                continue
            self.submit(Status(round(self.clock(), 4), "device_lost", f"audio: {self.source.name}"))
            with self.cond:
                self.blocks.clear()
                self._session += 1  # the detector releases what was sounding and starts afresh
                self.cond.notify_all()
            self.source.close()
            while not self._closing.wait(1.0):
                try:
                    self.source.open(self._deliver, self.clock)
                except Exception:  # noqa: BLE001 - still gone (UserError, PortAudioError): try again
                    continue
                self.submit(Status(round(self.clock(), 4), "device_connected", f"audio: {self.source.name}"))
                break

    def start(self) -> None:
        self.source.open(self._deliver, self.clock)
        for target, name in ((self._work, "audio-detector"), (self._watch, "audio-watch")):
            th = threading.Thread(target=target, name=name, daemon=True)
            th.start()
            self._threads.append(th)

    def stamp(self, ev: OutputEvent) -> None:
        """Put on an output event what only the audio knows: on a verdict the decision time
        of its note (when it came from this input), on a missed note whether it was heard."""
        if isinstance(ev, NoteVerdict):
            ev.detected_t = self.decided.pop((round(ev.t, 4), ev.pitch), None)
        elif isinstance(ev, Missed) and self.detector is not None and self.t0 is not None:
            judge_missed(ev, self.detector, self.t0)

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until the blocks delivered so far are detected."""
        end = time.monotonic() + timeout
        while self.blocks and time.monotonic() < end:
            time.sleep(0.01)

    def close(self) -> str:
        """Stop the source and the detector (keys still sounding are released); a line on
        what was heard."""
        self.source.close()
        self.drain()
        self._closing.set()
        with self.cond:
            self.cond.notify_all()
        for th in self._threads:
            th.join(5)
        dropped = f", {self.dropped} blocks dropped (detector too slow)" if self.dropped else ""
        return f"audio {self.source.name}: {self.notes} notes detected{dropped}"


def detector_factory(model: str | None = None) -> Callable[[], NoteDetector]:
    """Fresh detectors sharing one loaded network (UserError now if it will not load)."""
    from bridge.audio.detector import MODEL, Gate, Network

    net, gate = Network(model or MODEL), Gate()
    return lambda: NoteDetector(net, gate=gate)
