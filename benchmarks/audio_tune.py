"""Choose the audio detector's thresholds on pieces kept out of its training.

    python benchmarks/audio_tune.py [--data /work/asap-wide] [--soundfont SF2]
        [--grid expected=0.3,0.4 other=0.5,0.6 ...] [--breakdown]

Runs eval_follow.py's own scenarios, rendering and metrics in-process on the HELD_OUT
pieces of bridge/audio/train.py (allowed (n)ASAP pieces, never nasap-dev, never in the
detector's training): each piece and scenario is rendered and put through the network
once, then every threshold setting of the grid replays the detection and the follower on
those network outputs. TimGM6mb is never used here (it is the unseen sound). With
``--data ../shared/data/nasap-dev --limit 6`` it runs on the audio yardstick's pieces
instead (to report, not to tune on). Beside the yardstick's figures it reports the
``missed`` events, all and only the sure ones (``missed_figures``).
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import tempfile
from collections import Counter, deque
from pathlib import Path

import numpy as np
import yardsticks
from follow_inprocess import miss_precision

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def ghosts_and_misses(notes: list[dict], events: list[dict], paired: list) -> Counter:
    """What each unpaired note event (a ghost) most likely is, flagged or not, and where the
    missed notes lie: the categories say which part of the detector to work on."""
    on = np.array([n["t_file"] for n in notes])
    pitch = np.array([n["pitch"] for n in notes])
    unpaired = np.array([e is None for e in paired])
    taken = {id(e) for e in paired if e is not None}
    out: Counter = Counter()
    for e in events:
        if e.get("type") != "note" or id(e) in taken:
            continue
        t, p = float(e["t"]), int(e["pitch"])
        near = np.abs(on - t)
        before = (on <= t + 0.06) & (on > t - 1.5)  # struck up to 1.5 s before it
        same = (pitch == p) & (near < 0.3)
        if np.any(same & unpaired):
            kind = "its own note over 60 ms off"
        elif np.any(same):
            kind = "a second detection of a note"
        elif np.any(np.isin(pitch, [p - 12, p - 19, p - 24, p - 28, p - 31]) & before):
            kind = "a harmonic of a note"
        elif np.any((pitch == p + 12) & before):
            kind = "an octave below a note"
        elif np.any((np.abs(pitch - p) <= 2) & (near < 0.1)):
            kind = "a tone or semitone off"
        else:
            kind = "other"
        flagged = e.get("verdict") in ("wrong_pitch", "extra")
        out[f"ghost: {kind}{' (flagged)' if flagged else ''}"] += 1
    for n, e in zip(notes, paired, strict=True):
        if e is None:
            out["missed " + ("below C3" if n["pitch"] < 48 else "C3-B4" if n["pitch"] < 72 else "C5 and up")] += 1
    return out


MISSED_KEYS = ("miss_r", "miss_r_sure", "miss_p", "miss_p_sure", "missed_false", "missed_false_sure")


def missed_figures(score, notes: list[dict], events: list[dict], dropped: list[str]) -> dict[str, float]:
    """The ``missed`` reports, all and only the sure ones (a missed note the detector may
    have heard is reported unsure): recall of the notes a scenario left out (del10),
    precision (the share of reports whose note was really not played) and false reports
    per played note."""
    sure = [e for e in events if e["type"] != "missed" or e.get("sure", True)]
    out: dict[str, float] = {}
    for suffix, evs in (("", events), ("_sure", sure)):
        missed = [e for e in evs if e["type"] == "missed"]
        p = miss_precision(score, notes, evs)
        out["miss_p" + suffix] = p
        out["missed_false" + suffix] = (1 - p) * len(missed) / max(len(notes), 1)
    if dropped:  # as the yardstick counts miss_r, over the sure reports
        got = {e["note_id"] for e in sure if e["type"] == "missed"}
        out["miss_r_sure"] = sum(x.rsplit("-", 1)[0] in got for x in dropped) / len(dropped)
    return out


def main() -> int:
    from bridge.audio.detector import GATE, MODEL, Gate, Network, NoteDetector, Thresholds
    from bridge.audio.features import Spectrogram
    from bridge.audio.files import read_audio
    from bridge.audio.stream import stamp
    from bridge.audio.train import HELD_OUT
    from bridge.replay import apply, new_engine

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/work/asap-wide")
    ap.add_argument("--soundfont", default="/usr/share/sounds/sf2/FluidR3_GM.sf2")
    ap.add_argument("--limit", type=int, default=0, help="the first N held-out pieces only")
    ap.add_argument("--scenarios", default="clean,sub10")
    ap.add_argument("--snr-db", type=float)
    ap.add_argument("--model", default=str(MODEL))
    ap.add_argument("--gate", default=str(GATE), help="the gate's weights ('' for none)")
    ap.add_argument("--grid", nargs="*", default=[], help="FIELD=V1,V2 ... (fields of Thresholds)")
    ap.add_argument("--breakdown", action="store_true", help="also say what the ghost notes and misses are")
    a = ap.parse_args()
    ef = yardsticks.load("eval_follow")
    ef.AUDIO, ef.SNR_DB = a.soundfont, a.snr_db
    net = Network(a.model)
    gate = Gate(a.gate) if a.gate else None
    grid = {k: [float(v) for v in vs.split(",")] for k, vs in (g.split("=") for g in a.grid)}
    settings = [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())] or [{}]
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        # a yardstick folder (nasap-dev: pieces in it, in the yardstick's order) or the wide set
        pieces = sorted(p for p in Path(a.data).iterdir() if (p / "alignment.tsv").is_file()) or [
            next(p for p in (Path(a.data) / s / n for s in ("tune", "val")) if p.is_dir()) for n in HELD_OUT
        ]
        for piece in pieces[: a.limit or None]:
            p = yardsticks.follow_piece(piece)
            name, score, full, base, notes0, ccs0 = p.name, p.score, p.full, p.base, p.notes, p.ccs
            for s in a.scenarios.split(","):
                rng = random.Random(f"0-{name}-{s}")
                notes, ccs, jump_t, dropped = ef.perturb(notes0, ccs0, full, s, rng)
                midi = str(Path(tmp) / f"{s}.mid")
                ef.write_midi(notes, ccs, midi)
                wav = ef.performance_input(midi, rng.randrange(1 << 30))
                x, _ = read_audio(wav)
                probe = NoteDetector(net)
                probe.push(Spectrogram().push(x))
                cases.append((name, s, score, notes, full, base, jump_t, dropped, list(probe._rows)))
                print(f"{name} {s}: {len(probe._rows)} frames", file=sys.stderr, flush=True)
    for setting in settings:
        th = Thresholds(**setting)
        agg: dict[str, list[float]] = {}
        kinds: Counter = Counter()
        for _name, s, score, notes, full, base, jump_t, dropped, rows in cases:
            engine = new_engine(score, False)
            det = NoteDetector(net, th, gate)
            det._rows = deque(rows)
            events = []
            while det.ready() or det.sounding:
                evs = det.decide(engine.expected_pitches()) if det.ready() else det.flush()
                for ev in evs:
                    engine, outs = apply(engine, ev)
                    for o in outs:
                        stamp(o, det)
                        events.append(o.to_dict())
            for o in engine.finish():
                stamp(o, det)
                events.append(o.to_dict())
            r, paired = ef.evaluate(notes, events, full, base, jump_t, dropped)
            r.update(ef.audio_metrics(notes, events, paired))
            r.update(missed_figures(score, notes, events, dropped))
            if a.breakdown:
                kinds.update(ghosts_and_misses(notes, events, paired))
            for k, v in r.items():
                agg.setdefault(f"{s}.{k}", []).append(float(v))
        keys = ("pos1q", "match", "note_recall", "ghost", "ghost_flags", "false_flag", "err_p", "err_r", "delay_ms_p50")
        keys += MISSED_KEYS
        line = " ".join(
            f"{s}.{k}={np.mean(agg[f'{s}.{k}']):.3f}" for s in a.scenarios.split(",") for k in keys if f"{s}.{k}" in agg
        )
        print(f"{setting} {line}", flush=True)
        if a.breakdown:
            played = sum(len(c[3]) for c in cases)
            print(
                "  per 1,000 played notes: "
                + ", ".join(f"{k} {1000 * v / played:.1f}" for k, v in sorted(kinds.items()))
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
