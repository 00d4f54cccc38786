"""Drift on Kubeflow Pipelines: one small champion for the package, and the KFP area's fake KFP server.

pytest fixtures are folder-scoped: importing `kfp_server` here makes the KFP tests' fake
v2beta1 endpoint available to these tests too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from driftloop.example import DriftKnobs, customers

from ..conftest import S3, Cli, cli_env
from ..kfp.conftest import kfp_server  # noqa: F401 (a fixture, used by name)

MODEL = "drift-kfp"
FAST = ["--set", "train.epochs=8", "--set", "evaluate.latency_samples=20"]


@dataclass(frozen=True)
class Champion:
    """A registered model with @champion (v1) and tables beside it: same-distribution and shifted, labelled."""

    user: Cli
    name: str
    same: Path
    shifted: Path


@pytest.fixture(scope="package")
def champion(tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str, s3: S3) -> Champion:
    cwd = tmp_path_factory.mktemp("drift-kfp")
    customers(rows=1200, seed=1).to_csv(cwd / "train.csv", index=False)
    customers(rows=800, seed=2).to_csv(cwd / "same.csv", index=False)
    customers(rows=800, seed=3, drift=DriftKnobs(mean_shift={"tenure_months": 0.8})).to_csv(cwd / "shifted.csv",
                                                                                           index=False)
    user = Cli(cwd, cli_env(mlflow_uri, s3))
    proc = user("run", "--data", "train.csv", "--target", "churned", "--model", MODEL, *FAST)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Champion(user, MODEL, cwd / "same.csv", cwd / "shifted.csv")
