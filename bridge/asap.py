"""The (n)ASAP dataset (CPJKU/asap-dataset): which of its pieces may be used, and its files.

``../shared/data/nasap-train/exclude.txt`` lists the score folders that nothing may be
trained, tuned or validated on; a version of a listed piece (``_no_repeat``, ``_repeat``,
...: the same music) is left out too. Used by the expression model's training
(`bridge.expression.data`) and the follower's wide validation set (benchmarks/asap_wide.py),
so both leave out the same pieces. CC BY-NC-SA 4.0 data: never written into the repository.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

ALIGN_SUFFIX = "_note_alignments/note_alignment.tsv"
# the exclusion list of a development checkout (the project beside ../shared)
EXCLUSIONS = Path(__file__).resolve().parents[2] / "shared" / "data" / "nasap-train" / "exclude.txt"
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


def alignment_rows(tsv: bytes) -> list[tuple[str, int, float]]:
    """(score note id, MIDI pitch, performed onset in s) of each score note a performance plays,
    from its note alignment (insertions and deletions left out)."""
    rows = []
    for line in tsv.decode().splitlines()[1:]:
        cols = line.split("\t")
        if len(cols) == 6 and cols[1] != "deletion" and cols[0] != "insertion":
            rows.append((cols[0], int(cols[4]), float(cols[5])))
    return rows


def select(paths: Iterable[str], excluded: set[str]) -> dict[str, list[str]]:
    """The aligned performances of every score folder the exclusion list allows."""
    return {f: v for f, v in aligned_performances(paths).items() if not is_excluded(f, excluded)}


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
