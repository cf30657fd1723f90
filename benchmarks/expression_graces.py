"""Grace-note runs and written-out rolls: does the central rendition take the time pianists take?

    python benchmarks/expression_graces.py ASAP_DIR [--weights NPZ] [--all] [--json OUT] [--exclude TXT]

Over the (n)ASAP validation pieces (``--all``: every allowed piece, training ones included), for
each onset that has three or more grace notes before a main note and each performance that
plays all of them: the span from the first grace note to the main note (median onset of the
main notes), the step between successive grace notes, and the seconds per quarter from the
onset before the run to the main note. The same from the central rendition of the score.
Reported as medians and 10th/50th/90th percentiles, side by side.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bridge import asap  # noqa: E402
from bridge.errors import UserError  # noqa: E402
from bridge.expression import data as D  # noqa: E402
from bridge.expression.render import load_network, render  # noqa: E402
from bridge.musicxml import parse_score  # noqa: E402

MIN_RUN = 3


@dataclass
class Run:
    """MIN_RUN or more grace notes before main notes at one onset, and the onset before it."""

    graces: np.ndarray  # note indices, in the order written
    mains: np.ndarray
    before: np.ndarray  # the notes of the onset before
    quarters: float  # from the onset before to this one


def runs(onset_q: np.ndarray, grace: np.ndarray) -> list[Run]:
    """Every run of a score (none at its first onset: nothing to time it from)."""
    uq = np.unique(onset_q)
    out = []
    for q in np.unique(onset_q[grace]):
        gi, mi = np.flatnonzero(grace & (onset_q == q)), np.flatnonzero(~grace & (onset_q == q))
        k = np.searchsorted(uq, q)
        if len(gi) >= MIN_RUN and len(mi) and k > 0:
            out.append(Run(gi, mi, np.flatnonzero(onset_q == uq[k - 1]), float(q - uq[k - 1])))
    return out


def measure(on: np.ndarray, run: Run) -> tuple[float, float, float] | None:
    """(span s, step s, seconds per quarter from the onset before) of one run played at onsets
    ``on`` (nan: not played); None where a grace note, every main note or the onset before is
    missing."""
    if np.isnan(on[run.graces]).any() or np.isnan(on[run.mains]).all() or np.isnan(on[run.before]).all():
        return None
    main = np.nanmedian(on[run.mains])
    span = main - on[run.graces].min()
    return span, span / len(run.graces), (main - np.nanmedian(on[run.before])) / run.quarters


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("asap_dir", type=Path)
    ap.add_argument("--weights")
    ap.add_argument("--all", action="store_true", help="training pieces too, not only the validation split")
    ap.add_argument("--exclude", type=Path, default=asap.EXCLUSIONS, help="(n)ASAP folders nothing may touch")
    ap.add_argument("--json")
    a = ap.parse_args()
    net = load_network(a.weights)
    src = asap.Source(a.asap_dir)
    folders = D.training_folders(list(src.listing()), asap.read_exclusions(a.exclude))
    human, model, pieces = [], [], 0
    from rich.progress import track

    for folder, names in track(list(folders.items()), description="grace runs"):
        if not (a.all or D.is_validation(folder)):
            continue
        try:
            score = parse_score(src.read(f"{folder}/xml_score.musicxml"), folder)
        except (UserError, TypeError):
            continue
        onset_q = np.array([n.onset_q for n in score.notes])
        found = runs(onset_q, np.array([n.grace for n in score.notes]))
        if not found:
            continue
        pieces += 1
        rendered = render(score, net).onset_s
        index = {f"{n.note_id}-{n.pass_no}": i for i, n in enumerate(score.notes)}
        for name in names:
            tsv = src.read(f"{folder}/{name}{asap.ALIGN_SUFFIX}")
            if tsv is None:
                continue
            on = np.full(len(score.notes), np.nan)
            for xml_id, _, onset in asap.alignment_rows(tsv):
                if xml_id in index:
                    on[index[xml_id]] = onset
            for run in found:
                h, m = measure(on, run), measure(rendered, run)
                if h is not None and m is not None:
                    human.append(h)
                    model.append(m)
    if not human:
        raise SystemExit("no grace-note runs played in these pieces")
    h, m = np.array(human), np.array(model)
    out = {"pieces": pieces, "runs_played": len(h)}
    for k, name in enumerate(("span_s", "step_s", "spq_before")):
        out[name] = {"human": np.percentile(h[:, k], [10, 50, 90]).round(3).tolist(),
                     "model": np.percentile(m[:, k], [10, 50, 90]).round(3).tolist()}  # fmt: skip
        print(f"{name:11s} 10/50/90th pct  human {out[name]['human']}  model {out[name]['model']}")
    out["span_ratio_median"] = round(float(np.median(h[:, 0] / np.maximum(m[:, 0], 1e-3))), 3)
    print(f"{pieces} pieces, {len(h)} runs played; human span / model span, median {out['span_ratio_median']}")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
