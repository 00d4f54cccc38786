"""`train.model`: each family trains, exports one ONNX file within parity, and the run records it.

Through the in-process runner against the real MLflow server, on small tables: the example
customers (binary, with categories), scikit-learn's wine (3 classes) and diabetes (regression).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from driftloop.console import Console
from driftloop.example import customers
from driftloop.onnx_model import OnnxModel
from driftloop.runner import RunResult, run_pipeline
from driftloop.spec import load_spec

from .conftest import registry_for

FAST = ["train.epochs=5", "evaluate.latency_samples=10", "gate.require_baseline=false", "train.gbm.max_iter=30"]


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from sklearn.datasets import load_diabetes, load_wine

    folder = tmp_path_factory.mktemp("families")
    paths = {"customers": folder / "customers.csv", "wine": folder / "wine.csv", "diabetes": folder / "diabetes.csv"}
    customers(rows=600, seed=3).to_csv(paths["customers"], index=False)
    load_wine(as_frame=True).frame.to_csv(paths["wine"], index=False)
    load_diabetes(as_frame=True, scaled=False).frame.to_csv(paths["diabetes"], index=False)
    return paths


TARGETS = {"customers": "churned", "wine": "target", "diabetes": "target"}


def run(tables: dict[str, Path], table: str, mlflow_uri: str, tmp_path: Path, *overrides: str) -> RunResult:
    spec = load_spec(data=str(tables[table]), target=TARGETS[table],
                     overrides=[*FAST, f"tracking.uri={mlflow_uri}", f"output={tmp_path}",
                                f"registry.model_name=families-{table}-{tmp_path.name}", *overrides])
    result = run_pipeline(spec, console=Console(quiet=True, stream=io.StringIO()), deploy=False)
    assert result.status == "completed", result.error
    return result


def train_record(tmp_path: Path, result: RunResult) -> dict[str, Any]:
    return json.loads((tmp_path / str(result.run_id) / "train" / "train.json").read_text())


@pytest.mark.parametrize(("table", "family"), [("customers", "gbm"), ("customers", "linear"), ("wine", "gbm"),
                                               ("wine", "linear"), ("diabetes", "gbm"), ("diabetes", "linear")])
def test_sklearn_family_serves_one_onnx_file_within_parity(tables: dict[str, Path], mlflow_uri: str, tmp_path: Path,
                                                           table: str, family: str) -> None:
    result = run(tables, table, mlflow_uri, tmp_path, f"train.model={family}")
    record = train_record(tmp_path, result)
    assert record["model"] == family and record["onnx_max_abs_diff"] < 1e-4
    assert result.gate["passed"], result.gate["reasons"]
    model = OnnxModel(tmp_path / str(result.run_id) / "train" / "model.onnx")
    # what serving, drift and rollback read is unchanged: one input per raw column, one named output
    assert [i.name for i in model.session.get_inputs()] == [model.input_names[c] for c in model.columns]
    assert model.output == ("prediction" if table == "diabetes" else "probabilities")
    rows = pd.read_csv(tables[table]).head(5)
    output = model.run(rows)
    if table == "diabetes":
        assert model.task == "regression" and output.shape == (5,)
    else:
        assert model.task == "classification" and np.allclose(output.sum(axis=1), 1, atol=1e-5)
        assert output.shape == (5, len(model.classes or []))
    run_data = registry_for(mlflow_uri).client.get_run(result.run_id).data
    assert run_data.params["train.model"] == family and run_data.params["train.chosen_model"] == family
    knob = "train.gbm.max_iter" if family == "gbm" else ("train.linear.alpha" if table == "diabetes" else "train.linear.C")
    assert knob in run_data.params and "train.hidden_sizes" not in run_data.params


def test_auto_keeps_the_best_candidate_and_records_every_one(tables: dict[str, Path], mlflow_uri: str,
                                                              tmp_path: Path) -> None:
    result = run(tables, "wine", mlflow_uri, tmp_path, "train.model=auto", "train.budget=10m")
    record = train_record(tmp_path, result)
    search = record["auto"]
    assert search["metric"] == "log_loss" and set(search["scores"]) == {"linear", "gbm", "mlp"}
    assert search["skipped"] == []
    best = min(search["scores"], key=search["scores"].get)
    assert search["chosen"] == best == record["model"]
    run_data = registry_for(mlflow_uri).client.get_run(result.run_id).data
    assert run_data.params["train.chosen_model"] == best and run_data.tags["train.chosen_model"] == best
    for family, score in search["scores"].items():
        assert run_data.metrics[f"candidate.{family}.val_log_loss"] == pytest.approx(score)
    assert record["onnx_max_abs_diff"] < 1e-4
    # and the run's summary says it
    from driftloop.cli import _summary

    assert result.trained_model == best and result.candidates == pytest.approx(search["scores"])
    shown = io.StringIO()
    _summary(Console(stream=shown), result)
    assert "train.model auto: validation log_loss" in shown.getvalue()
    assert [line.split()[0] for line in shown.getvalue().splitlines() if line.rstrip().endswith(" yes")] == [best]


def test_class_weight_balanced_reaches_every_family(tables: dict[str, Path], mlflow_uri: str, tmp_path: Path) -> None:
    from driftloop.components.models.mlp import _loss
    from driftloop.components.models.sklearn_family import gbm_estimator, linear_estimator
    from driftloop.spec import TrainSpec

    spec = TrainSpec(class_weight="balanced")
    assert gbm_estimator(spec, "classification").class_weight == "balanced"
    assert linear_estimator(spec, "classification").class_weight == "balanced"
    weights = _loss(spec, "classification", np.array([0, 0, 0, 1]), 2, "cpu").weight
    assert weights is not None and weights.tolist() == pytest.approx([4 / 6, 2.0])  # n / (classes * count)
    result = run(tables, "customers", mlflow_uri, tmp_path, "train.class_weight=balanced")
    run_data = registry_for(mlflow_uri).client.get_run(result.run_id).data
    assert run_data.params["train.class_weight"] == "balanced"


def test_auto_skips_what_the_budget_cannot_start() -> None:
    from driftloop.components.models.auto import choose
    from driftloop.components.models.base import FittedModel, TrainingData
    from driftloop.spec import TrainSpec

    data = TrainingData(np.zeros((4, 1), np.float32), np.array([0, 1, 0, 1]), np.zeros((2, 1), np.float32),
                        np.array([0, 1]), task="classification", n_outputs=2)
    ticks = iter([0.0, 1.0, 2.0, 3.0, 30.0, 31.0])  # linear runs 1-2 s, gbm 3-30 s of a 30 s budget; mlp is too late

    def fit_family(family: str, deadline: float | None) -> FittedModel:
        assert deadline == 30.0
        return FittedModel(family, graph=None, served_val=np.full((2, 2), 0.5), val_loss=0.7)

    best, search = choose(data, spec=TrainSpec(budget="30s"), fit_family=fit_family, clock=lambda: next(ticks))
    assert best.family == "linear" and search.skipped == ["mlp"] and set(search.scores) == {"linear", "gbm"}


def test_family_hyperparameters_are_strict() -> None:
    from driftloop.errors import InvalidSpec

    with pytest.raises(InvalidSpec, match=r"train\.gbm\.max_iters: unknown key; did you mean 'max_iter'\?"):
        load_spec(data="a.csv", target="y", overrides=["train.gbm.max_iters=3"])
    with pytest.raises(InvalidSpec, match=r"train\.model: .*'mlp', 'gbm', 'linear' or 'auto'"):
        load_spec(data="a.csv", target="y", overrides=["train.model=xgb"])
    with pytest.raises(InvalidSpec, match=r"train\.budget: 'soon' is not a duration"):
        load_spec(data="a.csv", target="y", overrides=["train.budget=soon"])
    assert load_spec(data="a.csv", target="y", overrides=["train.linear.C=0.5"]).train.linear.C == 0.5


def test_the_mlp_stops_at_autos_deadline_after_one_epoch() -> None:
    from driftloop.components.models.mlp import fit
    from driftloop.spec import TrainSpec

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    spent = fit(x, y, x, y, spec=TrainSpec(epochs=20, device="cpu"), task="classification", n_outputs=2, deadline=0.0)
    assert spent.out_of_time and len(spent.history) == 1
    free = fit(x, y, x, y, spec=TrainSpec(epochs=3, device="cpu"), task="classification", n_outputs=2)
    assert not free.out_of_time and len(free.history) == 3
