"""The shared yardsticks (../shared/tools/*.py) as modules, so that a benchmark measures with
their own functions rather than a copy of them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

TOOLS = Path(__file__).resolve().parent.parent.parent / "shared" / "tools"


def load(name: str) -> ModuleType:
    """``../shared/tools/NAME.py`` imported as the module ``NAME`` (once per process)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
