"""Score loading time: first parse (music21 + lxml) and cached load, median of 5.

python benchmarks/score_load.py [SCORE ...]   (default: the largest nasap-dev score)
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
DEFAULT = HERE.parent.parent / "shared" / "data" / "nasap-dev" / "Schubert_Impromptu_op142_1" / "score.musicxml"


def main() -> None:
    os.environ["PIANOBRIDGE_CACHE"] = tempfile.mkdtemp()
    from bridge.musicxml import load_score

    for path in sys.argv[1:] or [str(DEFAULT)]:
        cold, warm = [], []
        for _ in range(5):
            t0 = time.perf_counter()
            load_score(path, use_cache=False)
            cold.append(time.perf_counter() - t0)
        load_score(path)
        for _ in range(5):
            t0 = time.perf_counter()
            score = load_score(path)
            warm.append(time.perf_counter() - t0)
        size = os.path.getsize(path) / 1e6
        print(
            f"{Path(path).parent.name or path}: {size:.1f} MB, {len(score.notes)} notes: "
            f"parse {statistics.median(cold):.2f} s, cached {statistics.median(warm) * 1000:.0f} ms (median of 5)"
        )


if __name__ == "__main__":
    main()
