"""The compiled drift-then-retrain pipeline: committed and deterministic, loadable by KFP, drift gating a sub-pipeline."""

from __future__ import annotations

from pathlib import Path

from driftloop.pipelines.compile import compile_pipeline
from driftloop.pipelines.drift_pipeline import CHECK_PARAMETERS, drift_pipeline_defaults
from driftloop.spec import Spec, load_spec, validate_spec

from ..conftest import REPO, Cli
from ..kfp.test_compile import documents, tasks

COMMITTED_DRIFT_PIPELINE = REPO / "pipelines" / "drift_then_retrain.yaml"


def test_cli_compile_reproduces_the_committed_file(tmp_path: Path) -> None:
    user = Cli(tmp_path, {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(tmp_path)})
    proc = user("compile", "--pipeline", "drift-then-retrain", "-o", "fresh.yaml")
    assert proc.returncode == 0, proc.stderr
    fresh = (tmp_path / "fresh.yaml").read_text(encoding="utf-8")
    assert fresh == COMMITTED_DRIFT_PIPELINE.read_text(encoding="utf-8"), "pipeline graph changed: run `make compile`"


def test_loads_back_with_kfps_loader_and_drift_gates_the_training_sub_pipeline() -> None:
    from kfp import components

    loaded = components.load_component_from_file(str(COMMITTED_DRIFT_PIPELINE))
    assert loaded.name == "driftloop-drift-then-retrain"
    assert set(loaded.component_spec.inputs) == set(Spec.model_fields) | set(CHECK_PARAMETERS)

    pipeline, platform = documents(COMMITTED_DRIFT_PIPELINE)
    root = pipeline["root"]["dag"]["tasks"]
    assert set(root) == {"drift", "condition-1"}
    gate = root["condition-1"]
    assert gate["taskInfo"]["name"] == "drift-found" and gate["dependentTasks"] == ["drift"]
    assert gate["triggerPolicy"]["condition"] == "inputs.parameter_values['pipelinechannel--drift-Output'] == true"
    [retrain] = pipeline["components"]["comp-condition-1"]["dag"]["tasks"].values()
    assert retrain["componentRef"]["name"] == "comp-driftloop-training"
    # every training parameter reaches the sub-pipeline unchanged: `data` is what the retrain trains on
    assert {name: p["componentInputParameter"] for name, p in retrain["inputs"]["parameters"].items()} == {
        name: f"pipelinechannel--{name}" for name in Spec.model_fields}
    assert {"open-run", "validate", "train", "evaluate", "deploy", "finish-run"} <= set(tasks(pipeline))

    check = root["drift"]
    assert check["cachingOptions"] == {}  # the same URI holds new data tomorrow: never cached
    assert set(check["inputs"]["parameters"]) == {"current", "read", "registry", "tracking", "p_val", "correction",
                                                  "min_samples"}
    # the live table is read as the training table is unless the run says otherwise
    assert pipeline["root"]["inputDefinitions"]["parameters"]["read"]["defaultValue"] == {}
    spec = validate_spec({"data": {"path": "d.txt", "target": "y", "read": {"sep": "\\s+", "na_values": ["-"]}}})
    assert drift_pipeline_defaults(spec)["read"] == {"sep": "\\s+", "na_values": ["-"]}
    outputs = pipeline["components"]["comp-drift"]["outputDefinitions"]
    assert outputs["parameters"] == {"Output": {"parameterType": "BOOLEAN"}}
    assert {name: a["artifactType"]["schemaTitle"] for name, a in outputs["artifacts"].items()} == {
        "report": "system.HTML", "summary": "system.Markdown", "metrics": "system.Metrics"}
    executor = pipeline["deploymentSpec"]["executors"]["exec-drift"]
    assert {"cpuRequest", "cpuLimit", "memoryRequest", "memoryLimit"} <= set(executor["container"]["resources"])
    body = executor["container"]["command"][-1].split("\ndef ", 1)[1]
    assert "from driftloop.drift.check import DriftRequest, check_drift" in body and len(body.splitlines()) <= 30
    secrets = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert secrets["exec-drift"]["secretAsEnv"][0]["secretName"] == "driftloop-credentials"


def test_defaults_come_from_the_spec_and_name_the_model_the_retrain_registers(tmp_path: Path) -> None:
    spec = load_spec(None, data="s3://lake/churn.csv", target="churned",
                     overrides=["drift.p_val=0.01", "drift.correction=fdr", "train.epochs=9"])
    compile_pipeline(tmp_path / "d.yaml", spec=spec, pipeline="drift-then-retrain", image="registry.local/dl:dev")
    pipeline, _ = documents(tmp_path / "d.yaml")
    parameters = pipeline["root"]["inputDefinitions"]["parameters"]
    assert parameters["p_val"]["defaultValue"] == 0.01 and parameters["correction"]["defaultValue"] == "fdr"
    assert parameters["min_samples"]["defaultValue"] == 100
    assert parameters["registry"]["defaultValue"] == {"model_name": "churn"}
    assert parameters["train"]["defaultValue"]["epochs"] == 9
    assert parameters["validation"]["defaultValue"]["reprofile"] is True  # a drift retrain re-profiles its suite
    assert "defaultValue" not in parameters["current"]
    images = {e["container"]["image"] for e in pipeline["deploymentSpec"]["executors"].values()}
    assert images == {"registry.local/dl:dev"}
    # without a spec, the run form asks which model to check
    default, _ = documents(COMMITTED_DRIFT_PIPELINE)
    assert "defaultValue" not in default["root"]["inputDefinitions"]["parameters"]["registry"]
