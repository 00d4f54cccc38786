"""kfp-local trains a non-default family, and a user's module file, with the same records as in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from driftloop.example import customers

from ..conftest import S3, Cli, cli_env, registry_for

pytestmark = pytest.mark.slow

TREE = '''
from sklearn.tree import DecisionTreeClassifier


def build(n_features, n_outputs, task, params):
    return DecisionTreeClassifier(max_depth=params["depth"], random_state=0)
'''

# A user's module that ends its process itself: SystemExit is no Exception, so no driftloop error line is printed.
QUITTER = '''
import sys


def build(n_features, n_outputs, task, params):
    sys.exit("quitter.py: no licence server reachable")
'''


@pytest.fixture(scope="module")
def user(tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str, s3: S3) -> Cli:
    cwd = tmp_path_factory.mktemp("kfp-families")
    customers(rows=500, seed=13).to_csv(cwd / "customers.csv", index=False)
    (cwd / "tree.py").write_text(TREE)
    (cwd / "quitter.py").write_text(QUITTER)
    return Cli(cwd, cli_env(mlflow_uri, s3))


@pytest.mark.parametrize(("name", "settings", "served"), [
    ("gbm", ["train.model=gbm", "train.gbm.max_iter=20"], "gbm"),
    ("module", ["train.module=tree.py:build", "train.params={depth: 3}"], "module"),
])
def test_kfp_local_trains_the_family_the_spec_names(user: Cli, mlflow_uri: str, name: str, settings: list[str],
                                                   served: str) -> None:
    sets = [arg for setting in [*settings, "evaluate.latency_samples=10"] for arg in ("--set", setting)]
    proc = user("run", "--runner", "kfp-local", "--data", "customers.csv", "--target", "churned", "--model",
                f"kfp-family-{name}", "--json", f"{name}.json", *sets)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((user.cwd / f"{name}.json").read_text())
    assert result["status"] == "completed" and result["gate"]["passed"] is True, result["gate"]
    registry = registry_for(mlflow_uri)
    run = registry.client.get_run(result["run_id"])
    assert run.data.params["train.chosen_model"] == served
    assert run.data.metrics["onnx_max_abs_diff"] < 1e-4
    record = Path(registry.client.download_artifacts(result["run_id"], "train/train.json", str(user.cwd / name)))
    assert json.loads(record.read_text())["model"] == served
    if name == "module":
        assert [a.path for a in registry.client.list_artifacts(result["run_id"], "code")] == ["code/tree.py"]


def test_a_task_that_dies_without_an_error_line_is_named_with_its_last_words(user: Cli, mlflow_uri: str) -> None:
    proc = user("run", "--runner", "kfp-local", "--data", "customers.csv", "--target", "churned", "--model",
                "kfp-family-quitter", "--json", "quitter.json", "-q", "--set", "train.module=quitter.py:build")
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    line = proc.stderr.strip()
    assert line.startswith("error: pipeline task train failed without a driftloop error line; its last output: "
                           "quitter.py: no licence server reachable (whole log: "), line
    log = Path(line.rsplit("(whole log: ", 1)[1][:-1])
    assert line.endswith("last-run.log)")
    assert log.read_text().count("Executing task 'train'") == 1  # kfp-local runs a task once: no retry
    result = json.loads((user.cwd / "quitter.json").read_text())
    assert result["status"] == "failed" and result["deployed"] is False
    registry = registry_for(mlflow_uri)
    assert registry.client.get_run(result["run_id"]).info.status == "FAILED"
    assert registry.client.search_model_versions("name='kfp-family-quitter'") == []
