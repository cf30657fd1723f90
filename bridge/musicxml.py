"""Read MusicXML (.musicxml, .xml, .mxl) into a :class:`~bridge.score.Score`.

music21 gives pitches, offsets, ties, grace notes, ornaments, dynamics, tempo and
time signatures; it drops ``<note id>``, fingering substitutions and the repeat
structure we want, so a light lxml pass over the same bytes supplies those.
Parsed scores are cached by content hash, so a second load skips music21 entirely.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import sys
import warnings
import zipfile
from collections import defaultdict
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

from lxml import etree

from bridge.errors import UserError
from bridge.score import MeasureRepeatInfo, Score, ScoreNote, unfold_measures

CACHE_VERSION = 3  # bump whenever Score, ScoreNote or ScoreEvent change
STEP_SEMITONES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def cache_dir() -> Path:
    root = os.environ.get("PIANOBRIDGE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pianobridge"
    )
    return Path(root) / "scores"


def read_musicxml_bytes(path: str | os.PathLike) -> bytes:
    """The score document's bytes; for .mxl, the root file named in the container."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"score file not found: {p}")
    data = p.read_bytes()
    if not data.strip():
        raise UserError(f"score file is empty: {p}")
    if data[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                names = z.namelist()
                root = None
                if "META-INF/container.xml" in names:
                    cont = etree.fromstring(z.read("META-INF/container.xml"))
                    rf = cont.find(".//{*}rootfile")
                    root = rf.get("full-path") if rf is not None else None
                root = root or next(
                    (n for n in names if n.endswith((".xml", ".musicxml")) and not n.startswith("META-INF")), None
                )
                if root is None:
                    raise UserError(f"compressed MusicXML has no score inside: {p}")
                return z.read(root)
        except zipfile.BadZipFile as e:
            raise UserError(f"corrupt compressed MusicXML file {p}: {e}") from None
    return data


def load_score(path: str | os.PathLike, use_cache: bool = True) -> Score:
    """Load a MusicXML score, unfolded, with stable note ids.

    Raises :class:`UserError` for a missing, empty, unreadable or note-less file.
    """
    data = read_musicxml_bytes(path)
    key = hashlib.sha256(data + f"v{CACHE_VERSION}".encode()).hexdigest()
    cached = cache_dir() / f"{key}.pkl"
    if use_cache and cached.is_file():
        try:
            with open(cached, "rb") as f:
                return pickle.load(f)
        except Exception:  # a stale or truncated cache entry is rebuilt, never trusted
            pass
    try:
        score = parse_score(data, title=Path(path).stem)
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    if use_cache:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                pickle.dump(score, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, cached)
        except OSError:
            pass  # a read-only cache only costs speed
    return score


# ---------------------------------------------------------------- lxml pass


def xml_root(data: bytes) -> etree._Element:
    try:
        root = etree.fromstring(data, parser=etree.XMLParser(huge_tree=True, resolve_entities=False))
    except etree.XMLSyntaxError as e:
        raise UserError(f"not a readable MusicXML file ({e.msg}, line {e.lineno})") from None
    tag = etree.QName(root).localname
    if tag == "score-timewise":
        raise UserError("timewise MusicXML is not supported; export it as partwise")
    if tag != "score-partwise":
        raise UserError(f"not a MusicXML score (root element <{tag}>)")
    return root


def _midi_of(pitch_el: etree._Element) -> int:
    step = pitch_el.findtext("step")
    octave = int(pitch_el.findtext("octave"))
    alter = round(float(pitch_el.findtext("alter") or 0))
    return 12 * (octave + 1) + STEP_SEMITONES[step] + alter


def printed_fingerings(note_el: etree._Element) -> tuple[str, ...]:
    """Printed fingers in document order; a substitution joins onto the finger before it."""
    out: list[str] = []
    for f in note_el.iterfind("notations/technical/fingering"):
        text = (f.text or "").strip()
        if not text:
            continue
        if f.get("substitution") == "yes" and out:
            out[-1] = f"{out[-1]}_{text}"
        else:
            out.append(text)
    return tuple(out)


@dataclass(frozen=True)
class XmlNote:
    """A pitched <note> element where the document puts it (offsets in quarters)."""

    part: int  # part index in the document
    staff: int
    measure: int  # measure ordinal in the part (not the printed number)
    start: Fraction  # offset in the measure
    duration: Fraction  # 0 for grace notes
    midi: int
    grace: bool
    el: etree._Element

    @property
    def key(self) -> tuple:
        return (self.part, self.staff, self.measure, round(float(self.start), 4), self.midi, self.grace)

    @property
    def ties(self) -> set[str]:
        return {t.get("type") for t in self.el.iterfind("tie")}


def scan_xml(root: etree._Element) -> tuple[list[XmlNote], list[int], list[MeasureRepeatInfo], list[Fraction]]:
    """The pitched notes in document order, the staves of each part, the repeat
    structure (from the first part) and the length of each measure ordinal in quarters."""
    notes: list[XmlNote] = []
    lengths: list[Fraction] = []
    staves_per_part: list[int] = []
    repeat_info: list[MeasureRepeatInfo] = []
    for pi, part in enumerate(root.iterfind("part")):
        divisions = 1
        n_staves = 1
        open_endings: tuple[int, ...] = ()
        for mi, measure in enumerate(part.iterfind("measure")):
            cursor = longest = Fraction(0)
            last_start = Fraction(0)
            fwd = False
            back = 0
            endings_here = open_endings
            for el in measure:
                tag = el.tag
                if tag == "attributes":
                    d = el.findtext("divisions")
                    if d:
                        divisions = int(float(d))
                    s = el.findtext("staves")
                    if s:
                        n_staves = max(n_staves, int(s))
                elif tag == "backup":
                    cursor -= Fraction(int(float(el.findtext("duration") or 0)), divisions)
                elif tag == "forward":
                    cursor += Fraction(int(float(el.findtext("duration") or 0)), divisions)
                elif tag == "barline" and pi == 0:
                    rep = el.find("repeat")
                    if rep is not None:
                        if rep.get("direction") == "forward":
                            fwd = True
                        else:
                            back = int(rep.get("times") or 2)
                    end = el.find("ending")
                    if end is not None:
                        nums = tuple(
                            int(x) for x in (end.get("number") or "1").replace(",", " ").split() if x.isdigit()
                        )
                        if end.get("type") == "start":
                            open_endings = nums
                            endings_here = nums
                        else:
                            endings_here = endings_here or nums
                            open_endings = ()
                elif tag == "note":
                    grace = el.find("grace") is not None
                    chord = el.find("chord") is not None
                    start = last_start if chord else cursor
                    if not chord:
                        last_start = cursor
                    dur = Fraction(0) if grace else Fraction(int(float(el.findtext("duration") or 0)), divisions)
                    if not chord:
                        cursor += dur
                    p = el.find("pitch")
                    if p is not None:
                        staff = int(el.findtext("staff") or 1)
                        notes.append(XmlNote(pi, staff, mi, start, dur, _midi_of(p), grace, el))
                longest = max(longest, cursor)
            if mi >= len(lengths):
                lengths.append(Fraction(0))
            lengths[mi] = max(lengths[mi], longest)
            if pi == 0:
                repeat_info.append(MeasureRepeatInfo(forward=fwd, backward_times=back, endings=endings_here))
        staves_per_part.append(n_staves)
    return notes, staves_per_part, repeat_info, lengths


# ---------------------------------------------------------------- music21 pass

DYNAMIC_NAMES = {"pppp", "ppp", "pp", "p", "mp", "mf", "f", "ff", "fff", "ffff", "sf", "sfz", "fp", "rfz", "sffz"}


def parse_score(data: bytes, title: str = "score") -> Score:
    """Build the unfolded :class:`Score` from MusicXML bytes (no cache)."""
    root = xml_root(data)
    xml_notes, staves_per_part, repeat_info, _ = scan_xml(root)
    ids: dict[tuple, list[tuple[str | None, tuple[str, ...]]]] = defaultdict(list)
    for xn in xml_notes:
        ids[xn.key].append((xn.el.get("id"), printed_fingerings(xn.el)))
    import music21  # imported late: the cached path never pays for it
    from music21.musicxml.xmlObjects import MusicXMLWarning

    try:
        with warnings.catch_warnings(record=True) as notices:
            warnings.simplefilter("ignore")  # music21's own deprecations are not the user's
            warnings.simplefilter("always", MusicXMLWarning)
            m21 = music21.converter.parse(data, format="musicxml", forceSource=True)
    except Exception as e:  # music21 raises many types for broken files
        raise UserError(f"cannot read MusicXML: {type(e).__name__}: {str(e).splitlines()[0][:200]}") from None
    if notices:
        # one line instead of a two-line warning per measure music21 had to fix up
        first = " ".join(str(notices[0].message).replace("Warning: ", "").split())
        print(
            f"pianobridge: {title}: music21 adjusted the score {len(notices)} times (first: {first})", file=sys.stderr
        )

    # music21 splits a multi-staff part into PartStaffs, in document order
    staff_streams = list(m21.parts)
    owners: list[tuple[int, int, str]] = []
    part_els = list(root.iterfind("part"))
    for pi, n in enumerate(staves_per_part):
        for s in range(1, n + 1):
            owners.append((pi, s, part_els[pi].get("id") or f"P{pi + 1}"))
    if len(owners) != len(staff_streams):
        owners = [(i, 1, f"P{i + 1}") for i in range(len(staff_streams))]

    measures_by_staff = [list(s.getElementsByClass("Measure")) for s in staff_streams]
    n_meas = max((len(m) for m in measures_by_staff), default=0)
    if len(repeat_info) < n_meas:
        repeat_info += [MeasureRepeatInfo()] * (n_meas - len(repeat_info))

    # per measure ordinal: length, printed number, time signature, tempo, dynamics
    lengths, numbers, pads = [], [], []
    ts_at: list[tuple[str, float]] = []
    directions: dict[int, list[tuple[float, str, object]]] = defaultdict(list)
    ts_cur, beat_q = "4/4", 1.0
    for mi in range(n_meas):
        here = [ms[mi] for ms in measures_by_staff if mi < len(ms)]
        m0 = here[0]
        for t in m0.getElementsByClass("TimeSignature"):
            ts_cur, beat_q = t.ratioString, float(t.beatDuration.quarterLength)
        ts_at.append((ts_cur, beat_q))
        lengths.append(max(float(m.highestTime) for m in here) or float(m0.barDuration.quarterLength))
        numbers.append(int(m0.number) if m0.number is not None else mi + 1)
        pads.append(float(m0.paddingLeft or 0.0))
        for m in here:
            for el in m.recurse().getElementsByClass(["Dynamic", "MetronomeMark"]):
                off = float(el.getOffsetInHierarchy(m))
                if isinstance(el, music21.dynamics.Dynamic):
                    if el.value in DYNAMIC_NAMES:
                        directions[mi].append((off, "dynamic", el.value))
                elif el.number is not None:
                    directions[mi].append((off, "tempo", float(el.getQuarterBPM())))
    for mi in directions:
        directions[mi].sort(key=lambda d: d[0])

    # the notes of each measure, once, keyed for id lookup
    raw: dict[int, list[tuple]] = defaultdict(list)  # measure ordinal -> note tuples
    for si, ms in enumerate(measures_by_staff):
        pi, staff, part_id = owners[si]
        used: dict[tuple, int] = defaultdict(int)
        for mi, m in enumerate(ms):
            for seq, el in enumerate(m.recurse().notes):
                off = float(el.getOffsetInHierarchy(m))
                grace = el.duration.isGrace
                ornaments = tuple(type(x).__name__.lower() for x in el.expressions)
                for n in el.notes if el.isChord else [el]:
                    key = (pi, staff, mi, round(off, 4), n.pitch.midi, grace)
                    k = used[key]
                    used[key] += 1
                    cands = ids.get(key, [])
                    xml_id, fing = cands[k] if k < len(cands) else (None, ())
                    tie = n.tie.type if n.tie is not None else None
                    dur = 0.0 if grace else float(el.duration.quarterLength)
                    raw[mi].append(
                        (off, n.pitch.midi, dur, tie, xml_id, fing, grace, ornaments, part_id, staff, k, seq)
                    )

    notes: list[ScoreNote] = []
    order = unfold_measures(repeat_info[:n_meas])
    start_q = 0.0
    marks: dict[str, object] = {"tempo": None, "dynamic": None}
    open_ties: dict[tuple, int] = {}
    multi_staff = {pid for (_, s, pid) in owners if s > 1}
    for mi, pass_no in order:
        # grace notes keep the order they are written in: that is the order they are played
        events = sorted(raw[mi], key=lambda r: (r[0], not r[6], r[11] if r[6] else r[1]))
        dirs = directions.get(mi, [])
        di = 0
        ts, beat_q = ts_at[mi]
        for off, midi, dur, tie, xml_id, fing, grace, orn, part_id, staff, k, _ in events:
            while di < len(dirs) and dirs[di][0] <= off + 1e-6:
                marks[dirs[di][1]] = dirs[di][2]
                di += 1
            tie_key = (part_id, staff, midi)
            if tie in ("stop", "continue") and tie_key in open_ties:
                j = open_ties[tie_key]
                prev = notes[j]
                notes[j] = replace(prev, duration_q=start_q + off + dur - prev.onset_q)
                if tie == "stop":
                    del open_ties[tie_key]
                continue
            nid = xml_id or f"{part_id}-s{staff}-m{numbers[mi]}-{round(off, 3)}-{midi}-{k}"
            hand = (
                ("right" if staff == 1 else "left") if part_id in multi_staff else ("right" if midi >= 60 else "left")
            )
            notes.append(
                ScoreNote(
                    note_id=nid,
                    pass_no=pass_no,
                    pitch=midi,
                    onset_q=round(start_q + off, 6),
                    duration_q=dur,
                    measure=numbers[mi],
                    beat=round(1.0 + (off + pads[mi]) / beat_q, 4),
                    part=part_id,
                    staff=staff,
                    hand=hand,
                    time_signature=ts,
                    tempo_qpm=marks["tempo"],
                    dynamic=marks["dynamic"],
                    fingering=fing,
                    grace=grace,
                    ornaments=orn,
                )
            )
            if tie == "start":
                open_ties[tie_key] = len(notes) - 1
        for _, kind, val in dirs[di:]:  # marks after the last note hold for what follows
            marks[kind] = val
        start_q += lengths[mi]
    if not notes:
        raise UserError("the score has no notes")
    order_of = {id(n): i for i, n in enumerate(notes)}
    notes.sort(key=lambda n: (n.onset_q, not n.grace, order_of[id(n)] if n.grace else n.pitch))
    return Score(title=_title(m21) or title, notes=notes)


def _title(m21) -> str | None:
    md = m21.metadata
    return (md.title or md.movementName) if md is not None else None
