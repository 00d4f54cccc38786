"""`driftloop run` end to end, as a user runs it, against a real MLflow server and S3 endpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from driftloop.example import customers, house_prices

from .conftest import S3, Cli, registry_for

pytestmark = pytest.mark.slow

FAST = ["--set", "train.epochs=15", "--set", "evaluate.latency_samples=50"]


def result_of(path: Path) -> dict:
    return json.loads(path.read_text())


def assert_ok(proc) -> None:
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_champion_story_gate_and_rollback(cli: Cli, mlflow_uri: str) -> None:
    customers(rows=1500).to_csv(cli.cwd / "customers.csv", index=False)
    first = cli("run", "--data", "customers.csv", "--target", "churned", "--model", "story", *FAST,
                "--json", "first.json")
    assert_ok(first)
    result = result_of(cli.cwd / "first.json")
    assert set(result) == {"status", "deployed", "gate", "metrics", "model_name", "model_version", "run_id", "steps"}
    assert result["status"] == "completed" and result["deployed"] is True and result["model_version"] == "1"
    assert [s["name"] for s in result["steps"]] == ["validate", "feature", "train", "evaluate", "gate", "deploy"]
    assert all(s["status"] == "completed" and s["seconds"] > 0 for s in result["steps"])
    assert {"accuracy", "precision", "recall", "f1", "roc_auc", "latency_p50_ms", "latency_p99_ms"} <= set(result["metrics"])
    assert result["metrics"]["roc_auc"] > 0.7
    registry = registry_for(mlflow_uri)
    champion = registry.champion("story")
    assert champion.version == "1"
    tags = champion.tags
    assert tags["driftloop.run_id"] == result["run_id"] and len(tags["driftloop.data_sha256"]) == 64
    assert tags["driftloop.data_uri"] == str((cli.cwd / "customers.csv").resolve()) and "driftloop.spec_sha256" in tags

    same = cli("run", "--data", "customers.csv", "--target", "churned", "--model", "story", *FAST, "--json", "same.json")
    assert_ok(same)  # the same data and spec: the version stands, nothing is trained or registered
    unchanged = result_of(cli.cwd / "same.json")
    assert set(unchanged) == set(result) and unchanged["status"] == "unchanged" and unchanged["deployed"] is False
    assert unchanged["model_version"] == "1" and unchanged["run_id"] == result["run_id"]
    assert unchanged["gate"]["passed"] is None and unchanged["gate"]["reasons"][0].startswith("SKIP v1 ")  # no gate ran
    assert all(s["status"] == "skipped" for s in unchanged["steps"])
    assert "v1 was trained on the same data" in same.stderr and "--force re-trains" in same.stderr
    assert [v["version"] for v in registry.versions("story")] == ["1"]
    forced = cli("run", "--data", "customers.csv", "--target", "churned", "--model", "story", *FAST, "--no-deploy",
                 "--force", "--json", "forced.json")
    assert_ok(forced)  # --force trains again (and --no-deploy keeps this story's versions as they are)
    assert result_of(cli.cwd / "forced.json")["steps"][2] == {**result_of(cli.cwd / "forced.json")["steps"][2],
                                                                  "name": "train", "status": "completed"}

    weak = cli("run", "--data", "customers.csv", "--target", "churned", "--model", "story", "--set", "train.epochs=1",
               "--set", "train.hidden_sizes=[1]", "--set", "train.lr=0.00001", "--json", "weak.json")
    assert_ok(weak)  # a declined gate is a completed run
    declined = result_of(cli.cwd / "weak.json")
    assert declined["status"] == "completed" and declined["deployed"] is False
    assert declined["gate"]["passed"] is False and declined["model_version"] is None
    assert any(r.startswith("FAIL") and "vs champion v1 " in r for r in declined["gate"]["reasons"])
    assert registry.champion("story").version == "1"
    assert [v["version"] for v in registry.versions("story")] == ["1"]
    assert declined["steps"][-1] == {"name": "deploy", "status": "skipped", "seconds": 0.0}

    again = cli("run", "--data", "customers.csv", "--target", "churned", "--model", "story", *FAST,
                "--set", "gate.vs_champion.roc_auc=0.05", "--json", "again.json")
    assert_ok(again)
    assert result_of(cli.cwd / "again.json")["model_version"] == "2"
    versions = {v["version"]: v["aliases"] for v in registry.versions("story")}
    assert versions == {"2": ["champion"], "1": ["previous"]}

    back = cli("rollback", "--model", "story")
    assert_ok(back)
    assert registry.champion("story").version == "1"
    listing = cli("models", "--model", "story", "--json", "-")
    assert_ok(listing)
    rows = json.loads(listing.stdout)["story"]
    assert {r["version"]: r["aliases"] for r in rows}["1"] == ["champion"]
    table = cli("models", "--model", "story")  # the listing is the answer: on stdout, for `| grep`
    assert_ok(table)
    assert "@champion" in table.stdout and "customers.csv" in table.stdout and table.stderr == ""
    nothing_left = cli("rollback", "--model", "story")
    assert nothing_left.returncode == 2 and "no previous champion" in nothing_left.stderr


def test_registered_onnx_predicts_raw_rows(cli: Cli, mlflow_uri: str) -> None:
    import numpy as np
    import onnxruntime as ort

    table = customers(rows=1200, seed=3)
    table.to_csv(cli.cwd / "churn.csv", index=False)
    assert_ok(cli("run", "--data", "churn.csv", "--target", "churned", *FAST))
    registry = registry_for(mlflow_uri)
    champion = registry.champion("churn")
    path = registry.download_model(champion, cli.cwd / "download")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = {i.name: i.type for i in session.get_inputs()}
    assert names["plan"] == "tensor(string)" and names["tenure_months"] == "tensor(float)"
    rows = table.head(50)
    feed = {name: (rows[name].astype(str).to_numpy(dtype=object) if kind == "tensor(string)"
                   else rows[name].to_numpy(dtype=np.float32)).reshape(-1, 1) for name, kind in names.items()}
    probabilities = session.run(None, feed)[0]
    assert probabilities.shape == (50, 2)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    accuracy = float((probabilities.argmax(axis=1) == rows["churned"].to_numpy()).mean())
    assert accuracy > max(rows["churned"].mean(), 1 - rows["churned"].mean())


def test_regression_data_set(cli: Cli, mlflow_uri: str) -> None:
    house_prices(rows=1200).to_parquet(cli.cwd / "houses.parquet", index=False)
    proc = cli("run", "--data", "houses.parquet", "--target", "price_k", *FAST, "--set", "train.epochs=40",
               "--json", "r.json")
    assert_ok(proc)
    result = result_of(cli.cwd / "r.json")
    assert result["deployed"] is True and result["model_name"] == "houses"
    assert {"rmse", "mae", "r2"} <= set(result["metrics"]) and "accuracy" not in result["metrics"]
    assert result["metrics"]["r2"] > 0.8
    assert any("rmse" in r and "naive baseline" in r for r in result["gate"]["reasons"])


def test_reads_and_writes_s3(cli: Cli, s3: S3, mlflow_uri: str) -> None:
    client = s3.client()
    client.create_bucket(Bucket="lake")
    client.put_object(Bucket="lake", Key="in/customers_s3.csv", Body=customers(rows=1000).to_csv(index=False).encode())
    scratch = cli.cwd / "tmp"
    scratch.mkdir()
    proc = cli("run", "--data", "s3://lake/in/customers_s3.csv", "--target", "churned", *FAST,
               "--set", "output=s3://lake/runs", "--json", "r.json", env_update={"TMPDIR": str(scratch)})
    assert_ok(proc)
    # the outputs went to S3 through a local scratch folder, which is gone: a loop that retrains would fill the disk
    assert not [p.name for p in scratch.iterdir() if p.name.startswith("driftloop-")]
    result = result_of(cli.cwd / "r.json")
    assert result["deployed"] is True and result["model_name"] == "customers_s3"
    keys = {o["Key"] for o in client.list_objects_v2(Bucket="lake", Prefix=f"runs/{result['run_id']}/")["Contents"]}
    prefix = f"runs/{result['run_id']}/"
    assert {prefix + "train/model.onnx", prefix + "evaluation/evaluation.json", prefix + "validation/report.md",
            prefix + "evaluation/blessing.json"} <= keys
    champion = registry_for(mlflow_uri).champion("customers_s3")
    assert champion.tags["driftloop.data_uri"] == "s3://lake/in/customers_s3.csv"
