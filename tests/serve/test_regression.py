"""A regression model: predictions are numbers equal to the ONNX model's, with no probabilities.

Its training rows, sent back through the server, must not look drifted in the prediction log:
the log is drift's input, so every float has to survive the round trip bit for bit.
"""

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

from ..conftest import DRIFTLOOP, S3, cli_env, free_port, grpc_client, registry_for
from .conftest import Server

pytestmark = pytest.mark.slow


def test_regressor_served_and_logged(mlflow_uri: str, s3: S3, tmp_path, start_server: Callable[..., Server]) -> None:
    table = house_prices(rows=600)
    # full-precision floats, one of them two-valued: a dropped last digit shifts every value, which a KS test flags
    rng = np.random.default_rng(5)
    table.insert(0, "score", rng.normal(50, 12, size=len(table)))
    table.insert(1, "discount", rng.choice([1 / 3, 2 / 3], size=len(table)))
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
    grpc_port = free_port()
    server = start_server("--model", "serve_houses", "--workers", "1", "--poll-interval", "0",
                          "--prediction-log", str(log), "--grpc-port", str(grpc_port))
    server.grpc = f"127.0.0.1:{grpc_port}"
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
    over_grpc = grpc_client("infer", server, "serve_houses", json.loads(rows.to_json(orient="records")), tmp_path)
    assert over_grpc["datatypes"] == {"predictions": "FP32"}  # a regression: predictions only
    assert np.allclose(over_grpc["predictions"], answer["predictions"], rtol=1e-6)

    features = table.drop(columns=["price_k"]).to_dict("records")
    for start in range(0, len(features), 200):
        httpx.post(f"{server.url}/invocations", json={"dataframe_records": features[start:start + 200]}) \
            .raise_for_status()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(log.read_text().splitlines()) < 10 + len(features):
        time.sleep(0.2)
    drift = subprocess.run([*DRIFTLOOP, "drift", "--reference", "serve_houses.csv", "--current", str(log),
                            "--target", "price_k", "--no-track", "--json", "-", "-q"],
                           cwd=tmp_path, env=cli_env(mlflow_uri, s3), capture_output=True, text=True, timeout=300)
    assert drift.returncode == 0, drift.stdout[-3000:] + drift.stderr[-3000:]  # 0: no drift
