"""Finger a file end to end: PIG note lists, MusicXML scores, MIDI performances."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bridge.errors import UserError
from bridge.fingering import Fingering, KeyNote, finger_text, plan
from bridge.fingering.hands import infer_hands
from bridge.fingering.network import FingeringModel, weights_path
from bridge.fingering.pig import PigNote, read_pig, write_pig

MIDI_SUFFIXES = (".mid", ".midi")
PIG_SUFFIXES = (".txt", ".pig", ".tsv")


def score_plan(score) -> Fingering | None:
    """The planned fingering of a loaded `Score` (see `plan_score`), or None when the
    weights are not installed: following works without them. Kept on disk beside the
    parsed scores (`bridge.fingering.cache`): the same score opens again without planning."""
    from bridge.fingering import plan_score
    from bridge.fingering.cache import plan_key, read_plan, write_plan
    from bridge.musicxml import cache_dir

    path = weights_path(None)
    if not path.exists():
        return None
    hands = weights_path(None, "hands")
    key = plan_key(score, [path, hands])
    cached = cache_dir() / f"plan-{key}.npz"
    if (fingering := read_plan(cached, key, len(score.notes))) is not None:
        return fingering
    fingering = plan_score(
        score, FingeringModel.load(path, "fingering"), FingeringModel.load(hands, "hands") if hands.exists() else None
    )
    write_plan(cached, key, fingering)
    return fingering


def score_suggestions(score) -> list[str] | None:
    """Planned fingers for a loaded `Score` as text ("3", "3_1"), or None without weights."""
    fingering = score_plan(score)
    return None if fingering is None else [finger_text(f) for f in fingering.fingers]


def input_format(path: str | Path, fmt: str | None) -> str:
    """'pig', 'musicxml' or 'midi' from --format or the file name."""
    suffix = Path(path).suffix.lower()
    if suffix in MIDI_SUFFIXES:
        return "midi"
    if fmt:
        return fmt
    return "pig" if suffix in PIG_SUFFIXES else "musicxml"


def with_hands(keys: list[KeyNote], hands_model: FingeringModel) -> list[KeyNote]:
    hands = infer_hands(
        np.array([k.onset for k in keys]),
        np.array([k.offset for k in keys]),
        np.array([k.pitch for k in keys]),
        hands_model,
    )
    return [KeyNote(k.onset, k.offset, k.pitch, int(h), k.printed) for k, h in zip(keys, hands)]


def finger_notes(
    keys: list[KeyNote],
    infer: bool,
    hand_size: str = "medium",
    weights: str | None = None,
    substitute: bool = True,
) -> tuple[list[KeyNote], Fingering]:
    """Hands (inferred when asked) and fingers for a list of notes."""
    model = FingeringModel.load(weights, "fingering")
    if infer:
        keys = with_hands(keys, FingeringModel.load(weights_path(weights, "hands"), "hands"))
    return keys, plan(keys, model, hand_size, substitute)


def finger_pig(src: str, out: str, infer: bool, hand_size: str, weights: str | None, substitute: bool) -> int:
    notes = read_pig(src)
    keys = [KeyNote(n.onset, n.offset, n.pitch, n.hand) for n in notes]
    keys, fingering = finger_notes(keys, infer, hand_size, weights, substitute)
    for n, k, f in zip(notes, keys, fingering.fingers):
        n.hand, n.fingers = k.hand, f
    write_pig(notes, out)
    return len(notes)


def finger_midi(src: str, out: str, hand_size: str, weights: str | None, substitute: bool) -> int:
    from bridge.midifile import read_notes

    played = read_notes(src)
    if not played:
        raise UserError(f"the MIDI file has no notes: {src}")
    keys = [KeyNote(on, off, pitch, 0) for on, off, pitch, _ in played]
    keys, fingering = finger_notes(keys, True, hand_size, weights, substitute)
    notes = [
        PigNote(str(i), k.onset, k.offset, _spelled(k.pitch), k.pitch, str(vel), "80", k.hand, f)
        for i, (k, (_, _, _, vel), f) in enumerate(zip(keys, played, fingering.fingers))
    ]
    write_pig(notes, out)
    return len(notes)


def finger_musicxml(src: str, out: str, infer: bool, hand_size: str, weights: str | None, substitute: bool) -> int:
    from bridge.fingering.annotate import add_fingering, read_score_notes, write_score

    score = read_score_notes(src)
    keys, fingering = finger_notes(score.keys, infer or not score.hands_known, hand_size, weights, substitute)
    for xn, k, f in zip(score.xml, keys, fingering.fingers):
        add_fingering(xn.el, f, k.hand)
    write_score(score.tree, out)
    return len(keys)


_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")


def _spelled(pitch: int) -> str:
    return f"{_NAMES[pitch % 12]}{pitch // 12 - 1}"
