"""Sliced gates and learned baselines: the rules per slice, the slices themselves, and a baseline a weak model loses to."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftloop.components import evaluate, feature, train, validate
from driftloop.components.columns import ColumnRoles
from driftloop.components.evaluate import Evaluation
from driftloop.components.gate import decide
from driftloop.components.slices import metric_key, slice_masks, slice_metrics, slices_markdown
from driftloop.errors import DataError, InvalidSpec
from driftloop.spec import FeatureSpec, GateSpec, TrainSpec, ValidationSpec, validate_spec

CHAMPION = {"version": "3", "metrics": {"accuracy": 0.84, "roc_auc": 0.90}}


def record(value: str, rows: int, accuracy: float, champion_accuracy: float | None = None) -> dict:
    out = {"column": "region", "value": value, "key": value, "binned": False, "rows": rows,
           "metrics": {"accuracy": accuracy}}
    if champion_accuracy is not None:
        out["champion_metrics"] = {"accuracy": champion_accuracy}
    return out


def sliced(slices: list[dict], *, champion: dict | None = None) -> Evaluation:
    return Evaluation("classification", {"accuracy": 0.86, "roc_auc": 0.91}, {"accuracy": 0.6}, champion, 1e-7, 1.0,
                      400, None, "majority", slices)


def failed(blessing) -> list[str]:
    return [r for r in blessing.reasons if r.startswith("FAIL")]


def test_one_bad_slice_declines_a_candidate_that_is_good_overall() -> None:
    slices = [record("south", 120, 0.95), record("north", 100, 0.52), record("east", 90, 0.93)]
    policy = GateSpec.model_validate({"slices": {"min_rows": 30, "min": {"accuracy": 0.7}}})
    blessing = decide(sliced(slices), policy, onnx_tolerance=1e-4)
    assert not blessing.passed
    assert failed(blessing) == ["FAIL slice region=north: accuracy 0.5200 not >= 0.7"]
    assert "PASS slice region=south: accuracy 0.9500 >= 0.7" in blessing.reasons
    assert decide(sliced(slices), GateSpec(), onnx_tolerance=1e-4).passed  # no slice rules: the gate as before


def test_small_slices_are_reported_but_not_gated() -> None:
    slices = [record("south", 120, 0.95), record("island", 12, 0.25)]
    policy = GateSpec.model_validate({"slices": {"min_rows": 30, "min": {"accuracy": 0.7}}})
    blessing = decide(sliced(slices), policy, onnx_tolerance=1e-4)
    assert blessing.passed
    assert ("PASS slice region=island: 12 rows, under gate.slices.min_rows 30: reported, not gated"
            in blessing.reasons)
    assert not decide(sliced(slices), GateSpec.model_validate({"slices": {"min_rows": 10, "min": {"accuracy": 0.7}}}),
                      onnx_tolerance=1e-4).passed  # the same slice, gated once it is big enough
    table = slices_markdown(slices, "classification", champion_version=None, min_rows=30)
    assert "| region | island | 12 (small) | 0.2500 |" in table


def test_a_slice_that_loses_to_the_champion_declines_and_an_unmeasured_metric_fails_closed() -> None:
    slices = [record("south", 120, 0.95, 0.94), record("north", 100, 0.70, 0.80)]
    policy = GateSpec.model_validate({"slices": {"vs_champion": {"accuracy": 0.05}}})
    blessing = decide(sliced(slices, champion=CHAMPION), policy, onnx_tolerance=1e-4)
    assert failed(blessing) == ["FAIL slice region=north: accuracy 0.7000 vs champion v3 0.8000 (100 rows; loss "
                                "0.1000, tolerated 0.05)"]
    one_class = decide(sliced([record("south", 120, 0.95)]), GateSpec.model_validate(
        {"slices": {"min": {"roc_auc": 0.8}}}), onnx_tolerance=1e-4)
    assert failed(one_class) == ["FAIL slice region=south: roc_auc could not be measured on this slice (one class "
                                 "only?), so it cannot pass"]


def test_slice_rules_need_slices_and_known_metrics_and_a_known_baseline() -> None:
    data = {"path": "t.csv", "target": "y"}
    with pytest.raises(InvalidSpec, match="gate.slices sets rules but evaluate.slices names no column"):
        validate_spec({"data": data, "gate": {"slices": {"min": {"accuracy": 0.7}}}})
    with pytest.raises(InvalidSpec, match=r"gate.slices.min: unknown metric 'acuracy'; did you mean 'accuracy'\?"):
        validate_spec({"data": data, "evaluate": {"slices": ["region"]}, "gate": {"slices": {"min": {"acuracy": 1}}}})
    with pytest.raises(InvalidSpec, match=r"gate.slices.minrows: unknown key; did you mean 'min_rows'\?"):
        validate_spec({"data": data, "evaluate": {"slices": ["region"]}, "gate": {"slices": {"minrows": 5}}})
    with pytest.raises(InvalidSpec, match=r"gate.baseline: Input should be 'majority', 'linear' or 'gbm'"):
        validate_spec({"data": data, "gate": {"baseline": "xgboost"}})
    # latency is timed for the candidate on the whole holdout only: such a rule could never pass
    with pytest.raises(InvalidSpec, match=r"gate.vs_champion: latency_p99_ms is measured for the candidate on the "
                                          r"whole holdout only, not for the champion; bound it with gate.max"):
        validate_spec({"data": data, "gate": {"vs_champion": {"latency_p99_ms": 1}}})
    with pytest.raises(InvalidSpec, match=r"gate.slices.max: latency_p50_ms .* not for a slice"):
        validate_spec({"data": data, "evaluate": {"slices": ["region"]}, "gate": {"slices": {"max": {"latency_p50_ms": 5}}}})
    assert validate_spec({"data": data, "gate": {"max": {"latency_p99_ms": 5}}}).gate.max == {"latency_p99_ms": 5}
    spec = validate_spec({"data": data, "evaluate": {"slices": ["region"]}, "gate": {"baseline": "gbm"}})
    assert spec.gate.baseline == "gbm" and spec.gate.slices.min_rows == 30 and not spec.gate.slices.rules


def test_numeric_columns_slice_by_quantile_bins_and_categories_by_value() -> None:
    rows = pd.DataFrame({"age": [float(v) for v in range(100)] + [np.nan],
                         "plan": ["a"] * 50 + ["b"] * 40 + [None] * 11})
    bins = slice_masks(rows, "age", bins=4)
    assert [label for label, _, _ in bins] == ["(-0.001, 24.75]", "(24.75, 49.5]", "(49.5, 74.25]", "(74.25, 99]",
                                               "(missing)"]
    assert all(binned for _, binned, _ in bins[:4]) and [int(m.sum()) for _, _, m in bins] == [25, 25, 25, 25, 1]
    plans = slice_masks(rows, "plan", bins=4)
    assert [(label, int(m.sum())) for label, _, m in plans] == [("a", 50), ("b", 40), ("(missing)", 11)]
    many = pd.DataFrame({"city": [f"c{i % 25}" for i in range(250)]})
    labels = [label for label, _, _ in slice_masks(many, "city", bins=4)]
    assert len(labels) == 20 and labels[-1] == "(other)"


def test_slice_metric_names_are_ones_mlflow_accepts() -> None:
    assert metric_key("(24.75, 49.5]") == "24.75_49.5" and metric_key("São Paulo/Zone 1") == "S_o_Paulo_Zone_1"
    logged = slice_metrics([{**record("north", 100, 0.5, 0.6), "column": "sales region"}])
    assert logged == {"slice.sales_region.north.accuracy": 0.5, "champion_slice.sales_region.north.accuracy": 0.6,
                      "slice.sales_region.north.rows": 100.0}


def test_slice_values_that_read_alike_in_a_metric_name_keep_their_own_metrics() -> None:
    """"pro plan", "pro_plan" and "pro/plan" all become `pro_plan` in an MLflow name: MLflow kept the last one."""
    rows = pd.DataFrame({"plan": ["pro plan"] * 3 + ["pro_plan"] * 2 + ["pro/plan"], "y": [1, 0, 1, 1, 0, 0]})
    records = evaluate_slices(rows)
    assert [(r["value"], r["key"]) for r in records] == [("pro plan", "pro_plan"), ("pro_plan", "pro_plan_2"),
                                                         ("pro/plan", "pro_plan_3")]
    logged = slice_metrics(records)
    assert [logged[f"slice.plan.{key}.rows"] for key in ("pro_plan", "pro_plan_2", "pro_plan_3")] == [3.0, 2.0, 1.0]


def evaluate_slices(rows: pd.DataFrame) -> list[dict]:
    from driftloop.components.slices import slice_records

    return slice_records(rows, ["plan"], bins=4, candidate=lambda mask: {"rows": float(mask.sum())}, champion=None)


def linear_table(rows: int = 1200, seed: int = 5) -> pd.DataFrame:
    """A label linear in five numbers, with 5% of labels flipped: a logistic model's home ground."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 5))
    label = (x @ np.array([1.0, -0.8, 0.6, 0.5, -0.4]) > 0).astype(int)
    flipped = rng.random(rows) < 0.05
    label[flipped] = 1 - label[flipped]
    return pd.DataFrame(x, columns=[f"x{i}" for i in range(5)]).assign(label=label)


@pytest.fixture(scope="module")
def weak_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLP stopped after one epoch at a tiny learning rate: barely trained."""
    out = tmp_path_factory.mktemp("weak")
    table = linear_table()
    checked = validate.run(table, source="linear.csv", target="label", validation=ValidationSpec(),
                           feature=FeatureSpec(), out_dir=out / "validation")
    feature.run(table, source="linear.csv", roles=ColumnRoles.load(checked.roles_path), spec=FeatureSpec(),
                task="classification", out_dir=out / "features")
    train.run(out / "features", spec=TrainSpec(epochs=1, hidden_sizes=[2], lr=1e-5), out_dir=out / "train")
    return out


def test_a_linear_baseline_declines_a_weak_candidate_and_each_kind_is_fitted(weak_model: Path, tmp_path: Path) -> None:
    from threadpoolctl import threadpool_limits

    def judged(baseline: str):
        with threadpool_limits(1):  # HistGradientBoosting's OpenMP threads crawl on a busy shared test machine
            outcome = evaluate.run(weak_model / "train" / "model.onnx", weak_model / "features",
                                   out_dir=tmp_path / baseline, onnx_max_abs_diff=0.0, onnx_output_scale=1.0,
                                   latency_samples=10, baseline=baseline)
        return outcome, decide(outcome, GateSpec(baseline=baseline), onnx_tolerance=1e-4)

    linear, declined = judged("linear")
    assert linear.baseline_model == "linear" and linear.baseline["roc_auc"] > 0.9  # it fits this table well
    assert linear.metrics["roc_auc"] < linear.baseline["roc_auc"]
    reason = next(r for r in declined.reasons if "baseline" in r)
    assert reason == (f"FAIL roc_auc {linear.metrics['roc_auc']:.4f} does not beat linear baseline "
                      f"(LogisticRegression) {linear.baseline['roc_auc']:.4f}")
    assert not declined.passed
    gbm, _ = judged("gbm")
    assert gbm.baseline["roc_auc"] > 0.85 and gbm.baseline != linear.baseline
    majority, _ = judged("majority")
    assert majority.baseline["roc_auc"] == 0.5 and majority.baseline_model == "majority"


def test_an_unknown_slice_column_is_one_line_with_the_nearest_name(weak_model: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"^evaluate.slices: 'x_1' is not a column of the holdout \(a feature or the "
                                        r"target\); did you mean 'x1'\?$"):
        evaluate.run(weak_model / "train" / "model.onnx", weak_model / "features", out_dir=tmp_path,
                     onnx_max_abs_diff=0.0, onnx_output_scale=1.0, latency_samples=10, slices=["x_1"])


def test_the_kfp_evaluation_markdown_names_the_baseline_model() -> None:
    from dataclasses import replace

    from driftloop.pipelines.reports import evaluation_markdown

    evaluation = replace(sliced([]), baseline_model="linear")
    text = evaluation_markdown(evaluation, decide(evaluation, GateSpec(), onnx_tolerance=1e-4))
    assert "| metric | candidate | baseline (LogisticRegression) | champion |" in text


def trained_on(table: pd.DataFrame, out: Path, *, positive_class: object = None) -> Path:
    """A small MLP through the real steps; its directory (validation, features, train)."""
    checked = validate.run(table, source="t.csv", target="label", validation=ValidationSpec(), feature=FeatureSpec(),
                           out_dir=out / "validation")
    feature.run(table, source="t.csv", roles=ColumnRoles.load(checked.roles_path), spec=FeatureSpec(),
                task="classification", out_dir=out / "features", positive_class=positive_class)
    train.run(out / "features", spec=TrainSpec(epochs=3, hidden_sizes=[8]), out_dir=out / "train")
    return out


def test_the_champion_is_scored_about_the_candidates_classes_on_the_window_and_after_a_new_label(
        tmp_path: Path) -> None:
    """The window scored the champion about its own positive class (drift can flip which class is the minority
    one a model takes as positive), and a champion that never saw a label the candidate has could not be scored at
    all, so the gate declined every candidate until someone stepped in."""
    from driftloop.onnx_model import OnnxModel

    table = linear_table(600).assign(label=lambda t: t["label"].map({0: "no", 1: "yes"}))
    champion = trained_on(table, tmp_path / "champion", positive_class="yes")
    candidate = trained_on(table, tmp_path / "candidate", positive_class="no")
    assert OnnxModel(candidate / "train" / "model.onnx").classes == ["yes", "no"]
    test = pd.read_parquet(candidate / "features" / "test.parquet")
    test.to_csv(tmp_path / "window.csv", index=False)  # the window is the holdout: both must score the same
    judged = evaluate.run(candidate / "train" / "model.onnx", candidate / "features", out_dir=tmp_path / "eval",
                          onnx_max_abs_diff=0.0, onnx_output_scale=1.0, latency_samples=10,
                          champion_model_path=champion / "train" / "model.onnx", champion_version="1",
                          window_uri=str(tmp_path / "window.csv"))
    assert judged.window is not None and judged.champion is not None
    for name in ("f1", "precision", "recall", "pr_auc", "accuracy"):
        assert judged.window["champion_metrics"][name] == pytest.approx(judged.champion["metrics"][name], abs=1e-12)

    three = linear_table(900, seed=8)
    three.loc[three["x0"] > 1.0, "label"] = 2  # a label the champion was never trained on
    newer = trained_on(three, tmp_path / "three")
    rows = pd.read_parquet(newer / "features" / "test.parquet")
    old = trained_on(linear_table(600, seed=9), tmp_path / "old")
    judged = evaluate.run(newer / "train" / "model.onnx", newer / "features", out_dir=tmp_path / "eval3",
                          onnx_max_abs_diff=0.0, onnx_output_scale=1.0, latency_samples=10,
                          champion_model_path=old / "train" / "model.onnx", champion_version="1")
    assert judged.champion is not None and "error" not in judged.champion, judged.champion
    # its rows of label 2 are its errors; on the others it is scored as it predicts
    own = OnnxModel(old / "train" / "model.onnx")
    predicted = np.array(own.classes)[own.run(rows).argmax(axis=1)]
    assert judged.champion["metrics"]["accuracy"] == pytest.approx(float(np.mean(predicted == rows["label"])))
    assert (rows["label"] == 2).any() and "roc_auc" in judged.champion["metrics"]
    compared = [r for r in decide(judged, GateSpec(), onnx_tolerance=1e-4).reasons if "vs champion v1" in r]
    assert len(compared) == 1 and "on the same holdout" in compared[0]
