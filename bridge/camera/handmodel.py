"""The MediaPipe hand-landmarker model (``.task``), made available with no manual step.

mediapipe 1.x ships no hand model and Google's download address is not reachable from
every machine, but older mediapipe wheels on the package registry carry the two TFLite
files a ``.task`` bundle needs. On first use we download such a wheel with pip, check
the two files against known checksums, zip them as ``hand_landmarker.task`` and keep
that in the user's cache folder.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from bridge.errors import UserError

# wheel member -> (name inside the .task, sha256)
MEMBERS = {
    "mediapipe/modules/hand_landmark/hand_landmark_full.tflite": (
        "hand_landmarks_detector.tflite",
        "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3",
    ),
    "mediapipe/modules/palm_detection/palm_detection_full.tflite": (
        "hand_detector.tflite",
        "1b14e9422c6ad006cde6581a46c8b90dd573c07ab7f3934b5589e7cea3f89a54",
    ),
}
# the last mediapipe releases with these files, per machine
WHEELS = {"x86_64": "mediapipe==0.10.21", "aarch64": "mediapipe==0.10.18", "arm64": "mediapipe==0.10.18"}
MODEL_ENV = "PIANOBRIDGE_HAND_MODEL"


def cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pianobridge" / "models"


def hand_model(path: str | os.PathLike | None = None) -> Path:
    """The ``.task`` file to use: ``path`` (--hand-model), $PIANOBRIDGE_HAND_MODEL, or the
    cached bundle, assembled now if it is not there yet."""
    given = path or os.environ.get(MODEL_ENV)
    if given:
        p = Path(given)
        if not p.is_file():
            raise UserError(f"hand model not found: {p}")
        return p
    cached = cache_folder() / "hand_landmarker.task"
    if cached.is_file() and _task_ok(cached):
        return cached
    return assemble(cached)


def _task_ok(task: Path) -> bool:
    try:
        with zipfile.ZipFile(task) as z:
            return all(hashlib.sha256(z.read(name)).hexdigest() == digest for name, digest in MEMBERS.values())
    except (OSError, zipfile.BadZipFile, KeyError):
        return False


def assemble(target: Path) -> Path:
    """Download the wheel, verify its two model files and write the ``.task`` to target."""
    wheel_spec = WHEELS.get(platform.machine().lower(), WHEELS["x86_64"])
    print(f"pianobridge: fetching the hand model from {wheel_spec} on the package registry (once)", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            tmp,
            wheel_spec,
        ]
        got = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if got.returncode != 0 or not wheels:
            reason = (got.stderr.strip().splitlines() or ["no wheel"])[-1]
            raise UserError(f"cannot fetch the hand model ({wheel_spec}: {reason}); pass --hand-model PATH.task")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        with zipfile.ZipFile(wheels[0]) as whl, zipfile.ZipFile(partial, "w") as task:
            for member, (name, digest) in MEMBERS.items():
                data = whl.read(member)
                if hashlib.sha256(data).hexdigest() != digest:
                    raise UserError(f"{member} in {wheels[0].name} does not match its known checksum")
                task.writestr(name, data)
        partial.replace(target)  # never leave half a model where the next run looks
    return target
