"""`pianobridge train`: train the fingering or hand-separation network on PIG."""

from __future__ import annotations

import argparse

from bridge.cli.common import positive


def add_parser(sub) -> None:
    tr = sub.add_parser(
        "train",
        help="train the fingering or hand-separation network on PIG",
        description="Trains on PIG pieces 031-150 (001-030 are the test split and are never read) "
        "and writes numpy weights that `pianobridge fingering` loads. Needs torch.",
    )
    tr.add_argument("task", choices=("fingering", "hands"))
    tr.add_argument("pig", help="PIG dataset folder (PianoFingeringDataset_v1.2 or its FingeringFiles)")
    tr.add_argument("--out", help="weights file (default: model/TASK.npz)")
    tr.add_argument("--members", type=positive(int), default=None, help="networks in the ensemble")
    tr.add_argument("--steps", type=positive(int), default=None, help="training steps per network")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument(
        "--holdout", action="store_true", help="hold out pieces whose number is a multiple of 5 and report on them"
    )
    tr.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bridge.fingering.train import train_command

    return train_command(args)
