"""The expression model: training data and its exclusions, torch/numpy agreement, rendering,
assessment and bad input."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bridge import asap, simulate
from bridge.errors import UserError
from bridge.expression import data as D
from bridge.expression.assess import bar_span
from bridge.expression.features import N_FEATURES, beat_length_q, note_features, phrase_tree, voice_rank
from bridge.expression.network import ExpressionNetwork, perf_beat_features
from bridge.expression.render import DEFAULT_WEIGHTS, interpretations, load_network, score_inputs
from bridge.midifile import write_performance
from bridge.musicxml import load_score, parse_score
from tests.conftest import ROOT, SHARED, bundled, cli
from tests.helpers import rolled_chord_xml

ASAP_GIT = ROOT.parent / ".mirror" / "CPJKU+asap-dataset" / "repo"
EXCLUDE = SHARED / "data" / "nasap-train" / "exclude.txt"
VIENNA = SHARED / "data" / "vienna4x22"
needs_asap = pytest.mark.skipif(not ASAP_GIT.is_dir() or not EXCLUDE.is_file(), reason="no (n)ASAP mirror here")
needs_exclude = pytest.mark.skipif(not EXCLUDE.is_file(), reason="no shared/data/nasap-train/exclude.txt here")
# (n)ASAP's layout with the project's own content, so that training runs where the mirror is not
# fetched: bundled scores under (n)ASAP folder names, so that the exclusion list and the
# validation split treat them as they treat those folders (bwv_863 is a validation piece,
# bwv_867 an excluded one)
MADE = {
    "Bach/Prelude/bwv_846": "minuet",
    "Bach/Fugue/bwv_846": "scale_study",
    "Bach/Fugue/bwv_863": "nocturne",
    "Bach/Fugue/bwv_867": "chorale",
}
needs_vienna = pytest.mark.skipif(not (VIENNA / "musicxml").is_dir(), reason="no Vienna 4x22 here")
needs_weights = pytest.mark.skipif(not DEFAULT_WEIGHTS.is_file(), reason="no shipped expression weights")


def asap_listing() -> list[str]:
    cmd = ["git", f"--git-dir={ASAP_GIT}", "ls-tree", "-r", "--name-only", "HEAD"]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()


@needs_asap
def test_training_folders_leave_out_every_excluded_and_vienna_piece():
    excluded = asap.read_exclusions(EXCLUDE)
    listing = asap_listing()
    chosen = D.training_folders(listing, excluded)
    everything = asap.aligned_performances(listing)
    assert len(chosen) > 150
    for folder in everything:
        if folder in chosen:
            assert not asap.is_excluded(folder, excluded), folder
            assert not D.is_vienna(folder), folder
        elif asap.is_excluded(folder, excluded) or D.is_vienna(folder):
            continue
        else:
            pytest.fail(f"{folder} is allowed but was not chosen")
    # a listed folder and a version of a listed piece are both out; all performances of a piece are in
    assert "Chopin/Ballades/2" not in chosen and "Chopin/Sonata_2/3rd_extra_repeat" not in chosen
    assert len(chosen["Chopin/Etudes_op_10/4"]) == len(everything["Chopin/Etudes_op_10/4"]) > 10
    # none of the four Vienna pieces, in any version
    vienna = ("Chopin/Etudes_op_10/3", "Chopin/Ballades/2", "Mozart/Piano_Sonatas/11-")
    assert not [f for f in chosen if f.startswith(vienna) or "783" in f]


def test_validation_split_keeps_versions_of_a_piece_together():
    assert D.is_validation("Beethoven/Piano_Sonatas/17-1") == D.is_validation("Beethoven/Piano_Sonatas/17-1_no_repeat")
    names = [f"Composer/Piece_{i}" for i in range(200)]
    share = np.mean([D.is_validation(n) for n in names])
    assert 0.05 < share < 0.25


@needs_asap
def test_targets_of_a_real_performance():
    src = asap.Source(ASAP_GIT)
    folder, name = "Bach/Prelude/bwv_846", None
    name = D.training_folders(asap_listing(), set())[folder][0]
    from bridge.musicxml import parse_score

    score = parse_score(src.read(f"{folder}/xml_score.musicxml"))
    tree = phrase_tree(score)
    rows = []
    for line in src.read(f"{folder}/{name}{asap.ALIGN_SUFFIX}").decode().splitlines()[1:]:
        c = line.split("\t")
        if len(c) == 6 and c[1] != "deletion" and c[0] != "insertion":
            rows.append((c[0], int(c[4]), float(c[5])))
    notes, pedal = D.read_midi(src.read(f"{folder}/{name}.mid"))
    perf = D.performance_targets(score, tree, notes, pedal, rows)
    assert perf is not None
    assert np.mean(~np.isnan(perf.velocity)) > 0.9
    spq = np.exp(np.nanmedian(perf.log_spq))
    assert 0.5 < spq < 1.5  # 35 bars of 4/4 in about two minutes: 40-120 quarters a minute
    assert np.nanstd(perf.dev) < 0.2 and np.mean(~np.isnan(perf.art)) > 0.8 and -4 <= np.nanmin(perf.art)


def test_targets_of_a_simulated_performance_are_what_was_played(tmp_path):
    """The training data's path (alignment rows, MIDI, targets) on a performance whose
    truth is known: every note found, its velocity the one played, the tempo the one set."""
    tree, truth = made_asap_tree(tmp_path, performances=1)
    folder = "Bach/Prelude/bwv_846"
    src = asap.Source(tree)
    assert src.read(f"{folder}/Made01.mid") is not None and not src.git
    exclude = tmp_path / "exclude.txt"  # the real list need not be here for this
    exclude.write_text("Bach/Fugue/bwv_867\n")
    pieces, perfs = D.prepare(tree, exclude, tmp_path / "cache")
    (k,) = [i for i, piece in enumerate(pieces) if piece.folder == folder]
    perf = next(x for x in perfs if x.piece == k)
    played = {p.note: p for p in truth[folder, "Made01"]}
    assert not np.isnan(perf.velocity).any()
    assert all(perf.velocity[i] == p.velocity for i, p in played.items())
    spq = np.exp(np.nanmedian(perf.log_spq))
    assert 0.4 < spq < 0.6  # the minuet's 120 quarters a minute, with rubato
    assert np.nanstd(perf.dev) < 0.2 and not np.isnan(perf.art).all()


def test_a_made_listing_loses_each_excluded_folder_and_its_versions_and_nothing_else(tmp_path):
    excl = tmp_path / "exclude.txt"
    excl.write_text("# comment\nBach/Fugue/bwv_867\nChopin/Sonata_2/3rd\n\n")
    excluded = asap.read_exclusions(excl)
    folders = ["Bach/Fugue/bwv_867", "Bach/Fugue/bwv_863", "Chopin/Sonata_2/3rd_no_repeat", "Chopin/Sonata_2/3rd",
               "Chopin/Sonata_2/2nd", "Chopin/Etudes_op_10/3", "Chopin/Etudes_op_10/4"]  # fmt: skip
    listing = [f"{f}/P{i}{asap.ALIGN_SUFFIX}" for f in folders for i in (1, 2)]
    chosen = D.training_folders(listing, excluded)
    # Chopin op. 10/3 is a Vienna 4x22 piece: evaluation only
    assert sorted(chosen) == ["Bach/Fugue/bwv_863", "Chopin/Etudes_op_10/4", "Chopin/Sonata_2/2nd"]
    assert all(v == ["P1", "P2"] for v in chosen.values())


def test_features_and_tree_of_a_bundled_score():
    score = load_score(bundled("sonatina"))
    tree = phrase_tree(score)
    x = note_features(score, tree)
    assert x.shape == (len(score.notes), N_FEATURES) and np.isfinite(x).all()
    assert x[-1, -5] == 1.0 and x[len(x) // 2, -5] < 0.01  # how near the close
    assert tree.beat.min() == 0 and np.all(np.diff(tree.beat) >= 0) and np.all(np.diff(tree.phrase) >= 0)
    assert all(a <= b for a, b in tree.phrases)


def test_an_inner_voice_under_a_held_melody_note_and_voices_ranked_in_their_staff(tmp_path):
    """A half-note melody over running eighths in the same hand, the voices numbered 5 and 6:
    the eighths struck while the melody note is held are under it, the one struck with it is
    not; the voices are the staff's first and second."""
    import music21

    m = music21.stream.Measure(number=1)
    m.append(music21.meter.TimeSignature("2/4"))
    top, inner = music21.stream.Voice(id="5"), music21.stream.Voice(id="6")
    top.append(music21.note.Note("C5", quarterLength=2.0))
    inner.append([music21.note.Note(p, quarterLength=0.5) for p in ("E4", "G4", "E4", "G4")])
    m.insert(0, top)
    m.insert(0, inner)
    path = tmp_path / "inner.musicxml"
    music21.stream.Score([music21.stream.Part([m])]).write("musicxml", fp=str(path))
    score = load_score(path, use_cache=False)
    x = note_features(score, phrase_tree(score))
    under = {(n.onset_q, n.pitch): u for n, u in zip(score.notes, x[:, -4])}
    assert under == {(0.0, 72): 0, (0.0, 64): 0, (0.5, 67): 1, (1.0, 64): 1, (1.5, 67): 1}
    assert {n.voice for n in score.notes} == {5, 6}
    assert {n.pitch: r for n, r in zip(score.notes, voice_rank(score.notes))} == {72: 0, 64: 1, 67: 1}


def test_a_bass_note_before_a_chord_far_above_it_has_to_be_let_go(tmp_path):
    """Oom-pah-pah: the hand spans more than an octave from the bass note to the chord that
    follows it (the second-to-last column), a chord to the next chord less; the last chord has
    nothing after it."""
    import music21

    m = music21.stream.Measure(number=1)
    m.append(music21.meter.TimeSignature("3/4"))
    m.append(music21.note.Note("C2", quarterLength=1.0))
    m.append(music21.chord.Chord(["C3", "E3", "B-3"], quarterLength=1.0))
    m.append(music21.chord.Chord(["C3", "E3", "B-3"], quarterLength=1.0))
    path = tmp_path / "waltz.musicxml"
    music21.stream.Score([music21.stream.Part([m])]).write("musicxml", fp=str(path))
    score = load_score(path, use_cache=False)
    x = note_features(score, phrase_tree(score))
    reach = {(n.onset_q, n.pitch): round(float(r), 3) for n, r in zip(score.notes, x[:, -2])}
    assert reach[0.0, 36] == round(22 / 12, 3)
    assert reach[1.0, 48] == reach[1.0, 58] == round(10 / 12, 3)
    assert reach[2.0, 48] == 0.0


def test_a_key_struck_again_as_its_note_ends_has_no_time_to_spare(tmp_path):
    """The last column: log2 of the time until the same key is struck again over the note's
    written length, over 4. A repeated note has none to spare (0), a key struck again two
    beats after a quarter has one doubling, a key not struck again the most (1)."""
    import music21

    m = music21.stream.Measure(number=1)
    m.append(music21.meter.TimeSignature("4/4"))
    m.append([music21.note.Note(p, quarterLength=1.0) for p in ("C5", "C5", "D5", "C5")])
    path = tmp_path / "repeat.musicxml"
    music21.stream.Score([music21.stream.Part([m])]).write("musicxml", fp=str(path))
    score = load_score(path, use_cache=False)
    x = note_features(score, phrase_tree(score))
    assert [(n.pitch, float(k)) for n, k in zip(score.notes, x[:, -1])] == [(72, 0.0), (72, 0.25), (74, 1.0), (72, 1.0)]


def test_training_windows_draw_the_opening_and_the_close_as_often_as_the_middle():
    """Each beat of a piece is about as likely to be in a training chunk as any other (windows
    only inside the piece drew its first and last beat once for every 64 draws of a middle one)."""
    from bridge.expression.train import draw_window

    rng = np.random.default_rng(0)
    hits = np.zeros(300)
    for _ in range(20_000):
        b0, b1 = draw_window(300, 64, rng)
        assert 0 <= b0 and b1 <= 300 and b1 - b0 >= 16
        hits[b0:b1] += 1
    middle = hits[100:200].mean()
    assert hits[0] > 0.7 * middle and hits[-1] > 0.7 * middle
    assert all(draw_window(10, 64, rng) == (0, 10) for _ in range(50))  # shorter than a window


def _worded_features(tmp_path, words: dict[int, str], bars: int):
    """Features of a 4/4 score of running quarters with ``words`` (bar -> text) written at
    the start of their bars, and the bar of each note."""
    import music21

    part = music21.stream.Part([music21.meter.TimeSignature("4/4")])
    for bar in range(1, bars + 1):
        m = music21.stream.Measure(number=bar)
        if bar in words:
            m.insert(0, music21.expressions.TextExpression(words[bar]))
        for j in range(4):
            m.append(music21.note.Note(60 + (bar + j) % 12, quarterLength=1.0))
        part.append(m)
    path = tmp_path / "words.musicxml"
    music21.stream.Score([part]).write("musicxml", fp=str(path))
    score = load_score(path)
    return note_features(score, phrase_tree(score)), np.array([n.measure for n in score.notes])


def test_a_tempo_term_holds_through_rit_and_a_tempo(tmp_path):
    """The piece's speed (lento, allegro) is a property of the section: a "rit." or "a tempo"
    after it must not erase it (the model took the piece's second phrase at twice the pace);
    a "rall." holds to the end of its phrase, not to the end of the piece."""
    x, bar = _worded_features(tmp_path, {1: "Lento", 3: "rit.", 4: "a tempo", 6: "Allegro", 7: "rall."}, 12)
    slower, speed, has_speed = x[:, 44], x[:, 46], x[:, 47]  # columns of note_features
    assert np.all(has_speed == 1.0)
    assert np.allclose(speed[bar <= 5], -0.8) and np.allclose(speed[bar >= 6], 0.9)  # lento, then allegro
    # the rit. is still read; a rall. with no "a tempo" after it ends with its phrase (bars 5-8)
    assert np.array_equal(slower == 1.0, (bar == 3) | (bar == 7) | (bar == 8))


def test_meno_and_piu_mosso_hold_until_a_tempo_or_a_new_term(tmp_path):
    """ "Meno mosso" is a new, slower pace for the passage, not a slowing at a phrase end: it
    holds through later words (a "rit.") until "a tempo", "Tempo I" or a new tempo term."""
    words = {1: "Allegro", 3: "meno mosso", 9: "rit.", 11: "Tempo I", 13: "più mosso", 15: "Andante"}
    x, bar = _worded_features(tmp_path, words, 16)
    slower, faster, speed = x[:, 44], x[:, 45], x[:, 46]  # columns of note_features
    expected = np.select([bar <= 2, bar <= 10, bar <= 12, bar <= 14], [0.9, 0.6, 0.9, 1.2], 0.0)
    assert np.allclose(speed, expected)
    # neither is a gradual change; the rit. is, until "Tempo I"
    assert np.array_equal(slower == 1.0, (bar == 9) | (bar == 10))
    assert not faster.any()


@pytest.mark.parametrize("metre", ["3/8", "6/8", "2/4", "3/4", "6/4", "3/16"])
def test_the_tree_counts_the_bars_of_every_metre(tmp_path, metre):
    """The tree's beats must be the score's (music21's) beats: counted otherwise, a bar of
    3/8 fell apart into one bar and one phrase per eighth after its first."""
    import music21

    bar_q = music21.meter.TimeSignature(metre).barDuration.quarterLength
    part = music21.stream.Part([music21.meter.TimeSignature(metre)])
    step = 0.5 if bar_q % 0.5 == 0 else 0.25
    for k in range(16):  # 16 bars of running eighths (sixteenths in 3/16)
        for j in range(int(bar_q / step)):
            part.append(music21.note.Note(60 + (k + j) % 12, quarterLength=step))
    path = tmp_path / "metre.musicxml"
    music21.stream.Score([part]).write("musicxml", fp=str(path))
    score = load_score(path)
    tree = phrase_tree(score)
    assert beat_length_q(metre) == music21.meter.TimeSignature(metre).beatDuration.quarterLength
    assert list(tree.measure_numbers) == list(range(1, 17))
    per_bar = bar_q / beat_length_q(metre)
    assert tree.n_beats == 16 * per_bar
    assert tree.phrases == [(1 + 4 * k, 4 + 4 * k) for k in range(4)]  # every metre here has bars under 8 quarters


@pytest.mark.parametrize("opening", ["upbeat", "rest"])
def test_an_upbeat_bar_opens_the_first_phrase_without_counting(tmp_path, opening):
    """Phrases run from downbeat to downbeat: an upbeat bar joins the first phrase but is not
    one of its four bars (counted, it put every later phrase a bar early, in three of the four
    Vienna pieces and about a third of the training scores); a first bar that opens with a
    rest is a whole bar."""
    import music21

    part = music21.stream.Part()
    if opening == "upbeat":
        m = music21.stream.Measure([music21.meter.TimeSignature("3/4"), music21.note.Note(67)], number=0)
        m.paddingLeft = 2.0
        part.append(m)
    for bar in range(1, 9):
        m = music21.stream.Measure(number=bar)
        rest_first = bar == 1 and opening == "rest"
        if rest_first:
            m.append([music21.meter.TimeSignature("3/4"), music21.note.Rest()])
        m.append([music21.note.Note(60 + (bar + j) % 12) for j in range(2 if rest_first else 3)])
        part.append(m)
    path = tmp_path / f"{opening}.musicxml"
    music21.stream.Score([part]).write("musicxml", fp=str(path))
    tree = phrase_tree(load_score(path))
    assert tree.phrases == ([(0, 4), (5, 8)] if opening == "upbeat" else [(1, 4), (5, 8)])


def test_a_phrase_of_one_bar_is_named_as_one_bar():
    assert bar_span(5, 8) == "bars 5-8" and bar_span(22, 22) == "bar 22"


def test_numpy_forward_matches_torch(tmp_path):
    torch = pytest.importorskip("torch")
    from bridge.expression.model import Critic, ExpressionNet
    from bridge.expression.model import perf_beat_features as torch_perf
    from bridge.expression.train import DEFAULT_RECIPE, export

    torch.manual_seed(1)
    for hier in (True, False):
        recipe = json.loads(json.dumps(DEFAULT_RECIPE))
        recipe["model"]["hierarchical"] = hier
        net, critic = ExpressionNet(N_FEATURES, recipe["model"]), Critic(N_FEATURES, recipe["model"]["d"])
        with torch.no_grad():  # trained weights are not all near zero: shake them
            for p in list(net.parameters()) + list(critic.parameters()):
                p.add_(torch.randn_like(p) * 0.1)
        export(net, critic, recipe, tmp_path / "w.npz", {})
        npnet = ExpressionNetwork.load(tmp_path / "w.npz")
        inp = score_inputs(load_score(bundled("sonatina")))
        nb = inp.tree.n_beats
        rng = np.random.default_rng(0)
        z = rng.standard_normal(net.z_dim).astype(np.float32)
        n = len(inp.beat)
        vel, dev, art = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
        lsp = rng.standard_normal(nb).astype(np.float32)
        ok_note = (rng.random(n) > 0.2).astype(np.float32)
        args = (vel, dev, art, lsp, inp.feats[:, 0], inp.beat, nb, ok_note)
        perf = perf_beat_features(*args)
        tperf = torch_perf(*(torch.tensor(a) for a in args[:6]), nb, torch.tensor(ok_note))
        assert np.allclose(perf, tperf.numpy(), atol=1e-5)
        perf_ok = rng.random(nb) > 0.3
        t_in = [torch.tensor(a) for a in (inp.feats, inp.beat, inp.beat_bar, inp.bar_phr, z)]
        with torch.no_grad():
            tb, tn = net(*t_in, tperf, torch.tensor(perf_ok))
            tb0, tn0 = net(*t_in)
            tc = critic(torch.tensor(inp.feats[:nb]), tperf)
        nb_, nn_ = npnet.forward(inp.feats, inp.beat, inp.beat_bar, inp.bar_phr, z, perf, perf_ok)
        nb0, nn0 = npnet.forward(inp.feats, inp.beat, inp.beat_bar, inp.bar_phr, z)
        for a, b in ((tb, nb_), (tn, nn_), (tb0, nb0), (tn0, nn0)):
            assert np.allclose(a.numpy(), b, atol=2e-4), np.abs(a.numpy() - b).max()
        assert not np.allclose(nb_, nb0)  # the performance stream does change the output
        assert np.allclose(tc.numpy(), npnet.critic(inp.feats[:nb], perf), atol=2e-4)


def test_within_covariance_is_the_spread_around_each_group_s_own_mean():
    from bridge.expression.calibrate import within_covariance

    rng = np.random.default_rng(0)
    # groups far apart (the passages differ), inside each a spread of 0.3 and 0.1
    groups = np.repeat(np.arange(400), 5)
    mus = rng.normal(0, 3, (400, 2))[groups] + rng.normal(0, 1, (2000, 2)) * [0.3, 0.1]
    cov = within_covariance(mus, groups)
    assert np.allclose(np.sqrt(np.diag(cov)), [0.3, 0.1], rtol=0.05)
    assert abs(cov[0, 1]) < 0.005


def test_renditions_play_the_fitted_styles(tmp_path):
    """The central rendition plays each member's centre of styles; drawn ones are spread by
    the fitted covariance; weights without a fitted style draw from N(0, I) as before."""
    torch = pytest.importorskip("torch")
    from bridge.expression.calibrate import write_recipe_entry
    from bridge.expression.model import ExpressionNet
    from bridge.expression.render import render
    from bridge.expression.train import DEFAULT_RECIPE, export

    torch.manual_seed(2)
    net = ExpressionNet(N_FEATURES, DEFAULT_RECIPE["model"])
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    export(net, None, DEFAULT_RECIPE, tmp_path / "w.npz", {})
    score = load_score(bundled("minuet"))
    plain = ExpressionNetwork.load(tmp_path / "w.npz")
    assert np.allclose(render(score, plain).onset_s, render(score, plain, np.zeros(plain.z_dim)).onset_s)
    old = interpretations(score, plain, seed=4, samples=1)[0]
    z = np.random.default_rng(4).standard_normal(plain.z_dim)
    assert np.allclose(old.onset_s, render(score, plain, z).onset_s)
    centre = np.linspace(-1, 1, plain.z_dim)
    write_recipe_entry(
        tmp_path / "w.npz", "style", [{"mean": centre.tolist(), "cov": (np.eye(plain.z_dim) * 1e-12).tolist()}]
    )
    fitted = ExpressionNetwork.load(tmp_path / "w.npz")
    central = render(score, fitted)
    assert np.allclose(central.onset_s, render(score, plain, centre).onset_s)
    assert not np.allclose(central.onset_s, render(score, plain).onset_s)
    for drawn in interpretations(score, fitted, seed=1, samples=2):  # no spread: the centre itself
        assert np.allclose(drawn.onset_s, central.onset_s, atol=1e-4)


@needs_weights
def test_shipped_weights_match_their_torch_model():
    torch = pytest.importorskip("torch")
    from bridge.expression.model import ExpressionNet
    from bridge.expression.train import Ensemble

    npnet = load_network()
    assert DEFAULT_WEIGHTS.stat().st_size < 10_000_000
    members = []
    for g in npnet.generators:
        net = ExpressionNet(N_FEATURES, npnet.recipe["model"])
        net.load_state_dict({k[len(g) :]: torch.tensor(v) for k, v in npnet.w.items() if k.startswith(g)})
        members.append(net)
    inp = score_inputs(load_score(bundled("nocturne")))
    z = np.zeros(npnet.z_dim, np.float32)
    t_in = [torch.tensor(a) for a in (inp.feats, inp.beat, inp.beat_bar, inp.bar_phr, z)]
    for k, net in [*enumerate(members), (None, Ensemble(members))]:
        with torch.no_grad():
            tb, tn = net(*t_in)
        nb, nn = npnet.forward(inp.feats, inp.beat, inp.beat_bar, inp.bar_phr, z, member=k)
        assert np.allclose(tb.numpy(), nb, atol=2e-4) and np.allclose(tn.numpy(), nn, atol=2e-4)


@needs_weights
def test_render_writes_the_contract_and_seeds_differ(tmp_path):
    score = bundled("sonatina")
    r = cli("expression", "render", score, "--csv", tmp_path / "a.csv", "--midi", tmp_path / "a.mid")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(tmp_path / "a.csv")))
    notes = load_score(score).notes
    assert [(r["note_id"], int(r["pass"])) for r in rows] == [(n.note_id, n.pass_no) for n in notes]
    assert all(1 <= int(r["velocity"]) <= 127 and float(r["duration_s"]) > 0 for r in rows)
    onsets = np.array([float(r["onset_s"]) for r in rows])
    assert onsets.min() >= 0 and np.corrcoef(onsets, [n.onset_q for n in notes])[0, 1] > 0.99
    from bridge.midifile import read_notes

    assert len(read_notes(tmp_path / "a.mid")) == len(rows)
    r = cli("expression", "render", score, "--csv", tmp_path / "s.csv", "--seed", "3", "--samples", "2")
    assert r.returncode == 0, r.stderr
    v1 = [r["velocity"] for r in csv.DictReader(open(tmp_path / "s-1.csv"))]
    v2 = [r["velocity"] for r in csv.DictReader(open(tmp_path / "s-2.csv"))]
    assert v1 != v2


@needs_weights
@pytest.mark.parametrize("name", ["sonatina", "minuet", "nocturne"])
def test_the_central_rendition_slows_into_the_close(name):
    """Players take their time over the last bars of a piece (in the (n)ASAP validation
    performances the last two beats are played 1.7 and 1.9 times as slowly as the median beat):
    the central rendition does too. The weights trained before chunks reached a piece's ends
    rendered the minuet's and the nocturne's close at about their median pace."""
    from bridge.expression.render import render

    rend = render(load_score(bundled(name)), load_network())
    log_spq = np.log(rend.spq)
    assert np.mean(log_spq[-2:]) - np.median(log_spq) > 0.2


@needs_weights
def test_a_rolled_chord_written_with_tied_grace_notes_is_held():
    """Vienna 4x22's op. 38 ends on such a chord: rendered as short grace notes, its six notes
    were the farthest from the pianists' articulation in the whole piece."""
    from bridge.expression.render import GRACE_S, render

    score = parse_score(rolled_chord_xml(False))
    rend = render(score, load_network())
    held = {n.note_id: d for n, d in zip(score.notes, rend.duration_s)}
    assert held["grace"] > 3 * GRACE_S
    assert held["grace"] > 0.5 * held["top"]


@needs_weights
@needs_vienna
def test_rendered_ids_line_up_with_partitura_on_vienna(tmp_path):
    pt = pytest.importorskip("partitura")
    net = load_network()
    for xml in sorted((VIENNA / "musicxml").glob("*.musicxml")):
        sc = pt.load_musicxml(str(xml))
        part = sc.parts[0] if len(sc.parts) == 1 else pt.score.merge_parts(sc.parts)
        ids = set(map(str, pt.score.unfold_part_maximal(part).note_array()["id"]))
        score = load_score(xml)
        (rend,) = interpretations(score, net, None, 1)
        mine = {f"{n.note_id}-{n.pass_no}" for n in score.notes}
        assert len(mine & ids) >= 0.99 * len(ids), xml.name


@needs_weights
def test_render_of_2000_notes_takes_under_2_s():
    score = load_score(bundled("sonatina"))
    assert len(score.notes) >= 2000
    net = load_network()
    took = []
    for _ in range(3):
        t0 = time.perf_counter()
        (rend,) = interpretations(score, net, None, 1)
        took.append(time.perf_counter() - t0)
    assert min(took) < 2.0
    first = [e.notes[0] for e in score.events if not e.grace]
    assert np.all(np.diff(rend.onset_s[first]) > -0.1)  # chords come in score order


def test_the_grace_run_benchmark_measures_a_run_as_played(tmp_path):
    """benchmarks/expression_graces.py: three grace notes before G5 are one run; played from
    0.2 s to the main note at 1.0 s (C5 at 0) its span is 0.8 s, a step 0.8/3 s, one second a
    quarter from C5 to G5; a run with a note not played is left out."""
    import music21

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from expression_graces import measure, runs

    m = music21.stream.Measure(number=1)
    m.append(music21.meter.TimeSignature("2/4"))
    m.append(music21.note.Note("C5", quarterLength=1.0))
    m.append([music21.note.Note(p, quarterLength=0.5).getGrace() for p in ("D5", "E5", "F5")])
    m.append(music21.note.Note("G5", quarterLength=1.0))
    path = tmp_path / "run.musicxml"
    music21.stream.Score([music21.stream.Part([m])]).write("musicxml", fp=str(path))
    score = load_score(path, use_cache=False)
    onset_q = np.array([n.onset_q for n in score.notes])
    (run,) = runs(onset_q, np.array([n.grace for n in score.notes]))
    assert [score.notes[i].pitch for i in run.graces] == [74, 76, 77] and run.quarters == 1.0
    assert [score.notes[i].pitch for i in run.before] == [72] and [score.notes[i].pitch for i in run.mains] == [79]
    on = np.array([0.0, 0.2, 0.5, 0.8, 1.0])
    assert np.allclose(measure(on, run), (0.8, 0.8 / 3, 1.0))
    on[2] = np.nan
    assert measure(on, run) is None


@needs_weights
def test_assess_prefers_the_human_performance_and_is_fast():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from expression_degrade import degrade, played_from_match

    from bridge.expression.assess import Assessor

    pytest.importorskip("partitura")
    if not (VIENNA / "match").is_dir():
        pytest.skip("no Vienna 4x22 here")
    score = load_score(VIENNA / "musicxml" / "Mozart_K331_1st-mov.musicxml")
    a = Assessor(score, load_network())
    played = played_from_match(score, str(VIENNA / "match" / "Mozart_K331_1st-mov_p01.match"))
    flat = degrade(score, a, played, "flat", np.random.default_rng(0))
    jittered = degrade(score, a, played, "jittered", np.random.default_rng(0))
    wins, together, took, texts = [], [], [], []
    for k in range(len(a.phrases)):
        t0 = time.process_time()  # the work itself: this machine's cores are shared with other jobs
        human = a.assess_phrase(k, played)
        took.append(time.process_time() - t0)
        wins.append(human.realism > a.assess_phrase(k, flat).realism)
        assert human.text.startswith(bar_span(human.first_measure, human.last_measure) + ": ")
        spoiled = a.assess_phrase(k, jittered)  # every note moved by N(0, 30 ms): chords come apart
        if not np.isnan(human.chord_spread_ms):
            together.append((human.together > spoiled.together, spoiled.chord_spread_ms > human.chord_spread_ms))
        texts.append(spoiled.text)
    assert np.mean(wins) >= 0.8
    assert len(together) >= 5 and np.all(np.mean(together, 0) >= 0.8)
    assert any("chords not together" in text for text in texts)
    assert np.median(took) < 0.05


def test_chord_spread_measures_how_far_apart_a_chords_notes_are_struck():
    from bridge.expression.assess import chord_spread

    q = np.array([0.0, 0.0, 0.0, 1.0, 2.0, 2.0, 3.0, 3.0])
    on = np.array([1.000, 1.010, 1.020, 1.5, 2.0, 2.030, 3.0, 3.0])
    # chord 1: 10, 0, 10 ms from its mean; the single note counts for nothing; 15, 15; 0, 0
    assert chord_spread(on, q) == pytest.approx(10.0)
    on[1] = np.nan  # a note not played leaves its chord's other two: 10, 10 ms
    assert chord_spread(on, q) == pytest.approx(10.0)
    on[2] = np.nan  # two chords are too few to say (a closing chord may be rolled unwritten)
    assert np.isnan(chord_spread(on, q))


def test_a_rolled_chords_notes_are_marked_in_their_feature_column():
    from bridge.expression.assess import ARPEGGIO

    notes = "".join(
        f"<note>{'<chord/>' if k else ''}<pitch><step>{step}</step><octave>4</octave></pitch><duration>2</duration>"
        f"<voice>1</voice><type>quarter</type>{'<notations><arpeggiate/></notations>' if roll else ''}</note>"
        for roll in (True, False)
        for k, step in enumerate("CEG")
    )
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<score-partwise version="3.1"><part-list><score-part id="P1"><part-name>Piano</part-name></score-part></part-list>
<part id="P1"><measure number="1"><attributes><divisions>2</divisions><time><beats>2</beats>
<beat-type>4</beat-type></time><clef><sign>G</sign><line>2</line></clef></attributes>{notes}</measure></part>
</score-partwise>""".encode()
    inp = score_inputs(parse_score(xml))
    assert inp.feats[:, ARPEGGIO].tolist() == [1, 1, 1, 0, 0, 0]


@needs_weights
def test_assess_cli_writes_json_and_plot(tmp_path):
    if not (VIENNA / "midi").is_dir():
        pytest.skip("no Vienna 4x22 here")
    xml = VIENNA / "musicxml" / "Schubert_D783_no15.musicxml"
    mid = VIENNA / "midi" / "Schubert_D783_no15_p01.mid"
    r = cli("expression", "assess", xml, mid, "--json", tmp_path / "a.json", "--plot", tmp_path / "a.png")
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "a.json").read_text())
    assert res["notes_matched"] > 0.8 * res["notes"] and len(res["phrases"]) >= 5
    assert 0 <= res["realism"] <= 1 and (tmp_path / "a.png").stat().st_size > 10_000


def test_bad_input_gives_one_line_and_exit_2(tmp_path):
    weights = tmp_path / "broken.npz"
    weights.write_bytes(b"not a zip at all")
    out = tmp_path / "o.csv"
    r = cli("expression", "render", bundled("sonatina"), "--csv", out, "--weights", weights)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "damaged" in r.stderr
    r = cli("expression", "render", bundled("sonatina"), "--csv", out, "--weights", tmp_path / "none.npz")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "not found" in r.stderr
    with pytest.raises(UserError):
        ExpressionNetwork.load(weights)


@needs_weights
def test_bad_scores_and_performances(tmp_path):
    empty = tmp_path / "empty.musicxml"
    text = bundled("sonatina").read_text()
    import re

    empty.write_text(re.sub(r"<note[ >].*?</note>", "", text, flags=re.S))
    r = cli("expression", "render", empty, "--csv", tmp_path / "o.csv")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    # a performance of another piece
    other = ROOT / "scores" / "performances"
    mids = sorted(other.glob("*.mid"))
    wrong = next(m for m in mids if "sonatina" not in m.name)
    r = cli("expression", "assess", bundled("sonatina"), wrong, "--json", tmp_path / "a.json")
    assert r.returncode == 2 and "does not match the score" in r.stderr and r.stderr.count("\n") == 1


def made_asap_tree(root: Path, performances: int = 2) -> tuple[Path, dict[tuple[str, str], list]]:
    """The folders of ``MADE`` as an (n)ASAP tree: the score, and per performance a MIDI
    file simulated from it (`bridge.simulate`) with its note alignment, in (n)ASAP's
    formats; returns the tree and each performance's played notes (the truth)."""
    tree, truth = root / "asap", {}
    for folder, name in MADE.items():
        d = tree / folder
        d.mkdir(parents=True)
        (d / "xml_score.musicxml").write_bytes(bundled(name).read_bytes())
        score = load_score(d / "xml_score.musicxml")
        for k in range(performances):
            perf = f"Made{k + 1:02d}"
            played = simulate.render(score, seed=k, rubato=0.1)
            write_performance(simulate.to_events(played), d / f"{perf}.mid")
            rows = ["xml_id\tmidi_id\ttrack\tchannel\tpitch\tonset"] + [
                f"{score.notes[p.note].note_id}-{score.notes[p.note].pass_no}\tn{i}\t0\t0\t{p.pitch}\t{p.t:.4f}"
                for i, p in enumerate(played)
            ]
            align = d / f"{perf}{asap.ALIGN_SUFFIX}"
            align.parent.mkdir()
            align.write_text("\n".join(rows) + "\n")
            truth[folder, perf] = played
    (tree / "metadata.csv").write_text("folder\n")
    return tree, truth


def small_asap_tree(tmp_path: Path) -> tuple[Path, Path]:
    """Four folders in (n)ASAP's layout (one of them excluded), two performances each, and a
    tiny recipe."""
    tree, _ = made_asap_tree(tmp_path)
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({"batch": 2, "chunk_beats": 24, "eval_every": 2, "model": {"d": 16}}))
    return tree, recipe


@needs_exclude
@pytest.mark.parametrize("members", [1, 2])
def test_two_process_training_on_a_small_asap_tree(tmp_path, members):
    """torchrun, 2 processes (gloo), one network or an ensemble as shipped (members trained
    one after the other in the same process group): the excluded folder never reaches the
    prepared data."""
    pytest.importorskip("torch")
    tree, recipe = small_asap_tree(tmp_path)
    out = tmp_path / "w.npz"
    env = dict(os.environ, OMP_NUM_THREADS="1", TMPDIR=str(tmp_path))  # torchrun's own folders go there
    with socket.socket() as free:  # not torchrun's default port: another run may hold it
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           "-m", "bridge.cli", "train", "expression", str(tree), "--steps", "4", "--recipe", str(recipe), "--out", str(out),
           "--prepared", str(tmp_path / "cache"), "--exclude", str(EXCLUDE), "--members", str(members)]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    # the ranks' own error lines, which torchrun's summary at the end of stderr pushes out of a tail
    why = [line for line in r.stderr.splitlines() if any(k in line for k in ("what()", "terminate", "Error", "Signal"))]
    assert r.returncode == 0, "\n".join(why[:40]) + "\n" + r.stderr[-1000:]
    (cache,) = (tmp_path / "cache").glob("expression-data-*.npz")
    folders_in = set(np.load(cache)["folders"])
    assert "Bach/Fugue/bwv_867" not in folders_in and "Bach/Fugue/bwv_863" in folders_in
    assert sorted(p.name for p in tmp_path.glob("w*.npz")) == ["w.npz"]
    net = load_network(out)
    best = net.recipe["validation"]["best"]
    assert best["processes"] == 2 and net.cfg["d"] == 16 and net.members == members
    if members > 1:
        assert [m["processes"] for m in best["members"]] == [2] * members
    cal = net.recipe["calibration"]  # measured on the validation performance after training
    assert cal["phrases"] > 0 and cal["level"][0] <= cal["level"][1]
    assert len(cal["chord_spread_ms"]) == 21 and np.all(np.diff(cal["chord_spread_ms"]) >= 0)
    # the styles of the training pieces' two performances, one distribution per member
    assert len(net.recipe["style"]) == members
    for k in range(members):
        mean, cov = net.style(k)
        assert mean.shape == (net.z_dim,) and np.all(np.linalg.eigvalsh(cov) > 0)


@needs_exclude
def test_an_ensemble_is_trained_member_by_member_and_averaged(tmp_path):
    pytest.importorskip("torch")
    tree, recipe = small_asap_tree(tmp_path)
    out = tmp_path / "w.npz"
    r = cli("train", "expression", tree, "--steps", "4", "--members", "2", "--recipe", recipe, "--out", out,
            "--prepared", tmp_path / "cache", "--exclude", EXCLUDE, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.glob("w*.npz")) == ["w.npz"]  # the members' files are merged away
    net = load_network(out)
    assert net.members == 2 and net.critics == ["c.", "c1."]
    best = net.recipe["validation"]["best"]
    assert [m["step"] for m in best["members"]] and not np.isnan(best["score"])
    assert net.recipe["calibration"]["phrases"] > 0
    # seeds 0 and 1: two different networks, and the central rendition is their mean
    assert not np.allclose(net.w["g.inp1.weight"], net.w["g1.inp1.weight"])
    score = load_score(bundled("minuet"))
    inp = score_inputs(score)
    args = (inp.feats, inp.beat, inp.beat_bar, inp.bar_phr, np.zeros(net.z_dim, np.float32))
    outs = [net.forward(*args, member=k) for k in range(2)]
    both = net.forward(*args)
    for i in range(2):
        assert np.allclose(both[i], (outs[0][i] + outs[1][i]) / 2, atol=1e-6)
        assert not np.allclose(outs[0][i], outs[1][i])
    # drawn interpretations take the members in turn
    a, b = interpretations(score, net, seed=1, samples=2)
    assert not np.allclose(a.onset_s, b.onset_s)
