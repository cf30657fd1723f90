"""OSCQuery: the bridge's address space, read from osc_schemas/, served as JSON over HTTP
and announced over mDNS (``_oscjson._tcp``), so OSCQuery-aware tools find the bridge
without anyone typing ports.

Each schema becomes one method node under the prefix: its OSC type tags (TYPE), its
description with units (DESCRIPTION) and ACCESS 1 for what the bridge sends (readable,
not writable), 2 for what it accepts on ``--osc-in`` (writable). No VALUE: the bridge
keeps no current value to report. HOST_INFO names the ``--osc-in`` address, where there
is one. Built on python-oscquery's address space and HTTP handler; the server is ours so
that it can bind any free port and announce the one it got.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
from pathlib import Path

from pythonoscquery.osc_query_service import OSCQueryHTTPHandler, OSCQueryHTTPServer
from pythonoscquery.shared.osc_access import OSCAccess
from pythonoscquery.shared.osc_address_space import OSCAddressSpace
from pythonoscquery.shared.osc_host_info import OSCHostInfo
from pythonoscquery.shared.osc_path_node import OSCPathNode
from pythonoscquery.shared.oscquery_spec import OSCQueryAttribute

from bridge.errors import UserError

SCHEMAS = Path(__file__).resolve().parent.parent.parent / "osc_schemas"
PLACEHOLDER = {"i": 0, "f": 0.0, "s": ""}  # python-oscquery derives TYPE from sample values
ACCESS = {"out": OSCAccess.READONLY_VALUE, "reply": OSCAccess.READONLY_VALUE, "in": OSCAccess.WRITEONLY_VALUE}


def _describe(schema: dict) -> str:
    args = ", ".join(
        f"{i['title']} ({i['x-osc-type']}{', ' + i['x-unit'] if 'x-unit' in i else ''})"
        for i in schema.get("prefixItems", [])
    )
    return schema["description"] + (f" Arguments: {args}." if args else "")


def address_space(prefix: str = "/pianobridge", schemas: Path = SCHEMAS) -> OSCAddressSpace:
    """Every address family in ``schemas`` as an OSCQuery method node under ``prefix``."""
    space = OSCAddressSpace()
    for path in sorted(schemas.glob("*.json")):
        schema = json.loads(path.read_text())
        types = [PLACEHOLDER[i["x-osc-type"]] for i in schema.get("prefixItems", [])]
        access = ACCESS[schema["x-direction"]] if types else OSCAccess.NO_VALUE
        node = OSCPathNode(prefix.rstrip("/") + schema["x-osc-address"], access, types or None, _describe(schema))
        node.attributes[OSCQueryAttribute.VALUE] = None  # placeholders, not values the bridge holds
        space.add_node(node)
    return space


class _Handler(OSCQueryHTTPHandler):
    """python-oscquery's GET, and nothing of SimpleHTTPRequestHandler's file serving."""

    def do_HEAD(self) -> None:  # the base class would serve files from the working folder
        self.send_error(405)

    def log_message(self, format: str, *args) -> None:  # not one stderr line per request
        pass


class OscQueryServer:
    """HTTP on ``host:port`` (0: any free port; ``port`` says which) and mDNS, until ``close``.

    ``osc_in``: the address the bridge takes commands on, for HOST_INFO and ``_osc._udp``."""

    def __init__(
        self,
        prefix: str = "/pianobridge",
        port: int = 0,
        host: str = "127.0.0.1",
        osc_in: tuple[str, int] | None = None,
        name: str = "pianobridge",
        mdns: bool = True,
    ):
        self.name = name
        osc_ip, osc_port = osc_in or (None, None)
        info = OSCHostInfo(name, {"ACCESS": True, "DESCRIPTION": True, "TYPE": True}, osc_ip, osc_port, "UDP")
        try:
            self.http = OSCQueryHTTPServer(address_space(prefix), info, (host, port), _Handler)
        except OSError as e:
            raise UserError(f"cannot serve OSCQuery on {host}:{port}: {e.strerror}") from None
        self.host, self.port = host, self.http.server_address[1]
        self._osc_in = osc_in
        self.zeroconf = None
        self.mdns_names: list[str] = []  # as registered (renamed if the name was taken)
        self.mdns_error: str | None = None
        threading.Thread(target=self.http.serve_forever, name="oscquery-http", daemon=True).start()
        if mdns:  # registering probes the network for a second or so: not on the caller's time
            self._mdns = threading.Thread(target=self._announce, name="oscquery-mdns", daemon=True)
            self._mdns.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def _announce(self) -> None:
        try:
            from zeroconf import InterfaceChoice, ServiceInfo, Zeroconf

            wildcard = ipaddress.ip_address(self.host).is_unspecified
            addresses = _local_addresses() if wildcard else [self.host]
            zc = Zeroconf(interfaces=InterfaceChoice.All if wildcard else [self.host])
            services = [("_oscjson._tcp.local.", self.port)]
            if self._osc_in:
                services.append(("_osc._udp.local.", self._osc_in[1]))
            host = f"{self.name}.local."  # one host name for both records
            for kind, port in services:
                info = ServiceInfo(
                    kind,
                    f"{self.name}.{kind}",
                    port=port,
                    properties={"txtvers": "1"},
                    server=host,
                    parsed_addresses=addresses,
                )
                zc.register_service(info, allow_name_change=True)
                self.mdns_names.append(info.name)
            self.zeroconf = zc
        except Exception as e:  # noqa: BLE001 - no multicast here: HTTP still works, say why mDNS does not
            self.mdns_error = f"{type(e).__name__}: {e}"

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        if hasattr(self, "_mdns"):
            self._mdns.join(5.0)
        if self.zeroconf is not None:
            self.zeroconf.unregister_all_services()
            self.zeroconf.close()


def _local_addresses() -> list[str]:
    """The address other machines reach this one at (the interface mDNS goes out on), for
    the record of a server on 0.0.0.0."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("224.0.0.251", 5353))  # no packet is sent: this only picks the route
            return [s.getsockname()[0]]
        except OSError:
            return ["127.0.0.1"]
