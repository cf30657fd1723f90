"""Everything a user hands pianobridge besides scores and MIDI (images, videos, weights,
calibrations, landmark streams, session logs, config files) and every file it writes:
a bad one is one line on stderr, exit 2, no traceback, never a hang, under 1 GB. The bad
files are made here, in tmp_path."""

import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, bundled, cli_measured, performance

from bridge.camera.handmodel import hand_model
from bridge.events import Annotation, NoteVerdict, Position, Status

MODEL = ROOT / "model"


def one_line(args, *words, timeout: float = 60):
    """Run the command; it must fail with exactly one error line holding ``words``."""
    p, peak_mb = cli_measured(*args, timeout=timeout)
    lines = p.stderr.splitlines()
    assert p.returncode == 2, p.stderr
    assert len(lines) == 1 and lines[0].startswith("pianobridge: error:"), p.stderr
    assert "Traceback" not in p.stderr
    assert peak_mb < 1024, f"{peak_mb:.0f} MB"
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def sparse(path: Path, size: int) -> Path:
    """A file that says it is ``size`` bytes long (all zeros) without using the disk."""
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def fifo(path: Path) -> Path:
    os.mkfifo(path)  # reading it would wait for a writer forever
    return path


# ------------------------------------------------------------------ images and videos


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(path: Path, width: int, height: int) -> Path:
    """A real PNG of one colour: a few MB of file, width x height x 3 bytes decoded."""
    packer, row = zlib.compressobj(1), b"\0" * (1 + 3 * width)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", data) + _chunk(b"IEND", b""))
    return path


def jpeg_claiming(path: Path, width: int, height: int) -> Path:
    """A small JPEG whose frame header claims width x height."""
    import cv2

    data = bytearray(cv2.imencode(".jpg", np.full((16, 16, 3), 128, np.uint8))[1].tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    path.write_bytes(bytes(data))
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    import cv2

    d = tmp_path_factory.mktemp("images")
    bomb = png_bomb(d / "bomb.png", 20000, 20000)  # 1.2 GB of pixels: 3.4 GB in calibrate once
    video = d / "wide.avi"  # 42 megapixels a frame
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (7000, 6000))
    writer.write(np.full((6000, 7000, 3), 90, np.uint8))
    writer.release()
    (d / "bomb.avi").write_bytes(bomb.read_bytes())  # a picture named like a video: FFmpeg decodes it on open
    small = d / "keys.png"
    cv2.imwrite(str(small), np.full((120, 200, 3), 200, np.uint8))
    return {
        "png-20000x20000": bomb,
        "jpeg-claims-9000x9000": jpeg_claiming(d / "claims.jpg", 9000, 9000),
        "jpeg-claims-60000x60000": jpeg_claiming(d / "huge.jpg", 60000, 60000),
        "png-named-avi": d / "bomb.avi",
        "video-7000x6000-frames": video,
        "small": small,
    }


IMAGE_CASES = ["png-20000x20000", "jpeg-claims-9000x9000", "jpeg-claims-60000x60000", "png-named-avi"]


@pytest.mark.parametrize("case", IMAGE_CASES + ["video-7000x6000-frames"])
def test_hands_refuses_huge_pictures_before_decoding(images, tmp_path, case):
    one_line(("hands", images[case], "--jsonl", tmp_path / "o.jsonl"), "megapixels")


@pytest.mark.parametrize("case", IMAGE_CASES + ["video-7000x6000-frames"])
def test_calibrate_refuses_huge_pictures_before_decoding(images, tmp_path, case):
    one_line(("calibrate", images[case], "--out", tmp_path / "cal.json"), "megapixels")
    assert not (tmp_path / "cal.json").exists()


# ------------------------------------------------------------------ weights


def _shipped(name: str = "fingering") -> dict[str, np.ndarray]:
    with np.load(MODEL / f"{name}.npz") as data:
        return {k: data[k] for k in data.files}


def _npz(path: Path, arrays: dict) -> Path:
    np.savez_compressed(path, **arrays)
    return path


def _with_info(**change) -> dict:
    arrays = _shipped()
    info = json.loads(str(arrays["info"]))
    arrays["info"] = np.array(json.dumps({**info, **change}))
    return arrays


def _zip_member(path: Path, name: str, header_shape: tuple, zeros: int) -> Path:
    """A weights file whose one array says ``header_shape`` and holds ``zeros`` zero bytes."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": header_shape})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z, z.open(name, "w", force_zip64=True) as f:
        f.write(header.getvalue())
        for _ in range(zeros >> 20):
            f.write(bytes(1 << 20))
    return path


WEIGHTS = {
    "not-a-zip": lambda d: _write(d / "w.npz", b"this is not a zip file"),
    "empty-zip": lambda d: _npz(d / "w.npz", {}),
    "no-info": lambda d: _npz(d / "w.npz", {k: v for k, v in _shipped().items() if k != "info"}),
    "info-not-json": lambda d: _npz(d / "w.npz", {**_shipped(), "info": np.array("{members: 4")}),
    "info-a-list": lambda d: _npz(d / "w.npz", {**_shipped(), "info": np.array("[4, 2]")}),
    "info-not-a-string": lambda d: _npz(d / "w.npz", {**_shipped(), "info": np.zeros(3)}),
    "a-billion-members": lambda d: _npz(d / "w.npz", _with_info(members=10**9)),
    "members-as-text": lambda d: _npz(d / "w.npz", _with_info(members="4")),
    "hands-weights": lambda d: _write(d / "w.npz", (MODEL / "hands.npz").read_bytes()),
    "missing-array": lambda d: _npz(d / "w.npz", {k: v for k, v in _shipped().items() if k != "m0.pair.bias"}),
    "extra-array": lambda d: _npz(d / "w.npz", {**_shipped(), "m0.extra": np.zeros(3, np.float32)}),
    "wrong-shape": lambda d: _npz(d / "w.npz", {**_shipped(), "m0.unary.weight": np.zeros((5, 7), np.float32)}),
    "integer-array": lambda d: _npz(d / "w.npz", {**_shipped(), "m0.unary.bias": np.zeros(5, np.int64)}),
    "object-array": lambda d: _npz(d / "w.npz", {**_shipped(), "m0.unary.bias": np.array([{}] * 5, dtype=object)}),
    "64-MB-of-zeros-unpacked": lambda d: _zip_member(d / "w.npz", "m0.big.npy", (16 << 20,), 64 << 20),
    "header-claims-3.6-GB": lambda d: _zip_member(d / "w.npz", "m0.big.npy", (30000, 30000), 0),
    "2000-arrays": lambda d: _npz(d / "w.npz", {f"a{i}": np.zeros(1) for i in range(2000)}),
    "file-over-32-MB": lambda d: sparse(d / "w.npz", 40 << 20),
    "directory": lambda d: _mkdir(d / "w.npz"),
    "fifo": lambda d: fifo(d / "w.npz"),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


@pytest.mark.parametrize("case", list(WEIGHTS))
def test_fingering_refuses_bad_weights(tmp_path, case):
    weights = WEIGHTS[case](tmp_path)
    one_line(("fingering", bundled("chorale"), "--out", tmp_path / "o.musicxml", "--weights", weights), str(weights))
    assert not (tmp_path / "o.musicxml").exists()


# ------------------------------------------------------------------ calibration and landmark streams

GOOD_CAL = {
    "image_size": [1920, 1080],
    "corners": [[100, 900], [1800, 900], [1800, 700], [100, 700]],
    "lowest_key": 21,
    "highest_key": 108,
}
HAND = {"handedness": "right", "score": 0.9, "landmarks": [[900.0 + i, 800.0, 0.0] for i in range(21)]}


def _cal(**change) -> str:
    return json.dumps({**GOOD_CAL, **change})


CALIBRATIONS = {
    "nan-corner": _cal(corners=[[float("nan"), 900], [1800, 900], [1800, 700], [100, 700]]),
    "infinite-corner": _cal(corners=[[float("inf"), 900], [1800, 900], [1800, 700], [100, 700]]),
    "text-corner": _cal(corners=[["left", 900], [1800, 900], [1800, 700], [100, 700]]),
    "three-corners": _cal(corners=[[100, 900], [1800, 900], [1800, 700]]),
    "corners-in-3d": _cal(corners=[[100, 900, 1], [1800, 900, 1], [1800, 700, 1], [100, 700, 1]]),
    "all-corners-one-point": _cal(corners=[[5, 5]] * 4),
    "corners-folded": _cal(corners=[[100, 900], [1800, 700], [1800, 900], [100, 700]]),
    "image-100000x100000": _cal(image_size=[100000, 100000]),
    "image-width-0": _cal(image_size=[0, 1080]),
    "image-size-true": _cal(image_size=[True, 1080]),
    "image-size-float": _cal(image_size=[1920.5, 1080]),
    "image-size-three": _cal(image_size=[1920, 1080, 3]),
    "image-size-text": _cal(image_size="1920x1080"),
    "low-above-high": _cal(lowest_key=108, highest_key=21),
    "low-below-0": _cal(lowest_key=-3),
    "high-above-127": _cal(highest_key=200),
    "a-billion-keys": _cal(highest_key=10**9),
    "black-lowest-key": _cal(lowest_key=22),
    "keys-as-text": _cal(lowest_key="21"),
    "no-corners": json.dumps({k: v for k, v in GOOD_CAL.items() if k != "corners"}),
    "a-list": "[1, 2, 3]",
    "not-json": "corners: 100 900",
    "deeply-nested": "[" * 100000,
}


def _follow_hands(tmp_path, stream: Path, calibration: Path, *words):
    one_line(
        ("follow", bundled("chorale"), performance("chorale"), "--jsonl", tmp_path / "o.jsonl")
        + ("--hands", stream, "--calibration", calibration),
        *words,
    )


def _stream(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


@pytest.mark.parametrize("case", list(CALIBRATIONS))
def test_follow_refuses_bad_calibrations(tmp_path, case):
    cal = tmp_path / "cal.json"
    cal.write_text(CALIBRATIONS[case])
    stream = _stream(tmp_path / "s.jsonl", [{"t": 0.0, "hands": [HAND]}])
    _follow_hands(tmp_path, stream, cal, str(cal))


@pytest.mark.parametrize(
    "case, make",
    [
        ("directory", lambda d: _mkdir(d / "cal.json")),
        ("fifo", lambda d: fifo(d / "cal.json")),
        ("file-over-1-MB", lambda d: sparse(d / "cal.json", 2 << 20)),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_follow_refuses_calibration_files_it_should_not_read(tmp_path, case, make):
    stream = _stream(tmp_path / "s.jsonl", [{"t": 0.0, "hands": [HAND]}])
    _follow_hands(tmp_path, stream, make(tmp_path), "calibration file")


def _hand(**change) -> dict:
    return {**HAND, **change}


STREAMS = {
    "not-json": [{"t": 0.0, "hands": []}, "{t: 1"],
    "a-list": [{"t": 0.0, "hands": []}, "[0.1, []]"],
    "nan-time": [{"t": 0.0, "hands": []}, {"t": float("nan"), "hands": []}],
    "negative-time": [{"t": 0.0, "hands": []}, {"t": -2.0, "hands": []}],
    "time-1e300": [{"t": 0.0, "hands": []}, {"t": 1e300, "hands": []}],
    "time-as-text": [{"t": 0.0, "hands": []}, {"t": "0:01", "hands": []}],
    "no-time": [{"t": 0.0, "hands": []}, {"hands": []}],
    "hands-not-a-list": [{"t": 0.0, "hands": []}, {"t": 0.1, "hands": {"right": 1}}],
    "20-landmarks": [{"t": 0.0, "hands": []}, {"t": 0.1, "hands": [_hand(landmarks=HAND["landmarks"][:20])]}],
    "2d-landmarks": [{"t": 0.0, "hands": []}, {"t": 0.1, "hands": [_hand(landmarks=[[1.0, 2.0]] * 21)]}],
    "nan-landmark": [
        {"t": 0.0, "hands": []},
        {"t": 0.1, "hands": [_hand(landmarks=[[float("nan"), 1.0, 0.0]] * 21)]},
    ],
    "landmark-at-1e300": [
        {"t": 0.0, "hands": []},
        {"t": 0.1, "hands": [_hand(landmarks=[[1e300, 1.0, 0.0]] * 21)]},
    ],
    "text-landmark": [{"t": 0.0, "hands": []}, {"t": 0.1, "hands": [_hand(landmarks=[["1", 1.0, 0.0]] * 21)]}],
    "third-hand-kind": [{"t": 0.0, "hands": []}, {"t": 0.1, "hands": [_hand(handedness="middle")]}],
    "nan-score": [{"t": 0.0, "hands": []}, {"t": 0.1, "hands": [_hand(score=float("nan"))]}],
    "nine-hands": [{"t": 0.0, "hands": []}, {"t": 0.1, "hands": [HAND] * 9}],
    "line-over-64-KB": [{"t": 0.0, "hands": []}, json.dumps({"t": 0.1, "hands": [], "pad": "x" * 70000})],
}


@pytest.mark.parametrize("case", list(STREAMS))
def test_follow_refuses_bad_landmark_streams_naming_the_line(tmp_path, case):
    cal = tmp_path / "cal.json"
    cal.write_text(json.dumps(GOOD_CAL))
    stream = _stream(tmp_path / "s.jsonl", STREAMS[case])
    _follow_hands(tmp_path, stream, cal, f"{stream}:2:")


@pytest.mark.parametrize(
    "case, make, words",
    [
        ("directory", lambda d: _mkdir(d / "s.jsonl"), "not a regular file"),
        ("fifo", lambda d: fifo(d / "s.jsonl"), "not a regular file"),
        ("file-over-256-MB", lambda d: sparse(d / "s.jsonl", 300 << 20), "too large"),
        ("empty", lambda d: _write(d / "s.jsonl", b""), "no frames"),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_follow_refuses_landmark_files_it_should_not_read(tmp_path, case, make, words):
    cal = tmp_path / "cal.json"
    cal.write_text(json.dumps(GOOD_CAL))
    _follow_hands(tmp_path, make(tmp_path), cal, words)


@pytest.mark.parametrize(
    "flags, words",
    [
        (("--keys", "0-100000000"), "0-100000000"),  # drew 100 million keys, for ever
        (("--keys", "60-48"), "60-48"),
        (("--keys", "61-72"), "61-72"),
        (("--keys=-5-60",), "--keys"),
        (("--keys", "a-b"), "--keys"),
        (("--corners", "nan,0,100,0,100,50,0,50"), "--corners"),
        (("--corners", "0,0,inf,0,100,50,0,50"), "--corners"),
        (("--corners", "1,2,3"), "--corners"),
        (("--corners", "5,5,5,5,5,5,5,5"), "quadrilateral"),
    ],
    ids=lambda x: " ".join(x) if isinstance(x, tuple) else "",
)
def test_calibrate_refuses_bad_keys_and_corners(images, tmp_path, flags, words):
    one_line(("calibrate", images["small"], "--out", tmp_path / "cal.json", *flags), words)
    assert not (tmp_path / "cal.json").exists()


# ------------------------------------------------------------------ session logs


def _header(**change) -> dict:
    score = bundled("chorale")
    return {
        "type": "session",
        "version": 1,
        "score": str(score),
        "score_sha256": hashlib.sha256(score.read_bytes()).hexdigest(),
        "started": "2026-01-01T00:00:00+00:00",
        "settings": {"fingering": False},
        **change,
    }


NOTE = {"dir": "in", "type": "note_on", "t": 0.5, "pitch": 60, "velocity": 70, "channel": 0}


def _note(**change) -> dict:
    return {**NOTE, **change}


def _settings(**change) -> dict:
    return _header(settings={"fingering": False, **change})


SESSIONS = {  # (lines, words in the error)
    "header-a-list": (["[1, 2]"], "not a pianobridge session log"),
    "header-a-string": (['"session"'], "not a pianobridge session log"),
    "header-without-score": ([{k: v for k, v in _header().items() if k != "score"}], ":1:"),
    "header-score-a-number": ([_header(score=5)], ":1:"),
    "header-settings-a-list": ([_header(settings=[])], ":1:"),
    "header-fingering-as-text": ([_settings(fingering="false")], ":1:"),
    "header-calibration-a-number": ([_settings(calibration=3)], ":1:"),
    "header-version-2": ([_header(version=2)], ":1:"),
    "input-unknown-field": ([_header(), NOTE, _note(loud=True)], ":3:"),
    "input-missing-pitch": ([_header(), {k: v for k, v in NOTE.items() if k != "pitch"}], ":2:"),
    "input-pitch-as-text": ([_header(), _note(pitch="60")], ":2:"),
    "input-pitch-200": ([_header(), _note(pitch=200)], ":2:"),
    "input-velocity-true": ([_header(), _note(velocity=True)], ":2:"),
    "input-channel-16": ([_header(), _note(channel=16)], ":2:"),
    "input-sure-a-word": ([_header(), _note(sure="yes")], ":2:"),
    "input-negative-time": ([_header(), _note(t=-1.0)], ":2:"),
    "input-nan-time": ([_header(), _note(t=float("nan"))], ":2:"),
    "input-time-1e300": ([_header(), _note(t=1e300)], ":2:"),
    "input-time-as-smpte": ([_header(), _note(t="00:00:01:12")], ":2:"),
    "input-unknown-type": ([_header(), {"dir": "in", "type": "explode", "t": 0.0}], ":2:"),
    "input-type-a-list": ([_header(), {"dir": "in", "type": ["note_on"], "t": 0.0}], ":2:"),
    "input-status-detail-a-list": (
        [_header(), {"dir": "in", "type": "status", "t": 0.0, "state": "x", "detail": []}],
        ":2:",
    ),
    "input-hands-nan": (
        [_header(), {"dir": "in", "type": "hands", "t": 0.1, "hands": [_hand(landmarks=[[float("nan"), 0, 0]] * 21)]}],
        ":2:",
    ),
    "input-hands-20-points": (
        [_header(), {"dir": "in", "type": "hands", "t": 0.1, "hands": [_hand(landmarks=HAND["landmarks"][:20])]}],
        ":2:",
    ),
    "output-without-type": ([_header(), NOTE, {"dir": "out", "t": 0.5}], ":3:"),
    "unknown-dir": ([_header(), _note(dir="sideways")], ":2:"),
    "second-header": ([_header(), NOTE, _header()], ":3:"),
    "a-list-inside": ([_header(), NOTE, "[1]", NOTE], ":3:"),
    "not-json-inside": ([_header(), NOTE, "{dir: in", NOTE], ":3:"),
    "line-over-1-MB": ([_header(), NOTE, json.dumps(_note(pad="x" * (2 << 20))), NOTE], ":3:"),
}


@pytest.mark.parametrize("case", list(SESSIONS))
def test_replay_refuses_bad_session_logs(tmp_path, case):
    lines, words = SESSIONS[case]
    log = _stream(tmp_path / "s.jsonl", lines)
    one_line(("replay", log), str(log), words)


@pytest.mark.parametrize(
    "case, make, words",
    [
        ("directory", lambda d: _mkdir(d / "s.jsonl"), "not a regular file"),
        ("fifo", lambda d: fifo(d / "s.jsonl"), "not a regular file"),
        ("one-2-GB-line", lambda d: sparse(d / "s.jsonl", 2 << 30), ":1:"),
        ("file-over-4-GB", lambda d: sparse(d / "s.jsonl", 5 << 30), "too large"),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_replay_refuses_session_files_it_should_not_read(tmp_path, case, make, words):
    one_line(("replay", make(tmp_path)), words)


# ------------------------------------------------------------------ run --config

CONFIGS = {
    "fingering-as-text": ('fingering = "false"', "fingering must be true or false"),
    "osc-a-string": ('osc = "127.0.0.1:9000"', "osc must be a list of strings"),
    "osc-list-of-numbers": ("osc = [9000]", "osc must be a list of strings"),
    "library-a-string": ('library = "scores"', "library must be a list of strings"),
    "camera-true": ("camera = true", "camera must be string or integer"),
    "camera-a-float": ("camera = 1.5", "camera must be string or integer"),
    "score-a-number": ("score = 5", "score must be string"),
    "view-a-number": ("view = 1", "view must be true or false"),
    "osc-in-remote-as-text": ('osc_in_remote = "yes"', "osc_in_remote must be true or false"),
    "session-dir-a-table": ("[session_dir]\npath = 'x'", "session_dir must be string"),
    "playing-three-hands": ('playing = "three"', "playing must be one of auto, both, right, left"),
    "unknown-setting": ('colour = "blue"', "unknown settings colour"),
    "not-toml": ("score = ", "not valid TOML"),
    "deeply-nested": ("a = " + "[" * 100000, "not valid TOML"),
}


@pytest.mark.parametrize("case", list(CONFIGS))
def test_run_refuses_bad_configs_before_any_midi(tmp_path, case):
    text, words = CONFIGS[case]
    cfg = tmp_path / "c.toml"
    cfg.write_text(text + "\n")
    one_line(("run", "--config", cfg), str(cfg), words)


@pytest.mark.parametrize(
    "case, make, words",
    [
        ("directory", lambda d: _mkdir(d / "c.toml"), "not a regular file"),
        ("fifo", lambda d: fifo(d / "c.toml"), "not a regular file"),
        ("file-over-1-MB", lambda d: sparse(d / "c.toml", 2 << 20), "too large"),
        ("missing", lambda d: d / "c.toml", "config file not found"),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_run_refuses_config_files_it_should_not_read(tmp_path, case, make, words):
    one_line(("run", "--config", make(tmp_path)), words)


# ------------------------------------------------------------------ outputs

FOLLOW = ("follow", bundled("chorale"), performance("chorale"))


def _session_log(tmp_path: Path) -> Path:
    """A short session log written by hand: three key presses."""
    notes = [_note(t=0.5 + 0.5 * i, pitch=p) for i, p in enumerate((60, 64, 67))]
    return _stream(tmp_path / "s.jsonl", [_header(), *notes])


OUTPUTS = {  # name -> (command given tmp_path and the bad target, the target)
    "follow --jsonl /dev/full": (lambda d, o: (*FOLLOW, "--jsonl", o), "/dev/full"),
    "follow --jsonl DIR": (lambda d, o: (*FOLLOW, "--jsonl", o), "DIR"),
    "follow --jsonl FILE/x": (lambda d, o: (*FOLLOW, "--jsonl", o), "FILE/x"),
    "follow --plot /dev/full": (lambda d, o: (*FOLLOW, "--plot", o), "/dev/full"),
    "follow --plot DIR": (lambda d, o: (*FOLLOW, "--plot", o), "DIR"),
    "fingering --out /dev/full": (lambda d, o: ("fingering", bundled("chorale"), "--out", o), "/dev/full"),
    "fingering --out DIR": (lambda d, o: ("fingering", bundled("chorale"), "--out", o), "DIR"),
    "fingering MIDI --out /dev/full": (lambda d, o: ("fingering", performance("chorale"), "--out", o), "/dev/full"),
    "replay --jsonl /dev/full": (lambda d, o: ("replay", _session_log(d), "--jsonl", o), "/dev/full"),
    "replay --jsonl DIR": (lambda d, o: ("replay", _session_log(d), "--jsonl", o), "DIR"),
}


def _target(tmp_path: Path, name: str) -> str:
    if name == "DIR":
        return str(_mkdir(tmp_path / "out"))
    if name == "FILE/x":
        return str(_write(tmp_path / "file", b"") / "x")
    return name


@pytest.mark.parametrize("case", list(OUTPUTS))
def test_a_failed_write_is_one_line(tmp_path, case):
    command, target = OUTPUTS[case]
    path = _target(tmp_path, target)
    one_line(command(tmp_path, path), f"cannot write {path}:")


@pytest.mark.parametrize(
    "flag, target",
    [("--out", "/dev/full"), ("--out", "DIR"), ("--overlay", "/dev/full"), ("--overlay", "DIR")],
    ids=lambda x: x,
)
def test_calibrate_failed_write_is_one_line(images, tmp_path, flag, target):
    path = _target(tmp_path, target)
    out = path if flag == "--out" else tmp_path / "cal.json"
    corners = ("--corners", "10,100,190,100,190,20,10,20", "--keys", "48-72")
    one_line(
        ("calibrate", images["small"], "--out", out, *corners, *(("--overlay", path) if flag == "--overlay" else ())),
        f"cannot write {path}:",
    )


def test_calibrate_overlay_format_and_place(images, tmp_path):
    corners = ("--corners", "10,100,190,100,190,20,10,20", "--keys", "48-72")
    one_line(
        ("calibrate", images["small"], "--out", tmp_path / "c.json", *corners, "--overlay", tmp_path / "k.xyz"), "k.xyz"
    )
    one_line(("calibrate", images["small"], "--out", tmp_path / "c.png", *corners), "overwrite")
    p, _ = cli_measured(
        "calibrate", images["small"], "--out", tmp_path / "c.json", *corners, "--overlay", tmp_path / "keys"
    )
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "keys").read_bytes()[:4] == b"\x89PNG" and not (tmp_path / "keys.png").exists()


def test_hands_failed_write_is_one_line(images):
    # the model is fetched here, not by the command: on a fresh machine its first use says
    # so on stderr, which is a second line but not an error
    task = hand_model()
    one_line(
        ("hands", images["small"], "--hand-model", task, "--jsonl", "/dev/full"), "cannot write /dev/full:", timeout=300
    )


def test_plot_is_written_where_asked_with_no_suffix_added(tmp_path):
    p, _ = cli_measured(*FOLLOW, "--plot", tmp_path / "plot")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "plot").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not (tmp_path / "plot.png").exists()


def test_stdout_full_is_one_line(tmp_path):
    for flags in (("--jsonl", "-"), ("--summary",)):
        with open("/dev/full", "w") as full:
            p = subprocess.run(
                [sys.executable, "-m", "bridge.cli", *map(str, FOLLOW), *flags],
                stdout=full, stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=120,
            )  # fmt: skip
        assert p.returncode == 2 and p.stderr.count("\n") == 1 and "cannot write" in p.stderr, p.stderr


# ------------------------------------------------------------------ outside text in rich


def test_summary_of_a_score_titled_with_markup(tmp_path):
    text = bundled("chorale").read_text()
    assert text.count("<work-title>Chorale</work-title>") == 1
    score = tmp_path / "Etude [bold.musicxml"
    score.write_text(
        text.replace("<work-title>Chorale</work-title>", "<work-title>Etude [/] no. 1 [bold</work-title>").replace(
            "<movement-title>Chorale</movement-title>", "<movement-title>Etude [/] no. 1 [bold</movement-title>"
        )
    )
    p, peak_mb = cli_measured("follow", score, performance("chorale"), "--summary")
    assert p.returncode == 0, p.stderr
    assert "pianobridge: Etude [/] no. 1 [bold" in p.stdout and "notes played" in p.stdout


def test_live_view_shows_outside_text_as_text():
    from rich.console import Console

    from bridge.live.view import TerminalView

    view = TerminalView("Etude [/] no. 1 [bold")
    view(Status(0.0, "osc_ignored", "/pianobridge/x [/] [bold red]"))
    view(Annotation(0.1, "[/]", "[bold]play [/] softer", 3, "n1"))
    view(NoteVerdict(0.2, 60, 64, "correct", None, Position("n1", 1, 1, 1.0, 0.0, 0.9), printed_finger="[/]"))
    console = Console(file=io.StringIO(), width=120)
    console.print(view.render())
    shown = console.file.getvalue()
    assert "Etude [/] no. 1 [bold" in shown and "[/] [bold red]" in shown and "finger [/]" in shown


# ------------------------------------------------------------------ follow keeps little per note


def test_follow_summary_and_plot_keep_bounded_or_compact_records():
    """What `follow` keeps for --summary does not grow with the performance; what it
    keeps for --plot is a few numbers a press. The counts match the list-based reading."""
    import tracemalloc
    from collections import Counter

    from bridge.report import FollowRecord, revised_notes

    def events(n):
        for i in range(n):
            t = 0.25 * i
            yield {
                "type": "note", "t": t, "pitch": 60 + i % 12, "velocity": 64, "verdict": ("correct", "extra")[i % 7 == 0],
                "match": None, "position": {"measure": 1 + i // 8, "beat": 1.0, "onset_q": 0.5 * i},
                "latency_us": 50 + i % 300, "timing": "on_time", "loudness": "ok", "tempo_bpm": 120.0,
                "velocity_expected": 64,
            }  # fmt: skip
            if i % 50 == 49:  # the press before was an extra note after all
                yield {"type": "revised", "t": t, "of_t": t - 0.25, "pitch": 60 + (i - 1) % 12}
            if i % 97 == 0:
                yield {"type": "missed", "t": t, "note_id": "x", "pass": 1}

    small = list(events(2000))
    rec = FollowRecord.of(small, notes=True)
    notes = revised_notes(small)
    lat = sorted(r["latency_us"] for r in notes)
    assert rec.played == len(notes) and rec.missed_count == sum(r["type"] == "missed" for r in small)
    assert +rec.verdicts == Counter(r["verdict"] for r in notes)
    assert (rec.latency_at(0.5), rec.latency_at(0.99)) == (lat[len(lat) // 2], lat[int(0.99 * (len(lat) - 1))])
    assert [rec.verdict[i] for i in range(len(notes))] == [
        ("correct", "wrong_pitch", "extra").index(r["verdict"]) for r in notes
    ]

    for keep_notes, most in ((False, 2 << 20), (True, (2 << 20) + 200_000 * 40)):
        tracemalloc.start()
        rec = FollowRecord(notes=keep_notes)
        for r in events(200_000):
            rec.add(r)
        kept = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert kept < most, (keep_notes, kept)
