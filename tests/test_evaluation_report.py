"""The evaluation report and the slice table, through the in-process runner against a real MLflow server, and the
KFP evaluate task's Markdown and HTML outputs."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from driftloop.console import Console
from driftloop.example import house_prices
from driftloop.runner import RunResult, run_pipeline
from driftloop.spec import Spec, validate_spec

from .conftest import Cli, registry_for

pytestmark = pytest.mark.slow

FAST = {"train": {"epochs": 15}, "evaluate": {"latency_samples": 20}}
CLASSIFICATION_PLOTS = {"roc_curve_plot", "precision_recall_curve_plot", "calibration_curve_plot", "confusion_matrix",
                        "learning_curve_plot"}
REGRESSION_PLOTS = {"predicted_vs_actual_plot", "residuals_histogram_plot", "learning_curve_plot"}


def regional_table(rows: int = 2000, seed: int = 3) -> pd.DataFrame:
    """A label the features decide, except in region north, where it is a coin toss; island is a handful of rows."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=(2, rows))
    region = rng.choice(["north", "south", "east", "west", "island"], size=rows, p=[0.25, 0.25, 0.22, 0.25, 0.03])
    label = (x1 + x2 > 0).astype(int)
    north = region == "north"
    label[north] = rng.integers(0, 2, size=int(north.sum()))
    return pd.DataFrame({"x1": x1, "x2": x2, "region": region, "label": label})


def spec_of(data: Path, target: str, model: str, uri: str, out: Path, **sections: Any) -> Spec:
    raw = {"data": {"path": str(data), "target": target}, "registry": {"model_name": model},
           "tracking": {"uri": uri}, "output": str(out), **FAST}
    for name, section in sections.items():
        raw[name] = {**raw.get(name, {}), **section}
    return validate_spec(raw)


@pytest.fixture(scope="module")
def regional(tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str) -> dict[str, RunResult]:
    """A first run that becomes champion, then one with a slice rule that region north cannot meet."""
    cwd = tmp_path_factory.mktemp("regional")
    regional_table().to_csv(cwd / "regional.csv", index=False)
    common = {"evaluate": {"slices": ["region", "x1"]}}
    first = run_pipeline(spec_of(cwd / "regional.csv", "label", "regional", mlflow_uri, cwd / "runs", **common),
                         console=Console(quiet=True))
    sliced = spec_of(cwd / "regional.csv", "label", "regional", mlflow_uri, cwd / "runs", **common,
                     gate={"slices": {"min_rows": 30, "min": {"accuracy": 0.75}}})
    second = run_pipeline(sliced, console=Console(quiet=True))
    return {"first": first, "second": second}


class Page(HTMLParser):
    """The parts of the report a reviewer sees: headings, embedded images, gate reasons."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.images: dict[str, bytes] = {}
        self.reasons: list[str] = []
        self._in: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "img":
            source = found.get("src") or ""
            assert source.startswith("data:image/png;base64,"), source[:40]  # self-contained: nothing fetched
            self.images[found.get("alt") or ""] = base64.b64decode(source.split(",", 1)[1])
        elif tag in ("h2", "li"):
            self._in = tag
            if tag == "li":
                self.reasons.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "h2":
            self.headings.append(data.strip())
        elif self._in == "li":
            self.reasons[-1] += data


def artifacts_of(run_id: str, uri: str) -> set[str]:
    return {item.path for item in registry_for(uri).client.list_artifacts(run_id, "evaluation")}


def artifact_text(run_id: str, path: str, uri: str, into: Path) -> str:
    local = registry_for(uri).gateway.download_artifact(run_id, path, into)
    return local.read_text(encoding="utf-8")


def test_one_bad_region_declines_a_candidate_that_is_good_overall(regional: dict[str, RunResult],
                                                                 mlflow_uri: str) -> None:
    first, second = regional["first"], regional["second"]
    assert first.status == "completed" and first.deployed and first.model_version == "1", first.error
    assert second.status == "completed" and not second.deployed and second.gate["passed"] is False, second.error
    failed = [r for r in second.gate["reasons"] if r.startswith("FAIL")]
    assert failed and all(r.startswith("FAIL slice region=north: accuracy ") for r in failed), failed
    assert any(r.startswith("PASS slice region=island: ") and "reported, not gated" in r
               for r in second.gate["reasons"])
    assert any(r.startswith("PASS slice region=south: accuracy ") for r in second.gate["reasons"])
    metrics = registry_for(mlflow_uri).client.get_run(second.run_id).data.metrics
    assert metrics["slice.region.north.accuracy"] < 0.75 <= metrics["slice.region.south.accuracy"]
    assert "champion_slice.region.north.accuracy" in metrics and metrics["slice.region.island.rows"] < 30
    assert any(name.startswith("slice.x1.") and name.endswith(".accuracy") for name in metrics)  # numeric: binned


def test_the_report_shows_candidate_and_champion_plots_slices_and_every_reason(regional: dict[str, RunResult],
                                                                              mlflow_uri: str, tmp_path: Path) -> None:
    run = regional["second"]
    found = artifacts_of(run.run_id, mlflow_uri)
    assert {f"evaluation/{name}.png" for name in CLASSIFICATION_PLOTS} <= found
    assert {"evaluation/evaluation_report.html", "evaluation/slices.json", "evaluation/slices.md"} <= found
    page = Page(artifact_text(run.run_id, "evaluation/evaluation_report.html", mlflow_uri, tmp_path))
    assert page.headings == ["Gate", "Metrics", "Plots", "Slices"]
    assert set(page.images) == CLASSIFICATION_PLOTS
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in page.images.values())
    assert [" ".join(r.split()) for r in page.reasons] == run.gate["reasons"]
    slices = json.loads(artifact_text(run.run_id, "evaluation/slices.json", mlflow_uri, tmp_path))
    north = next(s for s in slices if s["column"] == "region" and s["value"] == "north")
    assert north["champion_metrics"]["accuracy"] == pytest.approx(north["metrics"]["accuracy"], abs=0.2)
    table = artifact_text(run.run_id, "evaluation/slices.md", mlflow_uri, tmp_path)
    assert "| column | value | rows | accuracy | f1 | roc_auc |" in table and "| region | north |" in table


def test_a_regression_report_shows_residuals_and_names_the_linear_baseline(cli: Cli, mlflow_uri: str) -> None:
    house_prices(rows=600).to_csv(cli.cwd / "houses.csv", index=False)
    proc = cli("run", "--data", "houses.csv", "--target", "price_k", "--model", "houses-report", "--set",
               "train.epochs=15", "--set", "evaluate.slices=[neighbourhood]", "--set", "gate.baseline=linear",
               "--json", "run.json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads((cli.cwd / "run.json").read_text())
    assert f"evaluation report: runs:/{run['run_id']}/evaluation/evaluation_report.html" in proc.stderr
    metrics = registry_for(mlflow_uri).client.get_run(run["run_id"]).data.metrics
    baseline = next(r for r in run["gate"]["reasons"] if "baseline" in r)
    assert f"linear baseline (Ridge) {metrics['baseline_rmse']:.4f}" in baseline
    page = Page(artifact_text(run["run_id"], "evaluation/evaluation_report.html", mlflow_uri, cli.cwd))
    assert set(page.images) == REGRESSION_PLOTS
    assert {f"evaluation/{name}.png" for name in REGRESSION_PLOTS} <= artifacts_of(run["run_id"], mlflow_uri)
    assert any(name.startswith("slice.neighbourhood.") and name.endswith(".rmse") for name in metrics)


def test_the_kfp_evaluate_task_outputs_the_slice_table_and_the_report() -> None:
    from driftloop.pipelines.kfp_components import evaluate

    outputs = evaluate.component_spec.outputs
    assert outputs["slices"].type == "system.Markdown@0.0.1"
    assert outputs["evaluation_report"].type == "system.HTML@0.0.1"


def test_kfp_local_evaluate_task_writes_the_slice_table_and_the_report(tmp_path: Path, mlflow_uri: str) -> None:
    from driftloop.pipelines.local import run_kfp_local

    house_prices(rows=400).to_csv(tmp_path / "houses.csv", index=False)
    spec = spec_of(tmp_path / "houses.csv", "price_k", "houses-kfp-report", mlflow_uri, tmp_path / "runs",
                   train={"epochs": 5}, evaluate={"slices": ["neighbourhood"]})
    run = run_kfp_local(spec, console=Console(quiet=True), pipeline_root=tmp_path / "kfp")
    assert run.status == "completed", run.error
    (task,) = (tmp_path / "kfp").glob("driftloop-training-*/evaluate")
    assert "| neighbourhood | " in (task / "slices").read_text(encoding="utf-8")
    page = Page((task / "evaluation_report").read_text(encoding="utf-8"))
    assert set(page.images) == REGRESSION_PLOTS and page.headings == ["Gate", "Metrics", "Plots", "Slices"]
