"""The drift loop closes on real drift: a new category and out-of-range values retrain, never fail validation.

`driftloop drift --retrain local` as CI runs it, against a real MLflow server: strict validation
keeps the champion's suite (the retrain fails on its expectation line and frees the cooldown);
by default the retrain re-profiles its suite, stores it with the new version and reports the change.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from driftloop.constants import SUITE_ARTIFACT, SUITE_CHANGES_ARTIFACT
from driftloop.example import customers

from ..conftest import Cli, registry_for

pytestmark = pytest.mark.slow

MODEL = "evolving"
FAST = ["--set", "train.epochs=8", "--set", "evaluate.latency_samples=20"]
RETRAIN = ["--set", "train.epochs=20", "--set", "evaluate.latency_samples=20"]


def drifted(rows: int, seed: int) -> pd.DataFrame:
    """A third of the customers on a plan the champion never saw, with tenures three times as long."""
    frame = customers(rows=rows, seed=seed)
    frame["plan"] = frame["plan"].where(frame.index % 3 != 0, "gold")
    frame["tenure_months"] = frame["tenure_months"] * 3
    return frame


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _artifact(registry, run_id: str, path: str, into: Path) -> dict:
    return json.loads(Path(registry.client.download_artifacts(run_id, path, str(into))).read_text())


def test_new_category_retrains_with_a_reprofiled_suite(cli: Cli, mlflow_uri: str) -> None:
    customers(rows=1200, seed=1).to_csv(cli.cwd / "train.csv", index=False)
    first = cli("run", "--data", "train.csv", "--target", "churned", "--model", MODEL, *FAST)
    assert first.returncode == 0, first.stderr[-2000:]
    registry = registry_for(mlflow_uri)
    drifted(900, seed=3).to_csv(cli.cwd / "drifted.csv", index=False)

    # strict: the champion's suite is the contract; the retrain fails on its expectation and trains nothing
    strict = cli("drift", "--model", MODEL, "--current", "drifted.csv", "--retrain", "local", "--cooldown", "1h",
                 "--set", "validation.strict=true", *RETRAIN, "--json", "strict.json", "-q")
    assert strict.returncode == 1, strict.stderr[-2000:]
    last = strict.stderr.strip().splitlines()[-1]
    assert last.startswith("error: retrain failed: ") and "retrain.parquet: column '" in last
    assert "expect_column_values_to_be_" in last and "unexpected values" in last
    failed = _json(cli.cwd / "strict.json")["retrain"]
    assert failed["status"] == "failed" and failed["claim"]["state"] == "failed"
    assert failed["claim"]["holds_cooldown"] is False and "suite_changes" not in failed["result"]
    assert registry.champion(MODEL).version == "1" and len(registry.versions(MODEL)) == 1

    # by default, inside the same hour: the failed attempt freed the cooldown, and the loop closes
    loop = cli("drift", "--model", MODEL, "--current", "drifted.csv", "--retrain", "local", "--cooldown", "1h",
               "--set", "validation.mostly=0.95", *RETRAIN, "--json", "loop.json", "--report", "loop.html")
    assert loop.returncode == 3, loop.stderr[-2000:]
    retrain = _json(cli.cwd / "loop.json")["retrain"]
    assert retrain["status"] == "completed", retrain
    result = retrain["result"]
    assert result["deployed"] or any(r.startswith("FAIL") for r in result["gate"]["reasons"]), result["gate"]
    warnings = [line for line in loop.stderr.splitlines() if line.startswith("warning: ")]
    assert any("new categories: column 'plan'" in w for w in warnings), loop.stderr[-3000:]
    assert "suite re-profiled from this table" in loop.stderr and "plan: categories added: gold" in loop.stderr

    changes = result["suite_changes"]
    assert changes["columns"]["plan"]["categories_added"] == ["gold"]
    # out-of-range tenures are about 3% of reference+current, within mostly=0.95 (no warning), yet the
    # re-profiled suite widens their range
    assert changes["columns"]["tenure_months"]["range"]["widened"] is True
    html = (cli.cwd / "loop.html").read_text()
    assert "<h2>Validation suite changes</h2>" in html and "<td>categories added: gold</td>" in html

    run_id = result["run_id"]
    run = registry.client.get_run(run_id)
    assert run.data.tags["driftloop.suite_source"] == "reprofiled"
    assert run.data.metrics["validation.warnings"] == len(warnings)  # shown, counted
    suite = _artifact(registry, run_id, SUITE_ARTIFACT, cli.cwd / "run")
    in_set = {e["kwargs"]["column"]: e["kwargs"] for e in suite["expectations"]
              if e["type"] == "expect_column_values_to_be_in_set"}
    assert "gold" in in_set["plan"]["value_set"] and in_set["plan"]["mostly"] == 0.95  # --set reached the retrain
    assert _artifact(registry, run_id, SUITE_CHANGES_ARTIFACT, cli.cwd / "changes") == changes
    if result["deployed"]:  # the new suite is the one stored with the new version
        assert registry.champion(MODEL).run_id == run_id


def test_set_is_refused_where_it_would_be_ignored(cli: Cli) -> None:
    customers(rows=300, seed=1).to_csv(cli.cwd / "ref.csv", index=False)
    plain = cli("drift", "--reference", "ref.csv", "--current", "ref.csv", "--no-track", "--set", "validation.mostly=0.5")
    assert plain.returncode == 2 and "--set overrides the champion's spec for a retrain it runs" in plain.stderr
    k8s = cli("drift", "--model", "m", "--current", "ref.csv", "--retrain", "k8s", "--k8s-job", "j",
              "--set", "validation.mostly=0.5")
    assert k8s.returncode == 2 and "--set does not reach an MLTrainingJob retrain" in k8s.stderr
    typo = cli("drift", "--model", "m", "--current", "ref.csv", "--retrain", "local", "--set", "validation.mostyl=0.5")
    assert typo.returncode == 2 and "--set validation.mostyl: unknown key; did you mean 'mostly'?" in typo.stderr
