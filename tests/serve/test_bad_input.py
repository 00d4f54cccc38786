"""Every client error gets its status and a message naming the column; none is a 500 or stops the server."""

from __future__ import annotations

import httpx
import pytest

from .conftest import Champion, Server


def with_value(row: dict, column: str, value: object) -> dict:
    return {**row, column: value}


def without(row: dict, column: str) -> dict:
    return {k: v for k, v in row.items() if k != column}


CASES = [
    # (id, body builder, status, words the message must contain)
    ("missing column", lambda r: {"instances": [without(r, "plan")]}, 400, ["'plan'", "missing"]),
    ("unknown column", lambda r: {"instances": [with_value(r, "colour", "red")]}, 400, ["'colour'", "unknown"]),
    ("text for a number", lambda r: {"instances": [with_value(r, "customer_age", "forty")]}, 400,
     ["'customer_age'", "not a number"]),
    ("boolean for a number", lambda r: {"instances": [with_value(r, "tenure_months", True)]}, 400,
     ["'tenure_months'", "not a number"]),
    ("list for a category", lambda r: {"instances": [with_value(r, "plan", [3])]}, 400, ["'plan'", "not a category"]),
    ("object for a category", lambda r: {"instances": [with_value(r, "region", {"a": 1})]}, 400, ["'region'"]),
    ("second row wrong", lambda r: {"instances": [r, with_value(r, "customer_age", "x")]}, 400,
     ["'customer_age'", "row 1"]),
    ("ragged columns", lambda r: {"inputs": {**{k: [v, v] for k, v in r.items()}, "plan": ["pro"]}}, 400, ["'plan'"]),
    ("no rows", lambda r: {"instances": []}, 400, ["no rows"]),
    ("too many rows", lambda r: {"instances": [r] * 101}, 413, ["101 rows", "limit of 100"]),
    ("no known key", lambda r: {"rows": [r]}, 400, ["instances"]),
    ("two keys", lambda r: {"instances": [r], "inputs": {}}, 400, ["exactly one"]),
    ("not an object", lambda r: [r], 400, ["JSON object"]),
    ("row not an object", lambda r: {"instances": ["x"]}, 400, ["instances[0]"]),
    ("split row too short", lambda r: {"dataframe_split": {"columns": list(r), "data": [list(r.values())[:-1]]}}, 400,
     ["dataframe_split.data[0]"]),
]


@pytest.mark.parametrize("body, status, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_body_gets_its_status(served: Server, champion: Champion, body, status: int, words: list[str]) -> None:
    response = httpx.post(f"{served.url}/v1/models/{champion.name}:predict", json=body(champion.rows[0]))
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert all(word in message for word in words), message


@pytest.mark.parametrize("literal", ["Infinity", "-Infinity", "1e999"])
def test_non_finite_number_names_the_column(served: Server, champion: Champion, literal: str) -> None:
    # Python's json (and so many Python clients) writes NaN and Infinity for non-finite floats
    import json

    body = json.dumps({"instances": [with_value(champion.rows[0], "data_usage_gb", 0.5)]}).replace("0.5", literal)
    response = httpx.post(f"{served.url}/invocations", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400  # MLflow's error shape on /invocations
    assert "'data_usage_gb'" in response.json()["message"] and "finite" in response.json()["message"]


@pytest.mark.parametrize("literal", ["null", "NaN"])
def test_missing_number_is_imputed_as_in_training(served: Server, champion: Champion, literal: str) -> None:
    # the model file holds the fitted imputer: a missing number is what training saw as NaN, not a bad request
    import json

    body = json.dumps({"instances": [with_value(champion.rows[0], "data_usage_gb", 0.5)]}).replace("0.5", literal)
    response = httpx.post(f"{served.url}/invocations", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == 1


def test_protocol_errors(served: Server, champion: Champion) -> None:
    predict = f"{served.url}/v1/models/{champion.name}:predict"
    malformed = httpx.post(predict, content=b'{"instances": [', headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400 and "not valid JSON" in malformed.json()["error"]
    assert httpx.post(predict, content=b"").status_code == 400
    too_big = httpx.post(predict, content=b" " * 70_000, headers={"Content-Type": "application/json"})
    assert too_big.status_code == 413 and "limit of 65536 bytes" in too_big.json()["error"]
    chunked = httpx.post(predict, content=iter([b" " * 40_000, b" " * 40_000]))  # no Content-Length
    assert chunked.status_code == 413
    other_model = httpx.post(f"{served.url}/v1/models/other:predict", json={"instances": champion.rows[:1]})
    assert other_model.status_code == 404 and "'other'" in other_model.json()["error"]
    assert httpx.get(predict).status_code == 405
    assert httpx.get(f"{served.url}/nowhere").status_code == 404
    unsupported = httpx.post(f"{served.url}/invocations", content=b"x", headers={"Content-Type": "text/plain"})
    assert unsupported.status_code == 415
    bad_csv = httpx.post(f"{served.url}/invocations", content=",".join(champion.rows[0]) + "\n" + "x," * 8 + "x\n",
                         headers={"Content-Type": "text/csv"})
    assert bad_csv.status_code == 400 and "not a number" in bad_csv.json()["message"]


def test_server_survives_every_bad_input(served: Server, champion: Champion) -> None:
    for _, body, _, _ in CASES:
        httpx.post(f"{served.url}/v1/models/{champion.name}:predict", json=body(champion.rows[0]))
    assert served.process.poll() is None
    good = httpx.post(f"{served.url}/v1/models/{champion.name}:predict", json={"instances": champion.rows[:1]})
    assert good.status_code == 200
    metrics = httpx.get(f"{served.url}/metrics").text
    assert 'status="500"' not in metrics
