"""`train.search`: an Optuna study whose trials are nested MLflow runs and whose best trial is served.

Against the real MLflow server, on small tables (the example customers, scikit-learn's wine),
with few trials and epochs so the whole file stays quick.
"""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from driftloop.console import Console
from driftloop.errors import InvalidSpec
from driftloop.example import customers
from driftloop.runner import RunResult, run_pipeline
from driftloop.spec import load_spec

from .conftest import DRIFTLOOP, registry_for

FAST = ["train.epochs=6", "evaluate.latency_samples=10", "gate.require_baseline=false"]
MLP_SEARCH = ("train.search={trials: 5, seed: 7, space: {lr: {low: 1.0e-4, high: 0.3, log: true}, "
              "hidden_sizes: {choices: [[8], [32, 16]]}, batch_size: {low: 16, high: 128}}}")


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from sklearn.datasets import load_wine

    folder = tmp_path_factory.mktemp("search")
    paths = {"customers": folder / "customers.csv", "wine": folder / "wine.csv"}
    customers(rows=400, seed=5).to_csv(paths["customers"], index=False)
    load_wine(as_frame=True).frame.to_csv(paths["wine"], index=False)
    return paths


def run(path: Path, target: str, mlflow_uri: str, tmp_path: Path, *overrides: str) -> RunResult:
    spec = load_spec(data=str(path), target=target,
                     overrides=[*FAST, f"tracking.uri={mlflow_uri}", f"output={tmp_path}",
                                f"registry.model_name=search-{tmp_path.name}", *overrides])
    result = run_pipeline(spec, console=Console(quiet=True, stream=io.StringIO()), deploy=False)
    assert result.status == "completed", result.error
    return result


def children(mlflow_uri: str, run_id: str) -> list[Any]:
    client = registry_for(mlflow_uri).client
    parent = client.get_run(run_id)
    return client.search_runs([parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{run_id}'",
                              order_by=["attributes.start_time ASC"])


def test_each_trial_is_a_nested_run_and_the_best_one_is_served(tables: dict[str, Path], mlflow_uri: str,
                                                                tmp_path: Path) -> None:
    result = run(tables["customers"], "churned", mlflow_uri, tmp_path, MLP_SEARCH)
    trials = children(mlflow_uri, str(result.run_id))
    assert len(trials) == 5
    states = {t.data.tags["search.trial"]: t.data.tags["search.state"] for t in trials}
    assert sorted(states) == ["0", "1", "2", "3", "4"] and set(states.values()) <= {"COMPLETE", "PRUNED"}
    for trial in trials:
        assert {"train.lr", "train.hidden_sizes", "train.batch_size"} <= set(trial.data.params)
        assert 1e-4 <= float(trial.data.params["train.lr"]) <= 0.3
        assert json.loads(trial.data.params["train.hidden_sizes"]) in ([8], [32, 16])
        assert trial.info.status == "FINISHED" and "val_loss" in trial.data.metrics
    done = [t for t in trials if t.data.tags["search.state"] == "COMPLETE"]
    best = min(done, key=lambda t: t.data.metrics["val_log_loss"])

    parent = registry_for(mlflow_uri).client.get_run(str(result.run_id)).data
    assert parent.metrics["search.best.val_log_loss"] == pytest.approx(best.data.metrics["val_log_loss"])
    for name in ("lr", "hidden_sizes", "batch_size"):
        assert parent.params[f"search.best.{name}"] == best.data.params[f"train.{name}"]
    assert parent.metrics["search.trials"] == 5
    assert json.loads(parent.params["train.search"])["space"]["lr"] == {"low": 1e-4, "high": 0.3, "log": True,
                                                                  "type": "float"}
    assert parent.metrics["search.pruned"] == 5 - len(done)
    # the served model is the best trial's: same early-stopping loss, and the ONNX file agrees with it
    assert parent.metrics["best_val_loss"] == pytest.approx(best.data.metrics["best_val_loss"])
    record = json.loads((tmp_path / str(result.run_id) / "train" / "train.json").read_text())
    assert record["search"]["best_trial"] == int(best.data.tags["search.trial"])
    assert record["onnx_max_abs_diff"] < 1e-4

    artifacts = {a.path for a in registry_for(mlflow_uri).client.list_artifacts(str(result.run_id), "search")}
    assert {"search/optimization_history.png", "search/search.json"} <= artifacts
    png = tmp_path / str(result.run_id) / "train" / "search" / "optimization_history.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / str(result.run_id) / "train" / "search" / "trials").exists()
    assert (tmp_path / str(result.run_id) / "train" / "checkpoints" / "best.pt").is_file()


def _study(seed: int) -> dict[str, Any]:
    """A 5-trial gbm search on wine through `train.fit_model`, with no tracker: the study's own record."""
    import tempfile

    from sklearn.datasets import load_wine

    from driftloop.components.models.base import TrainingData
    from driftloop.components.train import fit_model
    from driftloop.spec import TrainSpec

    x, y = load_wine(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order].astype(np.float32), y[order]
    data = TrainingData(x[:120], y[:120], x[120:], y[120:], task="classification", n_outputs=3)
    spec = TrainSpec.model_validate({"model": "gbm", "search": {
        "trials": 5, "seed": seed, "space": {"gbm.max_iter": {"low": 5, "high": 40},
                                             "gbm.learning_rate": {"low": 0.01, "high": 0.5, "log": True}}}})
    with tempfile.TemporaryDirectory() as out:
        fitted, _ = fit_model(data, spec=spec, out_dir=Path(out))
    return fitted.details["search"] | {"served": fitted.served_val}


def test_the_same_seed_draws_the_same_trials_and_keeps_the_same_best() -> None:
    first, again, other = _study(11), _study(11), _study(12)
    assert first["best_params"] == again["best_params"] and first["best_value"] == again["best_value"]
    assert np.array_equal(first["served"], again["served"])
    assert isinstance(first["best_params"]["gbm.max_iter"], int) and 5 <= first["best_params"]["gbm.max_iter"] <= 40
    assert first["completed"] == 5 and first["pruned"] == 0  # a scikit-learn fit reports once and is never pruned
    assert other["best_params"] != first["best_params"]


@pytest.mark.parametrize(("space", "message"), [
    ("{lrr: {low: 0.001, high: 0.1}}", r"train\.search: space\.lrr: not a hyperparameter of train\.model mlp; "
                                       r"did you mean 'lr'\?"),
    ("{lr: {low: 0.1, high: 0.001}}", r"train\.search\.space\.lr: low 0\.1 > high 0\.001"),
    ("{lr: {low: 0, high: 0.1, log: true}}", r"train\.search\.space\.lr: a log scale needs low > 0 \(got low 0\)"),
    ("{dropout: {low: 0.0, high: 1.5}}", r"space\.dropout: 1\.5 is not a valid dropout: Input should be less than 1"),
    ("{epochs: {low: 5, high: 20, type: float}}", r"space\.epochs: .* is not a valid epochs: Input should be a valid "
                                                 r"integer"),
    ("{gbm.max_iter: {low: 5, high: 9}}", r"space\.gbm\.max_iter: not a hyperparameter of train\.model mlp"),
    ("{lr: {choices: []}}", r"train\.search\.space\.lr: choices is empty"),
    ("{lr: {low: 0.1, high: 0.2, choices: [0.1]}}", r"give either choices or a range"),
    ("{seed: {low: 1, high: 3}}", r"space\.seed: seed is fixed for a search, not searched"),
])
def test_a_bad_space_is_one_line_before_anything_runs(space: str, message: str) -> None:
    with pytest.raises(InvalidSpec, match=message):
        load_spec(data="a.csv", target="y", overrides=[f"train.search={{trials: 3, space: {space}}}"])


def test_the_space_follows_the_family() -> None:
    with pytest.raises(InvalidSpec, match=r"space\.gbm\.learning_rat: .*did you mean 'gbm\.learning_rate'\?"):
        load_spec(data="a.csv", target="y", overrides=["train.model=gbm",
                                                        "train.search={space: {gbm.learning_rat: {low: 0.1, high: 1}}}"])
    with pytest.raises(InvalidSpec, match=r"train\.model auto already chooses among the families"):
        load_spec(data="a.csv", target="y", overrides=["train.model=auto", "train.search={space: {lr: {low: 0.1, high: 1}}}"])
    spec = load_spec(data="a.csv", target="y", overrides=[
        "train.model=linear", "train.search={timeout: 2m, space: {linear.C: {low: 0.01, high: 100, log: true}}}"])
    assert spec.train.search is not None and spec.train.search.trials == 20 and spec.train.search.timeout == "2m"


def test_a_search_through_the_cli(tables: dict[str, Path], mlflow_uri: str, tmp_path: Path) -> None:
    search = "train.search={trials: 3, space: {linear.C: {low: 0.01, high: 10.0, log: true}}}"
    common = ["run", "--data", str(tables["wine"]), "--target", "target", "--no-deploy", "-q",
              "--set", f"tracking.uri={mlflow_uri}", "--set", f"output={tmp_path}", "--set", "train.model=linear",
              "--set", "evaluate.latency_samples=10", "--model", f"search-cli-{tmp_path.name}"]
    proc = subprocess.run([*DRIFTLOOP, *common, "--set", search, "--json", "-"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_id = json.loads(proc.stdout)["run_id"]
    trials = children(mlflow_uri, run_id)
    assert len(trials) == 3 and all("val_log_loss" in t.data.metrics for t in trials)
    params = registry_for(mlflow_uri).client.get_run(run_id).data.params
    assert 0.01 <= float(params["search.best.linear.C"]) <= 10.0

    bad = subprocess.run([*DRIFTLOOP, *common, "--set", "train.search={space: {linear.c: {low: 1, high: 2}}}"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    lines = [line for line in bad.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "did you mean 'linear.C'?" in lines[0], bad.stderr


def test_the_median_pruner_stops_a_trial_that_trails_after_its_warm_up_epochs() -> None:
    """lr 1e-7 barely moves the MLP; once a good trial has finished, such a trial is pruned at epoch 4, after its
    three warm-up epochs (Optuna may prune at the warm-up's own step number, and epochs count from 1)."""
    import tempfile

    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    from driftloop.components.models.base import TrainingData
    from driftloop.components.train import fit_model
    from driftloop.spec import TrainSpec

    x, y = load_wine(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = StandardScaler().fit_transform(x)[order].astype(np.float32), y[order]
    data = TrainingData(x[:120], y[:120], x[120:], y[120:], task="classification", n_outputs=3)
    spec = TrainSpec.model_validate({"epochs": 8, "hidden_sizes": [8], "search": {
        "trials": 6, "seed": 2, "space": {"lr": {"choices": [0.05, 1.0e-7]}}}})
    with tempfile.TemporaryDirectory() as out:
        fitted, _ = fit_model(data, spec=spec, out_dir=Path(out))
        history = json.loads((Path(out) / "search" / "search.json").read_text())["history"]
    pruned = [t for t in history if t["state"] == "PRUNED"]
    assert pruned and all(t["params"]["lr"] == 1e-7 and t["epochs"] == 4 for t in pruned)
    assert all(t["epochs"] == 8 for t in history if t["state"] == "COMPLETE")
    assert fitted.details["search"]["best_params"] == {"lr": 0.05}


def test_an_mltrainingjob_carries_the_search_as_a_hyperparameter() -> None:
    from driftloop.operator.resource import HyperparameterError, parse_hyperparameters

    train = parse_hyperparameters({"model": "gbm", "search": "{trials: 4, space: {gbm.max_iter: {low: 10, high: 50}}}"})
    assert train.search is not None and train.search.trials == 4 and train.search.space["gbm.max_iter"].high == 50
    with pytest.raises(HyperparameterError, match=r"space\.gbm\.max_iters: .*did you mean 'gbm\.max_iter'\?"):
        parse_hyperparameters({"model": "gbm", "search": "{space: {gbm.max_iters: {low: 10, high: 50}}}"})


USER_NET = '''
from torch import nn


def build(n_features, n_outputs, task, params):
    return nn.Sequential(nn.Linear(n_features, params["width"]), nn.Tanh(), nn.Linear(params["width"], n_outputs))
'''


def test_a_user_module_searches_its_own_params(tmp_path: Path) -> None:
    """`params.<key>` reaches the user's function; the best trial's code lands where the train step logs it."""
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    from driftloop.components.models.base import TrainingData
    from driftloop.components.train import fit_model
    from driftloop.constants import TRAIN_CODE_DIR
    from driftloop.spec import TrainSpec

    (tmp_path / "net.py").write_text(USER_NET)
    x, y = load_wine(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = StandardScaler().fit_transform(x)[order].astype(np.float32), y[order]
    data = TrainingData(x[:120], y[:120], x[120:], y[120:], task="classification", n_outputs=3)
    spec = TrainSpec.model_validate({"module": f"{tmp_path / 'net.py'}:build", "params": {"width": 2}, "epochs": 4,
                                     "search": {"trials": 3, "space": {"params.width": {"choices": [4, 16]},
                                                                       "lr": {"low": 0.001, "high": 0.1, "log": True}}}})
    out = tmp_path / "out"
    out.mkdir()
    fitted, _ = fit_model(data, spec=spec, out_dir=out)
    best = fitted.details["search"]["best_params"]
    assert fitted.family == "module" and best["params.width"] in (4, 16) and 0.001 <= best["lr"] <= 0.1
    assert fitted.graph.graph.input[0].type.tensor_type.shape.dim[1].dim_value == 13
    assert (out / TRAIN_CODE_DIR / "net.py").read_text() == USER_NET
    assert (out / "checkpoints" / "best.pt").is_file() and not (out / "search" / "trials").exists()
    with pytest.raises(InvalidSpec, match=r"space\.width: not a hyperparameter of train\.module; "
                                          r"did you mean 'params\.width'\?"):
        load_spec(data="a.csv", target="y", overrides=[f"train.module={tmp_path / 'net.py'}:build",
                                                        "train.search={space: {width: {choices: [4, 16]}}}"])


def test_a_user_module_s_trial_is_pruned_not_failed_and_its_start_follows_the_seed(tmp_path: Path) -> None:
    """Optuna's TrialPruned, raised in the epoch callback inside the user's training, was reported as the user's
    code failing, and the study stopped; and the user's layers took their start from torch's global state."""
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    from driftloop.components.models.base import TrainingData
    from driftloop.components.train import fit_model
    from driftloop.spec import TrainSpec

    (tmp_path / "net.py").write_text(USER_NET)
    x, y = load_wine(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = StandardScaler().fit_transform(x)[order].astype(np.float32), y[order]
    data = TrainingData(x[:120], y[:120], x[120:], y[120:], task="classification", n_outputs=3)
    module = {"module": f"{tmp_path / 'net.py'}:build", "params": {"width": 8}, "epochs": 8}
    spec = TrainSpec.model_validate({**module, "search": {"trials": 6, "seed": 2,
                                                          "space": {"lr": {"choices": [0.05, 1.0e-7]}}}})
    (tmp_path / "search").mkdir()
    fitted, _ = fit_model(data, spec=spec, out_dir=tmp_path / "search")
    history = json.loads((tmp_path / "search" / "search" / "search.json").read_text())["history"]
    assert [t for t in history if t["state"] == "PRUNED"], [(t["state"], t.get("reason")) for t in history]
    assert fitted.details["search"]["best_params"] == {"lr": 0.05}

    def loss(seed: int, name: str) -> float:
        (tmp_path / name).mkdir()
        import torch

        torch.manual_seed(1000 + len(name))  # whatever state the process is in, train.seed decides the start
        return fit_model(data, spec=TrainSpec.model_validate({**module, "epochs": 2, "seed": seed}),
                         out_dir=tmp_path / name)[0].val_loss

    assert loss(7, "a") == loss(7, "bb") != loss(8, "ccc")


def _diabetes() -> Any:
    from sklearn.datasets import load_diabetes

    from driftloop.components.models.base import TrainingData

    x, y = load_diabetes(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    return TrainingData(x[:300], y[:300], x[300:], y[300:], task="regression", n_outputs=1,
                        y_mean=float(y[:300].mean()), y_std=float(y[:300].std()))


def test_a_diverging_trial_fails_alone_and_a_study_with_no_finished_trial_is_one_line(tmp_path: Path) -> None:
    from driftloop.components.train import fit_model
    from driftloop.errors import TrainingError
    from driftloop.spec import TrainSpec

    def search(choices: list[float], trials: int) -> TrainSpec:
        return TrainSpec.model_validate({"epochs": 3, "hidden_sizes": [8], "search": {
            "trials": trials, "seed": 1, "space": {"lr": {"choices": choices}}}})

    fitted, _ = fit_model(_diabetes(), spec=search([1.0e30, 0.01], 4), out_dir=tmp_path / "some")
    history = json.loads((tmp_path / "some" / "search" / "search.json").read_text())["history"]
    failed = [t for t in history if t["state"] == "FAIL"]
    assert failed and all(t["params"]["lr"] == 1e30 and "diverged" in t["reason"] for t in failed)
    assert fitted.details["search"]["best_params"] == {"lr": 0.01}
    with pytest.raises(TrainingError, match=r"^train\.search: none of 2 trials finished \(0 pruned, 2 failed: "
                                            r"training diverged at epoch 1"):
        fit_model(_diabetes(), spec=search([1.0e30], 2), out_dir=tmp_path / "none")


def test_a_range_takes_the_type_of_the_key_it_searches() -> None:
    """Written down when the spec loads, so KFP (which turns a struct's numbers into floats) cannot change it."""
    from driftloop.spec import TrainSpec

    mlp = load_spec(data="a.csv", target="y", overrides=[
        "train.search={space: {batch_size: {low: 16.0, high: 128.0}, weight_decay: {low: 0, high: 1}}}"]).train.search
    assert mlp is not None and mlp.space["batch_size"].type == "int" and mlp.space["weight_decay"].type == "float"
    as_kfp_carries_it = json.loads(json.dumps(mlp.model_dump(mode="json")).replace(": 16,", ": 16.0,"))
    assert TrainSpec.model_validate({"search": as_kfp_carries_it}).search == mlp
    user = TrainSpec.model_validate({"module": "net.py:build", "search": {"space": {
        "params.width": {"low": 4, "high": 64}, "params.rate": {"low": 0.1, "high": 0.5}}}}).search
    assert user is not None and user.space["params.width"].type == "int" and user.space["params.rate"].type == "float"
