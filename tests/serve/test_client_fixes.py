"""What tripped real clients (issue 14): each case failed before its fix."""

from __future__ import annotations

import json
import time

import httpx
import numpy as np
import pytest

from driftloop.table import load_table

from .conftest import Champion, Server
from .test_metrics_and_logs import sample

NUMBER = "data_usage_gb"


def with_value(row: dict, column: str, value: object) -> dict:
    return {**row, column: value}


@pytest.mark.parametrize("literal", ["1e39", "-1e300", "3.5e38", "1" + "0" * 40])
@pytest.mark.parametrize("route", ["v1", "mlflow"])
def test_finite_but_too_large_for_float32_is_400(served: Server, champion: Champion, literal: str, route: str) -> None:
    rows = [champion.rows[0], with_value(champion.rows[1], NUMBER, 0.5)]
    body = json.dumps({"instances": rows}).replace(": 0.5", f": {literal}")
    url = (f"{served.url}/v1/models/{champion.name}:predict" if route == "v1" else f"{served.url}/invocations")
    response = httpx.post(url, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    message = response.json()["error" if route == "v1" else "message"]
    assert f"'{NUMBER}'" in message and "row 1" in message and "range" in message


def test_csv_number_too_large_for_float32_is_400(served: Server, champion: Champion) -> None:
    row = with_value(champion.rows[0], NUMBER, "1e39")
    text = ",".join(row) + "\n" + ",".join(str(v) for v in row.values()) + "\n"
    response = httpx.post(f"{served.url}/invocations", content=text, headers={"Content-Type": "text/csv"})
    assert response.status_code == 400 and f"'{NUMBER}'" in response.json()["message"]


def test_prediction_log_floats_round_trip_exactly(served: Server, champion: Champion) -> None:
    """`driftloop drift --current` reads the log with `load_table`; every float must come back bit for bit."""
    assert served.prediction_log is not None
    rng = np.random.default_rng(3)
    values = [float(v) for v in rng.normal(5, 3, size=40)] + [1 / 3, 2 / 3, 0.1 + 0.2]
    rows = [with_value(champion.rows[0], NUMBER, v) for v in values]
    httpx.post(f"{served.url}/invocations", json={"dataframe_records": rows}).raise_for_status()
    deadline = time.monotonic() + 10
    logged: set[float] = set()
    while time.monotonic() < deadline and not set(values) <= logged:
        time.sleep(0.3)  # workers flush their logs every half second
        if served.prediction_log.exists() and served.prediction_log.stat().st_size:
            logged = set(load_table(str(served.prediction_log)).frame[NUMBER].tolist())
    assert set(values) <= logged


def test_kserve_liveness_on_root(served: Server) -> None:
    response = httpx.get(f"{served.url}/")
    assert response.status_code == 200 and response.json() == {"status": "alive"}


def test_mlflow_error_shape_and_version(served: Server, champion: Champion) -> None:
    response = httpx.post(f"{served.url}/invocations", json={"dataframe_records": [{"colour": "red"}]})
    assert response.status_code == 400
    body = response.json()
    assert body["error_code"] == "BAD_REQUEST" and "'customer_age'" in body["message"]
    unsupported = httpx.post(f"{served.url}/invocations", content=b"x", headers={"Content-Type": "text/plain"})
    assert unsupported.status_code == 415 and unsupported.json()["error_code"] == "BAD_REQUEST"
    version = httpx.get(f"{served.url}/version")
    assert version.status_code == 200 and version.text.strip()
    v1 = httpx.post(f"{served.url}/v1/models/{champion.name}:predict", json={"instances": [{"colour": "red"}]})
    assert v1.status_code == 400 and set(v1.json()) == {"error"}  # KServe's shape on /v1


def test_v2_body_on_invocations_says_where_it_belongs(served: Server, champion: Champion) -> None:
    body = {"inputs": [{"name": NUMBER, "shape": [1], "datatype": "FP32", "data": [0.5]}]}
    response = httpx.post(f"{served.url}/invocations", json=body)
    assert response.status_code == 400 and "/v2/models/" in response.json()["message"]


def test_explain_is_not_implemented(served: Server, champion: Champion) -> None:
    response = httpx.post(f"{served.url}/v1/models/{champion.name}:explain", json={"instances": champion.rows[:1]})
    assert response.status_code == 501 and "explain" in response.json()["error"]


def test_csv_with_pandas_index_column(served: Server, champion: Champion) -> None:
    import pandas as pd

    frame = pd.DataFrame(champion.rows[:5])
    plain = httpx.post(f"{served.url}/invocations", content=frame.to_csv(index=False),
                       headers={"Content-Type": "text/csv"}).raise_for_status().json()
    indexed = httpx.post(f"{served.url}/invocations", content=frame.to_csv(),
                         headers={"Content-Type": "text/csv"})
    assert indexed.status_code == 200, indexed.text
    assert indexed.json()["predictions"] == plain["predictions"]


def test_model_version_is_a_label(served: Server, champion: Champion) -> None:
    metrics = httpx.get(f"{served.url}/metrics").text
    assert sample(metrics, "driftloop_model_info", model=champion.name, alias="champion", version="1") == 1
