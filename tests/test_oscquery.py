"""OSCQuery discovery: the HTTP JSON the bridge serves holds every address family of
osc_schemas/ with its type tags, direction and description; mDNS announces it (tested on
loopback, which works here); `demo --oscquery` serves it while it plays."""

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from conftest import ROOT

from bridge.osc.query import OscQueryServer

SCHEMAS = {p.stem: json.loads(p.read_text()) for p in (ROOT / "osc_schemas").glob("*.json")}


def get(url: str):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def node(tree: dict, path: str) -> dict:
    for part in path.strip("/").split("/"):
        tree = tree["CONTENTS"][part]
    return tree


@pytest.fixture(scope="module")
def server():  # one for all: announcing and withdrawing over mDNS take seconds
    s = OscQueryServer("/studio/pb", osc_in=("127.0.0.1", 9100), name=f"pianobridge-test-{os.getpid()}")
    yield s
    s.close()


def test_every_schema_is_published_with_its_types_and_direction(server):
    tree = get(server.url)
    assert tree["FULL_PATH"] == "/"
    published = node(tree, "/studio/pb")
    for name, schema in SCHEMAS.items():
        n = node(tree, "/studio/pb" + schema["x-osc-address"])
        assert n["FULL_PATH"] == "/studio/pb" + schema["x-osc-address"], name
        types = "".join(i["x-osc-type"] for i in schema.get("prefixItems", []))
        assert n.get("TYPE", "") == types, name
        want = {"out": 1, "reply": 1, "in": 2}[schema["x-direction"]] if types else 0
        assert n["ACCESS"] == want, name  # 1: the bridge sends it; 2: the bridge takes it
        assert n["DESCRIPTION"].startswith(schema["description"]), name
        assert "VALUE" not in n  # the bridge holds no current value to report
    leaves = [k for k, v in published["CONTENTS"].items() if "CONTENTS" not in v]
    nested = [k for v in published["CONTENTS"].values() for k in v.get("CONTENTS", {})]
    assert len(leaves) + len(nested) == len(SCHEMAS)  # nothing published that is not a schema


def test_a_node_on_its_own_and_host_info(server):
    n = get(server.url + "studio/pb/note")
    assert n["TYPE"] == "fiissii" and "latency_us (i, µs)" in n["DESCRIPTION"]
    info = get(server.url + "?HOST_INFO")
    assert (info["OSC_IP"], info["OSC_PORT"], info["OSC_TRANSPORT"]) == ("127.0.0.1", 9100, "UDP")
    assert info["EXTENSIONS"]["TYPE"] is True


def test_bad_requests_get_http_errors_not_files(server):
    for path, code in [("nowhere", 404), ("?NOSUCH", 400)]:
        with pytest.raises(urllib.error.HTTPError) as e:
            get(server.url + path)
        assert e.value.code == code
    head = urllib.request.Request(server.url + "pyproject.toml", method="HEAD")  # no file serving
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(head, timeout=5)
    assert e.value.code == 405


def test_mdns_announces_the_http_port(server):
    from zeroconf import Zeroconf

    end = time.monotonic() + 10
    while len(server.mdns_names) < 2 and server.mdns_error is None and time.monotonic() < end:
        time.sleep(0.1)
    assert server.mdns_error is None, server.mdns_error
    zc = Zeroconf()  # a browser on this machine (the bridge announces on loopback only)
    try:
        info = zc.get_service_info("_oscjson._tcp.local.", server.mdns_names[0], timeout=5000)
        udp = zc.get_service_info("_osc._udp.local.", server.mdns_names[1], timeout=5000)
    finally:
        zc.close()
    assert info is not None and info.port == server.port and "127.0.0.1" in info.parsed_addresses()
    assert udp is not None and udp.port == 9100


@pytest.mark.slow
def test_demo_serves_oscquery_while_it_plays(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "demo", "--speed", "20", "--no-view", "--oscquery",
         "--plot", str(tmp_path / "d.png"), "--session", str(tmp_path / "s.jsonl")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = None
        for line in proc.stderr:
            found = re.search(r"OSCQuery on (http://\S+)", line)
            if found:
                url = found.group(1)
                break
        assert url, "demo did not say where OSCQuery is"
        assert node(get(url), "/pianobridge/note")["TYPE"] == "fiissii"
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
