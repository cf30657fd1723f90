"""MIDI ports (mido + python-rtmidi): list, find by name, read with hot-plug.

Messages become input events stamped on arrival with the clock the caller passes in
(one monotonic clock for every input). A keyboard that vanishes leaves its port "open"
and silent, so a watcher polls the port list, reports the loss, and reopens the port when
it comes back.
"""

from __future__ import annotations

import os
import threading
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
    ):
        if (name is None) == (virtual is None):
            raise ValueError("give a port name or a virtual port name")
        import rtmidi

        self.backend, self.sink, self.clock = backend, sink, clock
        self.wanted, self.virtual = name, virtual
        self.poll_s, self.read_every_s = poll_s, read_every_s
        api = getattr(rtmidi, f"API_{backend.api}", rtmidi.API_UNSPECIFIED)
        self.rt = rtmidi.MidiIn(rtapi=api, name="pianobridge", queue_size_limit=8192)
        self.rt.ignore_types(sysex=True, timing=True, active_sense=True)
        self.probe = rtmidi.MidiIn(rtapi=api, name="pianobridge-watch")  # lists ports for the watcher
        self.port_name: str | None = None
        self.connected = False
        self.garbage = 0  # messages that did not parse
        self.stopped = threading.Event()
        self.threads: list[threading.Thread] = []

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
        self.sink(Status(self.clock(), "device_connected", self.port_name))

    def _read(self) -> None:
        get, wait = self.rt.get_message, self.stopped.wait
        while not self.stopped.is_set():
            item = get()
            if item is None:
                wait(self.read_every_s)
                continue
            t = self.clock()  # stamped as soon as it is read, before parsing
            try:
                msg = mido.Message.from_bytes(item[0])
            except (ValueError, TypeError, IndexError):
                self.garbage += 1
                continue
            ev = to_event(msg, t)
            if ev is not None:
                self.sink(ev)

    def _watch(self) -> None:
        while not self.stopped.wait(self.poll_s):
            try:
                names = self.probe.get_ports()
            except Exception:  # the MIDI system itself hiccuped: try again next poll
                continue
            if self.connected and self.port_name not in names:
                self.rt.close_port()
                self.connected = False
                self.sink(Status(self.clock(), "device_lost", self.port_name))
            elif not self.connected:
                try:  # it may come back under a slightly different name
                    self.port_name = find_port(self.wanted, names)
                    self._open()
                except Exception:
                    pass  # not there or not ready yet: next poll

    def close(self) -> None:
        self.stopped.set()
        for th in self.threads:
            th.join(timeout=2.0)
        for rt in (self.rt, self.probe):
            try:
                rt.close_port()
                rt.delete()
            except Exception:
                pass


def list_ports(backend: mido.Backend) -> tuple[list[str], list[str]]:
    return backend.get_input_names(), backend.get_output_names()


def describe(backend: mido.Backend) -> str:
    return f"{backend.name} ({backend.api})" if backend.api else backend.name
