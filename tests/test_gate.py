"""The gate as a pure function: every reason, never passing on nothing."""

from driftloop.components.evaluate import Evaluation
from driftloop.components.gate import decide
from driftloop.spec import GateSpec


def evaluation(metrics: dict, *, champion: dict | None = None, diff: float = 1e-7, task: str = "classification",
               baseline: dict | None = None) -> Evaluation:
    base = baseline or ({"accuracy": 0.6} if task == "classification" else {"rmse": 10.0})
    return Evaluation(task, metrics, base, champion, diff, 1.0, 100)


def test_defaults_pass_a_good_first_model() -> None:
    blessing = decide(evaluation({"accuracy": 0.8, "roc_auc": 0.85}), GateSpec(), onnx_tolerance=1e-4)
    assert blessing.passed
    assert len(blessing.reasons) == 3 and all(r.startswith("PASS") for r in blessing.reasons)


def test_defaults_refuse_a_model_no_better_than_the_baseline() -> None:
    blessing = decide(evaluation({"accuracy": 0.6, "roc_auc": 0.5}), GateSpec(), onnx_tolerance=1e-4)
    assert not blessing.passed
    assert any(r.startswith("FAIL") and "naive baseline" in r for r in blessing.reasons)


def test_onnx_parity_is_required() -> None:
    blessing = decide(evaluation({"accuracy": 0.9}, diff=1e-2), GateSpec(), onnx_tolerance=1e-4)
    assert not blessing.passed and blessing.reasons[0] == "FAIL onnx_max_abs_diff 0.01 over tolerance 0.0001"


def test_a_regressions_parity_reason_names_the_bound_it_was_held_to() -> None:
    """Relative to the outputs' size: 0.000122 on outputs up to 1,500 passes, and says against what."""
    scaled = Evaluation("regression", {"rmse": 5.0}, {"rmse": 10.0}, None, 1.22e-4, 1500.0, 100)
    reason = decide(scaled, GateSpec(), onnx_tolerance=1e-4).reasons[0]
    assert reason == "PASS onnx_max_abs_diff 0.000122 within tolerance 0.15 (0.0001 x output scale 1.5e+03)"
    close = Evaluation("regression", {"rmse": 5.0}, {"rmse": 10.0}, None, 1.0004e-4, 1.0, 100)
    assert decide(close, GateSpec(), onnx_tolerance=1e-4).reasons[0] == \
        "FAIL onnx_max_abs_diff 0.00010004 over tolerance 0.0001"  # not "0.0001 over tolerance 0.0001"


def test_absolute_and_champion_thresholds() -> None:
    policy = GateSpec(min={"accuracy": 0.85}, max={"latency_p99_ms": 10}, vs_champion={"accuracy": 0.005})
    champion = {"version": "3", "metrics": {"accuracy": 0.90}}
    close = decide(evaluation({"accuracy": 0.896, "latency_p99_ms": 2.0}, champion=champion), policy,
                   onnx_tolerance=1e-4)
    assert close.passed and close.champion_version == "3"
    worse = decide(evaluation({"accuracy": 0.89, "latency_p99_ms": 12.0}, champion=champion), policy,
                   onnx_tolerance=1e-4)
    failed = [r for r in worse.reasons if r.startswith("FAIL")]
    assert not worse.passed and len(failed) == 2
    assert any("latency_p99_ms 12.0000 not <= 10" in r for r in failed)
    assert any("vs champion v3" in r for r in failed)


def test_regression_champion_comparison_uses_lower_is_better() -> None:
    champion = {"version": "1", "metrics": {"rmse": 5.0}}
    assert decide(evaluation({"rmse": 4.9}, champion=champion, task="regression"), GateSpec(),
                  onnx_tolerance=1e-4).passed
    assert not decide(evaluation({"rmse": 5.1}, champion=champion, task="regression"), GateSpec(),
                      onnx_tolerance=1e-4).passed


def test_no_champion_policy_and_unscorable_champion_fail_closed() -> None:
    assert not decide(evaluation({"accuracy": 0.9}), GateSpec(on_no_champion="reject"), onnx_tolerance=1e-4).passed
    broken = {"version": "2", "error": "DataError: model input column 'age' is missing"}
    blessing = decide(evaluation({"accuracy": 0.9, "roc_auc": 0.9}, champion=broken), GateSpec(), onnx_tolerance=1e-4)
    assert not blessing.passed and "could not be re-scored" in blessing.reasons[-1]


def test_missing_metric_fails_its_bound() -> None:
    blessing = decide(evaluation({"accuracy": 0.9}), GateSpec(min={"r2": 0.5}), onnx_tolerance=1e-4)
    assert not blessing.passed and "r2 was not measured" in " ".join(blessing.reasons)


def test_a_metric_the_window_cannot_measure_fails_closed_and_says_why() -> None:
    """A window labelled with one class only has no AUC: it was a cryptic 'roc_auc nan vs champion nan'."""
    window = {"uri": "w.csv", "rows": 60, "metrics": {"accuracy": 0.9}, "champion_metrics": {"accuracy": 0.8}}
    judged = Evaluation("classification", {"accuracy": 0.9, "roc_auc": 0.95}, {"accuracy": 0.6},
                        {"version": "2", "metrics": {"accuracy": 0.8, "roc_auc": 0.9}}, 1e-7, 1.0, 100, window)
    blessing = decide(judged, GateSpec(), onnx_tolerance=1e-4)
    assert not blessing.passed
    assert "FAIL roc_auc could not be measured on the window (60 labelled rows; one class only?), so it cannot pass" \
        in blessing.reasons


def test_multiclass_macro_scores_average_over_the_classes_the_rows_hold() -> None:
    """scikit-learn's default averages over the classes in the truth and in each model's predictions, so two
    models scored on the same rows were averaged over different classes."""
    import numpy as np
    from sklearn.metrics import precision_score

    from driftloop.components.evaluate import classification_metrics

    truth = ["a", "a", "b", "b", "c", "c"]
    outputs = np.eye(4)[[3, 0, 1, 1, 2, 1]]  # one row predicted as "d", a class no row holds
    scored = classification_metrics(truth, outputs, ["a", "b", "c", "d"])
    expected = precision_score([0, 0, 1, 1, 2, 2], [3, 0, 1, 1, 2, 1], labels=[0, 1, 2], average="macro")
    assert scored["precision"] == expected == (1 + 2 / 3 + 1) / 3
