"""OSC targets as the user writes them, and the sender that serves them all.

``HOST:PORT`` is the bridge's own address space (osc_schemas/); ``ADAPTER@HOST:PORT``
speaks a client's dialect (``ardour@127.0.0.1:3819``), with options after the adapter's
name (``ardour,rate=44100@127.0.0.1:3819``). Every target is checked before anything
starts: a mistake is one UserError line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bridge.adapters.ableton import AbletonAdapter
from bridge.adapters.ardour import ArdourAdapter
from bridge.adapters.base import Adapter
from bridge.adapters.bitwig import BitwigAdapter
from bridge.adapters.reaper import ReaperAdapter
from bridge.errors import UserError
from bridge.osc.sender import OscSender, parse_target

ADAPTERS: dict[str, type[Adapter]] = {a.name: a for a in (ArdourAdapter, ReaperAdapter, AbletonAdapter, BitwigAdapter)}


@dataclass(frozen=True)
class OscTarget:
    """One ``--osc`` target: ``adapter`` None for the native address space."""

    text: str
    host: str
    port: int
    adapter: str | None = None
    options: dict = field(default_factory=dict)


def parse_osc_target(text: str) -> OscTarget:
    """'HOST:PORT' or 'ADAPTER[,KEY=VALUE...]@HOST:PORT', resolved and checked."""
    spec, at, where = text.partition("@")
    if not at:
        return OscTarget(text, *parse_target(text))
    name, *items = spec.split(",")
    cls = ADAPTERS.get(name.strip().lower())
    if cls is None:
        raise UserError(f"unknown OSC adapter {name!r} in {text!r} (known: {', '.join(ADAPTERS)}; or plain HOST:PORT)")
    options = cls.parse_options(items, text)
    return OscTarget(text, *parse_target(where), adapter=cls.name, options=options)


def open_sender(texts: list[str], bundle: bool = False, native: list[tuple[str, int]] = ()) -> OscSender:
    """The sender for these targets (plus ``native`` addresses already resolved)."""
    targets = [parse_osc_target(t) for t in texts]  # every mistake before anything starts
    plain = [*native, *((t.host, t.port) for t in targets if t.adapter is None)]
    adapters = [ADAPTERS[t.adapter]((t.host, t.port), t.text, **t.options) for t in targets if t.adapter]
    return OscSender(plain, bundle=bundle, adapters=adapters)
