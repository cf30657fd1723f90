"""A session's results written into its MusicXML score, for notation programs.

The original document is edited with lxml (as ``pianobridge fingering`` does), so every
thing the score had stays as it was; what is added:

- each score note the session found a problem with gets a colour, on ``<note color>`` and
  its ``<notehead>``: the worst of everything the session said about it, over all repeat
  passes and restarts (see ``MARKS``); notes played right, or never reached, stay black;
- a wrong pitch also gets the pitch played instead as a small text (``<words>``) at the
  note; extra notes, which are not in the score, get ``+F#4`` at the note the follower
  was on when they were played;
- a played finger (from the camera) that differs from the suggested or printed one
  replaces that note's fingering with one ``<fingering>`` reading ``PLAYED(SUGGESTED)``,
  e.g. ``2(3)``: MuseScore 3 keeps only the last ``<fingering>`` of a note (so two of
  them, or a substitution, lose one finger there) and verovio stacks them with nothing
  to tell them apart, while one text shows both in each;
- each teacher annotation becomes a ``<words>`` direction ``AUTHOR: TEXT`` at its note,
  else at the start of its measure, else where the player was when it came in.

See docs/notation.md.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from bridge.errors import UserError
from bridge.musicxml import XmlNote, read_musicxml_bytes, scan_xml, xml_root

# what a coloured note means, worst first: a note shows the first of these it earned.
# Okabe-Ito colours, told apart with the common colour-vision deficiencies too.
MARKS = {
    "wrong_pitch": "#D55E00",  # vermillion: another key was struck for it
    "missed": "#CC79A7",  # reddish purple: never played
    "early": "#0072B2",  # blue: on the right key, off the beat
    "late": "#0072B2",
    "loud": "#009E73",  # bluish green: right key and time, off the dynamic mark
    "soft": "#009E73",
}
EXTRA_COLOUR = "#E69F00"  # orange text: a key struck that the score does not have
FINGER_COLOUR = MARKS["wrong_pitch"]  # of a played finger (MuseScore 3 and verovio show it black)
_RANK = {label: i for i, label in enumerate(MARKS)}
_PRESS_FIELDS = ("type", "pitch", "verdict", "match", "intended", "position", "timing", "loudness", "hand")
_PRESS_FIELDS += ("finger", "suggested_finger", "printed_finger")
# <note> children that come after <notehead> (MusicXML 4.0 order)
_AFTER_NOTEHEAD = ("notehead-text", "staff", "beam", "notations", "lyric", "play", "listen")


@dataclass
class NoteResult:
    """What the session found on one score note, over all its passes."""

    mark: str | None = None  # a key of MARKS, or None: played right every time
    played_instead: list[str] = field(default_factory=list)  # pitch names, for a wrong pitch
    fingers: list[str] = field(default_factory=list)  # played fingers that differ from the suggestion
    suggested: str = ""  # the suggested (or printed) finger they differ from
    hand: str | None = None  # "left" or "right": the note's staff

    def add_mark(self, mark: str) -> None:
        if self.mark is None or _RANK[mark] < _RANK[self.mark]:
            self.mark = mark


@dataclass
class SessionResults:
    notes: dict[str, NoteResult] = field(default_factory=dict)  # by score note id
    extras: dict[str, list[str]] = field(default_factory=dict)  # note id the player was at -> pitches
    annotations: list[tuple[dict, str | None]] = field(default_factory=list)  # event, note id the player was at

    def note(self, note_id: str) -> NoteResult:
        return self.notes.setdefault(note_id, NoteResult())


@dataclass
class Summary:
    """What ``annotate`` wrote, for the command's one line."""

    marks: dict[str, int]
    extras: int
    fingers: int
    annotations: int
    unplaced: int  # results on note ids the score does not have


def read_results(session: str | os.PathLike) -> tuple[dict, SessionResults]:
    """The session header and its results per score note (see the module doc for how
    several passes over a note add up). A bad log is one `UserError` before any work."""
    from bridge.session import check_session, session_events

    header, _, _ = check_session(session)
    res = SessionResults()
    presses: dict[tuple[float, int], tuple[int, dict]] = {}  # (t, pitch) -> its note event, for revised and finger
    at: str | None = None  # the note id the follower was at
    events = (ev for _, ev in session_events(session, "out"))
    for n, ev in enumerate(events, start=1):
        with _readable(session, n, ev):
            kind = ev["type"]
            if kind == "note":  # what a press needs, kept: a long session has many
                presses[(ev["t"], ev["pitch"])] = (n, {k: ev[k] for k in _PRESS_FIELDS if k in ev})
                at = _note_id(ev.get("position")) or at
            elif kind == "revised" and (ev["of_t"], ev["pitch"]) in presses:
                # the earlier press did not play that note after all: it was an extra one
                presses[(ev["of_t"], ev["pitch"])][1].update(verdict="extra", match=None, timing=None, loudness=None)
            elif kind == "finger" and (ev["t"], ev["pitch"]) in presses:
                presses[(ev["t"], ev["pitch"])][1]["finger"] = ev["finger"]  # the live camera's call, sent later
            elif kind == "missed" and ev.get("sure", True) and (nid := _note_id(ev)):
                res.note(nid).add_mark("missed")
            elif kind == "annotation":
                res.annotations.append((ev, at))
    for n, ev in presses.values():
        with _readable(session, n, ev):
            _add_press(res, ev)
    return header, res


@contextlib.contextmanager
def _readable(session: str | os.PathLike, n: int, ev: dict) -> Iterator[None]:
    """A logged output event without the fields docs/events.md gives it is one `UserError`."""
    try:
        yield
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise UserError(
            f"{session}: output event {n} ({str(ev.get('type'))[:20]}) is not as docs/events.md describes it"
            f" ({type(e).__name__}: {str(e)[:60]})"
        ) from None


def _note_id(ref: object) -> str | None:
    nid = ref.get("note_id") if isinstance(ref, dict) else None
    return nid if isinstance(nid, str) and nid else None


def _add_press(res: SessionResults, ev: dict) -> None:
    verdict = ev["verdict"]
    if verdict == "extra":
        anchor = _note_id(ev.get("position"))
        if anchor:
            _add_once(res.extras.setdefault(anchor, []), _pitch_name(ev["pitch"]))
        return
    note_id = _note_id(ev.get("match") if verdict == "correct" else ev.get("intended"))
    if note_id is None:
        return
    r = res.note(note_id)
    hand = ev.get("hand")
    r.hand = hand or r.hand
    if verdict == "wrong_pitch":
        r.add_mark("wrong_pitch")
        _add_once(r.played_instead, _pitch_name(ev["pitch"]))
        return
    for label in (ev.get("timing"), ev.get("loudness")):
        if label in MARKS:
            r.add_mark(label)
    played = ev.get("finger")
    suggested = ev.get("suggested_finger") or ev.get("printed_finger")
    if played and suggested:
        finger = str(int(played["finger"]))
        other_hand = hand is not None and played["hand"] != hand
        if other_hand or finger != suggested.split("_")[0]:
            _add_once(r.fingers, f"{str(played['hand'])[:1].upper()}{finger}" if other_hand else finger)
            r.suggested = suggested.replace("_", "-")


def _add_once(items: list[str], item: str) -> None:
    if item not in items:
        items.append(item)


def _pitch_name(midi: int) -> str:
    if not (isinstance(midi, int) and 0 <= midi <= 127):
        raise ValueError(f"pitch {midi!r:.20} is not a MIDI key")
    import music21

    return music21.pitch.Pitch(midi=midi).nameWithOctave.replace("-", "b")


def note_elements(score: str | os.PathLike, root: etree._Element) -> dict[str, etree._Element]:
    """Each score note id (as `bridge.musicxml.load_score` gives them) -> its ``<note>``
    element in ``root``, the document of ``score``. A note without an ``id`` attribute
    has an id the loader makes up; to find its element the loader itself is asked, on a
    copy of the document in which every such note carries a marker id."""
    xml_notes: list[XmlNote] = scan_xml(root)[0]
    found: dict[str, etree._Element] = {}
    unnamed: dict[str, etree._Element] = {}
    for i, xn in enumerate(xml_notes):
        nid = xn.el.get("id")
        if nid:
            found.setdefault(nid, xn.el)
        else:
            unnamed[f"pianobridge-mark-{i}"] = xn.el
    if not unnamed:
        return found
    from bridge.musicxml import load_score, parse_score

    for mark, el in unnamed.items():
        el.set("id", mark)
    try:
        marked = parse_score(etree.tostring(root))
    finally:
        for el in unnamed.values():
            del el.attrib["id"]
    # the same document but for the ids: the loader lists the notes in the same order
    for original, seen in zip(load_score(score).notes, marked.notes):
        same = (original.pitch, original.onset_q) == (seen.pitch, seen.onset_q)
        if same and seen.note_id in unnamed and original.note_id not in found:
            found[original.note_id] = unnamed[seen.note_id]
    return found


def annotate(score: str | os.PathLike, session: str | os.PathLike, out: str | os.PathLike) -> Summary:
    """Write ``score`` with the results of ``session`` (see the module doc) to ``out``
    (``.mxl`` gives the compressed container). `UserError` for a missing or broken score
    or session, a session recorded on another score, or an output that cannot be written."""
    from bridge.fingering.annotate import write_score

    header, res = read_results(session)
    data = read_musicxml_bytes(score)
    try:
        root = xml_root(data)
    except UserError as e:
        raise UserError(f"{score}: {e}") from None
    from bridge.session import check_score

    check_score(session, header, score)  # the session names its score by the file's hash, as `replay` checks it
    if Path(out).resolve() == Path(score).resolve():
        raise UserError(f"--out is the score itself ({score}): give the annotated copy another name")
    elements = note_elements(score, root)
    marks: dict[str, int] = {}
    fingers = unplaced = 0
    for note_id, r in res.notes.items():
        el = elements.get(note_id)
        if el is None:
            unplaced += 1
            continue
        below = r.hand == "left" if r.hand else _staff(el) > 1
        if r.mark:
            colour(el, MARKS[r.mark])
            marks[r.mark] = marks.get(r.mark, 0) + 1
        if r.played_instead:
            add_words(el, " ".join(r.played_instead), below, MARKS["wrong_pitch"])
        if r.fingers:
            set_fingering(el, f"{'/'.join(r.fingers)}({r.suggested})", below)
            fingers += 1
    n_extra = 0
    for note_id, pitches in res.extras.items():
        el = elements.get(note_id)
        if el is None:
            unplaced += 1
            continue
        add_words(el, " ".join(f"+{p}" for p in pitches), _staff(el) > 1, EXTRA_COLOUR)
        n_extra += len(pitches)
    for ev, at in res.annotations:
        _annotate(root, elements, ev, at)
    write_score(root.getroottree(), out)
    return Summary(marks, n_extra, fingers, len(res.annotations), unplaced)


def _staff(el: etree._Element) -> int:
    text = (el.findtext("staff") or "1").strip()
    return int(text) if text.isdigit() else 1


def colour(el: etree._Element, rgb: str) -> None:
    """Colour a note (``<note color>``, for its stem and flags too) and its notehead (some
    readers look only there), keeping a notehead shape the score has."""
    el.set("color", rgb)
    head = el.find("notehead")
    if head is None:
        head = etree.Element("notehead")
        head.text = "normal"
        later = next((c for c in el if c.tag in _AFTER_NOTEHEAD), None)
        if later is not None:
            later.addprevious(head)
        else:
            el.append(head)
    head.set("color", rgb)


def set_fingering(el: etree._Element, text: str, below: bool) -> None:
    """Make ``text`` the note's one fingering (what it printed is part of ``text``)."""
    from bridge.fingering import LEFT, RIGHT
    from bridge.fingering.annotate import add_fingering

    for f in el.findall("notations/technical/fingering"):
        f.getparent().remove(f)
    add_fingering(el, (), LEFT if below else RIGHT)  # makes <notations><technical> where MusicXML wants them
    f = etree.SubElement(el.find("notations/technical"), "fingering", placement="below" if below else "above")
    f.set("color", FINGER_COLOUR)
    f.text = text


def add_words(
    at: etree._Element, text: str, below: bool = False, rgb: str | None = None, measure_start: bool = False
) -> None:
    """A ``<words>`` direction at the note ``at`` (before the chord it belongs to, so at
    its time), or at the start of the measure ``at`` with ``measure_start``."""
    d = etree.Element("direction", placement="below" if below else "above")
    words = etree.SubElement(etree.SubElement(d, "direction-type"), "words")
    words.text = text
    if rgb:
        words.set("color", rgb)
    if measure_start:
        first = next((c for c in at if c.tag in ("note", "backup", "forward")), None)
        if first is None:
            at.append(d)
        else:
            first.addprevious(d)
        etree.SubElement(d, "staff").text = "1"
        return
    etree.SubElement(d, "staff").text = str(_staff(at))
    while at.find("chord") is not None and at.getprevious() is not None and at.getprevious().tag == "note":
        at = at.getprevious()
    at.addprevious(d)


def _annotate(root: etree._Element, elements: dict[str, etree._Element], ev: dict, at: str | None) -> None:
    """A teacher's annotation at its note, else its measure, else where the player was."""
    text = f"{ev.get('author')}: {ev.get('text')}" if ev.get("author") else str(ev.get("text"))
    note = elements.get(ev.get("note_id") or "")
    if note is not None:
        add_words(note, text, _staff(note) > 1)
        return
    measure = _measure(root, ev.get("measure") or 0)
    if measure is None and at in elements:
        measure = elements[at].getparent()
    if measure is None:
        measure = root.find("part/measure")
    add_words(measure, text, measure_start=True)


def _measure(root: etree._Element, number: int) -> etree._Element | None:
    """The first part's first measure printed as ``number`` (its digits, as music21 reads "12a")."""
    if number <= 0:
        return None
    for m in root.iterfind("part[1]/measure"):
        digits = "".join(c for c in (m.get("number") or "") if c.isdigit())
        if digits and int(digits) == number:
            return m
    return None
