"""`driftloop drift --retrain kfp` against the fake KFP v2beta1 server: one run per cooldown, staged on S3."""

from __future__ import annotations

import json

import pytest

from driftloop.spec import Spec

from ..conftest import S3
from ..kfp.conftest import FakeKfpServer, pipeline_spec_of
from .conftest import Champion

pytestmark = pytest.mark.slow

BUCKET = "drift-kfp-retrain"


def test_drift_submits_one_training_run_then_the_cooldown_holds(champion: Champion, kfp_server: FakeKfpServer,
                                                                s3: S3) -> None:
    s3.client().create_bucket(Bucket=BUCKET)
    user = champion.user

    def drift(name: str) -> dict:
        proc = user("drift", "--model", champion.name, "--current", str(champion.shifted), "--retrain", "kfp",
                    "--kfp-host", kfp_server.url, "--kfp-experiment", "churn-retrain", "--cooldown", "1h",
                    "--retrain-data", "current", "--set", f"output=s3://{BUCKET}/kfp", "--set", "train.epochs=3",
                    "--set", "validation.mostly=0.5", "--json", f"{name}.json", "-q")
        assert proc.returncode == 3, proc.stderr[-2000:]
        return json.loads((user.cwd / f"{name}.json").read_text())

    first = drift("first")
    assert first["is_drift"] and "tenure_months" in first["drifted_features"]
    assert first["retrain"]["status"] == "submitted", first["retrain"]
    [run_id] = kfp_server.runs
    assert first["retrain"]["result"]["run_id"] == run_id
    [created] = kfp_server.received("POST", "/experiments")
    assert created.body["display_name"] == "churn-retrain"
    [posted] = kfp_server.received("POST", "/runs")
    body = posted.body
    assert body["experiment_id"] == created_id(kfp_server, "churn-retrain")
    assert body["display_name"] == f"{champion.name}-drift-retrain-{first['retrain']['dedupe_key'][:8]}"
    assert pipeline_spec_of(body)["pipelineInfo"]["name"] == "driftloop-training"
    parameters = body["runtime_config"]["parameters"]
    prefix = f"s3://{BUCKET}/kfp/retrain/{first['retrain']['dedupe_key']}"
    assert parameters["data"]["path"] == f"{prefix}/retrain.parquet" and parameters["data"]["target"] == "churned"
    assert parameters["evaluate"]["window"] == f"{prefix}/window.parquet"
    assert parameters["registry"] == {"model_name": champion.name} and parameters["train"]["epochs"] == 3
    assert parameters["output"] == f"s3://{BUCKET}/kfp"
    # the run re-profiles its suite from the data it trains on, with the caller's validation overrides
    assert parameters["validation"]["reprofile"] is True and parameters["validation"]["mostly"] == 0.5
    assert body["runtime_config"]["pipeline_root"] == f"s3://{BUCKET}/kfp"
    # the run's parameters are a valid spec, and the data it names is where the cluster will read it
    Spec.model_validate({k: v for k, v in parameters.items()})
    staged = {o["Key"] for o in s3.client().list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert {f"kfp/retrain/{first['retrain']['dedupe_key']}/{f}" for f in ("retrain.parquet", "window.parquet")} <= staged

    second = drift("second")
    assert second["retrain"]["status"] == "suppressed" and second["retrain"]["dedupe_key"] == \
        first["retrain"]["dedupe_key"], second["retrain"]
    assert len(kfp_server.runs) == 1 and len(kfp_server.received("POST", "/runs")) == 1


def created_id(server: FakeKfpServer, name: str) -> str:
    [found] = [e["experiment_id"] for e in server.experiments.values() if e["display_name"] == name]
    return found
