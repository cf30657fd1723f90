import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCORES = ROOT / "scores"
SHARED = ROOT.parent / "shared"
NASAP = SHARED / "data" / "nasap-dev"

# keep the score cache of a test run away from the user's
os.environ.setdefault("PIANOBRIDGE_CACHE", tempfile.mkdtemp(prefix="pianobridge-cache-"))
sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def scores_dir() -> Path:
    return SCORES


def bundled(name: str) -> Path:
    return SCORES / f"{name}.musicxml"


def performance(name: str) -> Path:
    return SCORES / "performances" / f"{name}.mid"
