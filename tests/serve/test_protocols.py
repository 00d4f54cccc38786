"""Both protocols answer with the ONNX model's own predictions, whatever the body layout."""

from __future__ import annotations

import csv
import io

import httpx
import numpy as np
import pytest

from driftloop.onnx_model import OnnxModel

from .conftest import Champion, Server


@pytest.fixture(scope="module")
def expected(champion: Champion) -> tuple[list, np.ndarray]:
    import pandas as pd

    model = OnnxModel(champion.model_path)
    frame = pd.DataFrame(champion.rows[:20])
    return model.predict(frame), model.run(frame)


def columns_of(rows: list[dict]) -> dict[str, list]:
    return {name: [row[name] for row in rows] for name in rows[0]}


def assert_matches(answer: dict, expected: tuple[list, np.ndarray], version: str = "1") -> None:
    labels, probabilities = expected
    assert answer["predictions"] == labels
    assert np.allclose(np.asarray(answer["probabilities"]), probabilities, atol=1e-6)
    assert answer["classes"] == [0, 1]
    assert answer["model_name"] == "serve_churn" and answer["model_version"] == version


def test_kserve_v1_rows_columns_and_positional(served: Server, champion: Champion, expected) -> None:
    rows = champion.rows[:20]
    url = f"{served.url}/v1/models/{champion.name}:predict"
    assert_matches(httpx.post(url, json={"instances": rows}).raise_for_status().json(), expected)
    assert_matches(httpx.post(url, json={"inputs": columns_of(rows)}).raise_for_status().json(), expected)
    order = [i["name"] for i in httpx.get(f"{served.url}/v1/models/{champion.name}").json()["inputs"]]
    positional = [[row[name] for name in order] for row in rows]
    assert_matches(httpx.post(url, json={"instances": positional}).raise_for_status().json(), expected)


def test_mlflow_scoring_protocol_every_layout(served: Server, champion: Champion, expected) -> None:
    rows = champion.rows[:20]
    url = f"{served.url}/invocations"
    names = list(rows[0])
    bodies = [{"dataframe_records": rows},
              {"dataframe_split": {"columns": names, "data": [[row[n] for n in names] for row in rows]}},
              {"instances": rows},
              {"inputs": columns_of(rows)},
              {"inputs": {k: [[v] for v in values] for k, values in columns_of(rows).items()}}]  # [N,1] tensors
    for body in bodies:
        assert_matches(httpx.post(url, json=body).raise_for_status().json(), expected)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=names)
    writer.writeheader()
    writer.writerows(rows)
    answer = httpx.post(url, content=text.getvalue(), headers={"Content-Type": "text/csv"}).raise_for_status().json()
    assert_matches(answer, expected)


def test_one_row_as_clients_usually_send_it(served: Server, champion: Champion, expected) -> None:
    answer = httpx.post(f"{served.url}/v1/models/{champion.name}:predict",
                        json={"instances": champion.rows[:1]}).raise_for_status().json()
    assert answer["predictions"] == expected[0][:1] and len(answer["probabilities"]) == 1


def test_metadata_and_health(served: Server, champion: Champion) -> None:
    metadata = httpx.get(f"{served.url}/v1/models/{champion.name}").raise_for_status().json()
    assert metadata["name"] == champion.name and metadata["version"] == "1" and metadata["ready"] is True
    assert metadata["task"] == "classification" and metadata["classes"] == [0, 1]
    kinds = {i["name"]: i["datatype"] for i in metadata["inputs"]}
    assert kinds == {name: ("BYTES" if isinstance(value, str) else "FP32") for name, value in champion.rows[0].items()}
    assert httpx.get(f"{served.url}/v1/models").json() == {"models": [champion.name]}
    ready = httpx.get(f"{served.url}/readyz")
    assert ready.status_code == 200 and ready.json()["version"] == "1"
    for path in ("/healthz", "/ping", "/health"):
        assert httpx.get(f"{served.url}{path}").status_code == 200
