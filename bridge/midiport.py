"""MIDI ports (mido + python-rtmidi): list, find by name, read with hot-plug.

Messages become input events stamped on arrival with the clock the caller passes in
(one monotonic clock for every input). A keyboard that vanishes leaves its port "open"
and silent, so a watcher polls the port list, reports the loss, and reopens the port when
it comes back.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable

import mido

from bridge.errors import UserError
from bridge.events import Control, Event, InputEvent, NoteOff, NoteOn, Status
from bridge.native import quiet_stderr

# rtmidi APIs to try when MIDO_BACKEND does not name one: ALSA, then a running JACK server
APIS = ("LINUX_ALSA", "UNIX_JACK", "MACOSX_CORE", "WINDOWS_MM")


def open_backend() -> mido.Backend:
    """The first rtmidi API that can list ports here (MIDO_BACKEND wins if set)."""
    wanted = os.environ.get("MIDO_BACKEND")
    # without the sequencer device ALSA "works" but lists nothing, and its C library
    # prints errors: go straight to the next system
    apis = [a for a in APIS if a != "LINUX_ALSA" or os.path.exists("/dev/snd/seq")]
    names = [wanted] if wanted else [f"mido.backends.rtmidi/{api}" for api in apis]
    errors = []
    for name in names:
        try:
            with quiet_stderr():
                backend = mido.Backend(name, load=True)
                backend.get_input_names()
            return backend
        except Exception as e:  # rtmidi raises SystemError/RuntimeError per API
            errors.append(f"{name.rsplit('/', 1)[-1]}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    raise UserError("no MIDI system available (" + "; ".join(errors) + "); start a JACK server or set MIDO_BACKEND")


def find_port(wanted: str, available: list[str]) -> str:
    """Exact name first, then a unique case-insensitive substring."""
    if wanted in available:
        return wanted
    hits = [n for n in available if wanted.lower() in n.lower()]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        listing = ", ".join(available) or "none"
        raise UserError(f"no MIDI input matches {wanted!r} (inputs: {listing})")
    raise UserError(f"{wanted!r} matches several MIDI inputs: {', '.join(hits)}")


def to_event(msg: mido.Message, t: float) -> InputEvent | None:
    """A mido message as an engine input event; None for what the engine ignores."""
    if msg.type == "note_on":
        return NoteOn(t, msg.note, msg.velocity, msg.channel) if msg.velocity else NoteOff(t, msg.note, msg.channel)
    if msg.type == "note_off":
        return NoteOff(t, msg.note, msg.channel)
    if msg.type == "control_change":
        return Control(t, msg.control, msg.value, msg.channel)
    return None


def to_message(ev: InputEvent) -> mido.Message | None:
    """The MIDI message for an input event (what a keyboard would have sent)."""
    if isinstance(ev, NoteOn):
        return mido.Message("note_on", note=ev.pitch, velocity=ev.velocity, channel=ev.channel)
    if isinstance(ev, NoteOff):
        return mido.Message("note_off", note=ev.pitch, velocity=0, channel=ev.channel)
    if isinstance(ev, Control):
        return mido.Message("control_change", control=ev.control, value=ev.value, channel=ev.channel)
    return None


class MidiInput:
    """One MIDI input (a named device, or a virtual port other apps send to) feeding
    ``sink`` with input events and status events from a reader thread of its own.

    No Python runs in the MIDI system's thread: a Python callback there must take the
    GIL, and while another thread holds it, python-rtmidi's JACK callback is handed the
    previous message again instead of the new one (docs/benchmarks.md, latency). rtmidi
    queues messages in C++ instead, and the reader drains that queue every
    ``read_every_s`` (so arrival stamps are at most that late).

    A device that sends an unterminated SysEx (``F0 01`` and no F7) leaves rtmidi's parser
    swallowing every later message. Nothing of that is visible from here, so once a device
    has been quiet for ``standby_after_s`` a second, fresh parser is connected to it beside
    the first (one output feeding two inputs is safe; two outputs into one input are not:
    JACK drops whole periods when one of them is late). The next message settles it: if
    the first parser delivers it too, the spare is closed; if only the spare does within
    ``witness_s``, the first was stuck, the spare takes over, and a ``midi_sysex_dropped``
    status says so. A reconnect always starts a fresh parser. A virtual port has no device
    to connect a spare to; the apps that send to one do not send broken SysEx.
    """

    def __init__(
        self,
        backend: mido.Backend,
        sink: Callable[[Event], None],
        clock: Callable[[], float],
        name: str | None = None,
        virtual: str | None = None,
        poll_s: float = 0.25,
        read_every_s: float = 0.0005,
        standby_after_s: float = 1.0,
        witness_s: float = 0.03,
    ):
        if (name is None) == (virtual is None):
            raise ValueError("give a port name or a virtual port name")
        import rtmidi

        self.backend, self.sink, self.clock = backend, sink, clock
        self.wanted, self.virtual = name, virtual
        self.poll_s, self.read_every_s = poll_s, read_every_s
        self.standby_after_s, self.witness_s = standby_after_s, witness_s
        self.api = getattr(rtmidi, f"API_{backend.api}", rtmidi.API_UNSPECIFIED)
        self.rt = self._parser()
        self.probe = rtmidi.MidiIn(rtapi=self.api, name="pianobridge-watch")  # lists ports for the watcher
        self.standby = None  # the spare parser, while one is connected
        self.standby_since = 0.0
        self.retired: list = []  # parsers to close off the reader's thread
        self.abandoned: list = []  # clients of a MIDI system that went away: never closed
        self.system_down = False
        self.recent: deque[tuple[tuple[int, ...], float]] = deque(maxlen=64)  # (bytes, monotonic) from self.rt
        self.unconfirmed: deque[tuple[tuple[int, ...], float, float]] = deque()  # the spare's: (bytes, monotonic, t)
        self.port_name: str | None = None
        self.connected = False
        self.garbage = 0  # messages that did not parse
        self.last_heard = time.monotonic()
        self.lock = threading.Lock()  # the reader and the watcher both swap parsers
        self.stopped = threading.Event()
        self.threads: list[threading.Thread] = []

    def _parser(self):
        import rtmidi

        rt = rtmidi.MidiIn(rtapi=self.api, name="pianobridge", queue_size_limit=8192)
        rt.ignore_types(sysex=True, timing=True, active_sense=True)
        return rt

    def start(self) -> None:
        if self.virtual:
            try:
                self.rt.open_virtual_port(self.virtual)
            except Exception as e:
                raise UserError(f"cannot open virtual MIDI input {self.virtual!r}: {e}") from None
            self.port_name, self.connected = self.virtual, True
            self.sink(Status(self.clock(), "device_connected", f"virtual port {self.virtual}"))
        else:
            self.port_name = find_port(self.wanted, self.probe.get_ports())
            try:
                self._open()
            except Exception as e:
                raise UserError(f"cannot open MIDI input {self.port_name!r}: {e}") from None
            self.threads.append(threading.Thread(target=self._watch, name="midi-hotplug", daemon=True))
        self.threads.append(threading.Thread(target=self._read, name="midi-reader", daemon=True))
        for th in self.threads:
            th.start()

    def _open(self) -> None:
        self.rt.open_port(self.probe.get_ports().index(self.port_name))
        self.connected = True
        self.last_heard = time.monotonic()
        self.sink(Status(self.clock(), "device_connected", self.port_name))

    def _read(self) -> None:
        wait = self.stopped.wait
        while not self.stopped.is_set():
            with self.lock:
                item = self.rt.get_message() if self.rt is not None else None
                spare = self.standby.get_message() if self.standby is not None else None
                if item is not None:
                    self._heard(item[0])
                if spare is not None:
                    self.unconfirmed.append((tuple(spare[0]), time.monotonic(), self.clock()))
                if self.unconfirmed:
                    self._settle()
            if item is None and spare is None:
                wait(self.read_every_s)

    def _heard(self, data: list[int]) -> None:
        """A message from the parser in use: handed on at once (under ``self.lock``)."""
        now = time.monotonic()
        self.last_heard = now
        self.recent.append((tuple(data), now))  # also before a spare exists: it may have this one too
        self._take(data, self.clock())  # stamped as soon as it is read, before parsing

    def _settle(self) -> None:
        """Compare the spare's messages with what the parser in use delivered (under ``self.lock``)."""
        now = time.monotonic()
        while self.unconfirmed:
            data, arrived, t = self.unconfirmed[0]
            if any(d == data and abs(at - arrived) <= self.witness_s for d, at in self.recent):
                self._retire_standby()  # the parser in use heard it too: it is fine
                return
            if now - arrived <= self.witness_s:
                return  # the parser in use may still deliver it
            # it did not: it was stuck in a SysEx; the spare takes over with what it heard
            stuck, self.rt, self.standby = self.rt, self.standby, None
            self.retired.append(stuck)
            self.sink(Status(t, "midi_sysex_dropped", "the MIDI input was stuck in an unterminated SysEx; reset"))
            waiting, self.unconfirmed = list(self.unconfirmed), deque()
            self.recent.clear()
            for data, _, t in waiting:
                self.last_heard = now
                self._take(list(data), t)
            return

    def _retire_standby(self) -> None:
        if self.standby is not None:
            self.retired.append(self.standby)
        self.standby = None
        self.unconfirmed.clear()

    def _take(self, data: list[int], t: float) -> None:
        try:
            msg = mido.Message.from_bytes(data)
        except (ValueError, TypeError, IndexError):
            self.garbage += 1
            return
        ev = to_event(msg, t)
        if ev is not None:
            self.sink(ev)

    def _watch(self) -> None:
        while not self.stopped.wait(self.poll_s):
            if self.system_down:
                self._restart_system()
                continue
            self._close_retired()
            try:
                names = self.probe.get_ports()
            except Exception:  # the MIDI system itself hiccuped: try again next poll
                continue
            if self.connected and self.port_name not in names:
                self._lost()
            elif not self.connected:
                try:  # it may come back under a slightly different name
                    self.port_name = find_port(self.wanted, names)
                    with self.lock:
                        self._open()
                except Exception:
                    pass  # not there or not ready yet: next poll
            else:
                self._keep_standby()

    def _lost(self) -> None:
        try:
            fresh = self._parser()  # whatever the old parser was in the middle of is gone
        except Exception:  # no MIDI system any more (a JACK server stopped)
            fresh = None
        with self.lock:
            self._drain()
            self._retire_standby()
            self.retired.append(self.rt)
            self.rt = fresh
            if fresh is None:
                self._abandon()
        self.connected = False
        why = "" if fresh else " (the MIDI system stopped; waiting for it to come back)"
        self.sink(Status(self.clock(), "device_lost", f"{self.port_name}{why}"))

    def _abandon(self) -> None:
        """Keep the clients of a MIDI system that went away, unclosed (under ``self.lock``):
        closing a client of a dead JACK server crashes libjack, freeing one closes it."""
        self.system_down = True
        self.abandoned += [*self.retired, self.probe]
        self.retired = []

    def _restart_system(self) -> None:
        import rtmidi

        try:
            probe = rtmidi.MidiIn(rtapi=self.api, name="pianobridge-watch")
            rt = self._parser()
        except Exception:
            return  # still gone
        with self.lock:
            self.probe, self.rt, self.system_down = probe, rt, False

    def _keep_standby(self) -> None:
        """A spare parser beside a quiet device (renewed every few seconds of quiet, in
        case the spare itself took in the start of a SysEx)."""
        now = time.monotonic()
        quiet = now - self.last_heard >= self.standby_after_s
        stale = self.standby is not None and now - self.standby_since > 5 * self.standby_after_s
        if not quiet or (self.standby is not None and not stale):
            return
        try:
            spare = self._parser()
            spare.open_port(spare.get_ports().index(self.port_name))  # its own listing: the order may differ
        except Exception:
            return  # the port is going away: the next poll sees it
        with self.lock:
            if now - self.last_heard < self.standby_after_s:  # a message came meanwhile: not needed
                self.retired.append(spare)
                return
            self._retire_standby()
            self.standby, self.standby_since = spare, now

    def _close_retired(self) -> None:
        with self.lock:
            if self.system_down:
                return
            done, self.retired = self.retired, []
        for rt in done:
            try:
                rt.close_port()
                rt.delete()
            except Exception:
                pass

    def _drain(self) -> None:
        """Take what the MIDI system queued but the reader has not read yet (under ``self.lock``)."""
        while self.rt is not None and (item := self.rt.get_message()) is not None:
            self._take(item[0], self.clock())

    def close(self) -> None:
        """Stop reading; every message that arrived before this is handed on first. The
        MIDI system's clients stay open until `release`, so that the caller can close its
        session log before anything that could take the process down with a dead server."""
        self.stopped.set()
        for th in self.threads:
            th.join(timeout=2.0)
        with self.lock:
            try:
                self._drain()
            except Exception:
                pass

    def release(self) -> None:
        """Close the MIDI system's clients (after `close`)."""
        with self.lock:
            self._retire_standby()
            self.retired += [x for x in (self.rt, self.probe) if x is not None]
        self._close_retired()


def list_ports(backend: mido.Backend) -> tuple[list[str], list[str]]:
    return backend.get_input_names(), backend.get_output_names()


def describe(backend: mido.Backend) -> str:
    return f"{backend.name} ({backend.api})" if backend.api else backend.name
