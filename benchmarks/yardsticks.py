"""The shared yardsticks (../shared/tools/*.py) as modules, so that a benchmark measures with
their own functions rather than a copy of them."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.follow.engine import Engine
    from bridge.score import Score

TOOLS = Path(__file__).resolve().parent.parent.parent / "shared" / "tools"


def load(name: str) -> ModuleType:
    """``../shared/tools/NAME.py`` imported as the module ``NAME`` (once per process)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@dataclass
class Piece:
    """One yardstick piece (a folder with score.musicxml, performance.mid, alignment.tsv)
    as eval_follow reads it, with the project's score of it. ``full``, ``base``: the score's
    note onsets as `eval_follow.score_onsets` gives them; ``notes``, ``ccs``: the aligned
    performance (`eval_follow.load_performance`)."""

    name: str
    score: Score
    full: dict
    base: dict
    notes: list[dict]
    ccs: list


def follow_piece(folder: str | Path) -> Piece:
    """The piece in ``folder``; a score the loader refuses raises its `UserError`, which a
    benchmark reports for that piece, as the yardstick does."""
    from bridge.musicxml import load_score

    ef = load("eval_follow")
    score_path = str(Path(folder) / "score.musicxml")
    score = load_score(score_path)
    full, base = ef.score_onsets(score_path)
    notes, ccs = ef.load_performance(str(folder))
    return Piece(Path(folder).name, score, full, base, notes, ccs)


def engine_events(engine: Engine, notes: list[dict], ccs: list, tmp: str | Path) -> list[dict]:
    """What ``engine`` says to a performance (notes and controller changes in the
    yardstick's form), written as a MIDI file in ``tmp`` and read back as the command-line
    bridge reads one; its events as dicts."""
    from bridge.midifile import read_performance
    from bridge.replay import run_engine

    midi = str(Path(tmp) / "performance.mid")
    load("eval_follow").write_midi(notes, ccs, midi)
    return [e.to_dict() for e in run_engine(engine, read_performance(midi))]
