"""Lay out the allowed (n)ASAP pieces as eval_follow.py data, split into tune and val halves.

    python benchmarks/asap_wide.py ASAP_GIT_OR_DIR OUT_DIR [--per-piece N]
        [--exclude ../shared/data/nasap-train/exclude.txt] [--nasap-dev ../shared/data/nasap-dev]

ASAP_GIT_OR_DIR is a checkout of CPJKU/asap-dataset or its bare git directory (what the
``fetch`` tool gives). Every score folder with a note alignment is taken unless it is a
folder of the exclusion list or a version of one (``_no_repeat``, ``_repeat``, ...: the same
music); versions of one piece count as one piece and land on the same side. nasap-dev's
pieces, already tuned on, always go to ``tune``; the rest split on a hash of the piece.
Each piece becomes OUT_DIR/{tune,val}/Composer_Folder[_Performance]/ with score.musicxml,
performance.mid, alignment.tsv and beats.txt, as in nasap-dev. CC BY-NC-SA 4.0 data:
write it outside the repository.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bridge.asap import (  # noqa: E402 - the repository's bridge package, run from a checkout
    ALIGN_SUFFIX,
    EXCLUSIONS,
    Source,
    piece_key,
    read_exclusions,
    select,
)

SHARED = ROOT.parent / "shared"


def flat_name(folder: str) -> str:
    """nasap-dev's naming: the score folder with '/' as '_'."""
    return folder.replace("/", "_")


def side(folder: str, tune_keys: set[str]) -> str:
    """'tune' or 'val' for a score folder: decided by its piece, so versions stay together."""
    key = piece_key(folder)
    if key in tune_keys:
        return "tune"
    return "tune" if hashlib.sha256(key.encode()).digest()[0] % 2 == 0 else "val"


def tuned_pieces(nasap_dev: Path, folders: Iterable[str]) -> set[str]:
    """Piece keys of the folders nasap-dev holds (tuned on already: never validation)."""
    names = {p.name for p in nasap_dev.iterdir()} if nasap_dev.is_dir() else set()
    return {piece_key(f) for f in folders if flat_name(f) in names}


def build(src: Source, out: Path, excluded: set[str], nasap_dev: Path, per_piece: int) -> dict[str, list[str]]:
    """Write the first ``per_piece`` complete performances of each folder (0: all); returns
    side -> written folder names, and 'missing' -> performances whose score, MIDI or
    alignment the source lacks (the next performance is taken instead)."""
    chosen = select(src.listing(), excluded)
    tune_keys = tuned_pieces(nasap_dev, chosen)
    written: dict[str, list[str]] = {"tune": [], "val": [], "missing": []}
    for folder, perfs in chosen.items():
        half = side(folder, tune_keys)
        taken = 0
        for perf in perfs:
            if per_piece and taken == per_piece:
                break
            name = flat_name(folder) if per_piece == 1 else f"{flat_name(folder)}_{perf}"
            files = {
                "score.musicxml": src.read(f"{folder}/xml_score.musicxml"),
                "performance.mid": src.read(f"{folder}/{perf}.mid"),
                "alignment.tsv": src.read(f"{folder}/{perf}{ALIGN_SUFFIX}"),
                "beats.txt": src.read(f"{folder}/{perf}_annotations.txt"),
            }
            if any(data is None for target, data in files.items() if target != "beats.txt"):
                written["missing"].append(f"{folder}/{perf}")
                continue
            dest = out / half / name
            dest.mkdir(parents=True, exist_ok=True)
            for target, data in files.items():
                if data is not None:
                    (dest / target).write_bytes(data)
            written[half].append(name)
            taken += 1
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("asap", type=Path, help="asap-dataset checkout or git directory")
    ap.add_argument("out", type=Path)
    ap.add_argument("--per-piece", type=int, default=1, help="performances per score folder (0: all)")
    ap.add_argument("--exclude", type=Path, default=EXCLUSIONS)
    ap.add_argument("--nasap-dev", type=Path, default=SHARED / "data" / "nasap-dev")
    a = ap.parse_args()
    if a.out.resolve().is_relative_to(ROOT):
        sys.exit("asap_wide: write the data outside the repository ((n)ASAP is CC BY-NC-SA)")
    try:
        written = build(Source(a.asap), a.out, read_exclusions(a.exclude), a.nasap_dev, a.per_piece)
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit(f"asap_wide: cannot read {a.asap} as an asap-dataset checkout or git directory ({e})")
    for half, names in written.items():
        print(f"{half}: {len(names)} performances" + (f" ({', '.join(names)})" if half == "missing" else ""))


if __name__ == "__main__":
    main()
