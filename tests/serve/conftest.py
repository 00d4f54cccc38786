"""Serving fixtures: one small champion per session, and `driftloop serve` started as a user starts it."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from driftloop.example import customers

from ..conftest import DRIFTLOOP, S3, cli_env, free_port, registry_for, wait_for

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


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path
    prediction_log: Path | None = None

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="session")
def start_server(tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str, s3: S3) -> Iterator[Callable[..., Server]]:
    """Starts `driftloop serve ARGS` on a free port and waits for /readyz; every server is stopped at the end."""
    started: list[Server] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Server:
        port = free_port()
        log = tmp_path_factory.mktemp("serve") / "server.log"
        environment = cli_env(mlflow_uri, s3) | (env or {})
        with open(log, "wb") as out:
            process = subprocess.Popen([*DRIFTLOOP, "serve", "--port", str(port), *args], stdout=out,
                                       stderr=subprocess.STDOUT, env=environment, cwd=log.parent)
        server = Server(f"http://127.0.0.1:{port}", process, log)
        started.append(server)
        try:
            wait_for(f"{server.url}/readyz", timeout=120, process=process)
        except RuntimeError:
            server.stop()
            raise RuntimeError(f"driftloop serve did not start:\n{server.log_text()[-3000:]}") from None
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def served(champion: Champion, start_server: Callable[..., Server], tmp_path_factory: pytest.TempPathFactory) -> Server:
    """The shared server: 2 workers, every row in the prediction log, small limits so 413s are cheap to provoke."""
    log = tmp_path_factory.mktemp("predictions") / "predictions.jsonl"
    server = start_server("--model", champion.name, "--workers", "2", "--poll-interval", "0", "--max-rows", "100",
                          "--max-body-bytes", "65536", "--prediction-log", str(log), "--prediction-log-rate", "1")
    server.prediction_log = log
    return server

