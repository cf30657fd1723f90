"""Send OSC messages over UDP to several targets without ever blocking the caller.

A target that is down or unreachable costs a dropped datagram, counted, never an
exception or a stall: the socket is non-blocking and errors are swallowed per target.
"""

from __future__ import annotations

import socket

from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

from bridge.errors import UserError
from bridge.osc.messages import Message

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


class OscSender:
    """UDP sender to many targets; ``bundle=True`` groups one event's messages."""

    def __init__(self, targets: list[tuple[str, int]], bundle: bool = False):
        self.targets = list(targets)
        self.bundle = bundle
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sent = 0
        self.dropped = 0

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
            try:
                self.sock.sendto(datagram, target)
                self.sent += 1
            except OSError:  # full buffer, refused, unreachable: drop, never stall
                self.dropped += 1

    def close(self) -> None:
        self.sock.close()
