"""OSC in: control commands and teacher annotations, as input events.

    PREFIX/control/start | stop | reset          (no arguments)
    PREFIX/control/jump   i:measure [i:pass]
    PREFIX/control/load   s:path                 (a score in the score library)
    PREFIX/control/playing s:auto|both|right|left (the hands the player plays now)
    PREFIX/annotate       s:author s:text [i:measure] [s:note_id]
    PREFIX/auth           s:token                (only when the bridge listens beyond loopback)

A message with a problem the sender can fix (unknown address, wrong arguments, no token
yet, too fast) is answered to that sender alone with ``PREFIX/reply s:"error" s:why``
(a load or an auth that worked with ``s:"ok"``); bytes that
are not OSC get no answer. Neither is queued: the receiver counts what it ignored and
reports it once a second (``osc_ignored``), so a flood of junk costs the note path nothing
but the time to look at each datagram.
"""

from __future__ import annotations

import hmac
import logging
import socket
import threading
import time
from collections.abc import Callable

from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_packet import OscPacket, ParseError

from bridge.errors import UserError
from bridge.events import Annotation, Command, Event, Status
from bridge.score import PLAYING

Reply = Callable[[str, str], None]  # (kind "ok" | "error", text) back to the sender alone

# address suffix -> (event maker, the argument types it takes, how many are required)
Spec = tuple[Callable[..., Event], tuple[type, ...], int]


def _specs() -> dict[str, Spec]:
    def playing(t: float, hands: str) -> Event:
        if hands not in PLAYING:  # said to the sender, who can fix it
            return Status(
                t, "osc_ignored", f"/control/playing: expected one of {', '.join(PLAYING)}, got {hands[:20]!r}"
            )
        return Command(t, "playing", playing=hands)

    def cmd(name: str) -> Callable[..., Event]:
        return lambda t, *a: Command(t, name)

    return {
        "/control/start": (cmd("start"), (), 0),
        "/control/stop": (cmd("stop"), (), 0),
        "/control/reset": (cmd("reset"), (), 0),
        "/control/jump": (lambda t, m, p=1: Command(t, "jump", measure=m, pass_no=p), (int, int), 1),
        "/control/load": (lambda t, path: Command(t, "load", path=path), (str,), 1),
        "/control/playing": (playing, (str,), 1),
        "/annotate": (
            lambda t, author, text, m=0, nid="": Annotation(t, author, text, m, nid),
            (str, str, int, str),
            2,
        ),
    }


SPECS = _specs()
MAX_TEXT = 1000  # characters in an annotation or author name


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
        return Status(
            t, "osc_ignored", f"{address[:80]}: expected {want}, got {[type(a).__name__ for a in args]}"[:200]
        )
    if any(isinstance(a, str) and len(a) > MAX_TEXT for a in args):
        return Status(t, "osc_ignored", f"{address[:80]}: text longer than {MAX_TEXT} characters")
    return make(t, *args)


class _Bucket:
    """Token bucket: ``rate`` messages a second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst, self.level, self.t = rate, burst, burst, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.level = min(self.burst, self.level + (now - self.t) * self.rate)
        self.t = now
        if self.level >= 1:
            self.level -= 1
            return True
        return False


class OscReceiver:
    """Listens on a UDP port and hands input events to ``submit(event, reply)`` from its
    own thread. ``token``: when set, a sender must first send ``PREFIX/auth TOKEN``.
    ``notice(state, detail)`` hears the once-a-second count of what was ignored."""

    REPORT_EVERY_S = 1.0
    MAX_SENDERS = 256  # rate buckets and authorised senders kept

    def __init__(
        self,
        host: str,
        port: int,
        submit: Callable[[Event, Reply], None],
        clock: Callable[[], float],
        prefix: str,
        notice: Callable[[str, str], None] | None = None,
        token: str | None = None,
        rate: float = 100.0,
        burst: float = 200.0,
    ):
        self.submit, self.clock, self.prefix, self.notice = submit, clock, prefix.rstrip("/"), notice
        self.token, self.rate, self.burst = token, rate, burst
        # python-osc logs a warning on the root logger for every odd type tag: without a
        # handler of our own, logging would print each one on stderr
        root = logging.getLogger()
        if not root.handlers:
            root.addHandler(logging.NullHandler())
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind((host, port))
        except OSError as e:
            raise UserError(f"cannot listen for OSC on {host}:{port}: {e.strerror}") from None
        self.sock.settimeout(0.2)
        self.address = self.sock.getsockname()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="osc-in", daemon=True)
        self.buckets: dict[tuple, _Bucket] = {}
        self.reply_buckets: dict[tuple, _Bucket] = {}
        self.authorised: set[tuple] = set()
        self.ignored = 0
        self.ignored_total = 0
        self.last_why = ""

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        last_report = time.monotonic()
        while not self.stopped.is_set():
            try:
                data, sender = self.sock.recvfrom(65536)
            except (TimeoutError, OSError):
                data = None
            if data is not None:
                self._datagram(data, sender)
            now = time.monotonic()
            if now - last_report >= self.REPORT_EVERY_S:
                self._report(now - last_report)
                last_report = now
        self._report(time.monotonic() - last_report)

    def _datagram(self, data: bytes, sender: tuple) -> None:
        if data[:1] not in (b"/", b"#"):  # cheapest test first: not OSC at all
            self._ignore(f"not an OSC packet ({len(data)} bytes)")
            return
        if not self._bucket(self.buckets, sender, self.rate, self.burst).take():
            self._ignore("rate limit")
            return
        t = self.clock()
        try:
            messages = [timed.message for timed in OscPacket(data).messages]
        except (ParseError, ValueError, IndexError, TypeError, OverflowError, UnicodeDecodeError):
            self._ignore(f"not an OSC packet ({len(data)} bytes)")
            return
        for msg in messages:
            if isinstance(msg, OscBundle):  # OscPacket flattens bundles; one left over is malformed
                self._ignore("malformed bundle")
                continue
            self._message(msg.address, list(msg.params), t, sender)

    def _message(self, address: str, args: list, t: float, sender: tuple) -> None:
        def reply(kind: str, text: str) -> None:
            self._reply(sender, kind, text)

        if self.token is not None:
            if address == f"{self.prefix}/auth":
                ok = len(args) == 1 and isinstance(args[0], str) and hmac.compare_digest(args[0], self.token)
                if ok:
                    if len(self.authorised) >= self.MAX_SENDERS:
                        self.authorised.clear()
                    self.authorised.add(sender)
                    reply("ok", "authorised")
                else:
                    self._ignore("wrong token")
                    reply("error", "wrong token")
                return
            if sender not in self.authorised:
                self._ignore("not authorised")
                reply("error", f"not authorised: send {self.prefix}/auth TOKEN first")
                return
        ev = to_input(address, args, t, self.prefix)
        if isinstance(ev, Status):
            self._ignore(ev.detail)
            reply("error", ev.detail)
            return
        self.submit(ev, reply)

    def _bucket(self, table: dict[tuple, _Bucket], sender: tuple, rate: float, burst: float) -> _Bucket:
        """The sender's bucket in ``table``; a table past MAX_SENDERS starts afresh (bounded memory)."""
        bucket = table.get(sender)
        if bucket is None:
            if len(table) >= self.MAX_SENDERS:
                table.clear()
            bucket = table[sender] = _Bucket(rate, burst)
        return bucket

    def _ignore(self, why: str) -> None:
        self.ignored += 1
        self.last_why = why

    def _report(self, span_s: float) -> None:
        if self.ignored:
            self.ignored_total += self.ignored
            if self.notice:
                self.notice(
                    "osc_ignored", f"{self.ignored} OSC datagrams in {span_s:.1f} s (last: {self.last_why})"[:200]
                )
            self.ignored = 0

    def _reply(self, sender: tuple, kind: str, text: str) -> None:
        """``PREFIX/reply s:kind s:text`` to the sender alone, at most a few a second (an
        answer must never make a flood bigger)."""
        from pythonosc.osc_message_builder import OscMessageBuilder

        if not self._bucket(self.reply_buckets, sender, 5.0, 10.0).take():
            return
        b = OscMessageBuilder(address=f"{self.prefix}/reply")
        b.add_arg(kind, "s")
        b.add_arg(text[:200], "s")
        try:
            self.sock.sendto(b.build().dgram, sender)
        except OSError:
            pass  # the sender went away: nothing to tell

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=2.0)
        self.sock.close()
