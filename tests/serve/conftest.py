"""Serving fixtures: one small champion per session, and `driftloop serve` started as a user starts it."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from driftloop.example import customers

from ..conftest import DRIFTLOOP, S3, Server, cli_env, free_port, registry_for, start_serve

MODEL = "serve_churn"


@dataclass(frozen=True)
class Champion:
    name: str
    run_id: str
    model_path: Path  # the registered ONNX file, downloaded
    data: Path  # the training table
    rows: list[dict]  # raw rows without the target, as clients send them


@pytest.fixture(scope="session")
def champion(tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str, s3: S3) -> Champion:
    """Trained once (small and fast) and shared by every serving test."""
    work = tmp_path_factory.mktemp("serve-train")
    table = customers(rows=1200, seed=7)
    table.to_csv(work / "churn.csv", index=False)
    proc = subprocess.run([*DRIFTLOOP, "run", "--data", "churn.csv", "--target", "churned", "--model", MODEL,
                           "--set", "train.epochs=8", "--set", "evaluate.latency_samples=20", "-q"],
                          cwd=work, env=cli_env(mlflow_uri, s3), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    registry = registry_for(mlflow_uri)
    version = registry.champion(MODEL)
    path = registry.download_model(version, work / "model")
    rows = table.drop(columns=["churned"]).head(200).to_dict("records")
    return Champion(MODEL, version.run_id, path, work / "churn.csv", rows)


@pytest.fixture(scope="session")
def start_server(tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str, s3: S3) -> Iterator[Callable[..., Server]]:
    """Starts `driftloop serve ARGS` on a free port and waits for /readyz; every server is stopped at the end."""
    started: list[Server] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Server:
        log = tmp_path_factory.mktemp("serve") / "server.log"
        return start_serve(*args, env=cli_env(mlflow_uri, s3) | (env or {}), log=log, started=started)

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def served(champion: Champion, start_server: Callable[..., Server], tmp_path_factory: pytest.TempPathFactory) -> Server:
    """The shared server: 2 workers, every row in the prediction log, small limits so 413s are cheap to provoke,
    and the Open Inference Protocol over gRPC too."""
    log = tmp_path_factory.mktemp("predictions") / "predictions.jsonl"
    grpc_port = free_port()
    server = start_server("--model", champion.name, "--workers", "2", "--poll-interval", "0", "--max-rows", "100",
                          "--max-body-bytes", "65536", "--prediction-log", str(log), "--prediction-log-rate", "1",
                          "--grpc-port", str(grpc_port))
    server.prediction_log = log
    server.grpc = f"127.0.0.1:{grpc_port}"
    return server
