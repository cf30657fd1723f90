"""OSC in: control commands and teacher annotations, as input events.

    PREFIX/control/start | stop | reset          (no arguments)
    PREFIX/control/jump   i:measure [i:pass]
    PREFIX/control/load   s:path
    PREFIX/annotate       s:author s:text [i:measure] [s:note_id]

Anything else, or the right address with the wrong arguments, or a datagram that is not
OSC, becomes a ``Status("osc_ignored", why)``: logged, relayed, and otherwise ignored.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_packet import OscPacket, ParseError

from bridge.errors import UserError
from bridge.events import Annotation, Command, Event, Status

# address suffix -> (event maker, the argument types it takes, how many are required)
Spec = tuple[Callable[..., Event], tuple[type, ...], int]


def _specs() -> dict[str, Spec]:
    def cmd(name: str) -> Callable[..., Event]:
        return lambda t, *a: Command(t, name)

    return {
        "/control/start": (cmd("start"), (), 0),
        "/control/stop": (cmd("stop"), (), 0),
        "/control/reset": (cmd("reset"), (), 0),
        "/control/jump": (lambda t, m, p=1: Command(t, "jump", measure=m, pass_no=p), (int, int), 1),
        "/control/load": (lambda t, path: Command(t, "load", path=path), (str,), 1),
        "/annotate": (
            lambda t, author, text, m=0, nid="": Annotation(t, author, text, m, nid),
            (str, str, int, str),
            2,
        ),
    }


SPECS = _specs()


def to_input(address: str, args: list, t: float, prefix: str) -> Event:
    """One OSC message as an input event (or an osc_ignored status saying why not)."""
    p = prefix.rstrip("/")
    spec = SPECS.get(address[len(p) :]) if address.startswith(p + "/") else None
    if spec is None:
        return Status(t, "osc_ignored", f"unknown address {address[:80]}")
    make, types, required = spec
    ok = required <= len(args) <= len(types) and all(type(a) is want for a, want in zip(args, types))
    if not ok:
        want = " ".join(x.__name__ for x in types) or "no arguments"
        return Status(t, "osc_ignored", f"{address}: expected {want}, got {[type(a).__name__ for a in args]}"[:200])
    return make(t, *args)


class OscReceiver:
    """Listens on a UDP port and submits input events from its own thread."""

    def __init__(self, host: str, port: int, submit: Callable[[Event], None], clock: Callable[[], float], prefix: str):
        self.submit, self.clock, self.prefix = submit, clock, prefix
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind((host, port))
        except OSError as e:
            raise UserError(f"cannot listen for OSC on {host}:{port}: {e.strerror}") from None
        self.sock.settimeout(0.2)
        self.address = self.sock.getsockname()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="osc-in", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                data, _ = self.sock.recvfrom(65536)
            except (TimeoutError, OSError):
                continue
            t = self.clock()
            try:
                packet = OscPacket(data)
            except (ParseError, ValueError, IndexError, TypeError, OverflowError):
                self.submit(Status(t, "osc_ignored", f"not an OSC packet ({len(data)} bytes)"))
                continue
            for timed in packet.messages:
                msg = timed.message
                if isinstance(msg, OscBundle):  # OscPacket flattens bundles; be safe anyway
                    continue
                self.submit(to_input(msg.address, list(msg.params), t, self.prefix))

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=2.0)
        self.sock.close()
