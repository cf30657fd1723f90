"""Keyboard geometry and calibration, synthetic landmark streams, and telling which
finger pressed each key (camera evidence, clock alignment, fusion with the fingering
model), end to end through `pianobridge follow --hands --calibration`."""

import json

import numpy as np
import pytest
from conftest import bundled, cli

from bridge.camera.calibrate import find_keyboard
from bridge.fingerid import LandmarkStream, align, attribute, call, evidence
from bridge.fingering import KeyNote, plan
from bridge.fingering.annotate import read_score_notes
from bridge.fingering.network import FingeringModel
from bridge.handsim import Camera, Noise, PlayedNote, noisy_calibration, render
from bridge.keyboard import WHITE_W, Calibration, Keyboard, homography


def test_keyboard_geometry():
    kb = Keyboard()
    assert kb.width == pytest.approx(52 * WHITE_W)
    assert kb.centre_x(21) == pytest.approx(WHITE_W / 2)  # A0, the first key
    assert kb.centre_x(108) == pytest.approx(kb.width - WHITE_W / 2)  # C8, the last
    assert kb.centre_x(60) < kb.centre_x(61) < kb.centre_x(62)  # C4, C#4, D4
    x, y = kb.press_point(61)
    assert kb.distance(61, np.array([x]), np.array([y]))[0] == 0
    assert kb.distance(60, np.array([x]), np.array([10.0]))[0] == 0  # the front of C4 is below C#4
    with pytest.raises(Exception, match="white key"):
        Keyboard(22, 108)


def test_homography_round_trip():
    src = np.array([[0, 0], [1222, 0], [1222, 150], [0, 150]], float)
    dst = np.array([[60, 650], [1860, 640], [1820, 440], [100, 450]], float)
    cal = Calibration((1920, 1080), dst, Keyboard())
    pts = np.array([[300.0, 40.0], [900.0, 120.0]])
    assert np.allclose(cal.key_points(cal.image_points(pts)), pts)
    assert np.allclose(homography(src, dst) @ [0, 0, 1] / (homography(src, dst) @ [0, 0, 1])[2], [60, 650, 1])


def _notes(score: str = "scale_study") -> list[PlayedNote]:
    """The score played at 1.5x with its printed fingers, or else with the fingering
    model's (the fingers the renderer uses are the truth the camera must recover)."""
    keys = read_score_notes(bundled(score)).keys
    fingers = [k.printed for k in keys]
    if not all(fingers):
        fingers = [f[0] for f in plan(keys, FingeringModel.load()).fingers]
    return [
        PlayedNote(k.onset / 1.5, k.offset / 1.5, k.pitch, "left" if k.hand else "right", f)
        for k, f in zip(keys, fingers)
    ]


def test_render_puts_the_playing_finger_on_its_key():
    played = _notes()
    camera = Camera()
    frames = render(played, camera)
    assert all(len(h["landmarks"]) == 21 for f in frames for h in f["hands"])
    stream = LandmarkStream(frames, camera.calibration())
    closest = []
    for n in played:
        d = stream.distances(n.onset, n.pitch, 0.02)
        side = 0 if n.hand == "left" else 1
        # mm from the key's centre line (the pressed tip is below the key top: parallax)
        assert d[side, n.finger - 1] < 6.0
        closest.append(d[side].argmin() == n.finger - 1)
    assert np.mean(closest) >= 0.9  # a neighbour on its way to the next key may be as close


def test_camera_evidence_calls_the_right_finger_without_noise():
    played = _notes()
    camera = Camera()
    stream = LandmarkStream(render(played, camera), camera.calibration())
    calls = [call(evidence(stream, n.onset, n.pitch)) for n in played]
    right = np.mean([(c.hand, c.finger) == (n.hand, n.finger) for c, n in zip(calls, played)])
    assert right >= 0.95


def test_align_finds_the_clock_offset_and_calibration_shift():
    played = _notes("nocturne")
    camera = Camera()
    noise = Noise(clock_offset_s=0.12, calibration_px=8.0)
    stream = LandmarkStream(render(played, camera, noise, seed=3), noisy_calibration(camera, noise, seed=3))
    offset = align(stream, [(n.onset, n.offset, n.pitch) for n in played])
    assert abs(offset - 0.12) <= 0.05


def test_fusion_beats_the_camera_alone_under_noise():
    """Moderate noise: the camera with the fingering model beats the camera alone.
    (Here the fingers played are the model's own plan, so the model alone would be
    perfect: benchmarks/fingerid.py measures that on real fingerings.)"""
    played = _notes("nocturne")
    camera = Camera()
    noise = Noise.level(0.5)
    stream = LandmarkStream(render(played, camera, noise, seed=1), noisy_calibration(camera, noise, seed=1))
    offset = align(stream, [(n.onset, n.offset, n.pitch) for n in played])
    model = FingeringModel.load()
    keys = [KeyNote(n.onset, n.offset, n.pitch, 0 if n.hand == "right" else 1) for n in played]
    fused = attribute(keys, stream, model, offset)
    alone = [evidence(stream, n.onset + offset, n.pitch) for n in played]
    alone_right = np.mean(
        [e is not None and (call(e).hand, call(e).finger) == (n.hand, n.finger) for e, n in zip(alone, played)]
    )
    fused_right = np.mean([(c.hand, c.finger) == (n.hand, n.finger) for c, n in zip(fused, played)])
    assert fused_right >= alone_right and fused_right >= 0.8
    assert all(0 <= c.confidence <= 1 for c in fused)


@pytest.mark.parametrize(
    "camera",
    [Camera(), Camera(height=600.0, back=-450.0)],
    ids=["overhead", "oblique"],
)
def test_calibration_on_a_rendered_keyboard(tmp_path, camera):
    """A keyboard drawn through the synthetic camera is found with its 88 keys in place,
    along the keys as well as across them: seen obliquely, the keys lean towards a
    vanishing point and shrink with distance."""
    import cv2

    true = camera.calibration()
    img = np.full((1080, 1920, 3), 35, np.uint8)
    polys = true.key_polygons()
    for pitch, poly in polys.items():
        if pitch % 12 not in (1, 3, 6, 8, 10):
            cv2.fillPoly(img, [np.array(poly, np.int32)], (235, 235, 235))
            cv2.polylines(img, [np.array(poly, np.int32)], True, (120, 120, 120), 1)
    for pitch, poly in polys.items():
        if pitch % 12 in (1, 3, 6, 8, 10):
            cv2.fillPoly(img, [np.array(poly, np.int32)], (15, 15, 15))
    found = find_keyboard(img)
    assert (found.keyboard.low, found.keyboard.high) == (21, 108)
    white = np.ptp(true.corners[:, 0]) / 52
    for pitch, depth in [(21, 100.0), (21, 20.0), (60, 100.0), (61, 100.0), (108, 100.0), (108, 20.0), (107, 140.0)]:
        point = np.array([[true.keyboard.centre_x(pitch), depth]])
        miss = np.linalg.norm(true.image_points(point)[0] - found.image_points(point)[0])
        assert miss < 0.3 * white, (pitch, depth, miss)
    path = tmp_path / "kb.png"
    cv2.imwrite(str(path), img)
    p = cli("calibrate", path, "--out", tmp_path / "cal.json")
    assert p.returncode == 0, p.stderr
    cal = json.loads((tmp_path / "cal.json").read_text())
    assert cal["lowest_key"] == 21 and cal["highest_key"] == 108 and len(cal["keys"]) == 88
    assert (tmp_path / "cal.png").is_file()


def test_follow_with_hands_and_calibration(tmp_path):
    """The contract: with a landmark stream and a calibration, every note event says
    which finger played it."""
    from bridge.midifile import write_performance
    from bridge.musicxml import load_score
    from bridge.simulate import render as perform
    from bridge.simulate import to_events

    score = load_score(bundled("scale_study"))
    performed = sorted(perform(score, seed=2), key=lambda p: p.t)
    midi = tmp_path / "p.mid"
    write_performance(to_events(performed), midi)
    notes = []
    for p in performed:
        sn = score.notes[p.note]
        notes.append(PlayedNote(p.t, p.t + p.duration_s, p.pitch, sn.hand, int(sn.fingering[0])))
    camera = Camera()
    stream = tmp_path / "hands.jsonl"
    stream.write_text("".join(json.dumps(f) + "\n" for f in render(notes, camera, Noise(clock_offset_s=0.05))))
    camera.calibration().save(tmp_path / "cal.json")
    out = tmp_path / "o.jsonl"
    p = cli(
        "follow",
        bundled("scale_study"),
        midi,
        "--jsonl",
        out,
        "--hands",
        stream,
        "--calibration",
        tmp_path / "cal.json",
    )
    assert p.returncode == 0, p.stderr
    got = [json.loads(x) for x in out.read_text().splitlines() if '"type":"note"' in x]
    assert len(got) == len(notes)
    right = np.mean([(g["finger"]["hand"], g["finger"]["finger"]) == (n.hand, n.finger) for g, n in zip(got, notes)])
    assert right >= 0.9
    assert "camera clock" in p.stderr  # the offset found (slow music times it loosely: see test_align_...)
    bad = cli("follow", bundled("scale_study"), midi, "--jsonl", out, "--hands", stream)
    assert bad.returncode == 2 and "go together" in bad.stderr


def test_engine_calls_fingers_live_from_camera_frames():
    """The live path: HandFrame events interleaved with notes, in time order, through the
    engine (as the live bridge and a session replay feed it)."""
    from bridge.events import FingerSeen, HandFrame, NoteOff, NoteOn
    from bridge.follow.engine import Engine
    from bridge.musicxml import load_score

    score = load_score(bundled("scale_study"))
    played = _notes()
    camera = Camera()
    frames = render(played, camera, Noise(jitter_px=3.0, miss=0.05), seed=4)
    events = [HandFrame(f["t"], tuple(f["hands"])) for f in frames]
    events += [NoteOn(n.onset, n.pitch, 70) for n in played] + [NoteOff(n.offset, n.pitch) for n in played]
    events.sort(key=lambda e: (e.t, not isinstance(e, HandFrame)))

    def run():
        engine = Engine(score, calibration=camera.calibration())
        out = [o for e in events for o in engine.feed(e)] + engine.finish()
        return [o for o in out if isinstance(o, FingerSeen)]

    seen = run()
    assert len(seen) == len(played)
    truth = {(round(n.onset, 4), n.pitch): (n.hand, n.finger) for n in played}
    right = np.mean([(s.finger.hand, s.finger.finger) == truth[(round(s.t, 4), s.pitch)] for s in seen])
    assert right >= 0.9
    assert [s.to_dict() for s in run()] == [s.to_dict() for s in seen]  # replays identically
