"""A task KFP retries (train, deploy) reopens the run its failed attempt ended, so a retry that succeeds ends FINISHED."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftloop.components.context import finish_run, start_run
from driftloop.constants import RUN_TAG_ERROR, RUN_TAG_RETRIED_ERROR, RUN_TAG_STATUS
from driftloop.errors import StorageError
from driftloop.pipelines.parameters import pipeline_arguments
from driftloop.pipelines.runtime import ERROR_MARKER, KFP_RUN_TAG, attached, close_run
from driftloop.spec import validate_spec

from ..conftest import registry_for


def test_a_retry_reopens_the_run_and_the_exit_handler_closes_it_finished(
        mlflow_uri: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "t.csv").write_text("x,y\n1,0\n2,1\n")
    spec = validate_spec({"data": {"path": str(tmp_path / "t.csv"), "target": "y"}, "tracking": {"uri": mlflow_uri},
                          "registry": {"model_name": "retried-task"}})
    arguments = pipeline_arguments(spec)
    run_id = start_run(spec, tags={KFP_RUN_TAG: "kfp-retried"}).run_id
    client = registry_for(mlflow_uri).client

    with pytest.raises(StorageError), attached(arguments, run_id, retried=True):  # attempt 1: a transient failure
        raise StorageError("s3://bucket/features: connection reset by peer")
    line = "s3://bucket/features: connection reset by peer"
    assert f"{ERROR_MARKER}{line}" in capsys.readouterr().err
    failed = client.get_run(run_id)
    assert failed.info.status == "FAILED" and failed.data.tags[RUN_TAG_ERROR] == line

    with attached(arguments, run_id, retried=True) as ctx:  # attempt 2, as KFP's retry starts it: open again
        reopened = client.get_run(run_id)
        assert reopened.info.status == "RUNNING"
        assert RUN_TAG_ERROR not in reopened.data.tags and RUN_TAG_STATUS not in reopened.data.tags
        assert reopened.data.tags[RUN_TAG_RETRIED_ERROR] == line
        ctx.tracker.log_metrics({"accuracy": 0.9})
        # the retry chose otherwise (`model: auto` under its time budget): MLflow keeps a param's first value,
        # so the retry's goes to a tag instead of failing every retry on "Changing param values is not allowed"
        ctx.tracker.log_params({"train.chosen_model": "gbm"})
        ctx.tracker.log_params({"train.chosen_model": "mlp", "train.world_size": 1})
        retried = client.get_run(run_id).data
        assert retried.params["train.chosen_model"] == "gbm" and retried.params["train.world_size"] == "1"
        assert retried.tags["driftloop.retry_param.train.chosen_model"] == "mlp"
        ctx.tracker.log_params({"train.chosen_model": "gbm", "train.world_size": 2})  # back on the first value
        again = client.get_run(run_id).data
        assert "driftloop.retry_param.train.chosen_model" not in again.tags
        assert again.tags["driftloop.retry_param.train.world_size"] == "2"
    assert f"retrying after: {line}" in capsys.readouterr().out

    # the exit handler of a pipeline whose retry succeeded: before, it found the run FAILED and left it so
    close_run(arguments, kfp_run_id="kfp-retried", state="SUCCEEDED", task="exit-handler-1")
    finished = client.get_run(run_id)
    assert finished.info.status == "FINISHED" and finished.data.tags[RUN_TAG_STATUS] == "completed"
    assert finished.data.metrics["accuracy"] == 0.9


@pytest.mark.parametrize("state", ["SUCCEEDED", "COMPLETE"])
def test_the_exit_handler_closes_a_succeeded_pipelines_run_finished_as_kfp_local_and_the_backend_say_it(
        mlflow_uri: str, tmp_path: Path, state: str) -> None:
    """kfp.local says SUCCEEDED; a KFP backend passes ML Metadata's COMPLETE (its own test pipeline asserts it):
    both are a pipeline that succeeded, whose run must end FINISHED, not FAILED."""
    (tmp_path / "t.csv").write_text("x,y\n1,0\n2,1\n")
    spec = validate_spec({"data": {"path": str(tmp_path / "t.csv"), "target": "y"}, "tracking": {"uri": mlflow_uri},
                          "registry": {"model_name": "closed-run"}})
    run_id = start_run(spec, tags={KFP_RUN_TAG: f"kfp-{state}"}).run_id
    close_run(pipeline_arguments(spec), kfp_run_id=f"kfp-{state}", state=state, task="exit-handler-1")
    closed = registry_for(mlflow_uri).client.get_run(run_id)
    assert closed.info.status == "FINISHED" and closed.data.tags[RUN_TAG_STATUS] == "completed"
    failed_id = start_run(spec, tags={KFP_RUN_TAG: f"kfp-failed-{state}"}).run_id
    close_run(pipeline_arguments(spec), kfp_run_id=f"kfp-failed-{state}", state="FAILED", task="exit-handler-1")
    failed = registry_for(mlflow_uri).client.get_run(failed_id)
    assert failed.info.status == "FAILED" and failed.data.tags[RUN_TAG_ERROR].startswith("the pipeline ended FAILED")


def test_only_tasks_with_a_retry_policy_reopen_and_an_open_run_is_left_as_it_is(mlflow_uri: str,
                                                                                   tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("x,y\n1,0\n2,1\n")
    spec = validate_spec({"data": {"path": str(tmp_path / "t.csv"), "target": "y"}, "tracking": {"uri": mlflow_uri},
                          "registry": {"model_name": "retried-task"}})
    client = registry_for(mlflow_uri).client
    ended = start_run(spec)
    finish_run(ended, "s3://bucket/t.csv: not found")
    with attached(pipeline_arguments(spec), ended.run_id) as ctx:  # a task without retries (validate, evaluate)
        assert ctx.run_id == ended.run_id and not ctx.tracker.params_may_change
    assert client.get_run(ended.run_id).info.status == "FAILED"
    run_id = start_run(spec).run_id
    with attached(pipeline_arguments(spec), run_id) as ctx:  # a task without retries: a conflict is a bug to see
        ctx.tracker.log_params({"evaluate.slices": "region"})
        with pytest.raises(Exception, match="Changing param values is not allowed"):
            ctx.tracker.log_params({"evaluate.slices": "plan"})
    # after an OOM kill the run is still RUNNING, so nothing is reopened, and the retry's params may differ
    with attached(pipeline_arguments(spec), run_id, retried=True) as ctx:
        ctx.tracker.log_params({"evaluate.slices": "plan"})
        finish_run(ctx, None)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and RUN_TAG_RETRIED_ERROR not in run.data.tags
    assert run.data.params["evaluate.slices"] == "region" and run.data.tags["driftloop.retry_param.evaluate.slices"] == "plan"


def test_the_tasks_that_reopen_are_the_tasks_kfp_retries() -> None:
    import inspect

    from driftloop.pipelines import kfp_components
    from driftloop.pipelines.pipeline import RETRIES

    reopening = {name.replace("_", "-") for name, component in vars(kfp_components).items()
                 if hasattr(component, "python_func") and "retried=True" in inspect.getsource(component.python_func)}
    assert reopening == set(RETRIES)


def test_a_retried_deploy_task_finishes_the_version_its_first_attempt_registered(mlflow_uri: str,
                                                                                  tmp_path: Path) -> None:
    """KFP retries deploy (2 retries): an attempt that registered and then died (a pod evicted after MLflow
    answered) must not leave a second version behind its retry."""
    from kfp import dsl

    from driftloop.components.gate import Blessing
    from driftloop.constants import BLESSING_FILE
    from driftloop.pipelines import kfp_components

    (tmp_path / "t.csv").write_text("x,y\n1,0\n2,1\n")
    spec = validate_spec({"data": {"path": str(tmp_path / "t.csv"), "target": "y"}, "tracking": {"uri": mlflow_uri},
                          "registry": {"model_name": "kfp-deploy-retried"}})
    arguments = pipeline_arguments(spec)
    run_id = start_run(spec, tags={KFP_RUN_TAG: "kfp-deploy"}).run_id
    blessed = tmp_path / "blessing"
    blessed.mkdir()
    Blessing(True, [], None).save(blessed / BLESSING_FILE)

    def attempt() -> str:
        return kfp_components.deploy.python_func(
            spec=arguments, run_id=run_id, table=dsl.Dataset(uri=str(tmp_path), metadata={"sha256": "f00d"}),
            features=dsl.Dataset(uri=str(tmp_path), metadata={"task": "classification"}),
            blessing=dsl.Artifact(uri=str(blessed)))

    first, retry = attempt(), attempt()
    registry = registry_for(mlflow_uri)
    versions = registry.client.search_model_versions("name='kfp-deploy-retried'")
    assert first == retry == "1" and [v.version for v in versions] == ["1"], [v.version for v in versions]
    assert registry.champion("kfp-deploy-retried").version == "1"
