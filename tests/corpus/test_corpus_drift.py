"""The drift loop closes on a real table split by place: penguins from a new island retrain, never fail validation.

The champion is trained on the Biscoe and Dream penguins; the current window is the Torgersen
island, a category the champion's suite has never seen. `driftloop drift --retrain local` must
end in a trained candidate and a gate decision with its reasons, not in a validation failure.
"""

from __future__ import annotations

import json

import pytest

from ..conftest import Cli, registry_for
from .tables import TABLES

pytestmark = pytest.mark.slow

MODEL = "corpus_penguins_by_island"
# Torgersen has 52 penguins: the drift policy stored with the model must test a window that small,
# and hold out 20 of them (the least a window may have) to compare candidate and champion on
POLICY = ["--set", "drift.min_samples=30", "--set", "drift.window_holdout=0.4"]


def test_a_new_island_retrains_and_reaches_the_gate(cli: Cli, mlflow_uri: str) -> None:
    penguins = TABLES["penguins"].frame()
    new_island = penguins["island"] == "Torgersen"
    assert new_island.sum() >= 30 and not new_island.all()
    penguins[~new_island].to_csv(cli.cwd / "penguins.csv", index=False, na_rep="NA")
    penguins[new_island].to_csv(cli.cwd / "torgersen.csv", index=False, na_rep="NA")

    first = cli("run", "--data", "penguins.csv", "--target", "species", "--model", MODEL, *POLICY)
    assert first.returncode == 0, first.stderr[-2000:]

    loop = cli("drift", "--model", MODEL, "--current", "torgersen.csv", "--retrain", "local", "--json", "loop.json")
    assert loop.returncode == 3, loop.stderr[-3000:]  # 3: drift found (and acted on)
    report = json.loads((cli.cwd / "loop.json").read_text())
    assert "island" in report["drifted_features"], report.get("drifted_features")
    retrain = report["retrain"]
    assert retrain["status"] == "completed", retrain  # not a validation failure
    result = retrain["result"]
    assert result["deployed"] or any(r.startswith("FAIL") for r in result["gate"]["reasons"]), result["gate"]
    assert any("new categories: column 'island'" in line for line in loop.stderr.splitlines()), loop.stderr[-3000:]
    assert "Torgersen" in result["suite_changes"]["columns"]["island"]["categories_added"]

    registry = registry_for(mlflow_uri)
    expected_champion = result["model_version"] if result["deployed"] else "1"
    assert registry.champion(MODEL).version == str(expected_champion)
