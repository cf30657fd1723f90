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
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
ALIGN_SUFFIX = "_note_alignments/note_alignment.tsv"
# score folders that are another version of the same music (repeats taken or not, a trio left out)
VERSION = re.compile(r"_(no_repeat|repeat|no_2_repeat|no_first_repeat|extra_repeat|no_trio)$")


def piece_key(folder: str) -> str:
    """The piece a score folder holds: its versions (repeats or not) share one key."""
    key, prev = folder.strip("/"), None
    while key != prev:  # a version of a version ('..._repeat_no_repeat') is the piece too
        key, prev = VERSION.sub("", key), key
    return key


def read_exclusions(path: Path) -> set[str]:
    """Score folders of the exclusion list (comments and blank lines skipped)."""
    lines = (ln.strip() for ln in path.read_text().splitlines())
    return {ln.strip("/") for ln in lines if ln and not ln.startswith("#")}


def is_excluded(folder: str, excluded: set[str]) -> bool:
    """True for a listed folder, anything under one, and any version of a listed piece."""
    folder = folder.strip("/")
    keys = {piece_key(x) for x in excluded}
    return piece_key(folder) in keys or any(folder == x or folder.startswith(x + "/") for x in excluded)


def aligned_performances(paths: Iterable[str]) -> dict[str, list[str]]:
    """Score folder -> sorted performance names that have a note alignment."""
    out: dict[str, list[str]] = {}
    for p in paths:
        if p.endswith(ALIGN_SUFFIX):
            folder, perf = p[: -len(ALIGN_SUFFIX)].rsplit("/", 1)
            out.setdefault(folder, []).append(perf)
    return {f: sorted(v) for f, v in sorted(out.items())}


def select(paths: Iterable[str], excluded: set[str]) -> dict[str, list[str]]:
    """The aligned performances of every score folder the exclusion list allows."""
    return {f: v for f, v in aligned_performances(paths).items() if not is_excluded(f, excluded)}


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


class Source:
    """Files of the dataset from a work tree or from a git directory (HEAD)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.git = not (path / "metadata.csv").is_file()

    def listing(self) -> Iterator[str]:
        if self.git:
            cmd = ["git", f"--git-dir={self.path}", "ls-tree", "-r", "--name-only", "HEAD"]
            yield from subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()
        else:
            yield from (str(p.relative_to(self.path)) for p in self.path.rglob("*") if p.is_file())

    def read(self, rel: str) -> bytes | None:
        """The file's bytes, or None where the snapshot lists it without its content (the
        fetched mirror leaves out its largest files)."""
        if self.git:
            p = subprocess.run(["git", f"--git-dir={self.path}", "show", f"HEAD:{rel}"], capture_output=True)
            return p.stdout if p.returncode == 0 else None
        return (self.path / rel).read_bytes() if (self.path / rel).is_file() else None


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
    ap.add_argument("--exclude", type=Path, default=SHARED / "data" / "nasap-train" / "exclude.txt")
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
