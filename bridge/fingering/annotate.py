"""Scores in, fingered scores out: the MusicXML side of fingering (an adapter).

The fingers are written into the original document with lxml (music21 would drop
substitutions and chord fingerings on a round trip): ``<technical><fingering>`` above
the note for the right hand, below for the left, a substitution as a second
``<fingering substitution="yes">``. Fingers printed in the score are kept as they are.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from bridge.errors import UserError
from bridge.fingering import LEFT, RIGHT, KeyNote
from bridge.musicxml import XmlNote, printed_fingerings, read_musicxml_bytes, scan_xml, xml_root
from bridge.userfiles import write_bytes

DEFAULT_QPM = 100.0
# <note> children that come after <notations> (MusicXML 4.0 order)
_AFTER_NOTATIONS = ("lyric", "play", "listen")


@dataclass
class ScoreNotes:
    """The key presses of a score (tied continuations folded in), first time through."""

    tree: etree._ElementTree
    xml: list[XmlNote]
    keys: list[KeyNote]
    hands_known: bool  # False for one single-staff part: the hands must be inferred


def read_score_notes(path: str | Path) -> ScoreNotes:
    root = xml_root(read_musicxml_bytes(path))
    xml_notes, staves, _, lengths = scan_xml(root)
    starts = [0.0]
    for length in lengths:
        starts.append(starts[-1] + float(length))
    sound = root.find(".//sound[@tempo]")
    qpm = float(sound.get("tempo")) if sound is not None else DEFAULT_QPM
    sec = 60.0 / (qpm if qpm > 0 else DEFAULT_QPM)
    two_parts = len(staves) == 2 and staves == [1, 1]
    hands_known = any(n > 1 for n in staves) or two_parts
    kept: list[XmlNote] = []
    keys: list[KeyNote] = []
    open_ties: dict[tuple, int] = {}
    for xn in xml_notes:
        onset = (starts[xn.measure] + float(xn.start)) * sec
        offset = onset + max(float(xn.duration), 0.125) * sec
        tie_key = (xn.part, xn.staff, xn.midi)
        if "stop" in xn.ties and tie_key in open_ties:
            k = open_ties.pop(tie_key)
            keys[k] = KeyNote(keys[k].onset, offset, keys[k].pitch, keys[k].hand, keys[k].printed)
            if "start" in xn.ties:
                open_ties[tie_key] = k
            continue
        hand = (LEFT if xn.staff > 1 else RIGHT) if not two_parts else (RIGHT if xn.part == 0 else LEFT)
        printed = printed_fingerings(xn.el)
        keys.append(KeyNote(onset, offset, xn.midi, hand, _first_finger(printed)))
        kept.append(xn)
        if "start" in xn.ties:
            open_ties[tie_key] = len(keys) - 1
    if not keys:
        raise UserError(f"the score has no notes: {path}")
    return ScoreNotes(root.getroottree(), kept, keys, hands_known)


def _first_finger(printed: tuple[str, ...]) -> int:
    if not printed:
        return 0
    head = printed[0].split("_")[0].strip()
    return int(head) if head.isdigit() and 1 <= int(head) <= 5 else 0


def add_fingering(note_el: etree._Element, fingers: tuple[int, ...], hand: int) -> None:
    """Append <fingering> to the note's <technical> unless the note has a printed one."""
    if note_el.find("notations/technical/fingering") is not None:
        return
    notations = note_el.find("notations")
    if notations is None:
        notations = etree.Element("notations")
        later = next((c for c in note_el if c.tag in _AFTER_NOTATIONS), None)
        if later is not None:
            later.addprevious(notations)
        else:
            note_el.append(notations)
    technical = notations.find("technical")
    if technical is None:
        technical = etree.SubElement(notations, "technical")
    placement = "above" if hand == RIGHT else "below"
    for k, finger in enumerate(fingers):
        f = etree.SubElement(technical, "fingering", placement=placement)
        if k:
            f.set("substitution", "yes")
        f.text = str(finger)


def write_score(tree: etree._ElementTree, path: str | Path) -> None:
    """Write the document; ``.mxl`` gets the compressed container."""
    path = Path(path)
    data = etree.tostring(tree, xml_declaration=True, encoding="UTF-8", standalone=False)
    if path.suffix.lower() == ".mxl":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.recordare.musicxml")
            z.writestr(
                "META-INF/container.xml",
                '<?xml version="1.0" encoding="UTF-8"?><container><rootfiles>'
                '<rootfile full-path="score.musicxml" media-type="application/vnd.recordare.musicxml+xml"/>'
                "</rootfiles></container>",
            )
            z.writestr("score.musicxml", data)
        data = buf.getvalue()
    write_bytes(path, data)
