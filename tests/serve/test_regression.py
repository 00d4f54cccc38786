"""A regression model: predictions are numbers equal to the ONNX model's, with no probabilities."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable

import httpx
import numpy as np
import pandas as pd
import pytest

from driftloop.example import house_prices
from driftloop.onnx_model import OnnxModel

from ..conftest import DRIFTLOOP, S3, cli_env, registry_for
from .conftest import Server

pytestmark = pytest.mark.slow


def test_regressor_served_and_logged(mlflow_uri: str, s3: S3, tmp_path, start_server: Callable[..., Server]) -> None:
    table = house_prices(rows=600)
    table.to_csv(tmp_path / "serve_houses.csv", index=False)
    run = subprocess.run([*DRIFTLOOP, "run", "--data", "serve_houses.csv", "--target", "price_k", "-q",
                          "--set", "train.epochs=5", "--set", "evaluate.latency_samples=20",
                          "--set", "gate.require_baseline=false"],
                         cwd=tmp_path, env=cli_env(mlflow_uri, s3), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    registry = registry_for(mlflow_uri)
    model = OnnxModel(registry.download_model(registry.champion("serve_houses"), tmp_path / "model"))
    rows = table.drop(columns=["price_k"]).head(10)
    log = tmp_path / "predictions.jsonl"
    server = start_server("--model", "serve_houses", "--workers", "1", "--poll-interval", "0",
                          "--prediction-log", str(log))
    answer = httpx.post(f"{server.url}/invocations", json={"dataframe_records": rows.to_dict("records")}).json()
    assert np.allclose(answer["predictions"], model.run(pd.DataFrame(rows)), rtol=1e-5)
    assert "probabilities" not in answer and answer["model_version"] == "1"
    metadata = httpx.get(f"{server.url}/v1/models/serve_houses").json()
    assert metadata["task"] == "regression" and metadata["classes"] is None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 10):
        time.sleep(0.2)
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(logged) == 10 and "_probabilities" not in logged[0]
    assert [r["_prediction"] for r in logged] == pytest.approx(answer["predictions"], rel=1e-6)
