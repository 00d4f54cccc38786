"""Session fixtures: a real `mlflow server` (SQLite) and a real S3 endpoint (moto server), on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
DRIFTLOOP = [sys.executable, "-m", "driftloop"]


def loaded_after(code: str, modules: tuple[str, ...], *, cwd: Path = REPO) -> list[str]:
    """Which of `modules` a fresh interpreter has imported after running `code` (in their given order)."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {modules!r} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, *, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    log = open(root / "server.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        # no job runner (huey consumers for MLflow's GenAI jobs, unused here): it costs ~45 s of CPU at start-up
        env=os.environ | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        stdout=log, stderr=subprocess.STDOUT, cwd=root)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{uri}/health", timeout=120, process=process)
        yield uri
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@dataclass(frozen=True)
class S3:
    endpoint: str
    env: dict[str, str]

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="session")
def s3() -> Iterator[S3]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
    try:
        yield S3(endpoint, env)
    finally:
        server.stop()


@dataclass
class Cli:
    """Runs `driftloop` as a user would: a subprocess in a working directory."""

    cwd: Path
    env: dict[str, str]

    def __call__(self, *args: str, timeout: float = 600,
                 env_update: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([*DRIFTLOOP, *args], cwd=self.cwd, env=self.env | (env_update or {}), capture_output=True,
                              text=True, timeout=timeout)


def cli_env(mlflow_uri: str, s3: S3) -> dict[str, str]:
    """This machine's environment, pointed at the test MLflow server and S3 endpoint only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AWS_"))}
    return env | s3.env | {"MLFLOW_TRACKING_URI": mlflow_uri, "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def cli(tmp_path: Path, mlflow_uri: str, s3: S3) -> Cli:
    return Cli(tmp_path, cli_env(mlflow_uri, s3))


class RegistryProbe:
    """driftloop's MLflow gateway, plus MLflow's own client for asserting what landed (tests only)."""

    def __init__(self, uri: str) -> None:
        from mlflow import MlflowClient

        from driftloop.mlflow_gateway import connect

        self.gateway = connect(uri)
        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        self.tracking_uri = uri

    def __getattr__(self, name: str):
        return getattr(self.gateway, name)


def registry_for(uri: str) -> RegistryProbe:
    return RegistryProbe(uri)


@dataclass
class Server:
    """A `driftloop serve` subprocess on loopback, and the file its output goes to."""

    url: str
    process: subprocess.Popen
    log: Path
    prediction_log: Path | None = None
    grpc: str | None = None  # host:port of the Open Inference Protocol over gRPC, when started with --grpc-port

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


def start_serve(*args: str, env: dict[str, str], log: Path, started: list[Server]) -> Server:
    """`driftloop serve ARGS` on a free port, appended to `started` (for the caller to stop), once /readyz answers."""
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen([*DRIFTLOOP, "serve", "--port", str(port), *args], stdout=out,
                                   stderr=subprocess.STDOUT, env=env, cwd=log.parent)
    server = Server(f"http://127.0.0.1:{port}", process, log)
    started.append(server)
    try:
        wait_for(f"{server.url}/readyz", timeout=120, process=process)
    except RuntimeError:
        server.stop()
        raise RuntimeError(f"driftloop serve did not start:\n{server.log_text()[-3000:]}") from None
    return server


def grpc_client(mode: str, server: Server, model: str, rows: list[dict], tmp_path: Path) -> dict[str, Any]:
    """What `grpc_clients.py MODE` saw, driving `server`'s gRPC port with `rows` (JSON-ready), in its own process."""
    path = tmp_path / f"{mode}-rows.json"
    path.write_text(json.dumps(rows))
    assert server.grpc is not None
    proc = subprocess.run([sys.executable, "-m", "tests.serve.grpc_clients", mode, server.grpc, model, str(path)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)
