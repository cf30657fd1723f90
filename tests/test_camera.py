"""Camera side: the hand model fetched from the package registry, hands found in real
overhead piano frames (the shared development frames, when present), frames from
images, videos and a capture thread, and one-line errors."""

import json
import os
import threading
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from conftest import SHARED, cli

from bridge.camera.detect import Hand, handedness_from_geometry, keyboard_rows, merge, one_of_each
from bridge.camera.frames import CameraCapture
from bridge.camera.handmodel import MEMBERS, hand_model

FRAMES = SHARED / "data" / "piano-hands-dev"
needs_frames = pytest.mark.skipif(not FRAMES.is_dir(), reason="the shared piano-hands-dev frames are not here")


def test_hand_model_is_assembled_checked_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("PIANOBRIDGE_HAND_MODEL", raising=False)
    task = hand_model()
    import zipfile

    with zipfile.ZipFile(task) as z:
        assert sorted(z.namelist()) == sorted(name for name, _ in MEMBERS.values())
    stamp = task.stat().st_mtime_ns
    assert hand_model() == task and task.stat().st_mtime_ns == stamp  # cached
    task.write_bytes(b"broken")  # a damaged cache is rebuilt, not trusted
    assert hand_model() == task and zipfile.is_zipfile(task)


def _hand(angle: float, right: bool) -> np.ndarray:
    """21 landmarks of a flat palm-down hand seen from above, fingers up, rotated."""
    pts = np.zeros((21, 3))
    side = -1 if right else 1  # the thumb is on the left of a right hand seen from above
    knuckles = {5: 1.5, 9: 0.5, 13: -0.5, 17: -1.5}
    for base, x in knuckles.items():
        for k in range(4):
            pts[base + k, :2] = (side * x, -3 - k)
    for k in range(1, 5):
        pts[k, :2] = (side * (2 + 0.5 * k), -1 - 0.5 * k)
    c, s = np.cos(angle), np.sin(angle)
    pts[:, :2] = pts[:, :2] @ np.array([[c, -s], [s, c]]).T
    return pts


@pytest.mark.parametrize("angle", [0.0, 0.6, -0.6, np.pi / 2, np.pi])
def test_handedness_from_geometry(angle):
    assert handedness_from_geometry(_hand(angle, True)) == "right"
    assert handedness_from_geometry(_hand(angle, False)) == "left"


def test_merge_keeps_one_hand_per_place():
    a = Hand("left", 0.9, _hand(0, False) * 40 + 100)
    b = Hand("left", 0.6, _hand(0, False) * 40 + 103)
    c = Hand("right", 0.8, _hand(0, True) * 40 + 600)
    assert merge([b, a, c]) == [a, c]


def test_two_hands_called_the_same_are_one_of_each():
    side_by_side = [
        Hand("right", 0.9, _hand(0, True) * 40 + (600, 300, 0)),
        Hand("right", 0.9, _hand(0, True) * 40 + 300),
    ]
    assert [h.handedness for h in one_of_each(side_by_side)] == ["right", "left"]
    apart = [Hand("right", 0.9, _hand(0, True) * 40 + (600, 900, 0)), Hand("right", 0.9, _hand(0, True) * 40 + 300)]
    assert [h.handedness for h in one_of_each(apart)] == ["right", "right"]  # two keyboards: no guess
    mixed = [Hand("left", 0.9, _hand(0, False) * 40 + (600, 300, 0)), Hand("right", 0.9, _hand(0, True) * 40 + 300)]
    assert [h.handedness for h in one_of_each(mixed)] == ["left", "right"]  # crossed hands stay crossed


def test_keyboard_rows_on_a_drawn_keyboard():
    img = np.full((400, 700), 30, np.uint8)
    img[200:320, 20:680] = 235  # white keys
    for k in range(40):
        if k % 7 not in (2, 6):
            x = 20 + 16 * k + 11
            img[200:275, x : x + 10] = 10  # black keys
    top, bottom = keyboard_rows(img)
    assert 195 <= top <= 210 and 265 <= bottom <= 280


def _boxes(path):
    root = ET.parse(path.with_suffix(".xml")).getroot()
    return [
        [float(o.find("bndbox").find(k).text) for k in ("xmin", "ymin", "xmax", "ymax")] for o in root.iter("object")
    ]


@needs_frames
def test_hands_found_in_real_frames(tmp_path):
    images = sorted(FRAMES.glob("*.jpg"))[:12]
    out = tmp_path / "h.jsonl"
    p = cli("hands", *images, "--jsonl", out, timeout=600)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [line["image"] for line in lines] == [str(i) for i in images]
    boxes = found = 0
    for image, line in zip(images, lines):
        for h in line["hands"]:
            assert h["handedness"] in ("left", "right") and len(h["landmarks"]) == 21
            assert all(len(pt) == 3 for pt in h["landmarks"])
        centres = [np.mean(h["landmarks"], 0)[:2] for h in line["hands"]]
        for b in _boxes(image):
            boxes += 1
            found += any(b[0] <= x <= b[2] and b[1] <= y <= b[3] for x, y in centres)
    assert found / boxes >= 0.75  # stock MediaPipe: about 0.6 on these frames


@needs_frames
def test_videos_and_stills_mixed_keep_their_order(tmp_path):
    import cv2

    images = sorted(FRAMES.glob("*.jpg"))[:3]
    still = cv2.imread(str(images[1]))
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (still.shape[1], still.shape[0]))
    for k in range(6):
        writer.write(np.roll(still, 3 * k, axis=1))
    writer.release()
    out = tmp_path / "v.jsonl"
    # a second video starts its time from 0 again, which MediaPipe's tracker refuses
    inputs = [video, images[0], images[2], video]
    p = cli("hands", *inputs, "--jsonl", out, "--workers", "2", timeout=300)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(line["image"], line.get("frame")) for line in lines] == (
        [(str(video), k) for k in range(6)] + [(str(images[0]), None), (str(images[2]), None)]
        + [(str(video), k) for k in range(6)]
    )  # fmt: skip
    assert lines[1]["t"] == pytest.approx(1 / 30, abs=1e-3)
    assert all(line["hands"] for line in lines[:6] + lines[8:])
    assert [line["hands"] for line in lines[:6]] == [line["hands"] for line in lines[8:]]


def test_capture_thread_stamps_and_counts(tmp_path):
    import cv2

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    for k in range(40):
        writer.write(np.full((48, 64, 3), k * 5, np.uint8))
    writer.release()
    got = []
    done = threading.Event()

    def slow_consumer(frame):
        got.append(frame)
        time.sleep(0.01)

    cap = CameraCapture(str(video), slow_consumer)
    cap.start()
    cap.wait(10)
    done.set()
    cap.close()
    assert cap.read == 40 and len(got) + cap.dropped == 40
    stamps = [f.t for f in got]
    assert stamps == sorted(stamps) and [f.index for f in got] == sorted(f.index for f in got)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.jpg", None, "no such image: "),
        ("missing.mp4", None, "no such image or video"),
        ("broken.jpg", b"not an image", "cannot read image"),
        ("broken.mp4", b"not a video", "cannot read video"),
    ],
)
def test_bad_input_one_line(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    p = cli("hands", path, "--jsonl", tmp_path / "o.jsonl")
    assert p.returncode == 2 and message in p.stderr and p.stderr.count("\n") == 1, p.stderr


def test_a_landmarker_built_and_torn_down_leaves_one_line(tmp_path):
    """MediaPipe 1.2.3 logs from native code as each landmarker is destroyed; none of it
    may reach the user, whatever the library logs next."""
    import cv2

    img = tmp_path / "keys.png"
    cv2.imwrite(str(img), np.full((96, 160, 3), 200, np.uint8))
    p = cli("hands", img, img, "--jsonl", tmp_path / "o.jsonl", "--workers", "2", timeout=300)
    assert p.returncode == 0 and p.stderr.splitlines() == [
        f"pianobridge: 0 hands in 2 frames -> {tmp_path / 'o.jsonl'}"
    ], p.stderr


def test_native_stderr_diverted_python_stderr_kept(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    code = (
        "import os, sys\n"
        "from bridge.native import divert_native_stderr\n"
        "divert_native_stderr()\n"
        "os.write(2, b'INFO: from C\\n')\n"
        "print('pianobridge: ours', file=sys.stderr)\n"
    )
    log = tmp_path / "native.log"
    for env, native_to in (({}, None), ({"PIANOBRIDGE_NATIVE_LOG": str(log)}, log)):
        p = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env}
        )
        assert p.returncode == 0 and p.stderr == "pianobridge: ours\n", p.stderr
        if native_to:
            assert native_to.read_text() == "INFO: from C\n"


def test_missing_or_bad_model_file(tmp_path):
    img = tmp_path / "x.png"
    import cv2

    cv2.imwrite(str(img), np.zeros((32, 32, 3), np.uint8))
    p = cli("hands", img, "--jsonl", tmp_path / "o.jsonl", "--hand-model", tmp_path / "none.task")
    assert p.returncode == 2 and "hand model not found" in p.stderr
    (tmp_path / "bad.task").write_bytes(b"junk")
    p = cli("hands", img, "--jsonl", tmp_path / "o.jsonl", "--hand-model", tmp_path / "bad.task")
    assert p.returncode == 2 and "not a MediaPipe hand landmarker model" in p.stderr and p.stderr.count("\n") == 1
