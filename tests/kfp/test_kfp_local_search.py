"""`train.search` under `--runner kfp-local`: the spec travels as KFP parameters and the KFP train task
runs the same study, its trials nested under the run the task logs to."""

from __future__ import annotations

import json

import pytest

from driftloop.example import customers

from ..conftest import S3, Cli, cli_env, registry_for

pytestmark = pytest.mark.slow


def test_the_kfp_train_task_runs_the_search(tmp_path, mlflow_uri: str, s3: S3) -> None:
    user = Cli(tmp_path, cli_env(mlflow_uri, s3))
    customers(rows=400, seed=5).to_csv(tmp_path / "customers.csv", index=False)
    proc = user("run", "--runner", "kfp-local", "--data", "customers.csv", "--target", "churned",
                "--model", "search-kfp-local", "--json", "out.json",
                "--set", "train.model=linear", "--set", "evaluate.latency_samples=10",
                "--set", "train.search={trials: 3, seed: 3, space: {linear.C: {low: 0.01, high: 10.0, log: true}, "
                "linear.max_iter: {low: 100, high: 500}}}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_id = json.loads((tmp_path / "out.json").read_text())["run_id"]
    client = registry_for(mlflow_uri).client
    parent = client.get_run(run_id)
    trials = client.search_runs([parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{run_id}'")
    assert len(trials) == 3 and {t.data.tags["search.state"] for t in trials} == {"COMPLETE"}
    best = min(trials, key=lambda t: t.data.metrics["val_log_loss"])
    assert parent.data.params["search.best.linear.C"] == best.data.params["train.linear.C"]
    assert "search/optimization_history.png" in {a.path for a in client.list_artifacts(run_id, "search")}
    # KFP carries a struct's numbers as floats; the range's type, written when the spec loaded, keeps it an int
    assert all(t.data.params["train.linear.max_iter"].isdigit() for t in trials)
