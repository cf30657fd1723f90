"""A score's planned fingering kept on disk, so that opening the same score again skips the
network (planning a 2,000-note score takes most of a second; reading it back, milliseconds).

An entry is keyed by everything the plan depends on: what `plan_score` reads of each note,
the weights files' bytes and the source of the modules that plan. It holds arrays only
(read without pickle) and its own key; a missing, stale, damaged or planted entry is planned
again, and a cache that cannot be written only costs speed.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from bridge.fingering import Fingering
from bridge.fingering.decode import HandPlan
from bridge.musicxml import write_cache_entry

FORMAT = 1
_SOURCES = ("__init__.py", "decode.py", "features.py", "hands.py", "network.py")
# read once, as the module is imported (see bridge.expression.data.CODE_DIGEST for why)
_CODE = hashlib.sha256(b"".join((Path(__file__).parent / name).read_bytes() for name in _SOURCES)).digest()


def plan_key(score, weights: list[Path]) -> str:
    """The key of ``score``'s plan with these weights files (those that exist)."""
    h = hashlib.sha256(_CODE + str(FORMAT).encode())
    for path in weights:
        h.update(path.read_bytes() if path.exists() else b"-")
    notes = [(n.onset_q, n.duration_q, n.tempo_qpm, n.pitch, n.hand, n.fingering, n.staff, n.part) for n in score.notes]
    h.update(repr(notes).encode())
    return h.hexdigest()


def read_plan(path: Path, key: str, n_notes: int) -> Fingering | None:
    """The plan stored at ``path`` under ``key``, or None."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key or len(z["fingers"]) != n_notes:
                return None
            fingering = Fingering([tuple(int(f) for f in row if f) for row in z["fingers"]])
            for hand in (int(h) for h in z["hands"]):
                fingering.plans[hand] = HandPlan(z[f"unary{hand}"], z[f"trans{hand}"], z[f"fingers{hand}"])
                fingering.order[hand] = z[f"order{hand}"]
            return fingering
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None


def write_plan(path: Path, key: str, fingering: Fingering) -> None:
    """Store ``fingering`` at ``path`` under ``key`` (written whole, then moved into place)."""
    fingers = np.zeros((len(fingering.fingers), 2), np.int8)  # (finger, substitute); 0: none
    for i, f in enumerate(fingering.fingers):
        fingers[i, : len(f)] = f
    arrays = {"key": np.array(key), "fingers": fingers, "hands": np.array(sorted(fingering.plans), np.int8)}
    for hand, hp in fingering.plans.items():
        arrays.update({f"unary{hand}": hp.unary, f"trans{hand}": hp.trans, f"fingers{hand}": hp.fingers})
        arrays[f"order{hand}"] = fingering.order[hand]
    write_cache_entry(path, lambda f: np.savez(f, **arrays))
