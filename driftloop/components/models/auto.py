"""`train.model: auto`: linear, gbm, then mlp within `train.budget`; the best on the validation split is kept.

Cheap first, so a small budget still yields a model: a family starts only while budget is left
(one that cannot start is recorded as skipped), and the MLP's loop stops at the budget's end
as if early-stopped. Candidates are ranked by `base.validation_score`: log loss for
classification, RMSE in target units for regression (lower is better for both).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from driftloop.components.models.base import FittedModel, TrainingData, score_name, validation_score
from driftloop.errors import TrainingError

if TYPE_CHECKING:
    from driftloop.spec import TrainSpec

ORDER = ("linear", "gbm", "mlp")


@dataclass
class Search:
    """What `auto` tried: each candidate's validation score, the skipped ones, and the one kept."""

    metric: str
    scores: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    chosen: str = ""

    def to_json(self) -> dict[str, object]:
        return {"metric": self.metric, "scores": self.scores, "seconds": self.seconds, "skipped": self.skipped,
                "chosen": self.chosen}


def choose(data: TrainingData, *, spec: TrainSpec, fit_family: Callable[[str, float | None], FittedModel],
           clock: Callable[[], float] = time.perf_counter) -> tuple[FittedModel, Search]:
    """Fit each family of `ORDER` while budget remains; the lowest validation score wins (ties: the earlier).

    Args:
        fit_family: (family, deadline as a `clock()` value) -> the fitted family.
    """
    from driftloop.durations import parse_duration

    deadline = clock() + parse_duration(spec.budget)
    search = Search(metric=score_name(data.task))
    best: FittedModel | None = None
    for family in ORDER:
        started = clock()
        if started >= deadline:
            search.skipped.append(family)
            continue
        fitted = fit_family(family, deadline)
        search.scores[family] = validation_score(data, fitted.served_val)
        search.seconds[family] = clock() - started
        if best is None or search.scores[family] < search.scores[best.family]:
            best = fitted
    if best is None:
        raise TrainingError(f"train.budget {spec.budget!r} left no time for any model; raise it, e.g. 2m")
    search.chosen = best.family
    return best, search


def fit_family_with(data: TrainingData, *, spec: TrainSpec, output_name: str,
                    checkpoint_dir: Path | None) -> Callable[[str, float | None], FittedModel]:
    """The `fit_family` of `choose` for the built-in families."""
    def fit_family(family: str, deadline: float | None) -> FittedModel:
        from driftloop.components.models.mlp import train_torch
        from driftloop.components.models.sklearn_family import gbm_estimator, linear_estimator, train_estimator

        if family == "mlp":
            return train_torch(data, spec=spec, output_name=output_name, checkpoint_dir=checkpoint_dir,
                               deadline=deadline)
        estimator = gbm_estimator(spec, data.task) if family == "gbm" else linear_estimator(spec, data.task)
        return train_estimator(estimator, data, spec=spec, output_name=output_name, family=family)

    return fit_family
