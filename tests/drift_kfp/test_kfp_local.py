"""The drift component and the drift-then-retrain pipeline under kfp.local (SubprocessRunner, no venv).

Each task runs as its own subprocess, as in its pod, against the real MLflow server.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from driftloop.spec import load_spec

from ..conftest import S3, registry_for
from .conftest import FAST, Champion

pytestmark = pytest.mark.slow


@pytest.fixture
def kfp_local(tmp_path: Path, mlflow_uri: str, s3: S3, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """kfp.local with its outputs under tmp_path; the task subprocesses see the test MLflow and S3."""
    from kfp import local
    from kfp.local.config import LocalExecutionConfig

    for name in [n for n in os.environ if n.startswith(("MLFLOW_", "AWS_"))]:
        monkeypatch.delenv(name)
    for name, value in (s3.env | {"MLFLOW_TRACKING_URI": mlflow_uri}).items():
        monkeypatch.setenv(name, value)
    root = tmp_path / "kfp-local"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root),
               workspace_root=str(root / "workspace"), raise_on_error=True)
    yield root
    LocalExecutionConfig.instance = None  # later tests calling a component get KFP's usual error, not a local run


def check(champion: Champion, current: Path, mlflow_uri: str, **params: Any) -> Any:
    from driftloop.pipelines.kfp_components import drift

    return drift(current=str(current), registry={"model_name": champion.name}, tracking={"uri": mlflow_uri},
                 **({"read": {}, "p_val": 0.05, "correction": "bonferroni", "min_samples": 100} | params))


def test_drift_component_finds_the_shift_and_fills_the_ui_artifacts(
        champion: Champion, kfp_local: Path, mlflow_uri: str) -> None:
    registry = registry_for(mlflow_uri)
    shifted = check(champion, champion.shifted, mlflow_uri, correction="fdr")
    assert shifted.outputs["Output"] is True

    html = Path(shifted.outputs["report"].path).read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "tenure_months" in html
    markdown = Path(shifted.outputs["summary"].path).read_text(encoding="utf-8")
    assert markdown.startswith("# Drift: DRIFT in ") and "fdr correction" in markdown
    [first_row] = [line for line in markdown.splitlines() if line.startswith("| tenure_months |")]
    assert first_row.endswith("| yes |")
    metrics = {k: v for k, v in shifted.outputs["metrics"].metadata.items()}
    assert metrics["drift"] == 1.0 and metrics["drifted_features"] >= 1 and metrics["p_value-tenure_months"] < 1e-3

    # each check is the CLI's: a run in the `drift` experiment linked to the champion it compared with
    run_id = shifted.outputs["report"].metadata["mlflow_run_id"]
    run = registry.client.get_run(run_id)
    assert run.data.tags["driftloop.drift"] == "true" and run.data.tags["driftloop.champion_version"] == "1"
    assert run.data.params["correction"] == "fdr"
    assert registry.champion(champion.name).tags["driftloop.last_drift_run"] == run_id


def test_the_current_table_is_read_with_the_read_options(champion: Champion, kfp_local: Path, mlflow_uri: str,
                                                         tmp_path: Path) -> None:
    """A column-aligned live table (R's write.table) needs sep='\\s+', as `driftloop drift --read` and the operator's
    drift.read give it; sniffed, it is one column, which the check refuses."""
    import pandas as pd

    aligned = tmp_path / "shifted.txt"
    aligned.write_text(pd.read_csv(champion.shifted).to_string(index=False))
    shifted = check(champion, aligned, mlflow_uri, read={"sep": "\\s+"})
    assert shifted.outputs["Output"] is True
    summary = Path(shifted.outputs["summary"].path).read_text(encoding="utf-8")
    assert "| tenure_months |" in summary and "| plan |" in summary


def test_an_unknown_model_fails_the_task_with_one_line(champion: Champion, kfp_local: Path,
                                                                  mlflow_uri: str, capfd: pytest.CaptureFixture) -> None:
    from kfp import local

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(kfp_local),
               workspace_root=str(kfp_local / "workspace"), raise_on_error=False)
    task = check(Champion(champion.user, "no-such-model", champion.same, champion.shifted), champion.same, mlflow_uri)
    assert "Output" not in task.outputs  # the task failed: no decision
    assert "driftloop-error: registered model 'no-such-model' not found" in capfd.readouterr().out


def test_drift_then_retrain_skips_the_retrain_without_drift_and_retrains_with_it(
        champion: Champion, kfp_local: Path, mlflow_uri: str) -> None:
    from driftloop.pipelines.drift_pipeline import build_drift_pipeline
    from driftloop.pipelines.parameters import pipeline_arguments

    registry = registry_for(mlflow_uri)
    spec = load_spec(None, data=str(champion.shifted), target="churned",
                     overrides=[f"registry.model_name={champion.name}", f"tracking.uri={mlflow_uri}",
                                *FAST[1::2]])
    pipeline = build_drift_pipeline(spec)
    arguments = pipeline_arguments(spec) | {"registry": {"model_name": champion.name}}
    experiment = registry.client.get_experiment_by_name(champion.name).experiment_id

    def training_runs() -> list[Any]:
        return registry.client.search_runs([experiment], "tags.`driftloop.kfp_run_id` != ''")

    pipeline(current=str(champion.same), **arguments)
    runs = sorted(p.name for p in kfp_local.iterdir() if p.name.startswith("driftloop-drift-then-retrain"))
    assert len(runs) == 1
    decided = json.loads((kfp_local / runs[0] / "drift" / "executor_output.json").read_text())
    assert decided["parameterValues"]["Output"] is False
    assert not (kfp_local / runs[0] / "open-run").exists(), "the retrain ran without drift"
    assert training_runs() == [] and registry.champion(champion.name).version == "1"

    pipeline(current=str(champion.shifted), **arguments)
    [retrain] = training_runs()
    assert retrain.info.status == "FINISHED" and retrain.data.tags["driftloop.status"] == "completed"
    assert retrain.data.params["data.path"] == str(champion.shifted)
    assert "evaluation/blessing.json" in {a.path for a in registry.client.list_artifacts(retrain.info.run_id,
                                                                                             "evaluation")}
    deployed = retrain.data.tags["driftloop.deployed"] == "true"  # the gate decides; either way the registry agrees
    assert registry.champion(champion.name).version == ("2" if deployed else "1")
