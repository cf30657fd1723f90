"""Ablations of the expression model: the same recipe and a shorter identical budget per variant.

    python benchmarks/expression_ablations.py ASAP_DIR OUT_DIR [--steps 1500] [--vienna ../shared/data/vienna4x22]
        [--only full,no_critic,...]

Variants: full (model/expression.recipe.json with the adversarial term, weight 0.05), no_critic,
flat (attention over notes instead of the beat/bar/phrase hierarchy) and no_performance_stream
(never trained with the player's past beats), the last three on top of full; shipped is the
recipe as it stands (adv 0: the critic learns next to the generator without steering it). Each
is trained from scratch (``pianobridge train expression``) and measured with ``eval_expression.py``
on Vienna 4x22 (never trained on) and with the degradation benchmark;
OUT_DIR/ablations.json collects the figures. CC BY-NC-SA 4.0 data: keep OUT_DIR outside the
repository.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADVERSARIAL = {"weights": {"adv": 0.05}}
VARIANTS = {
    "full": ADVERSARIAL,
    "no_critic": {**ADVERSARIAL, "critic": False},  # adv unused without a critic
    "flat": {**ADVERSARIAL, "model": {"hierarchical": False}},
    "no_performance_stream": {**ADVERSARIAL, "fusion_prob": 0.0},
    "shipped": {},
}


def merged(base: dict, over: dict) -> dict:
    out = json.loads(json.dumps(base))
    for k, v in over.items():
        if isinstance(v, dict):
            out[k] = dict(out.get(k, {}), **v)
        else:
            out[k] = v
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("asap")
    ap.add_argument("out", type=Path)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--vienna", default=str(ROOT.parent / "shared" / "data" / "vienna4x22"))
    ap.add_argument("--prepared", help="prepared-data folder (see pianobridge train --prepared)")
    ap.add_argument("--only", help="comma-separated variants")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    base = json.loads((ROOT / "model" / "expression.recipe.json").read_text())
    results_path = a.out / "ablations.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    names = a.only.split(",") if a.only else list(VARIANTS)
    for name in names:
        recipe = merged(base, VARIANTS[name])
        recipe["steps"] = a.steps
        rpath = a.out / f"{name}.recipe.json"
        rpath.write_text(json.dumps(recipe, indent=1))
        weights = a.out / f"{name}.npz"
        train = [sys.executable, "-m", "bridge.cli", "train", "expression", a.asap, "--recipe", str(rpath),
                 "--out", str(weights)] + (["--prepared", a.prepared] if a.prepared else [])  # fmt: skip
        subprocess.run(train, check=True, cwd=ROOT)
        ev = a.out / f"{name}.eval.json"
        cmd = f"{sys.executable} -m bridge.cli expression render --weights {weights}"
        subprocess.run(
            [sys.executable, str(ROOT.parent / "shared" / "tools" / "eval_expression.py"), a.vienna, "--cmd", cmd,
             "--json", str(ev)], check=True, cwd=ROOT,
        )  # fmt: skip
        deg = a.out / f"{name}.degrade.json"
        # without a critic the assessment's score is the agreement with the central rendition alone
        subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "expression_degrade.py"), a.vienna, "--weights", str(weights),
             "--json", str(deg), "--limit", "6"], check=True, cwd=ROOT,
        )  # fmt: skip
        with __import__("numpy").load(weights) as z:
            val = json.loads(str(z["recipe"]))["validation"]["best"]
        results[name] = {
            "vienna": json.loads(ev.read_text())["summary"],
            "degrade_auc": json.loads(deg.read_text())["summary"],
            "validation": val,
            "steps": a.steps,
        }
        results_path.write_text(json.dumps(results, indent=1))
        print(name, json.dumps(results[name]), flush=True)


if __name__ == "__main__":
    main()
