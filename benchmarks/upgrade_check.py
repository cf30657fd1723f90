"""What would the newest releases of our dependencies break? Run it on a schedule (or before
upgrading on purpose): it installs pianobridge with the latest versions the package registry
serves into a fresh virtual environment, lists every version that differs from the lock
file CI and the README install with (.ci/constraints.txt), and runs the linters and the test
suite there. ``--write`` adopts the new versions as the lock, and only when everything passed,
so an upgrade is a decision and not an accident.

    python benchmarks/upgrade_check.py [--write] [--keep DIR] [-- PYTEST_ARGS...]

Exit status: 0 when the latest versions pass, 1 when something failed (the output says what).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / ".ci" / "constraints.txt"
# the CPU build: plain `torch` pulls a multi-GB CUDA build (see shared/DESIGN.md)
TORCH = "torch==2.13.0"
HEADER = """\
# Tested versions: CI (.ci/run) and the README's set-up commands install with `pip install -c` this
# file, so a new release upstream cannot change what a fresh machine gets. pyproject.toml keeps the
# loose ranges for anyone adding pianobridge to their own environment. Linux x86_64, Python 3.11.
# Do not edit by hand: `python benchmarks/upgrade_check.py --write` installs the newest releases,
# runs lint and tests with them, and rewrites this file only if everything passes.
"""


def read_pins(text: str) -> dict[str, str]:
    """``name -> version`` from ``name==version`` lines (names normalised as pip does)."""
    pins = {}
    for line in text.splitlines():
        m = re.match(r"\s*([A-Za-z0-9._-]+)==([^\s;#]+)", line)
        if m:
            pins[re.sub(r"[-_.]+", "-", m[1]).lower()] = m[2]
    return pins


def lock_text(freeze: str) -> str:
    """The lock file for a ``pip freeze --all`` listing: the project itself left out, and
    local version labels (torch's ``+cpu``) dropped so the pin also names the registry's build."""
    lines = [
        re.sub(r"\+[A-Za-z0-9.]+$", "", line)
        for line in sorted(freeze.splitlines(), key=str.lower)
        if "==" in line and not line.startswith("#") and not line.lower().startswith("pianobridge")
    ]
    return HEADER + "\n".join(lines) + "\n"


def differences(old: dict[str, str], new: dict[str, str]) -> list[str]:
    rows = []
    for name in sorted(old.keys() | new.keys()):
        a, b = old.get(name), new.get(name)
        if a != b:
            rows.append(f"  {name:28} {a or '(not locked)':>14} -> {b or '(gone)'}")
    return rows


def step(title: str, cmd: list[str], **kw) -> bool:
    print(f"\n== {title}: {' '.join(cmd)}", flush=True)
    return subprocess.run(cmd, cwd=ROOT, **kw).returncode == 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", action="store_true", help="rewrite .ci/constraints.txt when everything passes")
    ap.add_argument("--keep", metavar="DIR", help="build the environment here and keep it (default: a temp folder)")
    ap.add_argument("pytest_args", nargs="*", help="passed to pytest (default: -q)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="pianobridge-upgrade-") as tmp:
        env_dir = Path(args.keep or tmp) / "venv"
        print(f"fresh environment in {env_dir}", flush=True)
        venv.create(env_dir, with_pip=True, clear=True)
        py = str(env_dir / "bin" / "python")
        pip = [py, "-m", "pip", "install", "-q", "--upgrade"]
        if not (step("latest pip", [*pip, "pip", "setuptools"]) and step("torch (CPU)", [*pip, TORCH])):
            return 1
        if not step("pianobridge with the latest releases", [*pip, "-e", ".[dev]"]):
            return 1
        freeze = subprocess.run([py, "-m", "pip", "freeze", "--all"], capture_output=True, text=True).stdout
        old = read_pins(LOCK.read_text()) if LOCK.exists() else {}
        rows = differences(old, read_pins(lock_text(freeze)))
        print(f"\n== versions that differ from {LOCK.relative_to(ROOT)}: {len(rows) or 'none'}")
        print("\n".join(rows))
        ruff = str(env_dir / "bin" / "ruff")
        checks = {
            "ruff check": step("lint", [ruff, "check", "."]),
            "ruff format": step("format", [ruff, "format", "--check", "."]),
            "pytest": step("tests", [py, "-m", "pytest", *(args.pytest_args or ["-q"])]),
        }
        failed = [name for name, ok in checks.items() if not ok]
        if failed:
            print(f"\nthe latest releases break: {', '.join(failed)}; the lock stays as it is")
            return 1
        print("\nthe latest releases pass lint and the tests")
        if args.write and rows:
            LOCK.write_text(lock_text(freeze))
            print(f"rewrote {LOCK.relative_to(ROOT)}: commit it with the list above in the message")
        return 0


if __name__ == "__main__":
    sys.exit(main())
