"""Score model: ids, repeats, ties, grace notes, chords, marks, caching, bad files."""

import io
import zipfile

import music21 as m21
import pytest
from conftest import bundled
from helpers import rolled_chord_xml

from bridge.errors import UserError
from bridge.musicxml import load_score, parse_score
from bridge.score import MeasureRepeatInfo as M
from bridge.score import figure_spans, plays_figure, struck_together, unfold_measures


def write(sc: m21.stream.Score, path) -> bytes:
    sc.write("musicxml", fp=str(path))
    return path.read_bytes()


@pytest.mark.parametrize(
    ("onsets", "joined"),
    [
        # each hand's notes a few divisions apart (rounded tuplets): one chord per beat
        ([0.0, 0.0208, 0.2222, 0.2431, 0.4444, 0.4653], [[0, 1], [2, 3], [4, 5]]),
        # four voices drifting apart a step at a time
        ([1.0, 1.0208, 1.0417, 1.5], [[0, 1, 2], [3]]),
        # a run of 128th sextuplets, and one of 128ths: each note its own event
        ([0.0, 0.0208, 0.0417, 0.0625, 0.0833], [[0], [1], [2], [3], [4]]),
        ([0.0, 0.03125, 0.0625, 0.09375], [[0], [1], [2], [3]]),
        # a 64th before the beat is struck before it
        ([0.0, 0.9375, 1.0, 2.0], [[0], [1], [2], [3]]),
        # a run of 64th sextuplets that ends on a split chord
        ([0.0, 0.0417, 0.0833, 0.0903, 0.5], [[0], [1], [2, 3], [4]]),
    ],
)
def test_a_chord_the_file_wrote_split_is_struck_as_one_and_a_fast_run_is_not(onsets, joined):
    groups = struck_together([[k] for k in range(len(onsets))], onsets)
    assert groups == joined


def test_unfold_plain_repeat():
    assert unfold_measures([M(), M(backward_times=2), M()]) == [(0, 1), (1, 1), (0, 2), (1, 2), (2, 1)]


def test_unfold_voltas_and_second_section():
    info = [
        M(forward=True),
        M(),
        M(endings=(1,), backward_times=2),
        M(endings=(2,)),
        M(),
        M(forward=True),
        M(backward_times=2),
    ]
    order = [m for m, _ in unfold_measures(info)]
    assert order == [0, 1, 2, 0, 1, 3, 4, 5, 6, 5, 6]


def test_unfold_three_times():
    order = unfold_measures([M(forward=True), M(backward_times=3)])
    assert order == [(0, 1), (1, 1), (0, 2), (1, 2), (0, 3), (1, 3)]


def test_da_capo_al_fine_goes_back_once_without_the_repeats():
    """A minuet and trio: minuet (repeat), trio (repeat), da capo al fine; on the way back
    the minuet's repeat is not taken and the piece ends at the fine."""
    info = [M(), M(backward_times=2, fine=True), M(forward=True), M(backward_times=2, jump="dacapo")]
    assert unfold_measures(info) == [(0, 1), (1, 1), (0, 2), (1, 2), (2, 1), (3, 1), (2, 2), (3, 2), (0, 3), (1, 3)]


def test_dal_segno_al_coda_plays_the_last_volta_and_leaves_for_the_coda():
    info = [
        M(),
        M(segno=True, forward=True),
        M(tocoda=True),
        M(endings=(1,), backward_times=2),
        M(endings=(2,)),
        M(jump="dalsegno"),
        M(coda=True),
    ]
    order = [m for m, _ in unfold_measures(info)]
    assert order == [0, 1, 2, 3, 1, 2, 4, 5, 1, 2, 6]


def test_a_dal_segno_in_the_file_is_unfolded():
    """<sound segno>, <sound dalsegno> and <sound fine> as engravers write them."""
    note = "<note><pitch><step>{}</step><octave>4</octave></pitch><duration>4</duration></note>"
    bars = [
        note.format("C"),
        '<direction><direction-type><segno/></direction-type><sound segno="s"/></direction>' + note.format("D"),
        note.format("E")
        + '<direction><direction-type><words>Fine</words></direction-type><sound fine="yes"/></direction>',
        note.format("F") + "<direction><direction-type><words>D.S. al Fine</words></direction-type>"
        '<sound dalsegno="s"/></direction>',
    ]
    xml = (
        '<?xml version="1.0"?><score-partwise version="3.1"><part-list><score-part id="P1">'
        '<part-name>x</part-name></score-part></part-list><part id="P1">'
        + "".join(
            f'<measure number="{i + 1}">'
            + ("<attributes><divisions>1</divisions><time><beats>4</beats><beat-type>4</beat-type></time></attributes>"
               if i == 0 else "")
            + b
            + "</measure>"
            for i, b in enumerate(bars)
        )
        + "</part></score-partwise>"
    )  # fmt: skip
    s = parse_score(xml.encode())
    assert [(n.pitch, n.pass_no) for n in s.notes] == [(60, 1), (62, 1), (64, 1), (65, 1), (62, 2), (64, 2)]


def test_ids_come_from_the_file_and_are_stable():
    s = load_score(bundled("scale_study"), use_cache=False)
    # ids are numbered through the file, right hand's bar 1 first: n1..n8, then n9 for the left
    assert {n.note_id for n in s.notes if n.onset_q == 0.0} == {"n1", "n9"}
    assert len({(n.note_id, n.pass_no) for n in s.notes}) == len(s.notes)
    again = load_score(bundled("scale_study"), use_cache=False)
    assert [n.note_id for n in s.notes] == [n.note_id for n in again.notes]


def test_a_backup_past_the_measure_start_keeps_the_ids_of_the_notes_after_it():
    """Engravers' files (Beethoven op. 31/2 II in (n)ASAP) back up further than the measure
    holds; music21 puts the next voice at the measure's start, and the notes there must
    keep their ids (before: ids made up for them, which no alignment knows)."""
    note = (
        '<note id="{}"><pitch><step>{}</step><octave>{}</octave></pitch><duration>{}</duration><voice>{}</voice></note>'
    )
    xml = (
        '<?xml version="1.0"?><score-partwise version="3.1"><part-list><score-part id="P1">'
        '<part-name>x</part-name></score-part></part-list><part id="P1"><measure number="1">'
        "<attributes><divisions>1</divisions><time><beats>3</beats><beat-type>4</beat-type></time></attributes>"
        + note.format("a1", "C", 5, 3, 1)
        + "<backup><duration>4</duration></backup>"  # one beat too many
        + note.format("a2", "F", 3, 2, 2)
        + note.format("a3", "A", 3, 1, 2)
        + '</measure><measure number="2">'
        + note.format("a4", "E", 5, 3, 1)
        + "</measure></part></score-partwise>"
    )
    expected = [("a1", 0.0), ("a2", 0.0), ("a3", 2.0), ("a4", 3.0)]
    assert sorted((n.note_id, n.onset_q) for n in parse_score(xml.encode()).notes) == expected
    # op. 57 I backs up 1,333 quarters in bar 138: refused before, though it lands where the others do
    huge = xml.replace("<backup><duration>4</duration>", "<backup><duration>639819</duration>")
    assert sorted((n.note_id, n.onset_q) for n in parse_score(huge.encode()).notes) == expected


def test_printed_fingering_hands_and_staves():
    s = load_score(bundled("scale_study"))
    rh = [n for n in s.notes if n.hand == "right"]
    lh = [n for n in s.notes if n.hand == "left"]
    assert len(rh) == len(lh) == 30
    assert [n.fingering[0] for n in rh[:8]] == ["1", "2", "3", "1", "2", "3", "4", "1"]
    assert all(n.staff == 1 for n in rh) and all(n.staff == 2 for n in lh)


@pytest.mark.parametrize("declared", [False, True], ids=["staves-not-declared", "staves-declared"])
def test_a_chord_across_the_staves_keeps_each_note_on_its_own(declared):
    """Each note keeps its id, its written staff and the hand that staff means, also where the
    part declares no <staves> (music21 then reads one staff) and where one chord spans both
    staves (music21 puts it all in its first note's staff); the grace note tied into the
    chord's bass note holds through it, as one key press."""
    s = parse_score(rolled_chord_xml(declared))
    got = {n.note_id: (n.staff, n.hand, n.duration_q, n.grace) for n in s.notes}
    assert got == {"grace": (2, "left", 2.0, True), "top": (1, "right", 2.0, False), "low": (2, "left", 2.0, False)}


def test_minuet_repeats_and_voltas_unfold():
    s = load_score(bundled("minuet"))
    measures = []
    for n in s.notes:
        if not measures or measures[-1] != (n.measure, n.pass_no):
            measures.append((n.measure, n.pass_no))
    order = [m for m, _ in dict.fromkeys(measures)]
    # A section twice, B section with first ending, B again with the second ending
    expected = list(range(1, 9)) * 2 + list(range(9, 17)) + list(range(9, 16)) + [17]
    assert order == expected
    passes = {n.note_id: n.pass_no for n in s.notes if n.measure == 3}
    assert set(passes.values()) == {2}  # the last pass of bar 3 is its second
    assert max(n.onset_q for n in s.notes) == 31 * 3  # 32 bars of 3/4 played


def test_ties_chords_and_grace_notes(tmp_path):
    sc = m21.stream.Score()
    p = m21.stream.Part()
    m1, m2 = m21.stream.Measure(number=1), m21.stream.Measure(number=2)
    m1.append(m21.meter.TimeSignature("4/4"))
    tied = m21.note.Note("C5", quarterLength=2.0)
    tied.tie = m21.tie.Tie("start")
    m1.append(m21.chord.Chord(["C4", "E4", "G4"], quarterLength=2.0))
    m1.append(tied)
    cont = m21.note.Note("C5", quarterLength=1.0)
    cont.tie = m21.tie.Tie("stop")
    grace = m21.note.Note("B4").getGrace()
    m2.append(cont)
    m2.append(grace)
    m2.append(m21.note.Note("C5", quarterLength=3.0))
    p.append([m1, m2])
    sc.insert(0, p)
    s = parse_score(write(sc, tmp_path / "t.musicxml"))
    assert [n.pitch for n in s.notes] == [60, 64, 67, 72, 71, 72]
    tied_note = s.notes[3]
    assert tied_note.onset_q == 2.0 and tied_note.duration_q == 3.0  # continuation folded in
    assert s.notes[4].grace and not s.notes[5].grace
    assert [e.pitches for e in s.events] == [(60, 64, 67), (72,), (71,), (72,)]
    assert s.events[2].grace
    assert all(n.note_id for n in s.notes)  # deterministic ids where the file has none


def test_marks_in_force():
    s = load_score(bundled("nocturne"))
    by_measure = {n.measure: n.dynamic for n in s.notes}
    assert by_measure[1] == "p" and by_measure[5] == "mf" and by_measure[9] == "f" and by_measure[13] == "pp"
    assert by_measure[4] == "p"  # a mark holds until the next one
    assert all(n.tempo_qpm == 66 for n in s.notes)
    assert all(n.time_signature == "4/4" for n in s.notes)
    assert s.notes[0].beat == 1.0


def test_an_accent_mark_holds_for_its_own_notes_only(tmp_path):
    """sf stresses the chord it is written on and leaves p in force; fp is forte there, piano
    after (held as the level, every note after an sf was taken as forte until the next mark)."""
    sc, p = m21.stream.Score(), m21.stream.Part()
    marks = {(1, 0): "p", (1, 2): "sf", (2, 1): "fp"}
    for bar in (1, 2, 3):
        m = m21.stream.Measure(number=bar)
        for beat in range(4):
            if (bar, beat) in marks:
                m.insert(float(beat), m21.dynamics.Dynamic(marks[bar, beat]))
            m.insert(float(beat), m21.chord.Chord(["C4", "E4", "G4"], quarterLength=1.0))
        p.append(m)
    sc.insert(0, p)
    s = parse_score(write(sc, tmp_path / "t.musicxml"))
    chords = [e.notes for e in s.events]
    dyn = [{s.notes[i].dynamic for i in ns} for ns in chords]
    assert dyn == [{"p"}, {"p"}, {"sf"}, {"p"}, {"p"}, {"fp"}, {"p"}, {"p"}] + [{"p"}] * 4


def test_a_written_cresc_or_dim_runs_to_the_next_dynamic_or_four_bars(tmp_path):
    sc, p = m21.stream.Score(), m21.stream.Part()
    for bar in range(1, 10):
        m = m21.stream.Measure(number=bar)
        if bar == 1:
            m.insert(0.0, m21.dynamics.Dynamic("p"))
            m.insert(2.0, m21.expressions.TextExpression("cresc."))
        if bar == 3:
            m.insert(0.0, m21.dynamics.Dynamic("f"))
        if bar == 4:
            m.insert(0.0, m21.expressions.TextExpression("dim."))
        for beat in range(4):
            m.insert(float(beat), m21.note.Note("C4", quarterLength=1.0))
        p.append(m)
    sc.insert(0, p)
    s = parse_score(write(sc, tmp_path / "t.musicxml"))
    wedge = [n.wedge for n in s.notes]
    # from the cresc. to the f; the dim. for its own bar and the three after it
    assert wedge == [None, None] + ["crescendo"] * 6 + [None] * 4 + ["diminuendo"] * 16 + [None] * 8


def grand_staff(tmp_path, ts: str, top: list, bottom: list, spanners: list):
    """One bar on a treble and a bass staff (one part), ``spanners`` over the treble's notes,
    written out and parsed."""
    sc = m21.stream.Score()
    staves = [m21.stream.PartStaff(), m21.stream.PartStaff()]
    for staff, notes in zip(staves, (top, bottom), strict=True):
        m = m21.stream.Measure(number=1)
        m.append(m21.meter.TimeSignature(ts))
        m.append(notes)
        staff.append(m)
        sc.insert(0, staff)
    for sp in spanners:
        staves[0].getElementsByClass("Measure").first().insert(0, sp)
    sc.insert(0, m21.layout.StaffGroup(staves, symbol="brace"))
    return parse_score(write(sc, tmp_path / "t.musicxml"))


def test_slurred_pairs_mark_their_notes_and_where_each_slur_ends(tmp_path):
    """K. 331's sighs: two notes under a slur and a third detached, three times over; a slur
    in the treble leaves the bass under it unslurred."""
    notes = [m21.note.Note(p, quarterLength=0.5) for p in ("E5", "C#5", "A4") * 3]
    slurs = [m21.spanner.Slur(notes[i], notes[i + 1]) for i in (0, 3, 6)]
    s = grand_staff(tmp_path, "9/8", notes, [m21.note.Note("A2", quarterLength=4.5)], slurs)
    top = [n for n in s.notes if n.staff == 1]
    assert [n.slur for n in top] == [True, True, False] * 3
    assert [n.slur_end for n in top] == [False, True, False] * 3
    assert [(n.pitch, n.slur, n.slur_end) for n in s.notes if n.staff == 2] == [(45, False, False)]


def test_a_trills_wavy_line_carries_it_over_the_notes_of_its_pitch_under_the_line(tmp_path):
    """Gondoliera, bars 39-40: a trilled B sharp whose wavy line runs on over the B sharp
    struck again after it (the trill goes on through both); the bass under the line and a
    note of another pitch at its end are not trilled."""
    trilled, again, step = (m21.note.Note(p, quarterLength=q) for p, q in (("B#4", 2.0), ("B#4", 1.0), ("D5", 1.0)))
    trilled.expressions.append(m21.expressions.Trill())
    bass = [m21.note.Note("C4", quarterLength=2.0), m21.note.Note("C4", quarterLength=2.0)]
    s = grand_staff(tmp_path, "4/4", [trilled, again, step], bass, [m21.expressions.TrillExtension(trilled, step)])
    assert [(n.pitch, n.ornaments) for n in s.notes if n.staff == 1] == [
        (72, ("trill",)),
        (72, ("trillextension",)),
        (74, ()),
    ]
    assert [n.ornaments for n in s.notes if n.staff == 2] == [(), ()]
    assert [plays_figure(n) for n in s.notes if n.staff == 1] == [True, True, False]
    # the held B sharp sounds the trill over its own length, up to the D
    assert figure_spans(s.notes) == {1: (0.0, 2.0, (72,)), 3: (2.0, 3.0, (72,))}


def test_a_two_note_tremolo_sounds_both_chords_over_both_their_lengths(tmp_path):
    """Une barque, bar 38: a tremolo between a dyad and a note, a dotted half each; the bass
    under it is not part of it."""
    low, high = m21.chord.Chord(["B6", "D#7"], quarterLength=3.0), m21.note.Note("E#7", quarterLength=3.0)
    bass = [m21.note.Note("C#3", quarterLength=3.0), m21.note.Note("G#3", quarterLength=3.0)]
    s = grand_staff(tmp_path, "6/4", [low, high], bass, [m21.expressions.TremoloSpanner(low, high)])
    assert [(n.pitch, n.ornaments) for n in s.notes] == [
        (49, ()),
        (95, ("tremolospanner",)),
        (99, ("tremolospanner",)),
        (56, ()),
        (101, ("tremolospanner",)),
    ]
    assert figure_spans(s.notes) == {k: (0.0, 6.0, (95, 99, 101)) for k in (1, 2, 4)}


def test_second_load_comes_from_the_cache(monkeypatch):
    import bridge.musicxml as mx

    path = bundled("sonatina")
    first = load_score(path)

    def no_parsing(*a, **k):
        raise AssertionError("parsed again instead of using the cache")

    monkeypatch.setattr(mx, "parse_score", no_parsing)
    second = load_score(path)
    assert [(n.note_id, n.onset_q) for n in first.notes] == [(n.note_id, n.onset_q) for n in second.notes]
    assert len(second.notes) > 2000
    assert any(mx.cache_dir().glob("*.json"))


def test_broken_cache_entry_is_rebuilt():
    import bridge.musicxml as mx

    path = bundled("chorale")
    load_score(path)
    for f in mx.cache_dir().glob("*.json"):
        f.write_bytes(b"not a cache entry")
    assert len(load_score(path).notes) == 80


def test_compressed_mxl(tmp_path):
    data = bundled("chorale").read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(
            "META-INF/container.xml",
            '<container><rootfiles><rootfile full-path="score.xml"/></rootfiles></container>',
        )
        z.writestr("score.xml", data)
    mxl = tmp_path / "chorale.mxl"
    mxl.write_bytes(buf.getvalue())
    a = load_score(mxl, use_cache=False)
    b = load_score(bundled("chorale"), use_cache=False)
    assert [(n.note_id, n.pitch, n.onset_q) for n in a.notes] == [(n.note_id, n.pitch, n.onset_q) for n in b.notes]


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "not found"),
        (b"", "empty"),
        (b"just text", "not a readable MusicXML"),
        (b"<html><body/></html>", "not a MusicXML score"),
        (b"PK\x03\x04broken", "corrupt compressed"),
        (b'<?xml version="1.0"?><score-partwise><part-list/><part id="P1"><measure number="1">', "not a readable"),
    ],
)
def test_bad_score_files(tmp_path, content, message):
    path = tmp_path / "bad.musicxml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        load_score(path, use_cache=False)


def test_score_without_notes(tmp_path):
    sc = m21.stream.Score()
    p = m21.stream.Part()
    m = m21.stream.Measure(number=1)
    m.append(m21.note.Rest(quarterLength=4))
    p.append(m)
    sc.insert(0, p)
    path = tmp_path / "rests.musicxml"
    write(sc, path)
    with pytest.raises(UserError, match="no notes"):
        load_score(path, use_cache=False)


def test_single_staff_and_multi_part(tmp_path):
    sc = m21.stream.Score()
    for name, pitches in (("Flute", ["G5", "A5"]), ("Piano", ["C3", "E4"])):
        p = m21.stream.Part()
        p.partName = name
        m = m21.stream.Measure(number=1)
        m.append(m21.meter.TimeSignature("2/4"))
        for x in pitches:
            m.append(m21.note.Note(x, quarterLength=1.0))
        p.append(m)
        sc.insert(0, p)
    s = parse_score(write(sc, tmp_path / "two.musicxml"))
    assert len(s.notes) == 4 and len({n.part for n in s.notes}) == 2
    # single-staff parts split hands at middle C
    assert {n.pitch: n.hand for n in s.notes} == {79: "right", 81: "right", 48: "left", 64: "right"}
    assert [e.pitches for e in s.events] == [(48, 79), (64, 81)]


def _staves_xml(staves: int, notes: dict[int, str]) -> bytes:
    """One bar of 2/4 in a part written on ``staves`` staves: a half note per staff given
    (staff -> step and octave, "C5"), the staves without one left empty (rests)."""
    body = "<backup><duration>4</duration></backup>".join(
        (
            f'<note id="s{st}"><pitch><step>{notes[st][0]}</step><octave>{notes[st][1]}</octave></pitch>'
            if st in notes
            else "<note><rest/>"
        )
        + f"<duration>4</duration><voice>{st}</voice><type>half</type><staff>{st}</staff></note>"
        for st in range(1, staves + 1)
    )
    return f"""<?xml version="1.0"?><score-partwise version="3.1"><part-list><score-part id="P1">
<part-name>Piano</part-name></score-part></part-list><part id="P1"><measure number="1"><attributes>
<divisions>2</divisions><time><beats>2</beats><beat-type>4</beat-type></time><staves>{staves}</staves>
</attributes>{body}</measure></part></score-partwise>""".encode()


@pytest.mark.parametrize(
    "staves, notes, hands",
    [
        (2, {1: "C5", 2: "C3"}, {1: "right", 2: "left"}),  # a grand staff
        (3, {1: "E6", 2: "C5", 3: "C3"}, {1: "right", 2: "right", 3: "left"}),  # an ossia line above it
        (
            4,
            {1: "E6", 2: "E4", 3: "C5", 4: "C3"},
            {1: "right", 2: "left", 3: "right", 4: "left"},
        ),  # an ossia grand staff
        (4, {3: "C5", 4: "C3"}, {3: "right", 4: "left"}),  # the ossia staves empty (Liszt's Gondoliera in (n)ASAP)
        (3, {1: "C5", 2: "C3"}, {1: "right", 2: "left"}),  # a third staff declared, never used
    ],
)
def test_each_staff_is_given_the_hand_that_plays_it(staves, notes, hands):
    s = parse_score(_staves_xml(staves, notes))
    assert {n.staff: n.hand for n in s.notes} == hands


def test_fingering_substitution_is_read(tmp_path):
    xml = bundled("scale_study").read_text()
    # replace the first printed finger with a 3-to-1 substitution
    first = '<fingering alternate="no" substitution="no">1</fingering>'
    sub = '<fingering>3</fingering><fingering substitution="yes">1</fingering>'
    path = tmp_path / "sub.musicxml"
    path.write_text(xml.replace(first, sub, 1))
    s = load_score(path, use_cache=False)
    n1 = next(n for n in s.notes if n.note_id == "n1")
    assert n1.fingering == ("3_1",)


def test_music21_fix_ups_are_one_line(capsys):
    """An overfull measure makes music21 warn with two lines each; the user gets one."""
    # four quarters and a sliver: overfull by an amount no notation program would mean
    notes = "".join(
        f"<note><pitch><step>{s}</step><octave>4</octave></pitch><duration>{d}</duration></note>"
        for s, d in zip("CDEFG", (256, 256, 256, 256, 1), strict=True)
    )
    measure = "<measure number='{n}'>{attr}" + notes + "</measure>"
    attr = "<attributes><divisions>256</divisions><time><beats>4</beats><beat-type>4</beat-type></time></attributes>"
    xml = (
        "<?xml version='1.0'?><score-partwise version='3.1'><part-list><score-part id='P1'>"
        "<part-name>Piano</part-name></score-part></part-list><part id='P1'>"
        + measure.format(n=1, attr=attr)
        + measure.format(n=2, attr="")
        + "</part></score-partwise>"
    )
    score = parse_score(xml.encode(), title="overfull")
    assert len(score.notes) == 10
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pianobridge: overfull: music21 adjusted the score 2 times")
