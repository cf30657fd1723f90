"""`pianobridge ports`: the MIDI inputs and outputs this machine has."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    pt = sub.add_parser("ports", help="list MIDI inputs and outputs", description="List MIDI ports.")
    pt.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bridge.midiport import describe, list_ports, open_backend

    backend = open_backend()
    inputs, outputs = list_ports(backend)
    print(f"MIDI system: {describe(backend)}")
    print("inputs:" + "".join(f"\n  {n}" for n in inputs) if inputs else "inputs: none")
    print("outputs:" + "".join(f"\n  {n}" for n in outputs) if outputs else "outputs: none")
    return 0
