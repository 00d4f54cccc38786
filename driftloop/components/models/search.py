"""`train.search`: an Optuna study over the chosen family's hyperparameters; the best trial's model is served.

Each trial is the spec with the trial's values set (`search_space.apply_params`), fitted by the
same function as an unsearched run, and scored by `base.validation_score` (log loss or RMSE on
the validation split: lower is better, as `auto` ranks). TPE is seeded (`train.search.seed`,
else `train.seed`) and every fit is seeded, so the same spec draws the same trials and keeps the
same best params, as long as `timeout` does not cut the study short.

The best trial's fitted model is kept rather than refitted: a refit with the same params and the
same seed on the same rows reproduces it, so it would only double the time of the winner, and
keeping it means the served file is exactly the model whose score chose it.

The median pruner sees the torch loop's validation loss after every epoch (`on_epoch`); a
scikit-learn fit has no epochs, so it reports its score once and is never pruned (it has
already spent its time by then).

Each trial is a nested MLflow run of the train run (tag `mlflow.parentRunId`) with its params and
score; the train run gets `search.best.<name>`, the best score, the trial counts and the
optimisation-history plot (`search/`).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.components.models.base import FittedModel, TrainingData, score_name, validation_score
from driftloop.constants import TRAIN_CODE_DIR
from driftloop.errors import DriftloopError, TrainingError, UserCodeError
from driftloop.search_space import apply_params, is_int

if TYPE_CHECKING:
    import optuna

    from driftloop.mlflow_gateway import Tracker
    from driftloop.spec import SearchParam, TrainSpec

OnEpoch = Callable[[int, dict[str, float]], None]
# (the trial's spec, the trial's output folder, the per-epoch callback) -> the fitted model
TrialFit = Callable[["TrainSpec", Path, OnEpoch], FittedModel]
SEARCH_DIR = "search"
PARENT_TAG = "mlflow.parentRunId"  # what the MLflow UI nests child runs by


@dataclass
class TrialRecord:
    number: int
    state: str  # COMPLETE | PRUNED | FAIL
    params: dict[str, Any]
    value: float | None = None
    val_loss: float | None = None  # the family's own loss (the MLP's early-stopping loss), as the train run logs it
    epochs: int = 0
    seconds: float = 0.0
    run_id: str | None = None
    reason: str = ""


@dataclass
class SearchOutcome:
    """What the study tried and kept; `train.json` and `search/search.json` hold it."""

    metric: str
    seed: int
    trials: list[TrialRecord] = field(default_factory=list)
    best: TrialRecord | None = None

    def count(self, state: str) -> int:
        return sum(1 for t in self.trials if t.state == state)

    def summary(self) -> dict[str, Any]:
        best = self.best
        return {"metric": self.metric, "direction": "minimize", "seed": self.seed, "trials": len(self.trials),
                "completed": self.count("COMPLETE"), "pruned": self.count("PRUNED"), "failed": self.count("FAIL"),
                "best_trial": best.number if best else None, "best_value": best.value if best else None,
                "best_params": best.params if best else {}}

    def to_json(self) -> dict[str, Any]:
        return self.summary() | {"history": [vars(t) for t in self.trials]}


def run_search(data: TrainingData, *, spec: TrainSpec, fit: TrialFit, out_dir: Path,
               tracker: Tracker | None) -> FittedModel:
    """Run the study of `spec.search`, keep the best trial's model and files, log the study to `tracker`.

    Raises:
        TrainingError: no trial finished, or the search was asked to run under torchrun.
        UserCodeError: the user's module failed (every trial would).
    """
    import optuna

    from driftloop.distributed import active_world
    from driftloop.durations import parse_duration

    search = spec.search
    assert search is not None
    if active_world().distributed:
        raise TrainingError("train.search runs its trials in one process; set workers to 1 (or drop train.search)")
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the trials are in MLflow and search.json; no log per trial
    seed = spec.seed if search.seed is None else search.seed
    outcome = SearchOutcome(metric=score_name(data.task), seed=seed)
    kept: dict[str, Any] = {}
    trials_dir = out_dir / SEARCH_DIR / "trials"
    objective = _objective(data, spec=spec, fit=fit, trials_dir=trials_dir, tracker=tracker, outcome=outcome,
                           kept=kept)
    study = optuna.create_study(direction="minimize", sampler=_sampler(search.trials, seed),
                                pruner=_pruner(search.trials) if search.prune else optuna.pruners.NopPruner())
    study.optimize(objective, n_trials=search.trials,
                   timeout=parse_duration(search.timeout) if search.timeout else None)
    if "model" not in kept:
        reasons = sorted({t.reason for t in outcome.trials if t.reason})
        raise TrainingError(f"train.search: none of {len(outcome.trials)} trials finished "
                            f"({outcome.count('PRUNED')} pruned, {outcome.count('FAIL')} failed"
                            f"{': ' + reasons[0] if reasons else ''}); widen the space or raise train.search.trials")
    fitted: FittedModel = kept["model"]
    _keep_files(trials_dir / f"trial-{kept['record'].number}", out_dir)
    shutil.rmtree(trials_dir, ignore_errors=True)
    fitted.details["search"] = outcome.summary()
    _record(outcome, out_dir / SEARCH_DIR, tracker, spec)
    return fitted


def _objective(data: TrainingData, *, spec: TrainSpec, fit: TrialFit, trials_dir: Path, tracker: Tracker | None,
               outcome: SearchOutcome, kept: dict[str, Any]) -> Callable[[optuna.Trial], float]:
    """One trial: sample, fit as a nested run, score; the best fitted model so far stays in `kept`."""
    import optuna

    assert spec.search is not None
    space = spec.search.space

    def objective(trial: optuna.Trial) -> float:
        params = {name: suggest(trial, name, param) for name, param in space.items()}
        record = TrialRecord(trial.number, "FAIL", params)
        outcome.trials.append(record)
        child = _child_run(tracker, trial.number, params)
        record.run_id = child.run_id if child else None
        epochs: list[dict[str, float]] = []

        def on_epoch(epoch: int, row: dict[str, float]) -> None:
            epochs.append(row)
            if not math.isfinite(row["val_loss"]):  # the pruner cannot rank a NaN; this corner of the space diverges
                raise TrainingError(f"training diverged at epoch {epoch}: validation loss is not finite")
            trial.report(row["val_loss"], epoch)
            if trial.should_prune():
                raise _Pruned(f"epoch {epoch}: val_loss {row['val_loss']:.4g} trails the median")

        started = time.perf_counter()
        status = "FAILED"
        try:
            trial_dir = trials_dir / f"trial-{trial.number}"
            trial_dir.mkdir(parents=True, exist_ok=True)
            fitted = fit(apply_params(spec, params), trial_dir, on_epoch)
            record.value = validation_score(data, fitted.served_val)
            record.state, record.epochs, status = "COMPLETE", fitted.epochs_run, "FINISHED"
            record.val_loss = fitted.val_loss
            if not fitted.history:
                trial.report(record.value, 1)  # a scikit-learn fit: one step, so the study's history shows it
            if outcome.best is None or record.value < (outcome.best.value or 0.0):
                outcome.best, kept["model"], kept["record"] = record, fitted, record
            return record.value
        except _Pruned as e:
            record.state, record.reason, record.epochs, status = "PRUNED", str(e), len(epochs), "FINISHED"
            raise optuna.TrialPruned(str(e)) from None
        except UserCodeError:
            raise  # the user's code is broken: every trial would fail the same way
        except TrainingError as e:  # e.g. diverged at a high learning rate: this corner of the space, not the study
            record.reason, record.epochs = str(e), len(epochs)
            return float("nan")  # Optuna records a NaN as a failed trial and goes on
        finally:
            record.seconds = time.perf_counter() - started
            _end_child_run(child, record, epochs, status, outcome.metric)

    return objective


class _Pruned(DriftloopError):
    """The pruner stopped the trial. Raised in the epoch callback, inside the training loop, as a DriftloopError: a
    user's module trains inside a guard that names any other exception as theirs (Optuna's TrialPruned was)."""


def suggest(trial: optuna.Trial, name: str, param: SearchParam) -> Any:
    """The trial's value for `name`: an int or float in the range, or one of the choices."""
    if param.choices is not None:
        # Optuna stores choices of None/bool/int/float/str; a list (hidden_sizes) goes by its JSON text
        plain = all(c is None or isinstance(c, (bool, int, float, str)) for c in param.choices)
        if plain:
            return trial.suggest_categorical(name, param.choices)
        by_text = {json.dumps(c): c for c in param.choices}
        return by_text[trial.suggest_categorical(name, list(by_text))]
    assert param.low is not None and param.high is not None
    if is_int(param):
        return trial.suggest_int(name, int(param.low), int(param.high), log=param.log)
    return trial.suggest_float(name, float(param.low), float(param.high), log=param.log)


def _sampler(trials: int, seed: int) -> optuna.samplers.BaseSampler:
    """TPE, seeded; its random start-up is capped at half the trials so a short search still gets TPE's guesses."""
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(1, min(10, trials // 2)))


def _pruner(trials: int) -> optuna.pruners.BasePruner:
    """Median pruning once a few trials have finished, never in a trial's first three epochs (too noisy to judge)."""
    import optuna

    # epochs are reported as steps 1, 2, …, and Optuna may prune at any step >= n_warmup_steps
    return optuna.pruners.MedianPruner(n_startup_trials=max(1, min(5, trials // 4)), n_warmup_steps=4)


def _child_run(tracker: Tracker | None, number: int, params: dict[str, Any]) -> Tracker | None:
    if tracker is None:
        return None
    child = tracker.gateway.start_child_run(tracker.run_id, run_name=f"trial-{number}",
                                            tags={"search.trial": str(number)})
    child.log_params({f"train.{name}": _shown(value) for name, value in params.items()})
    return child


def _end_child_run(child: Tracker | None, record: TrialRecord, epochs: list[dict[str, float]], status: str,
                   metric: str) -> None:
    if child is None:
        return
    series = [(row, epoch) for epoch, row in enumerate(epochs, start=1)]
    if series:
        child.log_metric_series(series)
    if record.value is not None:
        child.log_metrics({f"val_{metric}": record.value, "best_val_loss": record.val_loss or 0.0,
                           "epochs_run": record.epochs})
    child.set_tags({"search.state": record.state} | ({"search.reason": record.reason[:500]} if record.reason else {}))
    child.end(status)


def _shown(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def _keep_files(trial_dir: Path, out_dir: Path) -> None:
    """The best trial's checkpoints and the user's code where an unsearched run leaves them (the step logs them)."""
    for name in ("checkpoints", TRAIN_CODE_DIR):
        if (trial_dir / name).is_dir():
            shutil.copytree(trial_dir / name, out_dir / name, dirs_exist_ok=True)


def _record(outcome: SearchOutcome, folder: Path, tracker: Tracker | None, spec: TrainSpec) -> None:
    """search.json and the history plot in `folder`; the best params, value and counts on the train run."""
    from driftloop.components.models.search_plot import plot_history

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "search.json").write_text(json.dumps(outcome.to_json(), indent=2))
    plot_history(outcome.trials, metric=outcome.metric, path=folder / "optimization_history.png")
    if tracker is None:
        return
    summary = outcome.summary()
    tracker.log_params({f"search.best.{name}": _shown(value) for name, value in summary["best_params"].items()}
                       | {"search.best_trial": summary["best_trial"], "search.seed": outcome.seed,
                          # the run's train.<key> params are the spec's; this says which of them were searched
                          "train.search": json.dumps(spec.search.model_dump(exclude_defaults=True) if spec.search
                                                     else {})})
    tracker.log_metrics({f"search.best.val_{outcome.metric}": summary["best_value"], "search.trials": len(outcome.trials),
                         "search.completed": summary["completed"], "search.pruned": summary["pruned"],
                         "search.failed": summary["failed"]})
    tracker.log_artifacts(folder, SEARCH_DIR)
