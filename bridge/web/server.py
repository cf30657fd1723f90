"""The score page's server: one HTTP page and one WebSocket, on a thread of its own.

The bridge hands every output event to `WebServer.publish` on its consumer thread; that
call only appends to a bounded queue (full: the event is dropped and counted) and wakes
the server's event loop, so nothing a browser does can hold up a note. The loop keeps the
events a page needs (a page that opens late, or comes back, gets them all first) and puts
each into every page's own bounded queue; a page that falls that far behind is closed
(counted) and, being a page, reconnects and starts again from the history.

Annotations typed on a page become the same `Annotation` input event an OSC
``/annotate`` makes (same checks, same limits) and go to ``submit``, as the OSC receiver's
do: the bridge relays, logs and replays them like any other, and every page shows them
when the engine passes them on.

Safety: on a loopback address only a Host header naming loopback is served (no DNS
rebinding) and the socket takes only its own page's Origin; on any other address every
request needs ``?token=`` (the random token printed at start): no token, no page, no socket.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from http import HTTPStatus
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from bridge.errors import UserError
from bridge.events import Event, Status
from bridge.web.engrave import Engraving

# what the page draws; pedal, release and sounded events stay off the socket
PAGE_TYPES = frozenset(
    ("note", "missed", "revised", "jump", "status", "annotation", "finger", "fingering_correction", "expression")
)
MAX_MESSAGE = 16 << 10  # bytes a page may send at once: an annotation is at most a few KB
ANNOTATIONS_PER_S = 5.0  # per page, bursts of 10


def parse_web_address(text: str) -> tuple[str, int]:
    """``[HOST:]PORT`` (``0`` for any free port) as (host, port); loopback when no host."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
        ipaddress.ip_address(host)
    except ValueError:
        raise UserError(f"--web takes [HOST:]PORT with a numeric address, not {text!r}") from None
    if not 0 <= number < 65536:
        raise UserError(f"--web: {number} is not a TCP port")
    return host, number


def _loopback(host: str) -> bool:
    return ipaddress.ip_address(host).is_loopback


class WebServer:
    """Serves ``engraving`` and the event stream to any number of pages.

    ``submit(event, reply)``: where annotations go (None: the page is read-only, as in a
    review); ``clock()``: the bridge's timeline, for their time stamps; ``plan``: the
    suggested finger of every unfolded score note as ``[note_id, pass, finger]``;
    ``events``: what the pages start with (a review's whole session); ``token``: None
    makes one where ``host`` is not loopback."""

    def __init__(
        self,
        engraving: Engraving,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        submit: Callable[[Event, Callable[[str, str], None]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        prefix: str = "/pianobridge",
        plan: list[list] | None = None,
        events: Iterable[dict] = (),
        mode: str = "live",
        token: str | None = None,
        max_inbox: int = 20000,
        max_client: int = 5000,
        max_history: int = 500_000,
    ):
        self.engraving, self.host, self.port = engraving, host, port
        self.submit, self.clock, self.prefix, self.mode = submit, clock, prefix, mode
        self.plan = plan or []
        self.token = token or (None if _loopback(host) else secrets.token_urlsafe(16))
        self.max_inbox, self.max_client = max_inbox, max_client
        self.history: deque[dict] = deque(events, maxlen=max_history)
        self.inbox: deque[tuple[object, float]] = deque()
        self.clients: dict[object, asyncio.Queue] = {}
        self.counts = {"dropped": 0, "slow_pages": 0, "refused": 0, "annotations": 0, "annotations_refused": 0}
        self.notes = set(engraving.note_page)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._wake_pending = False
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, name="web-page", daemon=True)
        page = resources.files("bridge.web") / "page"
        self._assets = {name: (page / name).read_text("utf-8") for name in ("index.html", "page.js", "page.css")}

    # ------------------------------------------------------------ any thread

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/" + (f"?token={self.token}" if self.token else "")

    def start(self) -> None:
        """Listen (a `UserError` if the address cannot be had) and serve from now on."""
        self.thread.start()
        self._ready.wait()
        if self._failed is not None:
            raise UserError(f"cannot serve the score page on {self.host}:{self.port}: {self._failed}")

    def publish(self, ev: Event | dict) -> None:
        """Hand one output event to the pages; never blocks (a full queue drops it, counted)."""
        kind = ev.get("type") if isinstance(ev, dict) else getattr(ev, "type", None)
        if kind not in PAGE_TYPES:
            return
        if len(self.inbox) >= self.max_inbox:
            self.counts["dropped"] += 1
            return
        self.inbox.append((ev, time.time()))
        # appended before the flag is read, and the loop clears the flag before draining:
        # an event is never left behind without a wake-up on its way
        if not self._wake_pending and self.loop is not None:
            self._wake_pending = True
            try:
                self.loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop has closed: the pages are gone
                pass

    def close(self) -> None:
        if self.loop is not None and self._stop is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self._drain)  # what is still in the inbox goes out first
            self.loop.call_soon_threadsafe(self._stop.set)
            self.thread.join(5.0)

    def summary(self) -> str:
        c = self.counts
        return (
            f"score page: {c['annotations']} annotations taken, {c['annotations_refused']} refused, "
            f"{c['refused']} requests refused (no token, a foreign Host or Origin), {c['dropped']} events dropped (queue full), "
            f"{c['slow_pages']} pages too slow (they reloaded)"
        )

    # ------------------------------------------------------------ the loop's thread

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as e:  # noqa: BLE001 - said by start(), or the thread just ends
            self._failed = self._failed or e
            self._ready.set()

    async def _serve(self) -> None:
        from websockets.asyncio.server import serve

        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            server = await serve(
                self._client,
                self.host,
                self.port,
                process_request=self._http,
                max_size=MAX_MESSAGE,
                compression=None,  # small messages, sent at once: deflate would only add latency
                server_header=None,
            )
        except OSError as e:
            self._failed = e.strerror or e
            self._ready.set()
            return
        async with server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop.wait()
            self._drain()
            for q in self.clients.values():  # let each page have what is queued, then close
                q.put_nowait(None) if not q.full() else None
            await asyncio.sleep(0.2)

    def _allowed(self, request) -> str | None:
        """Why ``request`` is refused, or None."""
        query = parse_qs(urlsplit(request.path).query)
        if self.token is not None:
            given = (query.get("token") or [""])[0]
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return "this page needs the access token printed when the bridge started (?token=...)"
        else:
            host = (request.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
            if host not in ("localhost", "127.0.0.1", "::1") and not host.startswith("127."):
                return "this page is served to localhost only"
        return None

    def _http(self, connection, request):
        """The page itself, or None to go on with a WebSocket handshake (checked here too)."""
        from websockets.datastructures import Headers
        from websockets.http11 import Response

        why = self._allowed(request)
        if why:
            self.counts["refused"] += 1
            return connection.respond(HTTPStatus.FORBIDDEN, why + "\n")
        path = urlsplit(request.path).path
        if path == "/ws":
            origin = request.headers.get("Origin")
            if origin is not None and urlsplit(origin).netloc != request.headers.get("Host"):
                self.counts["refused"] += 1
                return connection.respond(HTTPStatus.FORBIDDEN, "the socket serves its own page only\n")
            return None
        if path != "/":
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        nonce = secrets.token_urlsafe(12)
        body = (
            self._assets["index.html"]
            .replace("{{nonce}}", nonce)
            .replace("{{css}}", self._assets["page.css"])
            .replace("{{js}}", self._assets["page.js"])
        )
        # nothing from anywhere but this server; verovio's music font is a data: URL in each page
        csp = (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; font-src data:; "
            "img-src data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
        headers = Headers(
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Security-Policy", csp),
                ("Cache-Control", "no-store"),
                ("X-Content-Type-Options", "nosniff"),
                ("Referrer-Policy", "no-referrer"),
            ]
        )
        return Response(200, "OK", headers, body.encode())

    def _drain(self) -> None:
        self._wake_pending = False
        while self.inbox:
            ev, wall = self.inbox.popleft()
            d = dict(ev) if isinstance(ev, dict) else ev.to_dict()
            d["_w"] = round(wall * 1000.0, 2)  # when the bridge emitted it: the page measures its lag
            self.history.append(d)
            for ws, q in list(self.clients.items()):
                try:
                    q.put_nowait(d)
                except asyncio.QueueFull:  # this page cannot keep up: it reloads from the history
                    self.counts["slow_pages"] += 1
                    del self.clients[ws]
                    asyncio.ensure_future(ws.close(1013, "too slow: reloading"))

    def _hello(self) -> str:
        from bridge.adapters.annotated_score import EXTRA_COLOUR, MARKS

        e = self.engraving
        return json.dumps(
            {
                "kind": "hello",
                "mode": self.mode,
                "title": e.title,
                "pages": e.pages,
                "plan": self.plan,
                "colours": {**MARKS, "extra": EXTRA_COLOUR},  # worst first, as `annotate` colours
                "annotate": self.submit is not None,
                "max_text": _max_text(),
            }
        )

    async def _client(self, ws) -> None:
        q: asyncio.Queue = asyncio.Queue(self.max_client)
        snapshot = json.dumps({"kind": "events", "live": False, "events": list(self.history)})
        self.clients[ws] = q  # in the same step as the snapshot: no event falls between them
        sender = asyncio.ensure_future(self._send(ws, q, snapshot))
        try:
            from bridge.osc.receiver import _Bucket

            bucket = _Bucket(ANNOTATIONS_PER_S, 10.0)
            async for message in ws:
                self._message(ws, message, bucket)
        except Exception:  # noqa: BLE001 - a page that goes away or sends junk ends its own socket only
            pass
        finally:
            self.clients.pop(ws, None)
            sender.cancel()

    async def _send(self, ws, q: asyncio.Queue, snapshot: str) -> None:
        try:
            await ws.send(self._hello())
            await ws.send(snapshot)
            while True:
                d = await q.get()
                if d is None:
                    await ws.close(1001, "the bridge has stopped")
                    return
                batch = [d]
                while not q.empty() and len(batch) < 500:
                    d = q.get_nowait()
                    if d is None:
                        q.put_nowait(None)
                        break
                    batch.append(d)
                await ws.send(json.dumps({"kind": "events", "live": True, "events": batch}))
        except Exception:  # noqa: BLE001 - a closed socket: its handler cleans up
            pass

    def _message(self, ws, message: str | bytes, bucket) -> None:
        """One message from a page: an annotation, checked as OSC's are."""
        q = self.clients.get(ws)

        def reply(kind: str, text: str) -> None:
            def put() -> None:
                if q is not None and not q.full():
                    q.put_nowait({"type": "_reply", "ok": kind == "ok", "text": text[:200]})

            self.loop.call_soon_threadsafe(put)

        why = self._annotation(message, bucket)
        if isinstance(why, str):
            self.counts["annotations_refused"] += 1
            reply("error", why)
            return
        refused: list[str] = []

        def answer(kind: str, text: str) -> None:  # the bridge says so when it cannot take it
            if kind != "ok":
                refused.append(text)
            reply(kind, text)

        self.submit(why, answer)
        if refused:
            self.counts["annotations_refused"] += 1
        else:
            self.counts["annotations"] += 1
            reply("ok", "annotation sent")

    def _annotation(self, message: str | bytes, bucket) -> Event | str:
        """The Annotation a page's message asks for, or why not."""
        from bridge.osc.receiver import to_input

        if self.submit is None:
            return "this page is read-only (a review): annotations are not taken"
        if not bucket.take():
            return "too many annotations at once: wait a moment"
        try:
            m = json.loads(message)
        except (ValueError, RecursionError):
            return "not an annotation (not JSON)"
        if not isinstance(m, dict) or m.get("kind") != "annotate":
            return 'not an annotation (expected {"kind": "annotate", ...})'
        author, text, measure, note_id = m.get("author", ""), m.get("text"), m.get("measure", 0), m.get("note_id", "")
        if not isinstance(text, str) or not text.strip():
            return "an annotation needs some text"
        if not isinstance(measure, int) or isinstance(measure, bool) or not 0 <= measure <= 100_000:
            return "measure must be a whole number"
        if not isinstance(note_id, str) or (note_id and note_id not in self.notes):
            return "no such note in this score"
        ev = to_input(f"{self.prefix}/annotate", [author, text, measure, note_id], round(self.clock(), 4), self.prefix)
        if isinstance(ev, Status):  # the OSC receiver's own checks: types and lengths
            return ev.detail.split(": ", 1)[-1]
        return ev


def _max_text() -> int:
    from bridge.osc.receiver import MAX_TEXT

    return MAX_TEXT
