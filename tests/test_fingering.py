"""Fingering: the network, the decoder's rules, live re-planning, hand separation, the
MusicXML and PIG files, training end to end, and one-line errors."""

import numpy as np
import pytest
from conftest import ROOT, bundled, cli, performance
from lxml import etree

from bridge.fingering import LEFT, RIGHT, KeyNote, plan
from bridge.fingering.annotate import read_score_notes
from bridge.fingering.decode import finger_clashes, stretch_cost, transition_scores
from bridge.fingering.features import N_FEATURES, is_black, mirror, note_features
from bridge.fingering.hands import infer_hands
from bridge.fingering.network import CrfNet, FingeringModel, weights_path
from bridge.fingering.pig import read_pig

WEIGHTS = ROOT / "model" / "fingering.npz"


@pytest.fixture(scope="module")
def model() -> FingeringModel:
    return FingeringModel.load(WEIGHTS)


def scale(hand: int, start: int = 60, n: int = 15, step: float = 0.25) -> list[KeyNote]:
    major = [0, 2, 4, 5, 7, 9, 11]
    pitches = [start + 12 * (k // 7) + major[k % 7] for k in range(n)]
    return [KeyNote(k * step, k * step + step, p, hand) for k, p in enumerate(pitches)]


def test_mirror_keeps_the_black_keys():
    p = np.arange(21, 109)
    assert (is_black(mirror(p)) == is_black(p)).all()
    assert (mirror(mirror(p)) == p).all()


def test_features_shape_and_edges():
    x = note_features(np.array([0.0, 0.0, 0.5]), np.array([1.0, 1.0, 1.0]), np.array([60, 64, 67]))
    assert x.shape == (3, N_FEATURES) and np.isfinite(x).all()
    one = note_features(np.array([0.0]), np.array([1.0]), np.array([61]))
    assert one.shape == (1, N_FEATURES) and one[0, 0] == 1.0  # a black key


def test_numpy_forward_matches_torch():
    torch = pytest.importorskip("torch")
    from bridge.fingering.train import _net

    torch.manual_seed(0)
    net = _net(5, 16, 2, 0.0).eval()
    x = np.random.default_rng(0).normal(size=(40, N_FEATURES)).astype(np.float32)
    with torch.no_grad():
        u, p = net(torch.from_numpy(x)[None])
    mine = CrfNet({k: v.numpy() for k, v in net.state_dict().items()}, 2)
    u2, p2 = mine.potentials(x)
    assert np.allclose(u[0].numpy(), u2, atol=1e-4) and np.allclose(p[0].numpy(), p2, atol=1e-4)


def test_scales_get_scale_fingerings(model):
    """C major, two octaves up: the thumb passes under, never on a black key, chords rise."""
    for hand in (RIGHT, LEFT):
        notes = scale(hand, 48 if hand == LEFT else 60)
        fingers = [f[0] for f in plan(notes, model).fingers]
        assert set(fingers) >= {1, 2, 3}
        assert fingers.count(1) >= 3  # a thumb crossing in each octave
        assert all(abs(a - b) <= 4 for a, b in zip(fingers, fingers[1:]))


def test_chords_take_rising_fingers(model):
    chords = [(0.0, [48, 52, 55, 60]), (0.5, [50, 53, 57]), (1.0, [43, 47, 50, 55])]
    for hand in (RIGHT, LEFT):
        shift = 24 if hand == RIGHT else 0
        notes = [KeyNote(t, t + 0.5, p + shift, hand) for t, ps in chords for p in ps]
        fingers = [f[0] for f in plan(notes, model).fingers]
        k = 0
        for _, ps in chords:
            fs = fingers[k : k + len(ps)]
            k += len(ps)
            # rising from the thumb: up the keyboard for the right hand, down for the left
            assert fs == sorted(fs, reverse=hand == LEFT) and len(set(fs)) == len(fs)


def test_printed_fingers_are_kept(model):
    notes = scale(RIGHT)
    printed = {0: 2, 5: 5, 9: 1}
    notes = [KeyNote(n.onset, n.offset, n.pitch, n.hand, printed.get(i, 0)) for i, n in enumerate(notes)]
    fingers = [f[0] for f in plan(notes, model).fingers]
    assert all(fingers[i] == f for i, f in printed.items())


def test_replan_from_the_played_finger(model):
    notes = scale(RIGHT, n=29)
    result = plan(notes, model)
    hp = result.plans[RIGHT]
    before = hp.fingers.copy()
    # the suffix of an optimal path is optimal from its first state (Bellman)
    assert (hp.replan(3, int(before[3]), horizon=len(notes)) == before[4:]).all()
    # played another finger than suggested: the plan ahead changes and starts from it
    other = 5 if before[10] != 5 else 4
    changed = result.replan(10, other)
    assert result.fingers[10] == (other,)
    assert set(changed) == set(range(11, len(notes)))
    assert any(changed[i] != before[i] for i in range(11, 14))


def test_held_note_keeps_its_finger(model):
    """A held note with a moving voice over it: no finger is taken off a key it holds."""
    held = [KeyNote(0.0, 2.0, 60, RIGHT)]
    moving = [KeyNote(0.25 * k, 0.25 * k + 0.25, p, RIGHT) for k, p in enumerate([64, 65, 67, 69, 67, 65, 64, 62], 0)]
    notes = held + moving
    result = plan(notes, model)
    hp, order = result.plans[RIGHT], result.order[RIGHT]
    on = np.array([notes[i].onset for i in order])
    off = np.array([notes[i].offset for i in order])
    pitch = np.array([notes[i].pitch for i in order])
    clashes = finger_clashes(hp.fingers, on, off, pitch)
    assert all(len(result.fingers[order[i]]) == 2 for i, _ in clashes)  # only as substitutions


def test_stretch_cost_grows_as_the_hand_shrinks():
    octave = [stretch_cost(12, s)[0, 4] for s in (0.85, 1.0, 1.15)]  # thumb to fifth finger
    assert octave[0] > octave[1] >= octave[2] and octave[2] == 0
    assert stretch_cost(12, 1.0)[1, 2] > 10  # fingers 2-3 cannot span an octave
    trans = transition_scores(
        np.zeros((1, 5, 5)), np.array([0.0, 0.0]), np.array([1.0, 1.0]), np.array([60, 76]), "small"
    )
    assert trans[0, 0, 4] > trans[0, 0, 1]  # a tenth: a stretch for 1-5, out of reach for 1-2


def test_a_scores_plan_is_kept_on_disk_and_read_back_whole(tmp_path, monkeypatch):
    from bridge.fingering import plan_score
    from bridge.fingering.files import score_plan
    from bridge.musicxml import load_score

    monkeypatch.setenv("PIANOBRIDGE_CACHE", str(tmp_path))
    score = load_score(bundled("chorale"))
    first = score_plan(score)
    (entry,) = (tmp_path / "scores").glob("plan-*.npz")
    again = score_plan(score)
    fresh = plan_score(score, FingeringModel.load(WEIGHTS), FingeringModel.load(weights_path(WEIGHTS, "hands")))
    for got in (first, again):
        assert got.fingers == fresh.fingers and sorted(got.plans) == sorted(fresh.plans)
        for hand, hp in fresh.plans.items():
            for name in ("unary", "trans", "fingers"):
                assert np.array_equal(getattr(got.plans[hand], name), getattr(hp, name))
            assert np.array_equal(got.order[hand], fresh.order[hand])
    # a damaged entry is planned again, and so is an entry another score wrote
    entry.write_bytes(b"PK not a zip")
    assert score_plan(score).fingers == fresh.fingers
    other = load_score(bundled("minuet"))
    (tmp_path / "scores" / entry.name).unlink()
    score_plan(other)
    (other_entry,) = (tmp_path / "scores").glob("plan-*.npz")
    other_entry.rename(entry)  # planted under the chorale's name
    assert score_plan(score).fingers == fresh.fingers
    # read back, it re-plans live as a fresh plan does
    note = int(fresh.order[RIGHT][3])
    assert again.replan(note, 1) == fresh.replan(note, 1) is not None


def test_hands_separate_on_a_bundled_score():
    """The chorale's notes without their staves: each goes back to its hand."""
    hands_model = FingeringModel.load(weights_path(WEIGHTS, "hands"))
    score = read_score_notes(bundled("chorale"))
    keys = score.keys
    got = infer_hands(
        np.array([k.onset for k in keys]),
        np.array([k.offset for k in keys]),
        np.array([k.pitch for k in keys]),
        hands_model,
    )
    truth = np.array([k.hand for k in keys])
    assert (got == truth).mean() >= 0.9


def test_fingering_musicxml(tmp_path):
    out = tmp_path / "nocturne.musicxml"
    p = cli("fingering", bundled("nocturne"), "--out", out)
    assert p.returncode == 0, p.stderr
    src = read_score_notes(bundled("nocturne"))
    root = etree.parse(str(out)).getroot()
    fingered = [n for n in root.iter("note") if n.find("notations/technical/fingering") is not None]
    assert len(fingered) == len(src.keys)  # every key press, no tied continuation
    for n in fingered:
        f = n.find("notations/technical/fingering")
        assert f.text in "12345" and f.get("placement") == ("below" if n.findtext("staff") == "2" else "above")
        kids = [c.tag for c in n]
        assert kids.index("notations") > kids.index("pitch")
    # the rest of the document is the original
    assert [n.findtext("pitch/step") for n in root.iter("note")] == [
        n.findtext("pitch/step") for n in etree.parse(str(bundled("nocturne"))).getroot().iter("note")
    ]
    # and a notation program can read it back (music21 here)
    import music21

    m21 = music21.converter.parse(str(out))
    assert (
        sum(1 for n in m21.recurse().notes for a in n.articulations if isinstance(a, music21.articulations.Fingering))
        > 0
    )


def test_printed_fingering_survives(tmp_path):
    out = tmp_path / "scale.musicxml"
    assert cli("fingering", bundled("scale_study"), "--out", out).returncode == 0
    before = [
        n.findtext("notations/technical/fingering") for n in etree.parse(str(bundled("scale_study"))).iter("note")
    ]
    after = [n.findtext("notations/technical/fingering") for n in etree.parse(str(out)).iter("note")]
    assert before == after


def test_fingering_pig_and_infer_hands(tmp_path):
    src = tmp_path / "in.txt"
    score = read_score_notes(bundled("chorale"))
    lines = ["//Version: PianoFingering_v170101"]
    names = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B"]
    for i, k in enumerate(score.keys):
        lines.append(
            f"{i}\t{k.onset:.3f}\t{k.offset:.3f}\t{names[k.pitch % 12]}{k.pitch // 12 - 1}\t64\t64\t{k.hand}\t0"
        )
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.txt"
    p = cli("fingering", src, "--format", "pig", "--out", out)
    assert p.returncode == 0, p.stderr
    notes = read_pig(out)
    assert [n.pitch for n in notes] == [k.pitch for k in score.keys]
    assert all(n.fingers and n.hand == k.hand for n, k in zip(notes, score.keys))
    raw = [line.split("\t") for line in out.read_text().splitlines()[1:]]
    assert all((r[7].startswith("-")) == (r[6] == "1") for r in raw)
    # hands inferred: the channel column is the prediction
    src.write_text(src.read_text().replace("\t1\t0\n", "\t0\t0\n"))
    assert cli("fingering", src, "--format", "pig", "--out", out, "--infer-hands").returncode == 0
    hands = np.array([n.hand for n in read_pig(out)])
    assert (hands == np.array([k.hand for k in score.keys])).mean() >= 0.9


def test_fingering_midi(tmp_path):
    out = tmp_path / "minuet.txt"
    p = cli("fingering", performance("minuet"), "--out", out)
    assert p.returncode == 0, p.stderr
    notes = read_pig(out)
    assert len(notes) > 50 and {n.hand for n in notes} == {0, 1} and all(n.fingers for n in notes)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.musicxml", "not found"),
        (lambda d: _write(d / "bad.txt", "//Version\n0\t0.1\t0.2\tH4\t64\t64\t0\t0\n"), "not a spelled pitch"),
        (lambda d: _write(d / "short.txt", "0\t0.1\n"), "at least 7 columns"),
        (lambda d: _write(d / "empty.txt", "//Version: PianoFingering_v170101\n"), "no notes"),
        (lambda d: _write(d / "junk.musicxml", "not xml at all"), "not a readable MusicXML"),
        (lambda d: _write(d / "rests.musicxml", RESTS), "no notes"),
    ],
)
def test_bad_input_one_line(tmp_path, make, message):
    path = make(tmp_path)
    p = cli("fingering", path, "--out", tmp_path / "o")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and message in p.stderr, p.stderr


def test_missing_weights_say_so(tmp_path):
    p = cli("fingering", bundled("chorale"), "--out", tmp_path / "o.musicxml", "--weights", tmp_path / "none.npz")
    assert p.returncode == 2 and "no fingering weights" in p.stderr and "pianobridge train fingering" in p.stderr


@pytest.mark.slow
def test_training_end_to_end(tmp_path):
    """The training command on a tiny PIG-format set made from the bundled scale study."""
    pytest.importorskip("torch")
    data = tmp_path / "FingeringFiles"
    data.mkdir()
    score = read_score_notes(bundled("scale_study"))
    names = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B"]
    rows = [
        f"{i}\t{k.onset:.3f}\t{k.offset:.3f}\t{names[k.pitch % 12]}{k.pitch // 12 - 1}\t64\t64\t{k.hand}\t{-k.printed if k.hand else k.printed}"
        for i, k in enumerate(score.keys)
    ]
    for name in ("031-1", "032-1", "005-1"):  # 005 is in the test split: never read
        (data / f"{name}_fingering.txt").write_text("//Version: PianoFingering_v170101\n" + "\n".join(rows) + "\n")
    (data / "005-1_fingering.txt").write_text("garbage that would fail if it were read\n")
    for task in ("fingering", "hands"):
        p = cli("train", task, tmp_path, "--steps", "3", "--members", "1", "--out", tmp_path / f"{task}.npz")
        assert p.returncode == 0, p.stderr
    m = FingeringModel.load(tmp_path / "fingering.npz")
    assert m.info["data"].startswith("PIG v1.2 pieces 031-032")
    out = tmp_path / "o.musicxml"
    p = cli("fingering", bundled("chorale"), "--out", out, "--weights", tmp_path / "fingering.npz", "--infer-hands")
    assert p.returncode == 0, p.stderr


def _write(path, text):
    path.write_text(text)
    return path


RESTS = """<?xml version="1.0"?><score-partwise version="4.0"><part-list><score-part id="P1"><part-name>P</part-name>
</score-part></part-list><part id="P1"><measure number="1"><attributes><divisions>1</divisions></attributes>
<note><rest/><duration>4</duration><type>whole</type></note></measure></part></score-partwise>"""
