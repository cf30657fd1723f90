"""Write the bundled scores and their performances (all authored by this project, CC0).

    python scores/generate.py

Scores are composed here with music21 and written as MusicXML with ``<note id>`` on
every note; performances are rendered from them with :mod:`bridge.simulate`. The
output is committed, so running this again must give the same files.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import music21 as m21
from lxml import etree

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bridge import simulate  # noqa: E402
from bridge.midifile import write_performance  # noqa: E402
from bridge.musicxml import load_score  # noqa: E402

C_MAJOR = [0, 2, 4, 5, 7, 9, 11]


def piano(
    title: str, composer: str = "pianobridge project"
) -> tuple[m21.stream.Score, m21.stream.PartStaff, m21.stream.PartStaff]:
    sc = m21.stream.Score()
    sc.metadata = m21.metadata.Metadata(title=title, composer=composer)
    rh, lh = m21.stream.PartStaff(), m21.stream.PartStaff()
    rh.insert(0, m21.instrument.Piano())
    sc.insert(0, rh)
    sc.insert(0, lh)
    sc.insert(0, m21.layout.StaffGroup([rh, lh], symbol="brace", barTogether=True))
    return sc, rh, lh


def measure(number: int, items, ts: str | None = None, clef=None, extras=()) -> m21.stream.Measure:
    m = m21.stream.Measure(number=number)
    if clef is not None:
        m.insert(0, clef)
    if ts:
        m.insert(0, m21.meter.TimeSignature(ts))
    for off, obj in extras:
        m.insert(off, obj)
    for it in items:
        m.append(it)
    return m


def plain(n: m21.note.Note | m21.chord.Chord) -> m21.note.Note | m21.chord.Chord:
    """Never print the natural music21 gives a pitch made from a MIDI number: it wrote
    ``<accidental>natural</accidental>`` on notes the key already makes natural (the pitch
    keeps its ``<alter>0</alter>``)."""
    for p in n.pitches:
        if p.accidental is not None and p.accidental.alter == 0:
            p.accidental.displayType = "never"
    return n


def note(pitch, ql: float, finger: int | None = None) -> m21.note.Note:
    n = plain(m21.note.Note(pitch, quarterLength=ql))
    if finger is not None:
        n.articulations.append(m21.articulations.Fingering(finger))
    return n


def chord(pitches, ql: float) -> m21.chord.Chord:
    return plain(m21.chord.Chord(pitches, quarterLength=ql))


def fill_bars(items: list, per_bar: float) -> list[list]:
    bars, cur, acc = [], [], 0.0
    for it in items:
        cur.append(it)
        acc += it.quarterLength
        if acc >= per_bar - 1e-9:
            bars.append(cur)
            cur, acc = [], 0.0
    if cur:
        bars.append(cur)
    return bars


# ---------------------------------------------------------------- the pieces


def scale_study() -> m21.stream.Score:
    """C major, two octaves up and down in both hands, eighth notes, printed fingering."""
    sc, rh, lh = piano("Scale study in C")
    up_rh = [1, 2, 3, 1, 2, 3, 4, 1, 2, 3, 1, 2, 3, 4, 5]
    up_lh = [5, 4, 3, 2, 1, 3, 2, 1, 4, 3, 2, 1, 3, 2, 1]
    degrees = list(range(15))
    up = [60 + 12 * (d // 7) + C_MAJOR[d % 7] for d in degrees]
    rh_notes = [note(p, 0.5, f) for p, f in zip(up, up_rh)] + [
        note(p, 0.5, f) for p, f in zip(reversed(up[:-1]), list(reversed(up_rh))[1:])
    ]
    lh_notes = [note(p - 24, 0.5, f) for p, f in zip(up, up_lh)] + [
        note(p - 24, 0.5, f) for p, f in zip(reversed(up[:-1]), list(reversed(up_lh))[1:])
    ]
    rh_notes.append(note(60, 2.0 + 0.5, 1))
    lh_notes.append(note(36, 2.0 + 0.5, 5))
    for i, (a, b) in enumerate(zip(fill_bars(rh_notes, 4.0), fill_bars(lh_notes, 4.0)), start=1):
        first = i == 1
        rh.append(
            measure(
                i,
                a,
                "4/4" if first else None,
                m21.clef.TrebleClef() if first else None,
                [(0, m21.tempo.MetronomeMark(number=96))] if first else [],
            )
        )
        lh.append(measure(i, b, "4/4" if first else None, m21.clef.BassClef() if first else None))
    return sc


PROGRESSION = [  # (bass, chord tones) in C major, four bars a line
    (48, [60, 64, 67]),
    (53, [60, 65, 69]),
    (55, [59, 62, 67]),
    (48, [60, 64, 67]),
    (57, [60, 64, 69]),
    (50, [62, 65, 69]),
    (55, [59, 62, 65]),
    (48, [55, 60, 64]),
]


def chorale() -> m21.stream.Score:
    """Block chords in both hands: three-note right-hand chords over bass octaves."""
    sc, rh, lh = piano("Chorale")
    prog = PROGRESSION * 2
    for i in range(0, len(prog), 2):
        a, b = prog[i], prog[i + 1]
        num = i // 2 + 1
        first = num == 1
        rh_items = [chord(a[1], 2.0), chord(b[1], 2.0)]
        lh_items = [chord([a[0] - 12, a[0]], 2.0), chord([b[0] - 12, b[0]], 2.0)]
        rh.append(
            measure(
                num,
                rh_items,
                "4/4" if first else None,
                m21.clef.TrebleClef() if first else None,
                [(0, m21.tempo.MetronomeMark(number=72))] if first else [],
            )
        )
        lh.append(measure(num, lh_items, "4/4" if first else None, m21.clef.BassClef() if first else None))
    return sc


def minuet() -> m21.stream.Score:
    """3/4 with a repeated first half and a second half with first and second endings."""
    sc, rh, lh = piano("Minuet with repeats")
    rng = random.Random(3)
    bars_rh, bars_lh = [], []
    for i in range(16):
        bass, tones = PROGRESSION[i % 8]
        if i in (7, 15):
            bars_rh.append([note(tones[1] + 12, 3.0)])
        else:
            bars_rh.append(
                [
                    note(rng.choice(tones) + 12, 1.0),
                    note(rng.choice(tones) + 12, 1.0),
                    note(rng.choice(tones) + 12, 1.0),
                ]
            )
        bars_lh.append(
            [note(bass, 1.0), chord([tones[0] - 12, tones[1] - 12], 1.0), chord([tones[0] - 12, tones[1] - 12], 1.0)]
        )
    # second ending: a cadence bar instead of bar 16
    bars_rh.append([note(72, 3.0)])
    bars_lh.append([chord([36, 48], 3.0)])
    rms, lms = [], []
    for i, (a, b) in enumerate(zip(bars_rh, bars_lh), start=1):
        first = i == 1
        rm = measure(
            i,
            a,
            "3/4" if first else None,
            m21.clef.TrebleClef() if first else None,
            [(0, m21.tempo.MetronomeMark(number=120))] if first else [],
        )
        lm = measure(i, b, "3/4" if first else None, m21.clef.BassClef() if first else None)
        rms.append(rm)
        lms.append(lm)
    for ms in (rms, lms):
        ms[7].rightBarline = m21.bar.Repeat(direction="end")
        ms[8].leftBarline = m21.bar.Repeat(direction="start")
        ms[15].rightBarline = m21.bar.Repeat(direction="end")
    for ms, part in ((rms, rh), (lms, lh)):
        for m in ms:
            part.append(m)
        part.insert(0, m21.spanner.RepeatBracket(ms[15], number=1))
        part.insert(0, m21.spanner.RepeatBracket(ms[16], number=2))
    return sc


def nocturne() -> m21.stream.Score:
    """A melody over broken chords with dynamics marks from pp to f."""
    sc, rh, lh = piano("Nocturne with dynamics")
    rng = random.Random(5)
    marks = {1: "p", 5: "mf", 9: "f", 13: "pp", 15: "mp"}
    for i in range(16):
        bass, tones = PROGRESSION[i % 8]
        num = i + 1
        first = num == 1
        mel = [note(rng.choice(tones) + 12, 1.5), note(rng.choice(tones) + 12, 0.5), note(rng.choice(tones) + 12, 2.0)]
        arp = [note(p, 0.5) for p in (bass - 12, bass - 5, bass, tones[1] - 12, bass, bass - 5, bass - 12, bass - 5)]
        extras = [(0, m21.dynamics.Dynamic(marks[num]))] if num in marks else []
        if first:
            extras.append((0, m21.tempo.MetronomeMark(number=66)))
        rh.append(measure(num, mel, "4/4" if first else None, m21.clef.TrebleClef() if first else None, extras))
        lh.append(measure(num, arp, "4/4" if first else None, m21.clef.BassClef() if first else None))
    return sc


def sonatina() -> m21.stream.Score:
    """About 2,000 notes: a melody with scale runs over an Alberti bass, in three sections."""
    sc, rh, lh = piano("Sonatina in C")
    rng = random.Random(11)
    marks = {1: "mf", 33: "p", 65: "f", 97: "mf"}
    n_bars = 124
    for i in range(n_bars):
        bass, tones = PROGRESSION[(i + (i // 32)) % 8]
        num = i + 1
        first = num == 1
        section = (i // 16) % 3
        if num == n_bars:
            mel = [chord([60, 64, 72], 4.0)]
            acc = [chord([36, 48], 4.0)]
        else:
            if section == 0:  # singing melody
                mel = [
                    note(rng.choice(tones) + 12, d)
                    for d in rng.choice([(1.0, 1.0, 2.0), (2.0, 1.0, 1.0), (1.5, 0.5, 1.0, 1.0)])
                ]
            elif section == 1:  # scale runs in sixteenths
                start = rng.choice(tones) + 12
                step = rng.choice((1, -1))
                degs = [C_MAJOR.index(start % 12) if start % 12 in C_MAJOR else 0]
                pitches, d, octave = [], degs[0], start // 12
                for _ in range(16):
                    pitches.append(12 * octave + C_MAJOR[d % 7] + 12 * (d // 7) - 12 * (degs[0] // 7))
                    d += step
                mel = [note(max(60, min(96, p)), 0.25) for p in pitches]
            else:  # repeated-note figures and leaps
                a, b = rng.sample(tones, 2)
                mel = [note(p, 0.5) for p in (a + 12, a + 12, b + 24, b + 12) * 2]
            low, mid, high = bass - 12, tones[0] - 12, tones[1] - 12
            acc = [note(p, 0.5) for p in (low, high, mid, high) * 2]
        extras = [(0, m21.dynamics.Dynamic(marks[num]))] if num in marks else []
        if first:
            extras.append((0, m21.tempo.MetronomeMark(number=108)))
        rh.append(measure(num, mel, "4/4" if first else None, m21.clef.TrebleClef() if first else None, extras))
        lh.append(measure(num, acc, "4/4" if first else None, m21.clef.BassClef() if first else None))
    return sc


PIECES = {
    "scale_study": scale_study,
    "chorale": chorale,
    "minuet": minuet,
    "nocturne": nocturne,
    "sonatina": sonatina,
}


def write_with_ids(sc: m21.stream.Score, path: Path) -> None:
    """music21 writes no note ids; give every <note> a stable one."""
    tmp = path.with_suffix(".tmp.musicxml")
    sc.write("musicxml", fp=str(tmp))
    tree = etree.parse(str(tmp))
    for i, n in enumerate(tree.iter("note"), start=1):
        n.set("id", f"n{i}")
    # music21 makes up random part and instrument ids on every run
    for i, sp in enumerate(tree.iter("score-part"), start=1):
        renamed = {sp.get("id"): f"P{i}"}
        for k, inst in enumerate(sp.iter("score-instrument"), start=1):
            renamed[inst.get("id")] = f"P{i}-I{k}"
        for el in tree.iter("score-part", "part", "score-instrument", "midi-instrument", "instrument"):
            if el.get("id") in renamed:
                el.set("id", renamed[el.get("id")])
    for d in tree.iter("direction"):  # without a placement MuseScore puts the tempo under the staff
        if d.find("direction-type/metronome") is not None:
            d.set("placement", "above")
    for el in tree.iter("encoding-date"):  # keep the file byte-identical between runs
        el.text = "2026-11-22"
    tree.write(str(path), xml_declaration=True, encoding="UTF-8", pretty_print=True)
    tmp.unlink()


def main() -> None:
    perf_dir = HERE / "performances"
    perf_dir.mkdir(exist_ok=True)
    for name, build in PIECES.items():
        path = HERE / f"{name}.musicxml"
        sc = build()
        for part in sc.parts:  # every piece is in C major: say so, as a reader expects a key
            part.getElementsByClass(m21.stream.Measure).first().insert(0, m21.key.KeySignature(0))
        write_with_ids(sc, path)
        score = load_score(path, use_cache=False)
        played = simulate.render(score, seed=1)
        write_performance(simulate.to_events(played, pedal_every_s=2.0), perf_dir / f"{name}.mid")
        print(f"{path.name}: {len(score.notes)} notes, {len(score.events)} events")
    # a practice run: a few wrong, extra and dropped notes, then a restart two bars back
    score = load_score(HERE / "sonatina.musicxml", use_cache=False)
    played = simulate.with_mistakes(simulate.render(score, seed=2), seed=2, wrong=0.03, extra=0.02, drop=0.02)
    played = [p for p in played if p.t < 75.0]
    cut_q = score.notes[next(p.note for p in played[len(played) // 2 :] if p.note is not None)].onset_q
    played, _ = simulate.with_jump(played, score, at=0.5, to_q=cut_q - 8.0, pause_s=1.5)
    write_performance(simulate.to_events(played), perf_dir / "sonatina_practice.mid")


if __name__ == "__main__":
    main()
