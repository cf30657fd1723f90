"""`pianobridge ports`: the MIDI inputs and outputs and the sound inputs this machine has."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    pt = sub.add_parser(
        "ports",
        help="list MIDI inputs and outputs and sound inputs",
        description="List MIDI ports (for --midi-in) and sound inputs (for --audio-in).",
    )
    pt.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bridge.midiport import describe, list_ports, open_backend

    backend = open_backend()
    inputs, outputs = list_ports(backend)
    print(f"MIDI system: {describe(backend)}")
    print("inputs:" + "".join(f"\n  {n}" for n in inputs) if inputs else "inputs: none")
    print("outputs:" + "".join(f"\n  {n}" for n in outputs) if outputs else "outputs: none")
    print("audio inputs:" + "".join(f"\n  {n}" for n in _audio_inputs()))
    return 0


def _audio_inputs() -> list[str]:
    """Sound inputs, or one line on why there are none."""
    try:
        from bridge.audio.live import input_devices

        found = input_devices()
    except (ImportError, OSError) as e:  # no PortAudio library: MIDI still works
        return [f"none (no sound system: {e})"]
    return found or ["none"]
