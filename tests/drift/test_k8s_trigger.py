"""`--retrain k8s` against kmock's Kubernetes emulator with the real `kubernetes` client, from real processes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from driftloop.example import DriftKnobs, customers

from ..conftest import DRIFTLOOP, S3, cli_env
from .conftest import Emulator

pytestmark = pytest.mark.slow


def _tables(cwd: Path) -> None:
    customers(rows=800, seed=1).to_csv(cwd / "ref.csv", index=False)
    customers(rows=800, seed=2, drift=DriftKnobs(mean_shift={"tenure_months": 0.8})).to_csv(cwd / "live.csv", index=False)
    customers(rows=800, seed=3, drift=DriftKnobs(mean_shift={"tenure_months": 0.8})).to_csv(cwd / "live2.csv",
                                                                                           index=False)


def _drift(cwd: Path, env: dict[str, str], job: str, current: str, name: str, cooldown: str = "1h") -> subprocess.Popen:
    return subprocess.Popen([*DRIFTLOOP, "drift", "--reference", "ref.csv", "--current", current, "--target", "churned",
                             "--retrain", "k8s", "--k8s-job", job, "--namespace", "ml", "--cooldown", cooldown,
                             "--json", f"{name}.json", "-q"], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_concurrent_k8s_triggers_patch_the_training_job_once(tmp_path: Path, mlflow_uri: str, s3: S3,
                                                              k8s: Emulator) -> None:
    _tables(tmp_path)
    env = cli_env(mlflow_uri, s3) | {"KUBECONFIG": str(k8s.kubeconfig)}
    k8s.put_job("ml", "churn", spec={"modelType": "mlp", "dataSource": {"uri": "s3://lake/churn/latest.csv"}},
                status={"phase": "Succeeded", "observedGeneration": 1})
    storm = [_drift(tmp_path, env, "churn", "live.csv", f"r{i}") for i in range(4)]
    for proc in storm:
        proc.wait(timeout=600)
        assert proc.returncode == 3, proc.stderr.read()[-2000:]
    results = [json.loads((tmp_path / f"r{i}.json").read_text())["retrain"] for i in range(4)]
    submitted = [r for r in results if r["status"] == "submitted"]
    assert len(submitted) == 1, [r.get("reason") for r in results]
    assert all(r["status"] == "suppressed" for r in results if r is not submitted[0])
    patches = k8s.requests("PATCH", "churn")
    assert len(patches) == 1
    key = submitted[0]["dedupe_key"]
    token = f"drift-{key}-{submitted[0]['claim']['sequence']}"
    assert patches[0].data["spec"] == {"retrainToken": token}
    assert patches[0].headers["Content-Type"] == "application/merge-patch+json"
    job = k8s.job("ml", "churn")
    assert job["spec"]["retrainToken"] == token and job["spec"]["modelType"] == "mlp"
    assert job["metadata"]["annotations"]["driftloop.io/retrain-dedupe-key"] == submitted[0]["dedupe_key"]

    # new drifted data within the cooldown: drift reported, nothing patched
    later = _drift(tmp_path, env, "churn", "live2.csv", "later")
    later.wait(timeout=600)
    assert later.returncode == 3
    retrain = json.loads((tmp_path / "later.json").read_text())["retrain"]
    assert retrain["status"] == "suppressed" and retrain["reason"].startswith("cooldown: retrain #1")
    assert len(k8s.requests("PATCH", "churn")) == 1

    def check(name: str) -> dict:
        proc = _drift(tmp_path, env, "churn", "live.csv", name, cooldown="0")
        proc.wait(timeout=600)
        assert proc.returncode == 3, proc.stderr.read()[-2000:]
        return json.loads((tmp_path / f"{name}.json").read_text())["retrain"]

    # the same drift again, its generation not failed: it was acted on
    again = check("again")
    assert again["status"] == "suppressed" and again["reason"].startswith("duplicate: retrain #1 (submitted)")
    # the generation the patch started failed: that drift is no longer held, and a new token retrains it
    generation = submitted[0]["result"]["generation"]
    assert generation == k8s.job("ml", "churn")["metadata"]["generation"]  # (the emulator does not count them)
    k8s.set_status("ml", "churn", {"phase": "Failed", "observedGeneration": generation,
                                   "message": "BadData: column 'plan' is entirely null"})
    retried = check("retried")
    assert retried["status"] == "submitted" and retried["dedupe_key"] == key, retried.get("reason")
    patches = k8s.requests("PATCH", "churn")
    assert len(patches) == 2 and patches[1].data["spec"] == {"retrainToken": f"drift-{key}-{retried['claim']['sequence']}"}
    from mlflow import MlflowClient

    claims = {e.tags["driftloop.claim.sequence"]: e.tags for e in MlflowClient(mlflow_uri).search_experiments(
        filter_string="name LIKE 'driftloop-retrain/%'") if e.tags.get("driftloop.dedupe_key") == key}
    first = claims[str(submitted[0]["claim"]["sequence"])]
    assert first["driftloop.claim.state"] == "failed"
    assert first["driftloop.claim.outcome"] == (f"MLTrainingJob ml/churn generation {generation} failed: BadData: "
                                                "column 'plan' is entirely null")


def test_a_job_already_training_suppresses_the_trigger(tmp_path: Path, mlflow_uri: str, s3: S3,
                                                       k8s: Emulator) -> None:
    _tables(tmp_path)
    env = cli_env(mlflow_uri, s3) | {"KUBECONFIG": str(k8s.kubeconfig)}
    k8s.put_job("ml", "busy", spec={"modelType": "mlp"}, status={"phase": "Running", "observedGeneration": 1})
    proc = _drift(tmp_path, env, "busy", "live.csv", "busy")
    proc.wait(timeout=600)
    assert proc.returncode == 3, proc.stderr.read()
    retrain = json.loads((tmp_path / "busy.json").read_text())["retrain"]
    assert retrain["status"] == "suppressed" and "MLTrainingJob ml/busy is Running" in retrain["reason"]
    assert k8s.requests("PATCH", "busy") == [] and "claim" not in retrain  # no cooldown spent on it

    missing = _drift(tmp_path, env, "nope", "live.csv", "nope")
    missing.wait(timeout=600)
    err = missing.stderr.read()
    assert missing.returncode == 1 and err.strip().splitlines()[-1] == "error: MLTrainingJob ml/nope not found"
