"""Retrain safety: a candidate that beats the champion on the holdout but loses on the drifted window is refused."""

from __future__ import annotations

import pytest

from driftloop.components.evaluate import Evaluation
from driftloop.components.gate import decide
from driftloop.durations import format_duration, parse_duration
from driftloop.errors import InvalidSpec
from driftloop.spec import GateSpec, validate_spec

CHAMPION = {"version": "4", "metrics": {"accuracy": 0.80, "roc_auc": 0.85}}


def _evaluation(window: dict | None) -> Evaluation:
    return Evaluation("classification", {"accuracy": 0.82, "roc_auc": 0.86}, {"accuracy": 0.6}, CHAMPION, 1e-7, 1.0,
                      200, window)


def test_candidate_worse_on_the_window_is_declined() -> None:
    window = {"uri": "w.parquet", "rows": 300, "metrics": {"roc_auc": 0.70}, "champion_metrics": {"roc_auc": 0.74}}
    blessing = decide(_evaluation(window), GateSpec(), onnx_tolerance=1e-4)
    assert not blessing.passed
    failed = [r for r in blessing.reasons if r.startswith("FAIL")]
    assert failed == ["FAIL roc_auc 0.7000 vs champion v4 0.7400 on the window (300 rows; loss 0.0400, tolerated 0)"]
    assert any(r.startswith("PASS roc_auc 0.8600 vs champion v4") for r in blessing.reasons)  # the holdout was fine


def test_window_uses_the_same_tolerances_and_a_champion_error_fails() -> None:
    window = {"uri": "w.parquet", "rows": 300, "metrics": {"roc_auc": 0.73}, "champion_metrics": {"roc_auc": 0.74}}
    assert decide(_evaluation(window), GateSpec(vs_champion={"roc_auc": 0.02}), onnx_tolerance=1e-4).passed
    broken = {"uri": "w.parquet", "rows": 300, "metrics": {"roc_auc": 0.9}, "champion_error": "KeyError: 'plan'"}
    blessing = decide(_evaluation(broken), GateSpec(), onnx_tolerance=1e-4)
    assert not blessing.passed and "could not be scored on the window" in blessing.reasons[-1]
    assert decide(_evaluation(None), GateSpec(), onnx_tolerance=1e-4).passed  # no window: the gate as before


def test_drift_policy_in_the_spec_and_durations() -> None:
    spec = validate_spec({"data": {"path": "d.csv", "target": "y"}, "drift": {"cooldown": "30m", "correction": "fdr"}})
    assert spec.drift.cooldown == "30m" and spec.drift.p_val == 0.05 and spec.drift.retrain_data == "reference+current"
    with pytest.raises(InvalidSpec, match=r"drift.cooldown: .*'soon' is not a duration"):
        validate_spec({"data": {"path": "d.csv", "target": "y"}, "drift": {"cooldown": "soon"}})
    assert [parse_duration(t) for t in ("90", "90s", "30m", "6h", "1d", "0")] == [90, 90, 1800, 21600, 86400, 0]
    assert format_duration(21600) == "6h" and format_duration(90) == "90s"
