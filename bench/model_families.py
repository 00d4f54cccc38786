"""Model families: the primary metric and train wall time of mlp, gbm, linear and auto, against
scikit-learn's HistGradientBoosting with default settings fitted on the same split, in the same run.

Tables: the bundled example (`customers`, 5000 rows, binary), and scikit-learn's bundled
breast_cancer (binary), wine (3 classes) and diabetes (regression). Each table goes through
validate and feature once; each family is `components.train.run` on those features (fit, ONNX
export, parity check), scored with `components.evaluate.score` on the held-out test split,
as the evaluate step scores it. The baseline HistGradientBoosting is fitted on the same
transformed train split and scored on the same test rows.

`auto` gets a budget of 3x the default family's (mlp) train time on the example table, the
issue's bound. Primary metric: ROC AUC (classification, macro one-vs-rest for wine), RMSE (regression).
Goal: auto is no worse than HistGradientBoosting on any table beyond noise:
ratio = min over tables of auto's quality relative to the baseline (AUC auto / hgb, RMSE hgb / auto) >= 0.98.
One repeat per configuration: the metrics are deterministic (seeded); the wall times are noisy on a shared machine.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from _common import write_result

NAME = "model_families"
FAMILIES = ("mlp", "gbm", "linear", "auto")
GOAL_MIN_RATIO = 0.98
BUDGET_FACTOR = 3


def tables() -> dict[str, tuple[Any, str]]:
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

    from driftloop.example import customers

    return {"customers": (customers(rows=5000), "churned"),
            "breast_cancer": (load_breast_cancer(as_frame=True).frame, "target"),
            "wine": (load_wine(as_frame=True).frame, "target"),
            "diabetes": (load_diabetes(as_frame=True, scaled=False).frame, "target")}


def prepare_features(name: str, frame: Any, target: str, work: Path) -> Path:
    from driftloop.components import feature, validate
    from driftloop.components.columns import ColumnRoles
    from driftloop.spec import FeatureSpec, ValidationSpec

    checked = validate.run(frame, source=f"{name}.csv", target=target, validation=ValidationSpec(),
                           feature=FeatureSpec(), out_dir=work / name / "validation")
    feature.run(frame, source=f"{name}.csv", roles=ColumnRoles.load(checked.roles_path), spec=FeatureSpec(),
                task="auto", out_dir=work / name / "features")
    return work / name / "features"


def primary(metrics: dict[str, float], task: str) -> float:
    return metrics["roc_auc"] if task == "classification" else metrics["rmse"]


def train_family(features: Path, family: str, out: Path, budget: str) -> dict[str, Any]:
    import pandas as pd

    from driftloop.components import train
    from driftloop.components.evaluate import score
    from driftloop.onnx_model import OnnxModel
    from driftloop.spec import TrainSpec

    started = time.perf_counter()
    outcome = train.run(features, spec=TrainSpec(model=family, budget=budget), out_dir=out)
    wall = time.perf_counter() - started
    model = OnnxModel(outcome.model_path)
    metrics = score(model, pd.read_parquet(features / "test.parquet"))
    return {"metric": primary(metrics, model.task), "wall_s": wall, "served": outcome.model,
            "onnx_max_abs_diff": outcome.onnx_max_abs_diff, "candidates": outcome.candidates, "task": model.task}


def baseline(features: Path) -> dict[str, Any]:
    """HistGradientBoosting with scikit-learn's defaults on the same transformed train split and test rows."""
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from driftloop.components.evaluate import classification_metrics, regression_metrics
    from driftloop.components.train import prepare
    from driftloop.onnx_model import transform_rows

    data, transform, roles, classes, _ = prepare(features)
    test = pd.read_parquet(features / "test.parquet")
    x_test = transform_rows(transform, test, roles)
    started = time.perf_counter()
    if data.classification:
        model = HistGradientBoostingClassifier(random_state=42).fit(data.x_train, data.y_train)
        wall = time.perf_counter() - started
        metrics = classification_metrics(test[roles.target].tolist(), model.predict_proba(x_test), classes or [])
    else:
        model = HistGradientBoostingRegressor(random_state=42).fit(data.x_train, data.y_train)
        wall = time.perf_counter() - started
        metrics = regression_metrics(test[roles.target].to_numpy(dtype=float), model.predict(x_test))
    return {"metric": primary(metrics, data.task), "wall_s": wall, "task": data.task}


def quality(value: float, reference: float, task: str) -> float:
    """Relative quality against the baseline, >1 better: AUC ratio, or the inverse RMSE ratio."""
    return value / reference if task == "classification" else reference / value


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-families-"))
    prepared = {name: prepare_features(name, frame, target, work) for name, (frame, target) in tables().items()}
    # the default family on the example table sets auto's budget
    default = train_family(prepared["customers"], "mlp", work / "customers" / "mlp", "2m")
    budget = f"{max(1, round(BUDGET_FACTOR * default['wall_s']))}s"
    results: dict[str, dict[str, Any]] = {}
    for name, features in prepared.items():
        results[name] = {"hgb_default": baseline(features)}
        for family in FAMILIES:
            if name == "customers" and family == "mlp":
                results[name][family] = default
                continue
            results[name][family] = train_family(features, family, work / name / family, budget)
    rows = []
    for name, by_family in results.items():
        base = by_family["hgb_default"]
        for family in (*FAMILIES, "hgb_default"):
            r = by_family[family]
            rows.append([name, family, r.get("served", "-"), round(r["metric"], 4),
                         round(quality(r["metric"], base["metric"], base["task"]), 3), round(r["wall_s"], 2),
                         round(r["wall_s"] / base["wall_s"], 1)])
    worst = min(quality(by["auto"]["metric"], by["hgb_default"]["metric"], by["hgb_default"]["task"])
                for by in results.values())
    path = write_result(NAME, {
        "measured": worst, "baseline": 1.0, "ratio": worst, "unit": "x",
        "goal": {"metric": "ratio", "op": ">=", "value": GOAL_MIN_RATIO}, "passed_goal": worst >= GOAL_MIN_RATIO,
        "auto_budget": budget, "default_train_s_on_example": default["wall_s"], "results": results,
        "table": {"columns": ["table", "family", "served", "metric (AUC|RMSE)", "quality vs hgb", "train wall s",
                              "wall vs hgb"], "rows": rows}})
    print(path.read_text())


if __name__ == "__main__":
    main()
