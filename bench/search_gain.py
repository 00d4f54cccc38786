"""`train.search` (20 trials) against the family's defaults: the holdout score gained and the time it costs.

Per table (scikit-learn's wine, breast cancer and diabetes) and family (mlp, gbm): one default fit
and one 20-trial search, both through `components.train.fit_model` on the same seeded
60/20/20 split (standardised on the train rows). The search ranks trials on the validation
rows; the figure that counts is the holdout (test) score of the served ONNX graph, which the
search never saw: log loss (classification) or RMSE (regression), lower is better.
`gain = (default - searched) / default` on the holdout; `time_ratio = search s / default s`.
Goal: the median gain over the configurations is >= 0 (search is not worse than the defaults).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import median, write_result

from driftloop.components.models.base import FittedModel, TrainingData, validation_score
from driftloop.components.train import fit_model
from driftloop.spec import TrainSpec

NAME = "search_gain"
TRIALS, SEED = 20, 42
SPACES: dict[str, dict[str, Any]] = {
    "mlp": {"lr": {"low": 1e-4, "high": 3e-2, "log": True}, "weight_decay": {"low": 1e-6, "high": 1e-2, "log": True},
            "dropout": {"low": 0.0, "high": 0.4}, "batch_size": {"choices": [32, 64, 128]},
            "hidden_sizes": {"choices": [[32], [64, 32], [128, 64]]}},
    "gbm": {"gbm.learning_rate": {"low": 0.01, "high": 0.3, "log": True}, "gbm.max_iter": {"low": 50, "high": 300},
            "gbm.max_leaf_nodes": {"low": 4, "high": 63}, "gbm.min_samples_leaf": {"low": 2, "high": 40},
            "gbm.l2_regularization": {"low": 1e-6, "high": 1.0, "log": True}},
}


def tables() -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

    return {name: (*loader(return_X_y=True), task) for name, loader, task in (
        ("wine", load_wine, "classification"), ("breast_cancer", load_breast_cancer, "classification"),
        ("diabetes", load_diabetes, "regression"))}


def split(x: np.ndarray, y: np.ndarray, task: str) -> tuple[TrainingData, TrainingData]:
    """(train/validation data, the same with the test rows as its validation rows)."""
    from sklearn.preprocessing import StandardScaler

    order = np.random.default_rng(SEED).permutation(len(y))
    x, y = x[order], y[order]
    a, b = int(0.6 * len(y)), int(0.8 * len(y))
    scaler = StandardScaler().fit(x[:a])
    xs = scaler.transform(x).astype(np.float32)
    extra: dict[str, Any] = {"n_outputs": int(y.max()) + 1} if task == "classification" else {
        "n_outputs": 1, "y_mean": float(y[:a].mean()), "y_std": float(y[:a].std())}
    fit_on = TrainingData(xs[:a], y[:a], xs[a:b], y[a:b], task=task, **extra)
    return fit_on, TrainingData(xs[:a], y[:a], xs[b:], y[b:], task=task, **extra)


def holdout(fitted: FittedModel, test: TrainingData) -> float:
    import onnxruntime as ort

    session = ort.InferenceSession(fitted.graph.SerializeToString(), providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: test.x_val})[0]
    return validation_score(test, out.reshape(len(test.x_val), -1))


def one(data: TrainingData, test: TrainingData, spec: TrainSpec) -> tuple[float, float, dict[str, Any]]:
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        fitted, _ = fit_model(data, spec=spec, out_dir=Path(out))
        seconds = time.perf_counter() - started
    return holdout(fitted, test), seconds, fitted.details.get("search", {})


def main() -> None:
    rows = []
    corpus = tables()
    warm, warm_test = split(*corpus["wine"])
    for family in SPACES:  # first-call costs (imports, allocator) are not the default fit's time
        one(warm, warm_test, TrainSpec(model=family, seed=SEED, epochs=1))
    for table, (x, y, task) in corpus.items():
        data, test = split(x, y, task)
        for family, space in SPACES.items():
            default, default_s, _ = one(data, test, TrainSpec(model=family, seed=SEED))
            searched, search_s, summary = one(data, test, TrainSpec.model_validate(
                {"model": family, "seed": SEED, "search": {"trials": TRIALS, "space": space}}))
            rows.append({"table": table, "family": family, "metric": "log_loss" if task == "classification" else "rmse",
                         "default": round(default, 4), "searched": round(searched, 4),
                         "gain": round((default - searched) / default, 4), "default_s": round(default_s, 2),
                         "search_s": round(search_s, 2), "time_ratio": round(search_s / default_s, 1),
                         "pruned": summary.get("pruned"), "best_params": summary.get("best_params")})
            print(rows[-1], flush=True)
    gain = median([r["gain"] for r in rows])
    path = write_result(NAME, {
        "unit": "gain", "measured": gain, "baseline": 0.0, "gain": gain,
        "goal": {"metric": "gain", "op": ">=", "value": 0.0}, "passed_goal": gain >= 0.0,
        "notes": "median over tables x families of (default - searched) / default holdout score (lower is better)",
        "config": {"trials": TRIALS, "seed": SEED, "spaces": SPACES},
        "table": {"columns": ["table", "family", "metric", "default", "searched", "gain", "default_s", "search_s",
                              "time_ratio", "pruned"],
                  "rows": [[r[c] for c in ("table", "family", "metric", "default", "searched", "gain", "default_s",
                                           "search_s", "time_ratio", "pruned")] for r in rows]},
        "rows": rows})
    print(f"{NAME}: median holdout gain {gain:+.3f} -> {path}")


if __name__ == "__main__":
    main()
