"""KFP on real backends: IR for older 2.x releases, the data's version in the cache key, no silent SQLite in a cluster."""

# No `from __future__ import annotations`: KFP reads annotations as types.
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from driftloop.errors import StorageError, UsageError
from driftloop.pipelines.backends import Backend, parse_backend
from driftloop.pipelines.runtime import same_data_version
from driftloop.storage import fingerprint

from ..conftest import REPO, S3, Cli
from .test_compile import documents, tasks


def compiled(tmp_path: Path, *args: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    user = Cli(tmp_path, {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(tmp_path)})
    out = tmp_path / f"ir-{len(list(tmp_path.glob('ir-*')))}.yaml"
    proc = user("compile", "-o", str(out), *args)
    assert proc.returncode == 0, proc.stderr
    pipeline, platform = documents(out)
    return pipeline, platform, out.read_text(encoding="utf-8")


def secret_entries(platform: dict[str, Any]) -> list[dict[str, Any]]:
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    return [entry for executor in executors.values() for entry in executor["secretAsEnv"]]


def test_an_old_backend_gets_no_optional_secrets_and_no_final_status_handler(tmp_path: Path) -> None:
    from kfp.components import load_component_from_file

    pipeline, platform, text = compiled(tmp_path, "--target-backend", "2.3")
    assert "taskFinalStatus" not in text and "optional" not in text and "secretNameParameter" not in text
    assert all(entry["secretName"] == "driftloop-credentials" and entry["keyToEnv"] for entry in secret_entries(platform))
    by_name = tasks(pipeline)
    assert "finish-run" not in by_name and "exit-handler-1" not in text
    # The run is closed after deploy, or when the gate did not pass: one end-run in each branch.
    assert {"end-run", "end-run-2"} <= set(by_name)
    assert by_name["end-run"]["dependentTasks"] == ["deploy"]
    conditions = [t.get("triggerPolicy", {}).get("condition", "") for t in by_name.values()]
    assert any(c.startswith("!(") and "evaluate-Output" in c for c in conditions), conditions
    assert text.startswith("# PIPELINE DEFINITION\n# Name: driftloop-training")
    assert load_component_from_file(str(tmp_path / "ir-0.yaml")).name == "driftloop-training"


def test_each_feature_appears_from_the_release_that_takes_it(tmp_path: Path) -> None:
    _, platform_214, text_214 = compiled(tmp_path, "--target-backend", "2.14.1")
    assert "taskFinalStatus" in text_214 and "optional" not in text_214
    _, platform_latest, latest = compiled(tmp_path)
    _, _, text_215 = compiled(tmp_path, "--target-backend", "2.15")
    assert text_215 == latest == (REPO / "pipelines" / "driftloop_pipeline.yaml").read_text(encoding="utf-8")
    assert all(entry["optional"] is True for entry in secret_entries(platform_latest))
    assert parse_backend("latest") == Backend() and parse_backend("2.0") == Backend((2, 0))


def test_the_drift_pipeline_compiles_for_an_old_backend(tmp_path: Path) -> None:
    pipeline, _, text = compiled(tmp_path, "--pipeline", "drift-then-retrain", "--target-backend", "2.0")
    assert "taskFinalStatus" not in text and "optional" not in text
    assert {"drift", "open-run", "end-run", "end-run-2"} <= set(tasks(pipeline))


@pytest.mark.parametrize("version", ["1.8", "two", "3.0", ""])
def test_a_bad_backend_version_is_one_line(tmp_path: Path, version: str) -> None:
    user = Cli(tmp_path, {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(tmp_path)})
    proc = user("compile", "-o", "x.yaml", "--target-backend", version)
    assert proc.returncode != 0 and not (tmp_path / "x.yaml").exists()
    assert "Traceback" not in proc.stderr and "expected a KFP 2.x backend release" in proc.stderr.strip().splitlines()[-1]
    with pytest.raises(UsageError):
        parse_backend(version)


# -- the cache key holds the data's version ----------------------------------------------------------------------

def test_validate_takes_the_data_version_that_open_run_read(tmp_path: Path) -> None:
    pipeline, _, _ = compiled(tmp_path)
    validate = tasks(pipeline)["validate"]["inputs"]["parameters"]["data_version"]
    assert validate["taskOutputParameter"] == {"outputParameterKey": "data_version", "producerTask": "open-run"}
    outputs = pipeline["components"]["comp-open-run"]["outputDefinitions"]["parameters"]
    assert outputs["data_version"]["parameterType"] == "STRING"


def test_an_overwritten_local_table_has_another_version(tmp_path: Path) -> None:
    table = tmp_path / "churn.csv"
    table.write_text("a,b\n1,2\n")
    first = fingerprint(str(table))
    assert first.startswith("sha256:") and fingerprint(str(table)) == first
    same_data_version(str(table), first)  # unchanged: passes
    table.write_text("a,b\n1,3\n")
    assert fingerprint(str(table)) != first
    with pytest.raises(StorageError) as caught:
        same_data_version(str(table), first)
    assert str(table) in str(caught.value) and "changed during this run" in str(caught.value)
    with pytest.raises(StorageError, match="file not found"):
        fingerprint(str(tmp_path / "missing.csv"))


def test_an_overwritten_s3_object_has_another_version(s3: S3, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    client = s3.client()
    client.create_bucket(Bucket="versions")
    client.put_object(Bucket="versions", Key="churn.csv", Body=b"a,b\n1,2\n")
    first = fingerprint("s3://versions/churn.csv")
    assert first.startswith("etag:") and fingerprint("s3://versions/churn.csv") == first
    client.put_object(Bucket="versions", Key="churn.csv", Body=b"a,b\n1,3\n")  # same URI, new content
    assert fingerprint("s3://versions/churn.csv") != first
    with pytest.raises(StorageError, match=r"s3://versions/gone.csv: cannot read S3 object"):
        fingerprint("s3://versions/gone.csv")


# -- in a cluster, no tracking URI is an error naming the Secret ------------------------------------------------

def test_every_task_knows_its_credentials_secret(tmp_path: Path) -> None:
    pipeline, _, _ = compiled(tmp_path, "--secret", "team-a-mlflow")
    executors = pipeline["deploymentSpec"]["executors"]
    for name, executor in executors.items():
        env = {item["name"]: item["value"] for item in executor["container"].get("env", [])}
        assert env.get("DRIFTLOOP_CREDENTIALS_SECRET") == "team-a-mlflow", name


def test_the_deploy_task_gets_the_admin_token_its_reload_calls_send(tmp_path: Path) -> None:
    """`serving.reload_urls` against a `driftloop serve --admin-token`: without the token the reload is a 401 and
    serving stays on the old version until its next poll."""
    _, platform, _ = compiled(tmp_path)
    deploy = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-deploy"]
    keys = {pair["envVar"] for entry in deploy["secretAsEnv"] for pair in entry["keyToEnv"]}
    assert "DRIFTLOOP_ADMIN_TOKEN" in keys and "MLFLOW_TRACKING_URI" in keys


def test_a_task_in_a_cluster_without_a_tracking_uri_fails_naming_the_secret(tmp_path: Path) -> None:
    """The open-run task's own function, run as its pod would: in a cluster, no MLFLOW_TRACKING_URI."""
    table = tmp_path / "churn.csv"
    table.write_text("a,churned\n1,0\n2,1\n")
    code = (
        "import json, sys\n"
        "from driftloop.pipelines import kfp_components as ops\n"
        "sections = json.loads(sys.argv[1])\n"
        "ops.open_run.python_func(**sections, kfp_run_id='run-1')\n"
    )
    from driftloop.pipelines.parameters import pipeline_arguments
    from driftloop.spec import Spec

    arguments = pipeline_arguments(Spec.model_validate({"data": {"path": str(table), "target": "churned"}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "KUBERNETES_"))}
    env |= {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "DRIFTLOOP_CREDENTIALS_SECRET": "team-a-mlflow",
            "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(arguments)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    [line] = [line for line in proc.stderr.splitlines() if line.startswith("driftloop-error: ")]
    assert "no MLflow tracking URI in this pod" in line and "'team-a-mlflow'" in line, proc.stderr
    assert not (tmp_path / ".driftloop").exists()  # no pod-local SQLite store was made

    # Outside a cluster the local store is still the default.
    outside = {k: v for k, v in env.items() if k != "KUBERNETES_SERVICE_HOST"}
    done = subprocess.run([sys.executable, "-c", code, json.dumps(arguments)], cwd=tmp_path, env=outside,
                          capture_output=True, text=True, timeout=300)
    assert "no MLflow tracking URI" not in done.stderr and (tmp_path / ".driftloop" / "mlflow.db").exists(), done.stderr
