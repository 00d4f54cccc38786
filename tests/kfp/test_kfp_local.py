"""`driftloop run --runner kfp-local` against the in-process runner: same spec, same data, same outcome.

One shared set of runs per outcome (module-scoped), each runner on its own registered
model so both start without a champion: a promoted run, then a weak run the gate declines.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from driftloop.example import customers

from ..conftest import S3, Cli, cli_env, registry_for

pytestmark = pytest.mark.slow

RUNNERS = ("in-process", "kfp-local")
FAST = ["--set", "train.epochs=10", "--set", "evaluate.latency_samples=20"]
WEAK = ["--set", "train.epochs=1", "--set", "train.hidden_sizes=[1]", "--set", "train.lr=0.00001"]


def model_for(runner: str) -> str:
    return f"parity-{runner}"


@pytest.fixture(scope="module")
def user(tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str, s3: S3) -> Cli:
    cwd = tmp_path_factory.mktemp("kfp-local")
    customers(rows=1200, seed=11).to_csv(cwd / "customers.csv", index=False)
    return Cli(cwd, cli_env(mlflow_uri, s3))


def run(user: Cli, runner: str, name: str, *extra: str) -> dict[str, Any]:
    proc = user("run", "--runner", runner, "--data", "customers.csv", "--target", "churned",
                "--model", model_for(runner), "--json", f"{name}-{runner}.json", *extra)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((user.cwd / f"{name}-{runner}.json").read_text())


@pytest.fixture(scope="module")
def outcomes(user: Cli) -> dict[str, dict[str, dict[str, Any]]]:
    """runner → {"promoted": result, "declined": result}, run in that order."""
    return {runner: {"promoted": run(user, runner, "promoted", *FAST), "declined": run(user, runner, "declined", *WEAK)}
            for runner in RUNNERS}


def without_numbers(reasons: list[str]) -> list[str]:
    """Gate reasons with the measured values masked: latency is timed, so it differs run to run."""
    return [re.sub(r"-?\d+(\.\d+)?(e-?\d+)?", "#", r) for r in reasons]


def test_promoted_run_reaches_the_same_gate_and_registry_outcome(outcomes: dict, mlflow_uri: str) -> None:
    local, inproc = outcomes["kfp-local"]["promoted"], outcomes["in-process"]["promoted"]
    assert set(local) == set(inproc)
    for result in (local, inproc):
        assert result["status"] == "completed" and result["deployed"] is True and result["model_version"] == "1"
        assert result["gate"]["passed"] is True
    assert without_numbers(local["gate"]["reasons"]) == without_numbers(inproc["gate"]["reasons"])
    for metric in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"):
        assert local["metrics"][metric] == pytest.approx(inproc["metrics"][metric], abs=1e-6), metric
    assert [(s["name"], s["status"]) for s in local["steps"]] == [(s["name"], s["status"]) for s in inproc["steps"]]

    registry = registry_for(mlflow_uri)
    champions = {runner: registry.champion(model_for(runner)) for runner in RUNNERS}
    assert {c.version for c in champions.values()} == {"1"}
    assert champions["kfp-local"].run_id == local["run_id"]
    lineage = [{k: v for k, v in c.tags.items() if k in ("driftloop.data_sha256", "driftloop.data_uri",
                                                          "driftloop.task", "driftloop.version")}
               for c in champions.values()]
    assert lineage[0] == lineage[1] and len(lineage[0]) == 4
    # the champion's run carries what serving, drift checks and the next validation read
    assert artifacts(registry, local["run_id"]) == artifacts(registry, inproc["run_id"])
    assert {"model/model.onnx", "reference/reference.parquet", "validation/expectations.json",
            "evaluation/blessing.json", "driftloop/spec.yaml"} <= artifacts(registry, local["run_id"])
    run = registry.client.get_run(local["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["driftloop.kfp_run_id"]


def test_declined_gate_skips_deploy_and_keeps_the_champion(outcomes: dict, mlflow_uri: str) -> None:
    local, inproc = outcomes["kfp-local"]["declined"], outcomes["in-process"]["declined"]
    for result in (local, inproc):
        assert result["status"] == "completed" and result["deployed"] is False and result["model_version"] is None
        assert result["gate"]["passed"] is False
        assert result["steps"][-1] == {"name": "deploy", "status": "skipped", "seconds": 0.0}
        assert any(r.startswith("FAIL") and "vs champion v1 " in r for r in result["gate"]["reasons"])
    assert without_numbers(local["gate"]["reasons"]) == without_numbers(inproc["gate"]["reasons"])
    registry = registry_for(mlflow_uri)
    for runner in RUNNERS:
        assert registry.champion(model_for(runner)).version == "1"
        assert [v["version"] for v in registry.versions(model_for(runner))] == ["1"]
    run = registry.client.get_run(local["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["driftloop.deployed"] == "false" and run.data.tags["driftloop.gate_passed"] == "false"


def test_bad_input_fails_with_the_same_line_and_promotes_nothing(user: Cli, outcomes: dict, mlflow_uri: str) -> None:
    lines = {}
    for runner in RUNNERS:
        proc = user("run", "--runner", runner, "--data", "customers.csv", "--target", "churn", "--model",
                    model_for(runner), "--json", f"bad-{runner}.json", "-q")
        assert proc.returncode == 1
        [lines[runner]] = proc.stderr.strip().splitlines()
        result = json.loads((user.cwd / f"bad-{runner}.json").read_text())
        assert result["status"] == "failed" and result["deployed"] is False
        run = registry_for(mlflow_uri).client.get_run(result["run_id"])
        assert run.info.status == "FAILED" and run.data.tags["driftloop.error"] == lines[runner].removeprefix("error: ")
    assert lines["kfp-local"] == lines["in-process"]
    assert lines["kfp-local"].startswith("error: customers.csv: target column 'churn' not found; did you mean 'churned'?")
    registry = registry_for(mlflow_uri)
    assert all(registry.champion(model_for(r)).version == "1" for r in RUNNERS)


def artifacts(registry: Any, run_id: str, path: str | None = None) -> set[str]:
    found: set[str] = set()
    for item in registry.client.list_artifacts(run_id, path):
        found |= artifacts(registry, run_id, item.path) if item.is_dir else {item.path}
    return found


def test_kfp_local_keeps_its_task_log(user: Cli, outcomes: dict) -> None:
    log = (user.cwd / ".driftloop" / "kfp-local" / "last-run.log").read_text()
    assert "Pipeline 'driftloop-training' finished" in log
    assert Path(user.cwd / ".driftloop" / "kfp-local").is_dir()
