"""`driftloop submit` and `submit_pipeline` against the fake KFP v2beta1 server: what it receives, how it fails."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from driftloop.errors import PipelineServiceError
from driftloop.pipelines.submit import SubmitResult, submit_pipeline
from driftloop.spec import Spec, load_spec

from ..conftest import REPO, Cli, free_port
from .conftest import FakeKfpServer, pipeline_spec_of, platform_spec_of

SPEC = {"data": {"path": "s3://lake/churn.csv", "target": "churned"}, "train": {"epochs": 7},
        "tracking": {"uri": "http://mlflow.mlops:5000"}}


@pytest.fixture
def user(tmp_path: Path) -> Cli:
    (tmp_path / "driftloop.yaml").write_text(json.dumps(SPEC), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KF_PIPELINES", "DRIFTLOOP_IMAGE"))}
    return Cli(tmp_path, env | {"PYTHONPATH": str(REPO)})


def test_submit_creates_the_experiment_and_sends_spec_and_parameters(kfp_server: FakeKfpServer) -> None:
    spec = Spec.model_validate(SPEC)
    result = submit_pipeline(spec, host=kfp_server.url, experiment="churn", run_name="nightly", namespace="team-a")
    assert isinstance(result, SubmitResult) and result.state == "PENDING"
    assert result.url == f"{kfp_server.url}/#/runs/details/{result.run_id}"
    [created] = kfp_server.received("POST", "/experiments")
    assert created.body["display_name"] == "churn" and created.body["namespace"] == "team-a"
    assert result.experiment_id == next(iter(kfp_server.experiments))
    [posted] = kfp_server.received("POST", "/runs")
    body = posted.body
    assert body["display_name"] == "nightly" and body["experiment_id"] == result.experiment_id
    pipeline = pipeline_spec_of(body)
    assert pipeline["pipelineInfo"]["name"] == "driftloop-training"
    assert set(pipeline["root"]["inputDefinitions"]["parameters"]) == set(Spec.model_fields)
    executors = platform_spec_of(body)["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert all(e["secretAsEnv"][0]["secretName"] == "driftloop-credentials" for e in executors.values())
    parameters = body["runtime_config"]["parameters"]
    assert parameters["data"] == {"path": "s3://lake/churn.csv", "target": "churned", "task": "auto", "format": "auto",
                                  "drop_missing_target": True, "read": {}}  # unset keys (None) are not sent
    assert parameters["train"]["epochs"] == 7 and parameters["tracking"] == {"uri": "http://mlflow.mlops:5000"}
    assert parameters["output"] == "" and "pipelineRoot" not in body["runtime_config"]
    # what was sent validates back into the same spec
    assert Spec.model_validate({k: v for k, v in parameters.items() if k != "output"}) == spec


def test_existing_experiment_is_reused_and_wait_follows_to_the_final_state(kfp_server: FakeKfpServer) -> None:
    experiment_id = kfp_server.add_experiment("churn")
    kfp_server.polls_until_final = 2
    result = submit_pipeline(Spec.model_validate(SPEC), host=kfp_server.url, experiment="churn", wait=True, poll_s=0.01)
    assert kfp_server.received("POST", "/experiments") == []
    assert result.experiment_id == experiment_id and result.state == "SUCCEEDED"
    assert len(kfp_server.received("GET", f"/runs/{result.run_id}")) == 3


def test_cli_wait_exits_with_the_runs_final_state(user: Cli, kfp_server: FakeKfpServer) -> None:
    kfp_server.final_state = "FAILED"
    proc = user("submit", "--host", kfp_server.url, "--spec", "driftloop.yaml", "--wait", "--json", "out.json",
                "--set", "train.epochs=3", "--poll-interval", "0.05", "--set", "output=s3://lake/kfp")
    assert proc.returncode == 1, proc.stderr
    assert "ended FAILED" in proc.stderr.splitlines()[-1]
    out = json.loads((user.cwd / "out.json").read_text())
    assert out["state"] == "FAILED" and out["run_id"] in kfp_server.runs
    [posted] = kfp_server.received("POST", "/runs")
    assert posted.body["runtime_config"]["parameters"]["train"]["epochs"] == 3
    assert posted.body["runtime_config"]["pipeline_root"] == "s3://lake/kfp"
    assert posted.body["display_name"].startswith("churn-")  # the default run name: model and time
    assert kfp_server.experiments[out["experiment_id"]]["display_name"] == "churn"  # default: the model name

    kfp_server.final_state = "SUCCEEDED"
    ok = user("submit", "--host", kfp_server.url, "--experiment", "churn", "--spec", "driftloop.yaml", "--wait",
              "--poll-interval", "0.05")
    assert ok.returncode == 0, ok.stderr
    assert "SUCCEEDED" in ok.stderr


def test_token_from_flag_or_service_account_file(user: Cli, kfp_server: FakeKfpServer) -> None:
    kfp_server.token = "s3cret"
    proc = user("submit", "--host", kfp_server.url, "--experiment", "x", "--spec", "driftloop.yaml", "--token", "s3cret")
    assert proc.returncode == 0, proc.stderr
    (user.cwd / "token").write_text("s3cret\n")
    user.env["KF_PIPELINES_SA_TOKEN_PATH"] = str(user.cwd / "token")
    proc = user("submit", "--host", kfp_server.url, "--experiment", "x", "--spec", "driftloop.yaml")
    assert proc.returncode == 0, proc.stderr
    assert {r.headers["authorization"] for r in kfp_server.requests} == {"Bearer s3cret"}
    assert len(kfp_server.runs) == 2


def test_rejected_token_is_one_line(user: Cli, kfp_server: FakeKfpServer) -> None:
    kfp_server.token = "right"
    proc = user("submit", "--host", kfp_server.url, "--experiment", "x", "--spec", "driftloop.yaml", "--token", "wrong")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: KFP endpoint {kfp_server.url} rejected the credentials (HTTP 401); "
        "check --token or $KF_PIPELINES_SA_TOKEN_PATH"]
    assert kfp_server.runs == {}


def test_unreachable_host_is_one_line(user: Cli) -> None:
    host = f"http://127.0.0.1:{free_port()}"
    proc = user("submit", "--host", host, "--experiment", "x", "--spec", "driftloop.yaml")
    assert proc.returncode == 1
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: KFP endpoint unreachable at {host}: ")


@pytest.mark.parametrize(("args", "message"), [
    (["--param", "trian={\"epochs\": 3}"], "error: --param trian: unknown pipeline parameter; did you mean 'train'?"),
    (["--param", "train={\"epochs\": \"many\"}"], "error: --param: train.epochs: Input should be a valid integer"),
    (["--set", "train.epoch=3"], "error: --set train.epoch: unknown key; did you mean 'epochs'?"),
    (["--set", "gate.min.roc_auc=.inf"], "error: gate.min.roc_auc: inf cannot be a KFP parameter"),
])
def test_bad_parameters_are_rejected_before_contact(user: Cli, kfp_server: FakeKfpServer, args: list[str],
                                                    message: str) -> None:
    proc = user("submit", "--host", kfp_server.url, "--experiment", "x", "--spec", "driftloop.yaml", *args)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(message)
    assert kfp_server.requests == []


def test_endpoint_rejection_names_the_api_message(kfp_server: FakeKfpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_spec(None, data="churn.csv", target="churned")
    kfp_server.answer = lambda *a: (400, {"code": 3, "message": "pipeline spec is invalid: no root"})  # type: ignore[method-assign]
    with pytest.raises(PipelineServiceError, match=r"refused the request \(HTTP 400\): pipeline spec is invalid"):
        submit_pipeline(spec, host=kfp_server.url, experiment="x")


def test_submit_to_an_older_backend_sends_ir_it_takes(user: Cli, kfp_server: FakeKfpServer) -> None:
    proc = user("submit", "--host", kfp_server.url, "--spec", "driftloop.yaml", "--target-backend", "2.3")
    assert proc.returncode == 0, proc.stderr
    [posted] = kfp_server.received("POST", "/runs")
    pipeline, platform = pipeline_spec_of(posted.body), platform_spec_of(posted.body)
    assert "taskFinalStatus" not in json.dumps(pipeline) and "comp-end-run" in pipeline["components"]
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert all(set(e["secretAsEnv"][0]) == {"keyToEnv", "secretName"} for e in executors.values())
