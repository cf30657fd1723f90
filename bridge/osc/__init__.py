"""OSC: events as messages (``messages``), sent to many targets (``sender``), and
control commands and annotations coming in (``receiver``); the address space published
over OSCQuery (``query``, imported where it is used: it brings zeroconf). DAW dialects
are in bridge/adapters/.

The address space is described by the JSON Schemas in ``osc_schemas/``, one file per
address family; only the argument types i, f and s are used.
"""

from bridge.osc.messages import DEFAULT_PREFIX, to_messages
from bridge.osc.receiver import OscReceiver, to_input
from bridge.osc.sender import OscSender, parse_target

__all__ = ["DEFAULT_PREFIX", "OscReceiver", "OscSender", "parse_target", "to_input", "to_messages"]
