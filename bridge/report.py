"""Pictures of a followed performance: alignment path, tempo and dynamics."""

from __future__ import annotations

import os

from bridge.errors import UserError
from bridge.score import Score

VERDICT_STYLE = {
    "correct": ("#2e7d32", "o", "correct"),
    "wrong_pitch": ("#c62828", "X", "wrong pitch"),
    "extra": ("#ef6c00", "P", "extra"),
}


def revised_notes(results: list[dict]) -> list[dict]:
    """The ``note`` records with later ``revised`` events applied: a press that a
    better-timed press of the same key took its note from counts as extra."""
    revised = {(r["of_t"], r["pitch"]) for r in results if r["type"] == "revised"}
    return [
        {**r, "verdict": "extra", "match": None} if (r["t"], r["pitch"]) in revised else r
        for r in results
        if r["type"] == "note"
    ]


def _passed_at(notes: list[dict], reported_t: float, onset_q: float) -> float:
    """When the player went past a score onset: the last press before the report whose
    position was at or before it (a missed note is reported some time after)."""
    before = [r["t"] for r in notes if r["t"] <= reported_t and r["position"]["onset_q"] <= onset_q]
    return before[-1] if before else reported_t


def plot_follow(results: list[dict], score: Score, path: str | os.PathLike) -> None:
    """Save a three-panel PNG: where the follower put each key press (errors, missed
    notes and jumps marked), the local tempo, and played against expected velocity."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    notes = revised_notes(results)
    fig, (ax_pos, ax_tempo, ax_vel) = plt.subplots(
        3, 1, figsize=(11, 8.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.2, 1.2]}
    )
    for verdict, (color, marker, label) in VERDICT_STYLE.items():
        pts = [(r["t"], r["position"]["onset_q"]) for r in notes if r["verdict"] == verdict]
        if pts:
            size = 8 if verdict == "correct" else 40
            ax_pos.scatter(*zip(*pts), s=size, c=color, marker=marker, label=f"{label} ({len(pts)})", zorder=3)
    onset_of = {(n.note_id, n.pass_no): n.onset_q for n in score.notes}
    missed = [
        (_passed_at(notes, r["t"], q), q)
        for r in results
        if r["type"] == "missed" and (q := onset_of.get((r["note_id"], r["pass"]))) is not None
    ]
    if missed:
        ax_pos.scatter(*zip(*missed), s=30, facecolors="none", edgecolors="#6a1b9a", label=f"missed ({len(missed)})")
    for r in results:
        if r["type"] == "jump":
            ax_pos.axvline(r["t"], color="#1565c0", ls="--", lw=1)
            ax_pos.annotate(
                f"{r['kind']} → m{r['to']['measure']}", (r["t"], ax_pos.get_ylim()[1]), fontsize=8, color="#1565c0"
            )
    ax_pos.set_ylabel("score position (quarters)")
    ax_pos.set_title(f"{score.title}: where each key press landed")
    ax_pos.legend(loc="upper left", fontsize=8)
    ax_pos.grid(alpha=0.3)

    if notes:
        ax_tempo.plot([r["t"] for r in notes], [r["tempo_bpm"] for r in notes], color="#37474f", lw=1)
    ax_tempo.set_ylabel("tempo (bpm)")
    ax_tempo.grid(alpha=0.3)

    ax_vel.scatter([r["t"] for r in notes], [r["velocity"] for r in notes], s=4, c="#455a64", label="played")
    exp = [(r["t"], r["velocity_expected"]) for r in notes if r.get("velocity_expected")]
    if exp:
        ax_vel.step(*zip(*exp), where="post", color="#d81b60", lw=1.5, label="dynamic mark")
    ax_vel.set_ylabel("velocity")
    ax_vel.set_xlabel("performance time (s)")
    ax_vel.legend(loc="upper left", fontsize=8)
    ax_vel.grid(alpha=0.3)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except OSError as e:
        raise UserError(f"cannot write plot {path}: {e.strerror}") from None
    finally:
        plt.close(fig)
