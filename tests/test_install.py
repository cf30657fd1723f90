"""The lock file CI and the README install with covers what pyproject.toml asks for."""

import sys
import tomllib

from conftest import ROOT
from packaging.requirements import Requirement

sys.path.insert(0, str(ROOT / "benchmarks"))
from upgrade_check import LOCK, differences, lock_text, read_pins  # noqa: E402


def test_every_dependency_is_locked_within_its_range():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = read_pins(LOCK.read_text())
    wanted = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]]
    for req in wanted:
        name = req.name.lower().replace("_", "-")
        assert name in pins, f"{req.name} is not in {LOCK.name}"
        assert req.specifier.contains(pins[name], prereleases=True), f"{req.name}=={pins[name]} is outside {req}"


def test_lock_text_from_a_freeze():
    freeze = (
        "# Editable Git install (pianobridge==0.1.0)\n-e /src\ntorch==2.13.0+cpu\nPyYAML==6.0\npianobridge==0.1.0\n"
    )
    text = lock_text(freeze)
    assert read_pins(text) == {"torch": "2.13.0", "pyyaml": "6.0"}
    assert "-e" not in text and "Editable" not in text
    assert differences({"torch": "2.13.0"}, {"torch": "2.14.0", "rich": "15.0"}) == [
        f"  {'rich':28} {'(not locked)':>14} -> 15.0",
        f"  {'torch':28} {'2.13.0':>14} -> 2.14.0",
    ]
