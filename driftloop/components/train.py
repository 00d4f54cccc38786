"""train: the spec's model family (or the user's module), exported to one ONNX file.

The families live in `driftloop.components.models`; this step prepares their inputs (the
fitted transform applied to the train and validation splits), picks the family, folds the
preprocessing in front of the family's graph, and compares the ONNX file with the framework's
own prediction on the validation rows; the gate bounds that difference (`train.onnx_tolerance`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.components.columns import ColumnRoles, python_value
from driftloop.components.feature import load_meta
from driftloop.components.models.mlp import FitResult, build_mlp, exportable, fit, resolve_device
from driftloop.constants import (
    MODEL_FILE,
    ONNX_OUTPUT_PREDICTION,
    ONNX_OUTPUT_PROBABILITIES,
    TRAIN_CHOSEN_MODEL_PARAM,
    TRAIN_CODE_DIR,
    TRANSFORM_FILE,
)

if TYPE_CHECKING:
    from driftloop.components.context import RunContext
    from driftloop.components.models.auto import Search
    from driftloop.components.models.base import FittedModel, TrainingData
    from driftloop.mlflow_gateway import Tracker
    from driftloop.spec import TrainSpec

# the torch loop's names, where callers (the torchrun workers, benchmarks) have always found them
__all__ = ["FitResult", "TrainResult", "build_mlp", "execute", "exportable", "fit", "resolve_device", "run"]


@dataclass(frozen=True)
class TrainResult:
    model_path: Path
    onnx_max_abs_diff: float
    onnx_output_scale: float
    best_epoch: int
    epochs_run: int
    best_val_loss: float
    device: str
    fit_seconds: float
    model: str = "mlp"  # the family served: mlp, gbm, linear, or module (the user's)
    candidates: dict[str, float] = field(default_factory=dict)  # auto: family -> validation score
    candidate_metric: str = ""  # auto: what `candidates` measure (log_loss | rmse)


def kept_missing_texts(features_dir: Path, read: dict[str, Any]) -> frozenset[str]:
    """The texts the model file says training read as missing (`canonical.missing_texts` of `data.read`), less any
    that is a value of a category or date column in the splits: a Parquet or JSON Lines table is read without
    pandas' missing-value texts, so its "None" or "NA" is a category the model learned and must stay one."""
    import pandas as pd

    from driftloop.canonical import missing_texts, unheld

    roles = ColumnRoles.from_json(load_meta(features_dir))
    columns = list(roles.datetime) + roles.categorical
    if not columns:
        return missing_texts(read)
    splits = [pd.read_parquet(features_dir / f"{split}.parquet", columns=columns) for split in ("train", "val", "test")]
    return unheld(missing_texts(read), (frame[c].dropna().unique() for frame in splits for c in columns))


def prepare(features_dir: Path) -> tuple[TrainingData, Any, ColumnRoles, list[Any] | None, Any]:
    """The splits through the fitted transform's ONNX graph: (data, transform graph, roles, classes, validation rows).

    Every family trains on the features the served file computes (`onnx_model.transform_rows`).
    """
    import joblib
    import numpy as np
    import pandas as pd

    from driftloop.components.models.base import TrainingData
    from driftloop.onnx_model import transform_rows, transform_to_onnx

    meta = load_meta(features_dir)
    roles = ColumnRoles.from_json(meta)
    task, classes = meta["task"], meta["classes"]
    transform = transform_to_onnx(joblib.load(features_dir / TRANSFORM_FILE), roles)
    train = pd.read_parquet(features_dir / "train.parquet")
    val = pd.read_parquet(features_dir / "val.parquet")
    x_train = transform_rows(transform, train, roles).astype(np.float32)
    x_val = transform_rows(transform, val, roles).astype(np.float32)
    if task == "classification":
        index = {c: i for i, c in enumerate(classes)}
        data = TrainingData(x_train, train[roles.target].map(lambda v: index[python_value(v)]).to_numpy(),
                            x_val, val[roles.target].map(lambda v: index[python_value(v)]).to_numpy(),
                            task=task, n_outputs=len(classes))
    else:
        y_train = train[roles.target].to_numpy(dtype=np.float64)
        data = TrainingData(x_train, y_train, x_val, val[roles.target].to_numpy(dtype=np.float64), task=task,
                            n_outputs=1, y_mean=float(y_train.mean()), y_std=float(y_train.std() or 1.0))
    return data, transform, roles, classes, val


def fit_model(data: TrainingData, *, spec: TrainSpec, out_dir: Path, tracker: Tracker | None = None,
              on_epoch: Any = None) -> tuple[FittedModel, Search | None]:
    """The family the spec asks for, fitted and exported; for `auto`, also what the search tried.

    Under `train.search` each trial comes back here with the trial's spec (which has no search).
    """
    from driftloop.components.models import auto, mlp, search, sklearn_family, user_model

    if spec.search is not None:
        def fit_trial(trial_spec: TrainSpec, trial_dir: Path, trial_on_epoch: Any) -> FittedModel:
            return fit_model(data, spec=trial_spec, out_dir=trial_dir, on_epoch=trial_on_epoch)[0]

        return search.run_search(data, spec=spec, fit=fit_trial, out_dir=out_dir, tracker=tracker), None
    output = ONNX_OUTPUT_PROBABILITIES if data.classification else ONNX_OUTPUT_PREDICTION
    checkpoints = out_dir / "checkpoints"
    checkpoints.mkdir(exist_ok=True)
    if spec.module is not None:
        return user_model.train_user_model(data, spec=spec, output_name=output, code_dir=out_dir / TRAIN_CODE_DIR,
                                          checkpoint_dir=checkpoints, on_epoch=on_epoch), None
    if spec.model == "auto":
        return auto.choose(data, spec=spec, fit_family=auto.fit_family_with(data, spec=spec, output_name=output,
                                                                            checkpoint_dir=checkpoints))
    if spec.model == "mlp":
        return mlp.train_torch(data, spec=spec, output_name=output, checkpoint_dir=checkpoints,
                               on_epoch=on_epoch), None
    build = sklearn_family.gbm_estimator if spec.model == "gbm" else sklearn_family.linear_estimator
    return sklearn_family.train_estimator(build(spec, data.task), data, spec=spec, output_name=output,
                                          family=spec.model), None


def run(features_dir: Path, *, spec: TrainSpec, out_dir: Path, tracker: Tracker | None = None,
        missing: frozenset[str] | None = None) -> TrainResult:
    """Fit on the train split, export `model.onnx` into `out_dir`, verify it, log to MLflow.

    `missing`: the texts the table was read with as missing (`kept_missing_texts`), kept in the model file.
    """
    import numpy as np
    import onnx

    from driftloop.components.models.sklearn_family import family_params
    from driftloop.distributed import active_world, release_workers
    from driftloop.onnx_model import OnnxModel, merge

    out_dir.mkdir(parents=True, exist_ok=True)
    data, transform, roles, classes, val = prepare(features_dir)
    if tracker is not None:
        tracker.log_params(_spec_params(spec, data.task) | {"task": data.task, "n_features": data.n_features,
                                                 "train_rows": len(data.x_train)})
        if active_world().distributed:
            tracker.log_params({"train.world_size": active_world().size})
    fitted, search = fit_model(data, spec=spec, out_dir=out_dir, tracker=tracker)
    release_workers()
    model = merge(transform, fitted.graph, task=data.task, classes=classes, roles=roles, missing=missing)
    model_path = out_dir / MODEL_FILE
    onnx.save(model, model_path)
    expected = fitted.served_val
    got = OnnxModel(model_path).run(val)
    diff = float(np.max(np.abs(got.reshape(expected.shape) - expected)))
    record: dict[str, Any] = {
        "model": fitted.family, "history": fitted.history, "best_epoch": fitted.best_epoch,
        "stopped_early": fitted.stopped_early, "device": fitted.device, "onnx_max_abs_diff": diff,
        "fit_seconds": fitted.seconds, "world_size": 1, **fitted.details}
    if search is not None:
        record["auto"] = search.to_json()
    (out_dir / "train.json").write_text(json.dumps(record, indent=2))
    if tracker is not None:
        if fitted.family in ("gbm", "linear", "mlp") and spec.model == "auto":
            tracker.log_params(family_params(spec, fitted.family, data.task))
        tracker.log_params({TRAIN_CHOSEN_MODEL_PARAM: fitted.family})
        tracker.set_tags({TRAIN_CHOSEN_MODEL_PARAM: fitted.family})
        tracker.log_metric_series([(row, epoch) for epoch, row in enumerate(fitted.history, start=1)])
        tracker.log_metrics({"best_val_loss": fitted.val_loss, "best_epoch": fitted.best_epoch,
                             "onnx_max_abs_diff": diff} | _candidate_metrics(search))
    # Regression outputs are in target units (prices in the hundreds carry float32 noise
    # above 1e-4), so the bound is relative to the output's size, and absolute below 1.
    # Train measures parity; the gate alone decides on it (`train.onnx_tolerance`), once.
    scale = max(1.0, float(np.max(np.abs(expected))))
    return TrainResult(model_path, diff, scale, fitted.best_epoch, fitted.epochs_run, fitted.val_loss,
                       fitted.device, fitted.seconds, fitted.family, dict(search.scores) if search else {},
                       search.metric if search else "")


def _spec_params(spec: TrainSpec, task: str) -> dict[str, Any]:
    """The train section as MLflow params: the chosen family's knobs, the user's params, never the code's text."""
    from driftloop.components.models.sklearn_family import family_params

    params: dict[str, Any] = {"train.model": spec.model if spec.module is None else "module",
                              "train.class_weight": spec.class_weight, "train.seed": spec.seed,
                              "train.onnx_tolerance": spec.onnx_tolerance, "train.device": spec.device}
    if spec.module is not None:
        params["train.module"] = spec.module
        params |= {f"train.params.{k}": v for k, v in spec.params.items()}
        params |= family_params(spec, "mlp", "")  # the loop's knobs, used when the module is torch
    elif spec.model == "auto":
        params["train.budget"] = spec.budget
    else:
        params |= family_params(spec, spec.model, task)
    return params


def _candidate_metrics(search: Search | None) -> dict[str, float]:
    if search is None:
        return {}
    return {f"candidate.{family}.val_{search.metric}": score for family, score in search.scores.items()}


def execute(ctx: RunContext, features_dir: Path, *, out_dir: Path) -> TrainResult:
    """Train and export; log the parameters, the loss curve, the ONNX model, its checkpoints, the user's code
    and `train.json`."""
    from driftloop.constants import MODEL_ARTIFACT_DIR, TRAIN_DIR

    outcome = run(features_dir, spec=ctx.spec.train, out_dir=out_dir, tracker=ctx.tracker,
                  missing=kept_missing_texts(features_dir, ctx.spec.data.read.options()))
    ctx.tracker.log_onnx_model(outcome.model_path, out_dir / MODEL_ARTIFACT_DIR, MODEL_ARTIFACT_DIR)
    ctx.tracker.log_artifacts(out_dir / "checkpoints", "checkpoints")
    # the user's file only: importing it left its bytecode (__pycache__) beside it
    for source in sorted((out_dir / TRAIN_CODE_DIR).glob("*.py")):
        ctx.tracker.log_artifact(source, TRAIN_CODE_DIR)
    ctx.tracker.log_artifact(out_dir / "train.json", TRAIN_DIR)
    return outcome
