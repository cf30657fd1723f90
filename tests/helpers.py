"""Run the engine over a simulated performance and score it against the truth; small scores
written out by hand for what music21 cannot write."""

from __future__ import annotations

from bridge import simulate
from bridge.events import NoteVerdict, OutputEvent
from bridge.follow.engine import Engine
from bridge.score import Score


def run(score: Score, played: list[simulate.PlayedNote]) -> list[OutputEvent]:
    engine = Engine(score)
    out: list[OutputEvent] = []
    for ev in simulate.to_events(played):
        out += engine.feed(ev)
    return out + engine.finish()


def verdicts(out: list[OutputEvent]) -> list[NoteVerdict]:
    return [o for o in out if isinstance(o, NoteVerdict)]


def position_ok(score: Score, played, notes, after_t: float = -1.0) -> list[bool]:
    """Per score note played (after after_t): reported position within one quarter."""
    return [
        abs(v.position.onset_q - score.notes[p.note].onset_q) <= 1.0
        for p, v in zip(played, notes, strict=True)
        if p.note is not None and p.t >= after_t
    ]


def notes_to_recover(score: Score, played, notes, jump_t: float) -> int | None:
    """Notes after the jump until five in a row are placed right."""
    ok = position_ok(score, played, notes, after_t=jump_t)
    return next((i for i in range(len(ok) - 4) if all(ok[i : i + 5])), None)


def rolled_chord_xml(declare_staves: bool) -> bytes:
    """A bar of 2/4 whose chord is rolled, written as Vienna 4x22's op. 38 writes its last one: a
    grace note in the bass staff tied into a chord that spans both staves (A4 on top, F2 held
    from the grace note), and under it an E4 in the bass staff. Partitura writes no ``<staves>``."""
    tie = '<tie type="{0}"/>'
    tied = '<notations><tied type="{0}"/></notations>'
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<score-partwise version="3.1"><part-list><score-part id="P1"><part-name>Piano</part-name></score-part></part-list>
<part id="P1"><measure number="1">
<attributes><divisions>2</divisions><time><beats>2</beats><beat-type>4</beat-type></time>
{"<staves>2</staves>" if declare_staves else ""}<clef number="1"><sign>G</sign><line>2</line></clef>
<clef number="2"><sign>F</sign><line>4</line></clef></attributes>
<note id="grace"><grace/><pitch><step>F</step><octave>2</octave></pitch>{tie.format("start")}
<voice>1</voice><type>eighth</type><staff>2</staff>{tied.format("start")}</note>
<note id="top"><pitch><step>A</step><octave>4</octave></pitch><duration>4</duration>
<voice>1</voice><type>half</type><staff>1</staff></note>
<note id="held"><chord/><pitch><step>F</step><octave>2</octave></pitch><duration>4</duration>{tie.format("stop")}
<voice>1</voice><type>half</type><staff>2</staff>{tied.format("stop")}</note>
<backup><duration>4</duration></backup>
<note id="low"><pitch><step>E</step><octave>4</octave></pitch><duration>4</duration>
<voice>2</voice><type>half</type><staff>2</staff></note>
</measure></part></score-partwise>""".encode()
