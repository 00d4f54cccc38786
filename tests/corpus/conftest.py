"""Corpus fixtures: each table trained once per session with the default `driftloop run`, and a server starter."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ..conftest import DRIFTLOOP, S3, Server, cli_env, free_port, start_serve
from .tables import TABLES, CorpusTable


@dataclass(frozen=True)
class CorpusRun:
    table: CorpusTable
    model: str
    csv: Path
    cwd: Path
    env: dict[str, str]
    result: dict[str, Any]  # `driftloop run --json`
    stderr: str
    seconds: float

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([*DRIFTLOOP, *args], cwd=self.cwd, env=self.env, capture_output=True, text=True,
                              timeout=timeout)


@pytest.fixture(scope="session")
def corpus_run(tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str, s3: S3) -> Callable[[str], CorpusRun]:
    """`corpus_run(name)`: that table trained with the default `driftloop run`, once per session."""
    import time

    runs: dict[str, CorpusRun] = {}

    def train(name: str) -> CorpusRun:
        if name not in runs:
            table = TABLES[name]
            work = tmp_path_factory.mktemp(f"corpus-{name}")
            csv = table.write_csv(work)
            env = cli_env(mlflow_uri, s3)
            model = f"corpus_{name}"
            started = time.perf_counter()
            proc = subprocess.run([*DRIFTLOOP, "run", "--data", csv.name, "--target", table.target, "--model", model,
                                   "--json", "run.json"], cwd=work, env=env, capture_output=True, text=True,
                                  timeout=900)
            seconds = time.perf_counter() - started
            assert proc.returncode == 0, f"{name}: {proc.stderr[-3000:]}"
            result = json.loads((work / "run.json").read_text())
            runs[name] = CorpusRun(table, model, csv, work, env, result, proc.stderr, seconds)
        return runs[name]

    return train


@pytest.fixture
def serve_model(tmp_path: Path, mlflow_uri: str, s3: S3) -> Iterator[Callable[[str], Server]]:
    """`serve_model(name)`: `driftloop serve --model name` (its @champion) on a free port, one worker, gRPC too;
    stopped after."""
    started: list[Server] = []

    def start(model: str) -> Server:
        grpc_port = free_port()
        server = start_serve("--model", model, "--workers", "1", "--poll-interval", "0", "--grpc-port", str(grpc_port),
                             env=cli_env(mlflow_uri, s3), log=tmp_path / f"serve-{model}.log", started=started)
        server.grpc = f"127.0.0.1:{grpc_port}"
        return server

    yield start
    for server in started:
        server.stop()
