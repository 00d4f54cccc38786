"""evaluate: score the ONNX model on the held-out split, time it, and re-score the champion.

The champion is re-scored on the very same rows: comparing against metrics it logged
on another split would compare two different exams.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.components.columns import python_value
from driftloop.constants import EVALUATION_FILE

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from driftloop.components.context import RunContext
    from driftloop.mlflow_gateway import ModelVersion
    from driftloop.onnx_model import OnnxModel


@dataclass(frozen=True)
class Evaluation:
    task: str
    metrics: dict[str, float]
    baseline: dict[str, float]
    champion: dict[str, Any] | None  # {"version", "metrics"} or {"version", "error"}; None: no champion
    onnx_max_abs_diff: float
    onnx_output_scale: float  # max(1, largest |output|): parity is bounded relative to it
    rows: int
    # candidate and champion on a second labelled table (the drifted window): {"uri", "rows", "metrics",
    # "champion_metrics" | "champion_error"}; None when the spec names no window
    window: dict[str, Any] | None = None
    baseline_model: str = "majority"  # gate.baseline: majority | linear | gbm; `baseline` holds its metrics
    slices: list[dict[str, Any]] | None = None  # evaluate.slices: see driftloop.components.slices.slice_records

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Evaluation:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def score(model: OnnxModel, rows: pd.DataFrame) -> dict[str, float]:
    """Task metrics of a driftloop ONNX model on raw rows that include the target."""
    return metrics_of(model.task, rows[model.target], model.run(rows), model.classes)


def score_champion(candidate: OnnxModel, champion: OnnxModel,
                   rows: pd.DataFrame) -> tuple[np.ndarray, list[Any] | None, dict[str, float]]:
    """The champion's outputs on `rows` (`champion_outputs`), the classes they are in, and its metrics about the
    candidate's positive class: the same scoring on the holdout and on the window."""
    output, classes = champion_outputs(candidate, champion, rows)
    return output, classes, metrics_of(champion.task, rows[champion.target], output, classes,
                                       positive_class=candidate.positive_class)


def champion_outputs(candidate: OnnxModel, champion: OnnxModel, rows: pd.DataFrame) -> tuple[np.ndarray, list[Any] | None]:
    """The champion's outputs on `rows`, in the candidate's class order where it can be, and the classes to score
    them with.

    Both models are then scored about the same classes: the candidate's positive class (drift can flip which
    class is the minority one a model takes as positive), and a class the champion never learned (a label that
    appeared since) given probability 0, so its rows count as the champion's errors instead of making the champion
    unscorable. A champion with a class the candidate lacks keeps its own classes.
    """
    import numpy as np

    output = champion.run(rows)
    if champion.task != "classification" or candidate.task != "classification":
        return output, champion.classes
    theirs = [python_value(c) for c in champion.classes or []]
    ours = [python_value(c) for c in candidate.classes or []]
    if theirs == ours or not set(theirs) <= set(ours):
        return output, champion.classes
    aligned = np.zeros((len(output), len(ours)), dtype=output.dtype)
    for column, label in enumerate(theirs):
        aligned[:, ours.index(label)] = output[:, column]
    return aligned, candidate.classes


def metrics_of(task: str, truth: pd.Series, output: np.ndarray, classes: list[Any] | None, *,
               positive_class: Any = None) -> dict[str, float]:
    """Task metrics of model outputs (probabilities or predictions) against the true target values."""
    if task == "classification":
        classes = list(classes or [])
        if positive_class is not None and len(classes) == 2 and classes[0] == positive_class:
            classes, output = classes[::-1], output[:, ::-1]
        return classification_metrics(truth.tolist(), output, classes)
    return regression_metrics(truth.to_numpy(dtype=float), output)


def classification_metrics(truth: list[Any], probabilities: np.ndarray, classes: list[Any]) -> dict[str, float]:
    import warnings

    import numpy as np
    from sklearn import metrics
    from sklearn.exceptions import UndefinedMetricWarning

    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index.get(python_value(v), -1) for v in truth])
    predicted = probabilities.argmax(axis=1)
    binary = len(classes) == 2
    # multiclass: the macro mean over the classes the rows hold, the same for every model scored on them (by
    # default scikit-learn averages over the classes each model happens to predict too)
    averaged: dict[str, Any] = ({"average": "binary"} if binary else
                                {"average": "macro", "labels": sorted({int(v) for v in y} - {-1}) or [0]})
    result = {
        "accuracy": metrics.accuracy_score(y, predicted),
        "precision": metrics.precision_score(y, predicted, zero_division=0, **averaged),
        "recall": metrics.recall_score(y, predicted, zero_division=0, **averaged),
        "f1": metrics.f1_score(y, predicted, zero_division=0, **averaged),
        "balanced_accuracy": metrics.balanced_accuracy_score(y, predicted),
        # float32 softmax rows sum to 1 only within ~1e-7; renormalise so sklearn does not warn
        "log_loss": metrics.log_loss(y, _normalised(probabilities), labels=list(range(len(classes)))),
    }
    try:
        with warnings.catch_warnings():  # scikit-learn >= 1.8 warns and answers nan where it used to raise
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            auc = (metrics.roc_auc_score(y, probabilities[:, 1]) if binary else
                   metrics.roc_auc_score(y, probabilities, multi_class="ovr", labels=list(range(len(classes)))))
        if np.isfinite(auc):
            result["roc_auc"] = auc
    except ValueError:  # a split with one class present has no AUC: it is left out, and the gate says so
        pass
    result["pr_auc"] = _pr_auc(y, probabilities, len(classes))
    return {k: float(v) for k, v in result.items()}


def _pr_auc(y: np.ndarray, probabilities: np.ndarray, n_classes: int) -> float:
    """Average precision of the positive class (classes[1]) for binary tasks; the macro mean over
    classes one-vs-rest otherwise. A class absent from the holdout contributes 0 (nothing to recall)."""
    import numpy as np
    from sklearn import metrics

    wanted = [1] if n_classes == 2 else range(n_classes)
    scores = [metrics.average_precision_score(y == k, probabilities[:, k]) if (y == k).any() else 0.0
              for k in wanted]
    return float(np.mean(scores))


def _normalised(probabilities: np.ndarray) -> np.ndarray:
    import numpy as np

    clipped = np.clip(probabilities.astype(np.float64), 1e-7, 1)
    return clipped / clipped.sum(axis=1, keepdims=True)


def regression_metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    import numpy as np
    from sklearn import metrics

    return {"rmse": float(np.sqrt(metrics.mean_squared_error(truth, predicted))),
            "mae": float(metrics.mean_absolute_error(truth, predicted)),
            "r2": float(metrics.r2_score(truth, predicted))}


def single_row_latency(model: OnnxModel, rows: pd.DataFrame, samples: int) -> dict[str, float]:
    """p50/p99 of one-row ONNX Runtime calls, feeds prepared beforehand, after a warm-up."""
    import numpy as np

    feeds = [model.feed(rows.iloc[[i % len(rows)]]) for i in range(samples)]
    for feed in feeds[:10]:
        model.session.run([model.output], feed)
    timings = []
    for feed in feeds:
        started = time.perf_counter()
        model.session.run([model.output], feed)
        timings.append((time.perf_counter() - started) * 1000)
    return {"latency_p50_ms": float(np.percentile(timings, 50)), "latency_p99_ms": float(np.percentile(timings, 99))}


def score_window(uri: str, candidate: OnnxModel, champion_model_path: Path | None,
                 read: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Both models on the same window rows, so the gate can refuse a model that is worse on fresh data.

    `read` is the spec's `data.read`: a window is a table in the training table's own form (a column-aligned file
    needs its `sep` again). It reads CSV only, so a drift retrain's staged Parquet window is read as written.
    """
    from driftloop.errors import DataError
    from driftloop.onnx_model import OnnxModel
    from driftloop.table import load_table, whole_labels

    # a nested column the model leaves out is read past, as training read it
    rows = load_table(uri, read=read, nested_ok=lambda column: column not in candidate.columns).frame
    target = candidate.target
    if target not in rows.columns:
        raise DataError(f"{uri}: evaluation window lacks the target column {target!r}")
    labelled = rows[target].notna()
    rows = rows.loc[labelled].reset_index(drop=True)  # rows not yet labelled say nothing about either model
    rows[target] = whole_labels(rows[target])
    if rows.empty:
        raise DataError(f"{uri}: evaluation window has no labelled row (target {target!r} is missing in every row)")
    if candidate.task == "classification":
        classes = {python_value(c) for c in candidate.classes or []}
        unknown = rows[target].map(lambda v: python_value(v) not in classes)
        if unknown.any():
            first = rows[target][unknown].iloc[0]
            raise DataError(f"{uri}: evaluation window has {int(unknown.sum())} rows labelled with a class the model "
                            f"never saw: {python_value(first)!r} (its classes: "
                            f"{', '.join(repr(python_value(c)) for c in candidate.classes or [])})")
    window: dict[str, Any] = {"uri": uri, "rows": len(rows), "unlabelled_rows": int((~labelled).sum()),
                              "metrics": score(candidate, rows)}
    if champion_model_path is not None:
        try:
            window["champion_metrics"] = score_champion(candidate, OnnxModel(champion_model_path), rows)[2]
        except Exception as e:  # the gate turns this into a failed check, never a silent pass
            window["champion_error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return window


def run(model_path: Path, features_dir: Path, *, out_dir: Path, onnx_max_abs_diff: float, onnx_output_scale: float,
        latency_samples: int = 200, champion_model_path: Path | None = None,
        champion_version: str | None = None, window_uri: str | None = None,
        window_read: Mapping[str, Any] | None = None, baseline: str = "majority",
        slices: list[str] | None = None, slice_bins: int = 4) -> Evaluation:
    """Evaluate the candidate on the test split and, when there is one, the champion on the same rows.

    The baseline (`gate.baseline`) and every slice (`slices`) are scored on those same rows too;
    the outputs of all three models are kept in `holdout_outputs.npz` for the evaluation report.
    """
    import pandas as pd

    from driftloop.components.baselines import baseline_output
    from driftloop.components.evaluation_report import save_report_inputs
    from driftloop.onnx_model import OnnxModel

    out_dir.mkdir(parents=True, exist_ok=True)
    test = pd.read_parquet(features_dir / "test.parquet")
    candidate = OnnxModel(model_path, threads=1)
    task, truth = candidate.task, test[candidate.target]
    outputs = {"candidate": candidate.run(test)}
    metrics = metrics_of(task, truth, outputs["candidate"], candidate.classes) | single_row_latency(
        candidate, test, latency_samples)
    outputs["baseline"] = baseline_output(baseline, features_dir, test)
    baseline_scores = metrics_of(task, truth, outputs["baseline"], candidate.classes)
    champion: dict[str, Any] | None = None
    champion_model, champion_classes = None, None
    if champion_model_path is not None:
        champion = {"version": champion_version}
        try:
            champion_model = OnnxModel(champion_model_path)
            outputs["champion"], champion_classes, champion["metrics"] = score_champion(candidate, champion_model, test)
        except Exception as e:  # an incompatible champion must not pass silently; the gate sees the error
            champion["error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            outputs.pop("champion", None)
    window = score_window(window_uri, candidate, champion_model_path, window_read) if window_uri else None
    records = _slices(test, slices or [], slice_bins, candidate, champion_model, champion_classes,
                      outputs) if slices else None
    evaluation = Evaluation(task, metrics, baseline_scores, champion, onnx_max_abs_diff, onnx_output_scale,
                            len(test), window, baseline, records)
    evaluation.save(out_dir / EVALUATION_FILE)
    save_report_inputs(out_dir, model_path, candidate, champion_classes, outputs, truth)
    return evaluation


def _slices(test: pd.DataFrame, columns: list[str], bins: int, candidate: OnnxModel, champion: OnnxModel | None,
            champion_classes: list[Any] | None, outputs: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    from driftloop.components.slices import slice_records

    def scorer(model: OnnxModel, output: np.ndarray, classes: list[Any] | None) -> Any:
        # every model is scored with the candidate's positive class, as on the whole holdout
        return lambda mask: metrics_of(model.task, test[model.target][mask], output[mask], classes,
                                       positive_class=candidate.positive_class)

    return slice_records(test, columns, bins=bins, candidate=scorer(candidate, outputs["candidate"], candidate.classes),
                         champion=scorer(champion, outputs["champion"], champion_classes)
                         if champion and "champion" in outputs else None)


def execute(ctx: RunContext, model_path: Path, features_dir: Path, *, onnx_max_abs_diff: float,
            onnx_output_scale: float, champion: ModelVersion | None, out_dir: Path, scratch: Path) -> Evaluation:
    """Score the candidate, and the pinned champion on the same holdout; log every metric and the evaluation."""
    from driftloop.components.slices import slice_metrics, slices_markdown
    from driftloop.constants import EVALUATION_DIR, SLICES_FILE, SLICES_MARKDOWN_FILE

    spec = ctx.spec
    champion_model = ctx.gateway.download_model(champion, scratch) if champion is not None else None
    outcome = run(model_path, features_dir, out_dir=out_dir, onnx_max_abs_diff=onnx_max_abs_diff,
                  onnx_output_scale=onnx_output_scale, latency_samples=spec.evaluate.latency_samples,
                  champion_model_path=champion_model, champion_version=str(champion.version) if champion else None,
                  window_uri=spec.evaluate.window, window_read=spec.data.read.options(), baseline=spec.gate.baseline,
                  slices=spec.evaluate.slices, slice_bins=spec.evaluate.slice_bins)
    log = ctx.tracker.log_metrics
    log(outcome.metrics)
    log({f"baseline_{k}": v for k, v in outcome.baseline.items()})
    if outcome.champion and "metrics" in outcome.champion:
        log({f"champion_{k}": v for k, v in outcome.champion["metrics"].items()})
    if outcome.window:
        log({f"window_{k}": v for k, v in outcome.window["metrics"].items()})
        log({f"window_champion_{k}": v for k, v in outcome.window.get("champion_metrics", {}).items()})
    records = outcome.slices or []
    log(slice_metrics(records))
    (out_dir / SLICES_FILE).write_text(json.dumps(records, indent=2), encoding="utf-8")
    (out_dir / SLICES_MARKDOWN_FILE).write_text(slices_markdown(
        records, outcome.task, champion_version=(outcome.champion or {}).get("version"),
        min_rows=spec.gate.slices.min_rows if spec.gate.slices.rules else None), encoding="utf-8")
    ctx.tracker.log_artifacts(out_dir, EVALUATION_DIR)
    return outcome
