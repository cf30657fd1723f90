"""The score engraved as SVG pages with verovio, each note tagged with the bridge's note id.

verovio keeps a MusicXML ``<note id>`` as the SVG element's id and makes up random ids for
notes without one, while the loader (`bridge.musicxml`) makes up deterministic ones, and a
score's own ids may be anything XML allows. So every note the loader knows is given a
plain id of ours (``pbN``) in a copy of the document, and the SVG element of that note
gets ``data-note="NOTE_ID"``: the page finds a note event's ``match.note_id`` (any repeat
pass: the score is drawn once) by that attribute alone. Measures get ``data-n``, their
printed number (digits only, as the loader counts them).
"""

from __future__ import annotations

import html
import os
import re
import time
from dataclasses import dataclass, field

from bridge.errors import UserError

# a landscape page, about one screen: three or four systems of a piano score
OPTIONS = {
    "svgHtml5": True,  # data-id / data-class attributes
    "xmlIdSeed": 1,  # the same ids every time
    "pageWidth": 2600,
    "pageHeight": 1500,
    "scale": 40,
    "adjustPageHeight": False,
    "breaks": "auto",
    "footer": "none",
    "header": "auto",
}
_MARK = "pb"  # our ids: pb0, pb1, ... (an XML name verovio keeps)
_NOTE = re.compile(r'data-id="' + _MARK + r'(\d+)" data-class="note"')
_MEASURE = re.compile(r'data-id="([^"]+)" data-class="measure"')
_ROOT_ID = re.compile(r'^<svg [^>]*\bid="([^"]+)"')
_SIZE = re.compile(r'^<svg width="([\d.]+)px" height="([\d.]+)px"')


@dataclass
class Engraving:
    """SVG pages (1 to n) and where each score note and measure is."""

    title: str
    pages: list[str]
    note_page: dict[str, int] = field(default_factory=dict)  # note_id -> 1-based page
    measure_page: dict[int, int] = field(default_factory=dict)  # printed measure number -> first page
    seconds: float = 0.0  # time taken to engrave


def engrave(score_path: str | os.PathLike, title: str = "") -> Engraving:
    """Engrave ``score_path`` (.musicxml, .xml or .mxl) with verovio; `UserError` when it
    cannot be read or verovio draws nothing."""
    from lxml import etree

    from bridge.adapters.annotated_score import note_elements
    from bridge.musicxml import read_musicxml_bytes, xml_root

    start = time.perf_counter()
    try:
        import verovio
    except ImportError:
        raise UserError("the score page needs verovio: pip install verovio") from None
    root = xml_root(read_musicxml_bytes(score_path))
    ids: list[str] = []
    for note_id, el in note_elements(score_path, root).items():
        el.set("id", f"{_MARK}{len(ids)}")
        ids.append(note_id)
    tk = verovio.toolkit()
    tk.setOptions(OPTIONS)
    verovio.enableLog(verovio.LOG_OFF)
    if not tk.loadData(etree.tostring(root, encoding="unicode")):
        raise UserError(f"verovio cannot engrave {score_path}")
    pages: list[str] = []
    eng = Engraving(title, pages)
    for page in range(1, tk.getPageCount() + 1):
        svg = tk.renderToSVG(page)
        for m in _NOTE.finditer(svg):
            eng.note_page.setdefault(ids[int(m.group(1))], page)

        def measure(m: re.Match, page: int = page) -> str:
            digits = "".join(c for c in str(tk.getElementAttr(m.group(1)).get("n", "")) if c.isdigit())
            if digits:
                eng.measure_page.setdefault(int(digits), page)
            return f'{m.group(0)} data-n="{digits}"'

        svg = _MEASURE.sub(measure, svg)
        svg = _NOTE.sub(lambda m: f'{m.group(0)} data-note="{html.escape(ids[int(m.group(1))])}"', svg)
        # verovio names every page's glyphs and styles alike; one HTML document holds them all
        root_id = _ROOT_ID.search(svg)
        if root_id:
            svg = svg.replace(root_id.group(1), f"{root_id.group(1)}-p{page}")
        # scale with the browser window: the outer size becomes a viewBox
        svg = _SIZE.sub(lambda m: f'<svg viewBox="0 0 {m.group(1)} {m.group(2)}" class="score-page"', svg, count=1)
        pages.append(svg)
    if not pages:
        raise UserError(f"verovio drew no page of {score_path}")
    eng.seconds = time.perf_counter() - start
    return eng
