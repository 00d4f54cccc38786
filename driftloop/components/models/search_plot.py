"""The optimisation-history plot of `train.search`, a PNG the MLflow UI previews.

Drawn with matplotlib's object API on an Agg canvas: no pyplot, so no global backend is chosen
for the process, and it works in a pod with no display.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def plot_history(trials: Sequence[Any], *, metric: str, path: Path) -> Path:
    """Each finished trial's score by trial number, the best so far as a step line, pruned trials marked on the axis.

    Args:
        trials: records with `number`, `state` (COMPLETE | PRUNED | FAIL) and `value`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    done = [(t.number, t.value) for t in trials if t.state == "COMPLETE" and t.value is not None]
    if done:
        numbers, values = zip(*done, strict=True)
        axes.scatter(numbers, values, color="tab:blue", label="trial", zorder=3)
        best, running = [], float("inf")
        for value in values:
            running = min(running, value)
            best.append(running)
        axes.step(numbers, best, where="post", color="tab:red", label="best so far")
    pruned = [t.number for t in trials if t.state == "PRUNED"]
    if pruned:
        # pruned trials have no final score; a mark at the bottom edge shows where they happened
        axes.scatter(pruned, [0] * len(pruned), marker="x", color="grey", label="pruned",
                     transform=axes.get_xaxis_transform(), clip_on=False)
    axes.set_xlabel("trial")
    axes.set_ylabel(f"validation {metric} (lower is better)")
    axes.set_title("train.search: optimisation history")
    axes.grid(alpha=0.3)
    if done or pruned:
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path
