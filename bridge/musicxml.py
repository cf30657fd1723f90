"""Read MusicXML (.musicxml, .xml, .mxl) into a :class:`~bridge.score.Score`.

music21 gives pitches, offsets, ties, grace notes, ornaments, dynamics, tempo and
time signatures; it drops ``<note id>``, fingering substitutions and the repeat
structure we want, so a light lxml pass over the same bytes supplies those. The lxml
pass also checks every value and size first, so a broken or hostile file is refused in
one line before music21 (slow and memory-hungry on huge input) sees it.
Parsed scores are cached by content hash, so a second load skips music21 entirely.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import os
import re
import sys
import tempfile
import warnings
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from lxml import etree

from bridge.errors import UserError
from bridge.score import (
    ACCENT_DYNAMICS,
    TREMOLO_PAIR,
    TRILL_LINE,
    MeasureRepeatInfo,
    Score,
    ScoreNote,
    score_from_data,
    score_to_data,
    unfold_measures,
)
from bridge.userfiles import read_bytes

CACHE_FORMAT = 13  # bump whenever Score, ScoreNote or ScoreEvent change, or what a file parses to
STEP_SEMITONES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
NOTE_TYPES = {"1024th", "512th", "256th", "128th", "64th", "32nd", "16th", "eighth", "quarter", "half", "whole",
              "breve", "long", "maxima"}  # fmt: skip

# Limits on what a score may hold, checked before music21 sees it. music21 takes up to about
# 10 KB and 0.5 ms for each note, direction, fermata or other element it makes an object of,
# and more than linear time in some shapes; at these limits the worst files we found take
# about 30 s and 600 MB. The largest nasap-dev score (2.6 MB) has 291 measures, 7,700 items
# in them, 77,000 elements and at most 30 elements in one note.
MAX_SCORE_BYTES = 20_000_000  # the file, and the score inside an .mxl
MAX_ELEMENTS = 500_000  # XML elements in the document
MAX_MEASURE_ITEMS = 50_000  # measures and their notes, directions, barlines, ...
# measures in all parts together: music21's time grows faster than the measures (6,000
# measures with a tie across each bar take 14 s); long piano works have a few hundred
MAX_MEASURES = 3_000
# each measure shorter than its time signature costs music21 about 2 us for each measure
# and item so far in its part: this bounds that to about 20 s (real scores: under 100,000)
MAX_SHORT_MEASURE_WORK = 10_000_000
MAX_ITEM_ELEMENTS = 100  # elements in one note or direction (music21 is quadratic in them; real: 30)
MAX_VOICES = 64  # voices in one measure of a part (music21 is quadratic in them)
MAX_STAVES = 16
MAX_BEATS = 32  # in a time signature (music21's time for one grows with the square of it)
MAX_REPEAT = 16  # a section played more often than this, or a volta number above it
MAX_DIVISIONS = 1_000_000
MAX_DURATION_Q = 1024  # quarters, for one note, backup or forward
TEMPO_RANGE = (10.0, 1000.0)  # quarter notes per minute
# .mxl containers: real MusicXML deflates 18-48:1 (bundled and nasap-dev scores), a bomb about 1000:1
MAX_MXL_MEMBERS = 100
MAX_MXL_RATIO = 200
MAX_CACHE_BYTES = 64_000_000  # an entry for MAX_UNFOLDED notes is about 30 MB


def cache_dir() -> Path:
    root = os.environ.get("PIANOBRIDGE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pianobridge"
    )
    return Path(root) / "scores"


def read_musicxml_bytes(path: str | os.PathLike) -> bytes:
    """The score document's bytes; for .mxl, the root file named in the container."""
    p = Path(path)
    data = read_bytes(p, "score file", MAX_SCORE_BYTES)
    if not data.strip():
        raise UserError(f"score file is empty: {p}")
    if data[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                return _mxl_score(z, p)
        # what zipfile and its decompressors raise for damaged, encrypted (RuntimeError) or exotic
        # archives: bad names and offsets (ValueError), bad bzip2 data (OSError), short data (EOFError)
        except (zipfile.BadZipFile, RuntimeError, ValueError, OSError, EOFError, zlib.error, lzma.LZMAError) as e:
            raise UserError(f"corrupt compressed MusicXML file {p}: {e}") from None
    return data


def _mxl_score(z: zipfile.ZipFile, p: Path) -> bytes:
    """The root file of an .mxl: the first rootfile of META-INF/container.xml, else
    the first MusicXML file in it."""
    infos = z.infolist()
    if len(infos) > MAX_MXL_MEMBERS:
        raise UserError(f"compressed MusicXML file {p} has {len(infos)} files inside, more than {MAX_MXL_MEMBERS}")
    names = {i.filename for i in infos}
    if "META-INF/container.xml" not in names:
        root = next(
            (n for n in z.namelist() if n.endswith((".xml", ".musicxml")) and not n.startswith("META-INF")), None
        )
        if root is None:
            raise UserError(f"compressed MusicXML has no score inside: {p}")
        return _unpack(z, root, p)
    try:
        container = etree.fromstring(
            _unpack(z, "META-INF/container.xml", p), parser=etree.XMLParser(resolve_entities=False)
        )
    except etree.XMLSyntaxError as e:
        raise UserError(f"{p}: META-INF/container.xml is not readable XML ({e.msg})") from None
    rootfile = container.find(".//{*}rootfile")
    root = rootfile.get("full-path") if rootfile is not None else None
    if not root:
        raise UserError(f"{p}: META-INF/container.xml names no rootfile")
    # zip names are relative POSIX paths; anything else is a mistake or an attempt to escape
    if PurePosixPath(root).is_absolute() or "\\" in root or ".." in PurePosixPath(root).parts:
        raise UserError(f"{p}: rootfile {_short(root)} is not a plain path inside the archive")
    if root not in names:
        raise UserError(f"{p}: rootfile {_short(root)} is not in the archive")
    return _unpack(z, root, p)


def _unpack(z: zipfile.ZipFile, name: str, p: Path) -> bytes:
    """One member's bytes, refused on the declared sizes and again while it unpacks (the
    declared sizes are the archive's word, not a fact)."""
    info = z.getinfo(name)
    _check_unpacked(info.file_size, info, p)
    out = bytearray()
    with z.open(info) as f:
        while chunk := f.read(2**20):
            out += chunk
            _check_unpacked(len(out), info, p)
    return bytes(out)


def _check_unpacked(size: int, info: zipfile.ZipInfo, p: Path) -> None:
    if size > MAX_SCORE_BYTES:
        raise UserError(f"{info.filename} in {p} unpacks to more than {MAX_SCORE_BYTES // 1_000_000} MB")
    if size > 2**20 and size > MAX_MXL_RATIO * info.compress_size:  # small files may compress well
        raise UserError(
            f"{info.filename} in {p} unpacks more than {MAX_MXL_RATIO} times its compressed size (a zip bomb?)"
        )


def load_score(path: str | os.PathLike, use_cache: bool = True) -> Score:
    """Load a MusicXML score, unfolded, with stable note ids.

    Raises :class:`UserError` for a missing, empty, unreadable, oversized or note-less file.
    """
    data = read_musicxml_bytes(path)
    digest = hashlib.sha256(data).hexdigest()
    cached = cache_dir() / f"{digest}.json"
    if use_cache and (score := _cached_score(cached, digest)) is not None:
        return score
    try:
        score = parse_score(data, title=Path(path).stem)
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    if use_cache:
        entry = {"format": CACHE_FORMAT, "source_sha256": digest, **score_to_data(score)}
        write_cache_entry(cached, lambda f: f.write(json.dumps(entry, allow_nan=False, separators=(",", ":")).encode()))
    return score


def write_cache_entry(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write a cache entry with ``write`` (given the open file) whole, then move it into place."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # a fresh name (O_EXCL) so a planted file or link at a predictable name is never written through
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs speed


def _cached_score(path: Path, digest: str) -> Score | None:
    """The score cached at ``path`` for the source with sha256 ``digest``, or None: a missing,
    stale, damaged or planted entry is rebuilt, never trusted (JSON cannot run code)."""
    try:
        entry = json.loads(read_bytes(path, "cache entry", MAX_CACHE_BYTES), parse_constant=_no_constant)
        if not isinstance(entry, dict) or (entry.get("format"), entry.get("source_sha256")) != (CACHE_FORMAT, digest):
            return None
        return score_from_data(entry)
    except (UserError, ValueError, RecursionError):  # JSON nested too deep raises RecursionError
        return None


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} in a cache entry")  # NaN and Infinity are never written


# ---------------------------------------------------------------- lxml pass


def xml_root(data: bytes) -> etree._Element:
    """The parsed document, refused unless it is a partwise MusicXML score of bounded size."""
    try:
        root = etree.fromstring(data, parser=etree.XMLParser(huge_tree=True, resolve_entities=False))
    except etree.XMLSyntaxError as e:
        raise UserError(f"not a readable MusicXML file ({e.msg}, line {e.lineno})") from None
    tag = etree.QName(root).localname
    if tag == "score-timewise":
        raise UserError("timewise MusicXML is not supported; export it as partwise")
    if tag != "score-partwise":
        raise UserError(f"not a MusicXML score (root element <{tag}>)")
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        # lxml leaves them unexpanded and music21 would expand them: the two passes would disagree
        raise UserError("the score declares XML entities, which MusicXML scores do not use")
    n = sum(1 for _ in root.iter())
    if n > MAX_ELEMENTS:
        raise UserError(f"the score has {n} XML elements, more than {MAX_ELEMENTS}")
    for sound in root.iter("sound"):  # read by music21 and by the fingering reader
        if sound.get("tempo") is not None:
            _number(sound.get("tempo"), "<sound tempo>", f"line {sound.sourceline}", *TEMPO_RANGE)
    for unit in root.iter("beat-unit"):  # music21 also knows "zero", and divides by its length
        if (unit.text or "").strip() not in NOTE_TYPES:
            raise UserError(f"line {unit.sourceline}: <beat-unit> {_short(unit.text)} is not a MusicXML note type")
    for per_minute in root.iter("per-minute"):
        try:
            bpm = float(per_minute.text or "")
        except ValueError:
            continue  # words such as "c. 60": music21 skips them too
        # music21 divides by it; the tempo in quarters is checked once music21 has the beat unit
        _check_range(bpm, "<per-minute>", f"line {per_minute.sourceline}", 1, 10 * TEMPO_RANGE[1])
    return root


def _number(text: str | None, what: str, where: str, low: float, high: float, whole: bool = False) -> float:
    """A number from the document within ``low..high``, or a one-line error saying what is
    wrong and where."""
    try:
        x = float(text)
    except (TypeError, ValueError):  # TypeError: the element or attribute is missing
        raise UserError(
            f"{where}: {what} is {'missing' if text is None else f'not a number: {_short(text)}'}"
        ) from None
    _check_range(x, what, where, low, high)
    if whole and x != int(x):
        raise UserError(f"{where}: {what} is not a whole number: {_short(text)}")
    return x


def _short(text: str | None, quote: bool = True) -> str:
    """Document text for an error message: one line, and not a megabyte of it."""
    text = " ".join((text or "").split())
    text = text if len(text) <= 40 else text[:37] + "..."
    return repr(text) if quote else text


def _check_range(x: float, what: str, where: str, low: float, high: float) -> None:
    if not low <= x <= high:  # also refuses NaN
        raise UserError(f"{where}: {what} is {x:.15g}, outside {low:.15g}..{high:.15g}")


def _midi_of(pitch_el: etree._Element, where: str) -> int:
    step = (pitch_el.findtext("step") or "").strip()
    if step not in STEP_SEMITONES:
        raise UserError(f"{where}: <step> is {_short(step)}, not one of A-G")
    octave = int(_number(pitch_el.findtext("octave"), "<octave>", where, -1, 9, whole=True))
    alter = _number(pitch_el.findtext("alter") or "0", "<alter>", where, -4, 4)
    base = 12 * (octave + 1) + STEP_SEMITONES[step]
    # unrounded: music21 turns a quarter tone above G9 into a G#8
    _check_range(base + alter, "the MIDI pitch", where, 0, 127)
    return base + round(alter)


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
    def place(self) -> tuple:
        """Where music21 finds the note, but for the staff (a chord across the staves is in one)."""
        return (self.part, self.measure, round(float(self.start), 4), self.midi, self.grace)

    @property
    def ties(self) -> set[str]:
        return {t.get("type") for t in self.el.iterfind("tie")}


def scan_xml(root: etree._Element) -> tuple[list[XmlNote], list[int], list[MeasureRepeatInfo], list[Fraction]]:
    """The pitched notes in document order, the staves of each part, the repeat
    structure (from the first part) and the length of each measure ordinal in quarters.

    Raises :class:`UserError` for a value music21 or the follower cannot use, naming the
    measure and line, and for a score past the size limits above.
    """
    notes: list[XmlNote] = []
    lengths: list[Fraction] = []
    staves_per_part: list[int] = []
    repeat_info: list[MeasureRepeatInfo] = []
    n_measures = sum(1 for _ in root.iterfind("part/measure"))
    if n_measures > MAX_MEASURES:
        raise UserError(f"the score has {n_measures} measures (all parts together), more than {MAX_MEASURES}")
    items = 0
    for pi, part in enumerate(root.iterfind("part")):
        divisions: int | None = None
        n_staves = 1
        open_endings: tuple[int, ...] = ()
        bar_q = Fraction(4)  # the bar length music21 assumes until a time signature
        part_start, short_work = items, 0
        part_first = len(notes)
        for mi, measure in enumerate(part.iterfind("measure")):
            cursor = longest = Fraction(0)
            last_start = Fraction(0)
            fwd = False
            back = 0
            endings_here = open_endings
            voices: set[str | None] = set()
            number = _short(measure.get("number") or str(mi + 1), quote=False)
            items += 1 + len(measure)
            if items > MAX_MEASURE_ITEMS:
                raise UserError(
                    f"the score has more than {MAX_MEASURE_ITEMS} notes, directions and other measure items"
                )
            for el in measure:
                tag = el.tag
                where = f"measure {number}, line {el.sourceline}"
                if sum(1 for _ in el.iter()) > MAX_ITEM_ELEMENTS:
                    raise UserError(f"{where}: <{tag}> holds more than {MAX_ITEM_ELEMENTS} elements")
                if tag == "attributes":
                    d = el.findtext("divisions")
                    if d:
                        divisions = int(_number(d, "<divisions>", where, 1, MAX_DIVISIONS, whole=True))
                    s = el.findtext("staves")
                    if s:
                        n_staves = max(n_staves, int(_number(s, "<staves>", where, 1, MAX_STAVES, whole=True)))
                    bar_q = _bar_length(el, where) or bar_q
                elif tag in ("backup", "forward"):
                    # a backup lands at the measure's start at the furthest, so any length is harmless
                    dur = _duration(el, divisions, where, bounded=tag == "forward")
                    # a <backup> past the measure's start lands on it, as in music21 (and partitura)
                    cursor = max(cursor + (dur if tag == "forward" else -dur), Fraction(0))
                elif tag == "barline" and pi == 0:
                    rep = el.find("repeat")
                    if rep is not None:
                        if rep.get("direction") == "forward":
                            fwd = True
                        else:
                            back = int(_number(rep.get("times") or "2", "repeat times", where, 0, MAX_REPEAT, True))
                    end = el.find("ending")
                    if end is not None:
                        nums = tuple(
                            int(x) for x in (end.get("number") or "1").replace(",", " ").split() if x.isdecimal()
                        )
                        if any(x > MAX_REPEAT for x in nums):
                            raise UserError(f"{where}: an ending number is above {MAX_REPEAT}")
                        if end.get("type") == "start":
                            open_endings = nums
                            endings_here = nums
                        else:
                            endings_here = endings_here or nums
                            open_endings = ()
                elif tag == "note":
                    voices.add(el.findtext("voice"))
                    if len(voices) > MAX_VOICES:
                        raise UserError(f"{where}: more than {MAX_VOICES} voices in one measure")
                    grace = el.find("grace") is not None
                    chord = el.find("chord") is not None
                    start = last_start if chord else cursor
                    if not chord:
                        last_start = cursor
                    dur = Fraction(0) if grace else _duration(el, divisions, where)
                    if not chord:
                        cursor += dur
                    p = el.find("pitch")
                    if p is not None:
                        staff = int(_number(el.findtext("staff") or "1", "<staff>", where, 1, MAX_STAVES, True))
                        notes.append(XmlNote(pi, staff, mi, start, dur, _midi_of(p, where), grace, el))
                longest = max(longest, cursor)
            if 0 < longest < bar_q:
                # music21 looks for the time signature of a short measure through the whole part so far
                short_work += items - part_start
                if short_work > MAX_SHORT_MEASURE_WORK:
                    raise UserError(
                        f"measure {number}: too many measures shorter than their time signature"
                        " in a score this long (music21 would take minutes)"
                    )
            if mi >= len(lengths):
                lengths.append(Fraction(0))
            lengths[mi] = max(lengths[mi], longest)
            if pi == 0:
                sound = [el.attrib for el in measure.iter("sound")]
                repeat_info.append(
                    MeasureRepeatInfo(
                        forward=fwd,
                        backward_times=back,
                        endings=endings_here,
                        segno=any("segno" in a for a in sound),
                        coda=any("coda" in a for a in sound),
                        jump=next((j for j in ("dacapo", "dalsegno") for a in sound if a.get(j, "no") != "no"), None),
                        fine=any(a.get("fine", "no") != "no" for a in sound),
                        tocoda=any("tocoda" in a for a in sound),
                    )
                )
        # the staves its notes name count even where <staves> is missing (partitura writes none)
        staves_per_part.append(max([n_staves] + [n.staff for n in notes[part_first:]]))
    return notes, staves_per_part, repeat_info, lengths


def declare_staves(root: etree._Element, staves_per_part: list[int]) -> bool:
    """Declare ``<staves>`` in the first measure of each part whose notes name more staves
    than it declares: music21 reads such a part as one staff and loses which hand plays
    what. True where the document changed."""
    changed = False
    for part, n in zip(root.iterfind("part"), staves_per_part):
        declared = max((int(s.text) for s in part.iter("staves") if (s.text or "").strip().isdecimal()), default=1)
        first = part.find("measure")
        if n <= declared or first is None:
            continue
        attrs = first.find("attributes")
        if attrs is None:
            attrs = etree.Element("attributes")
            first.insert(0, attrs)
        staves = attrs.find("staves")
        if staves is None:
            staves = etree.Element("staves")
            # the schema's order: divisions, key, time, then staves
            before = [i for i, el in enumerate(attrs) if el.tag in ("divisions", "key", "time")]
            attrs.insert(before[-1] + 1 if before else 0, staves)
        staves.text = str(n)
        changed = True
    return changed


def _bar_length(attributes: etree._Element, where: str) -> Fraction | None:
    """The bar length in quarters of the time signature in ``attributes``, None where there
    is none; its numbers are checked (music21's time for one grows with the square of its beats)."""
    beats, beat_types = attributes.findall("time/beats"), attributes.findall("time/beat-type")
    if len(beats) != len(beat_types):
        raise UserError(f"{where}: a <time> needs one <beat-type> for each <beats>")
    bar = Fraction(0)
    for b, t in zip(beats, beat_types):
        terms = (b.text or "").split("+")  # "3+2" for an additive meter
        n = sum(int(_number(x, "<beats>", where, 1, MAX_BEATS, whole=True)) for x in terms)
        _check_range(n, "<beats>", where, 1, MAX_BEATS)
        bar += Fraction(4 * n, int(_number(t.text, "<beat-type>", where, 1, 128, whole=True)))
    return bar or None


def _duration(el: etree._Element, divisions: int | None, where: str, bounded: bool = True) -> Fraction:
    """The <duration> of a note, backup or forward in quarters (0 where it has none), at most
    ``MAX_DURATION_Q`` quarters where ``bounded``."""
    text = el.findtext("duration")
    if text is None:
        return Fraction(0)
    if divisions is None:  # invalid MusicXML, and music21's time grows with the square of the measures
        raise UserError(f"{where}: a <duration> comes before any <divisions> says what it counts")
    top = MAX_DURATION_Q * divisions if bounded else 2**62
    return Fraction(int(_number(text, "<duration>", where, 0, top)), divisions)


# ---------------------------------------------------------------- music21 pass

# directions the expression model reads as tempo words (rit., a tempo, allegro, ...)
TEMPO_WORDS = re.compile(
    r"\b(rit|ritard|riten|rall|allarg|smorz|calando|morendo|accel|string|stretto|a tempo|tempo i|tempo primo|"
    r"pi[uù] mosso|meno mosso|grave|largo|larghetto|lento|adagio|andante|andantino|moderato|allegretto|allegro|"
    r"vivace|vivo|presto|prestissimo)"
)
# a written "cresc." or "dim.": a hairpin in words, until the next dynamic or SWELL_BARS bars
SWELL_WORDS = re.compile(r"\b(?:(decresc|dim)|(cresc))")
SWELL_BARS = 4
DYNAMIC_NAMES = {"pppp", "ppp", "pp", "p", "mp", "mf", "f", "ff", "fff", "ffff", "sf", "sfz", "fp", "rfz", "sffz"}


def parse_score(data: bytes, title: str = "score") -> Score:
    """Build the unfolded :class:`Score` from MusicXML bytes (no cache)."""
    root = xml_root(data)
    xml_notes, staves_per_part, repeat_info, _ = scan_xml(root)
    if declare_staves(root, staves_per_part):
        data = etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")
    # a chord written across the staves is one chord in music21, in its first note's staff:
    # its notes are looked up in any staff of the part, their own staff first
    written: dict[tuple, list[XmlNote]] = defaultdict(list)
    for xn in xml_notes:
        written[xn.place].append(xn)
    import music21  # imported late: the cached path never pays for it
    from music21.musicxml.xmlObjects import MusicXMLWarning

    try:
        with warnings.catch_warnings(record=True) as notices:
            warnings.simplefilter("ignore")  # music21's own deprecations are not the user's
            warnings.simplefilter("always", MusicXMLWarning)
            m21 = music21.converter.parse(data, format="musicxml", forceSource=True)
    except Exception as e:  # music21 raises many types for broken files
        raise UserError(f"cannot read MusicXML: {type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}") from None

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
            ts_cur = t.ratioString
            try:
                beat_q = float(t.beatDuration.quarterLength)
            except music21.exceptions21.TimeSignatureException:  # 3+2/8: beats of unequal length
                beat_q = 4.0 / t.denominator  # count in the written unit
        ts_at.append((ts_cur, beat_q))
        lengths.append(max(float(m.highestTime) for m in here) or float(m0.barDuration.quarterLength))
        numbers.append(int(m0.number) if m0.number is not None else mi + 1)
        pads.append(float(m0.paddingLeft or 0.0))
        for m in here:
            for el in m.recurse().getElementsByClass(["Dynamic", "MetronomeMark", "TextExpression"]):
                off = float(el.getOffsetInHierarchy(m))
                if isinstance(el, music21.dynamics.Dynamic):
                    if el.value in DYNAMIC_NAMES:
                        directions[mi].append((off, "dynamic", el.value))
                    continue
                words = el.content if isinstance(el, music21.expressions.TextExpression) else el.text
                text = " ".join(str(words or "").lower().split())
                if TEMPO_WORDS.search(text):
                    directions[mi].append((off, "words", text[:40]))
                if swell := SWELL_WORDS.search(text):
                    directions[mi].append((off, "swell", "diminuendo" if swell.group(1) else "crescendo"))
                if isinstance(el, music21.expressions.TextExpression):
                    continue
                if el.number is not None:
                    qpm = float(el.getQuarterBPM())
                    _check_range(qpm, "the tempo in quarter notes per minute", f"measure {numbers[-1]}", *TEMPO_RANGE)
                    directions[mi].append((off, "tempo", qpm))
    for mi in directions:
        directions[mi].sort(key=lambda d: d[0])

    # the notes of each measure, once, keyed for id lookup
    raw: dict[int, list[tuple]] = defaultdict(list)  # measure ordinal -> note tuples
    measure_at: dict[int, tuple[int, int]] = {}  # id(music21 measure) -> (staff stream, measure ordinal)
    for si, ms in enumerate(measures_by_staff):
        pi, staff, part_id = owners[si]
        used: dict[tuple, int] = defaultdict(int)
        for mi, m in enumerate(ms):
            measure_at[id(m)] = (si, mi)
            for seq, el in enumerate(m.recurse().notes):
                off = float(el.getOffsetInHierarchy(m))
                grace = el.duration.isGrace
                ornaments = tuple(type(x).__name__.lower() for x in el.expressions)
                site = el.activeSite
                voice = int(site.id) if isinstance(site, music21.stream.Voice) and str(site.id).isdecimal() else 1
                arts = tuple(type(x).__name__.lower() for x in el.articulations)
                for n in el.notes if el.isChord else [el]:
                    place = (pi, mi, round(off, 4), n.pitch.midi, grace)
                    k = used[place, staff]
                    used[place, staff] += 1
                    cands = written.get(place, [])
                    xn = next((c for c in cands if c.staff == staff), cands[0] if cands else None)
                    xml_id, fing, on_staff = (None, (), staff)
                    if xn is not None:
                        cands.remove(xn)  # each written note names one music21 note
                        xml_id, fing, on_staff = xn.el.get("id"), printed_fingerings(xn.el), xn.staff
                    tie = n.tie.type if n.tie is not None else None
                    dur = 0.0 if grace else float(el.duration.quarterLength)
                    raw[mi].append(
                        (off, n.pitch.midi, dur, tie, xml_id, fing, grace, ornaments, part_id, on_staff, k, seq)
                        + (voice, arts, si, pi, {"slur": False, "slur_end": False, "wedge": None, "figure": None})
                    )
    _mark_spanners(m21, measure_at, owners, raw)

    notes: list[ScoreNote] = []
    order = unfold_measures(repeat_info[:n_meas], [len(raw[mi]) for mi in range(n_meas)])
    start_q = 0.0
    marks: dict[str, object] = {"tempo": None, "dynamic": None, "words": None, "swell": None, "bar": 0}
    accent: tuple | None = None  # (measure ordinal, pass, offset, mark) of the notes an sf is written on
    open_ties: dict[tuple, int] = {}
    multi_staff = {pid for (_, s, pid) in owners if s > 1}
    used: dict[str, set[int]] = {}  # per part written on several staves, the staves with notes
    for rows in raw.values():
        for r in rows:
            if r[8] in multi_staff:
                used.setdefault(r[8], set()).add(r[9])
    hand_of = {(pid, st): h for pid, staves in used.items() for st, h in staff_hands(staves).items()}
    for bar, (mi, pass_no) in enumerate(order):
        marks["bar"] = bar
        # grace notes keep the order they are written in: that is the order they are played
        events = sorted(raw[mi], key=lambda r: (r[0], not r[6], r[11] if r[6] else r[1]))
        dirs = directions.get(mi, [])
        di = 0
        ts, beat_q = ts_at[mi]
        for off, midi, dur, tie, xml_id, fing, grace, orn, part_id, staff, k, _, voice, arts, _, _, span in events:
            while di < len(dirs) and dirs[di][0] <= off + 1e-6:
                if _set_mark(marks, *dirs[di][1:]):
                    accent = (mi, pass_no, off, dirs[di][2])
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
            hand = hand_of.get((part_id, staff)) or ("right" if midi >= 60 else "left")
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
                    dynamic=accent[3] if accent is not None and accent[:3] == (mi, pass_no, off) else marks["dynamic"],
                    fingering=fing,
                    grace=grace,
                    ornaments=orn + (span["figure"],) if span["figure"] else orn,
                    voice=voice,
                    articulations=arts,
                    slur=span["slur"],
                    slur_end=span["slur_end"],
                    wedge=span["wedge"] or _swell(marks),
                    words=marks["words"],
                )
            )
            if tie == "start":
                open_ties[tie_key] = len(notes) - 1
        for _, kind, val in dirs[di:]:  # marks after the last note hold for what follows
            _set_mark(marks, kind, val)
        start_q += lengths[mi]
    if not notes:
        raise UserError("the score has no notes")
    if notices:  # said only once the score is read: a refused score gets its one error line alone
        # one line instead of a two-line warning per measure music21 had to fix up
        first = " ".join(str(notices[0].message).replace("Warning: ", "").split())
        print(
            f"pianobridge: {title}: music21 adjusted the score {len(notices)} times (first: {first})", file=sys.stderr
        )
    order_of = {id(n): i for i, n in enumerate(notes)}
    notes.sort(key=lambda n: (n.onset_q, not n.grace, order_of[id(n)] if n.grace else n.pitch))
    return Score(title=_title(m21) or title, notes=notes)


def _set_mark(marks: dict[str, object], kind: str, value: object) -> bool:
    """Put a direction in force; True for an accent dynamic, which holds for its own notes only."""
    if kind == "dynamic" and value in ACCENT_DYNAMICS:
        marks["dynamic"] = ACCENT_DYNAMICS[value] or marks["dynamic"]
        return True
    if kind == "dynamic":  # the level a written cresc. or dim. was heading for
        marks["swell"] = None
    marks[kind] = (value, marks["bar"]) if kind == "swell" else value
    return False


def _swell(marks: dict[str, object]) -> str | None:
    """The written cresc. or dim. in force, for SWELL_BARS bars from the one it is written in."""
    swell = marks["swell"]
    return swell[0] if swell is not None and marks["bar"] - swell[1] < SWELL_BARS else None


def staff_hands(staves: set[int]) -> dict[int, str]:
    """Which hand plays each staff of a part written on several (``staves``: those that hold
    notes). A grand staff's upper staff is the right hand's, its lower the left's; more staves
    are read as grand staves from the top where they pair up (an ossia grand staff above the
    main one), else as one staff above a grand staff (an ossia line, or piano music written on
    three staves), whose lowest staff alone is the left hand's."""
    s = sorted(staves)
    if len(s) == 1:
        return {s[0]: "right" if s[0] == 1 else "left"}
    if len(s) % 2 == 0:
        return {st: ("right", "left")[i % 2] for i, st in enumerate(s)}
    return {st: "left" if st == s[-1] else "right" for st in s}


def _mark_spanners(m21, measure_at: dict, owners: list, raw: dict[int, list[tuple]]) -> None:
    """Mark the notes under each slur (same staff) and its last notes, the notes under each
    hairpin (same part), the notes a trill's wavy line runs on over (same staff, the trilled
    pitch: the trill goes on through them) and the two chords of each two-note tremolo in
    ``raw``."""
    import music21

    def where(el) -> tuple[int, int, float] | None:
        try:
            m = el.getContextByClass("Measure")
            si, mi = measure_at[id(m)]
            return si, mi, float(el.getOffsetInHierarchy(m))
        except (KeyError, AttributeError, music21.exceptions21.Music21Exception):
            return None  # an anchor outside the measures we read: the spanner is left out

    figures = {music21.expressions.TrillExtension: TRILL_LINE, music21.expressions.TremoloSpanner: TREMOLO_PAIR}
    for sp in m21.spannerBundle:
        is_slur = isinstance(sp, music21.spanner.Slur)
        figure = figures.get(type(sp))
        if not (is_slur or figure or isinstance(sp, music21.dynamics.DynamicWedge)):
            continue
        first, last = where(sp.getFirst()), where(sp.getLast())
        if first is None or last is None or (last[1], last[2]) < (first[1], first[2]):
            continue
        wedge = type(sp).__name__.lower()
        # the pitches written at each end of a trill line or a tremolo
        ends = {
            pos: {p.midi for p in getattr(el, "pitches", ())}
            for pos, el in ((first, sp.getFirst()), (last, sp.getLast()))
            if figure
        }
        for mi in range(first[1], last[1] + 1):
            for note in raw.get(mi, ()):
                off, si, pi, span = note[0], note[14], note[15], note[16]
                if (mi, off) < first[1:] or (mi, off) > last[1:]:
                    continue
                if figure == TRILL_LINE:
                    if si == first[0] and (mi, off) > first[1:] and note[1] in ends[first]:
                        span["figure"] = figure
                elif figure:
                    if note[1] in ends.get((si, mi, off), ()):
                        span["figure"] = figure
                elif is_slur and si == first[0]:
                    span["slur"] = True
                    span["slur_end"] |= (mi, off) == last[1:]
                elif not is_slur and pi == owners[first[0]][0] and wedge in ("crescendo", "diminuendo"):
                    span["wedge"] = wedge


def _title(m21) -> str | None:
    md = m21.metadata
    return (md.title or md.movementName) if md is not None else None
