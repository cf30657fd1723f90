"""`pianobridge train`: train the fingering or hand-separation network on PIG, the
audio note detector on rendered (n)ASAP performances, or the expression model on (n)ASAP."""

from __future__ import annotations

import argparse

from bridge.cli.common import positive


def add_parser(sub) -> None:
    tr = sub.add_parser(
        "train",
        help="train the fingering, hand-separation, audio note-detection or expression network",
        description="fingering, hands: trains on PIG pieces 031-150 (001-030 are the test split and are never "
        "read) and writes numpy weights that `pianobridge fingering` loads. audio: renders the (n)ASAP "
        "performances under DATA (as benchmarks/asap_wide.py lays them out; nasap-dev's pieces are left out) "
        "with FluidSynth and trains the note detector, written as ONNX (see docs/audio.md); audio-gate: renders "
        "the performances after the network's first --pieces (default 120) and trains the detector's gate "
        "(model/audio_gate.npz); audio-instrument: renders the MIDI performances in DATA (the bundled ones: "
        "scores/performances) as pianos and as sustained instruments and fits the check that refuses an audio file "
        "that is not a piano (model/audio_instrument.npz). expression: trains the expression ensemble on every (n)ASAP piece "
        "the exclusion list allows and writes model/expression.npz (see docs/expression.md). Needs torch (audio-instrument does not).",
    )
    tr.add_argument("task", choices=("fingering", "hands", "audio", "audio-gate", "audio-instrument", "expression"))
    tr.add_argument(
        "pig",
        metavar="DATA",
        help="PIG dataset folder (PianoFingeringDataset_v1.2 or its FingeringFiles); for audio, the asap-wide "
        "folder; for audio-instrument, a folder of MIDI performances; for expression, the (n)ASAP checkout or its git directory",
    )
    tr.add_argument(
        "--out",
        help="weights file (default: model/TASK.npz; model/audio.onnx, model/audio_gate.npz, model/audio_instrument.npz)",
    )
    tr.add_argument("--members", type=positive(int), default=None, help="networks in the ensemble")
    tr.add_argument("--steps", type=positive(int), default=None, help="training steps per network")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument(
        "--holdout", action="store_true", help="hold out pieces whose number is a multiple of 5 and report on them"
    )
    audio = tr.add_argument_group("audio")
    audio.add_argument(
        "--nasap-dev",
        default="../shared/data/nasap-dev",
        help="the evaluation pieces kept out of audio training (default: %(default)s)",
    )
    audio.add_argument(
        "--cache",
        default="audio-training-data",
        help="folder for the rendered training segments (outside the repository; default: %(default)s)",
    )
    audio.add_argument(
        "--pieces",
        type=positive(int),
        help="render and train on this many performances (default all; audio-gate: the ones after the first N, default 120)",
    )
    audio.add_argument(
        "--resume", metavar="PT", help="continue from these torch weights (the .pt a run writes next to its --out)"
    )
    audio.add_argument("--minutes", type=positive(float), default=38.0, help="training time (default: %(default)s)")
    audio.add_argument(
        "--renders",
        type=positive(int),
        default=1,
        help="renderings of each performance, each with the next soundfont and other rooms (default: %(default)s)",
    )
    audio.add_argument("--workers", type=positive(int), default=2, help="rendering processes (default: %(default)s)")
    audio.add_argument("--channels", type=positive(int), default=32, help="the network's width (default: %(default)s)")
    audio.add_argument("--batch", type=positive(int), default=16, help="windows per step (default: %(default)s)")
    audio.add_argument("--device", default="cpu", help="torch device to train on, e.g. cuda (default: %(default)s)")
    expression = tr.add_argument_group("expression (DATA: (n)ASAP, a checkout or its git directory)")
    expression.add_argument(
        "--recipe", metavar="JSON", help="settings over the defaults (the shipped model/expression.recipe.json)"
    )
    expression.add_argument("--exclude", metavar="TXT", help="score folders never read (default: the shared list)")
    expression.add_argument("--prepared", metavar="DIR", help="prepared data (default: ~/.cache/pianobridge)")
    tr.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.task == "expression":
        from bridge.expression.train import train_command as expression_command

        return expression_command(args)
    if args.task == "audio-instrument":
        from bridge.audio.train_instrument import instrument_command

        return instrument_command(args)
    if args.task in ("audio", "audio-gate"):
        from bridge.audio.train import train_command as audio_command

        return audio_command(args)
    from bridge.fingering.train import train_command

    return train_command(args)
