"""Send OSC messages over UDP to several targets without ever blocking the caller.

A target that is down or unreachable costs a dropped datagram, counted, never an
exception or a stall: the socket is non-blocking and errors are swallowed per target.
Targets in a client's own dialect (``ardour@HOST:PORT``: bridge/adapters/) are handed
the events themselves and do their own sending, off the caller's thread.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from typing import Protocol

from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

from bridge.errors import UserError
from bridge.events import OutputEvent
from bridge.osc.messages import DEFAULT_PREFIX, Message, to_messages

TYPE_TAGS = {int: "i", float: "f", str: "s"}


def parse_target(text: str) -> tuple[str, int]:
    """'HOST:PORT' (or ':PORT' for localhost) to a resolved (address, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"OSC target must be HOST:PORT, got {text!r}")
    host = host.strip("[]") or "127.0.0.1"
    try:
        info = socket.getaddrinfo(host, int(port), socket.AF_INET, socket.SOCK_DGRAM)
    except socket.gaierror as e:
        raise UserError(f"cannot resolve OSC target host {host!r}: {e.strerror}") from None
    return info[0][4][0], int(port)


def encode(message: Message) -> OscMessageBuilder:
    address, args = message
    b = OscMessageBuilder(address=address)
    for a in args:
        b.add_arg(a, TYPE_TAGS[type(a)])  # bool or None here is a bug: KeyError
    return b


class EventTarget(Protocol):
    """A target that takes the events themselves (a DAW adapter)."""

    label: str
    notice: Callable[[str, str], None]

    def handle(self, ev: OutputEvent) -> None: ...  # never blocks
    def close(self) -> None: ...
    def summary(self) -> str: ...


class OscSender:
    """UDP sender to many targets; ``bundle=True`` groups one event's messages (native
    targets); ``adapters`` get every event through ``send_event``."""

    def __init__(self, targets: list[tuple[str, int]], bundle: bool = False, adapters: Sequence[EventTarget] = ()):
        self.targets = list(targets)
        self.bundle = bundle
        self.adapters = list(adapters)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sent = 0
        self.dropped = 0
        self.per_target = {t: [0, 0] for t in self.targets}  # target -> [sent, dropped]

    def set_notice(self, fn: Callable[[str, str], None]) -> None:
        """Where the adapters say what goes wrong (the live bridge's notices; stderr by default)."""
        for a in self.adapters:
            a.notice = fn

    def send_event(self, ev: OutputEvent, prefix: str = DEFAULT_PREFIX) -> None:
        """One output event to every target: native messages first, then each adapter."""
        if self.targets:
            self.send(to_messages(ev, prefix))
        for a in self.adapters:
            a.handle(ev)

    def send(self, messages: list[Message]) -> None:
        if not messages or not self.targets:
            return
        if self.bundle:
            bb = OscBundleBuilder(IMMEDIATELY)
            for m in messages:
                bb.add_content(encode(m).build())
            self._send(bb.build().dgram)
        else:
            for m in messages:  # each leaves as soon as it is built: the first one matters most
                self._send(encode(m).build().dgram)

    def _send(self, datagram: bytes) -> None:
        for target in self.targets:
            counts = self.per_target[target]
            try:
                self.sock.sendto(datagram, target)
                self.sent += 1
                counts[0] += 1
            except OSError:  # full buffer, refused, unreachable: drop, never stall
                self.dropped += 1
                counts[1] += 1

    def summary(self) -> list[str]:
        """One line per target: datagrams sent and dropped, marks placed."""
        lines = [f"{h}:{p}: {s} OSC datagrams sent, {d} dropped" for (h, p), (s, d) in self.per_target.items()]
        return lines + [a.summary() for a in self.adapters]

    def close(self) -> None:
        """Let every adapter finish (each waits, boundedly, for its client), then close."""
        for a in self.adapters:
            a.close()
        self.sock.close()
