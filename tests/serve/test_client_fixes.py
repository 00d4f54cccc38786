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


# --- second round (stop 22): what a protocol review against the specs and the clients' sources found ---


def logged_values(served: Server, column: str, wanted: set, timeout: float = 10) -> set:
    """Values of `column` in the prediction log (every row is logged here), once `wanted` are all there."""
    assert served.prediction_log is not None
    deadline = time.monotonic() + timeout
    logged: set = set()
    while time.monotonic() < deadline and not wanted <= logged:
        time.sleep(0.3)  # workers flush their logs every half second
        if served.prediction_log.exists():
            lines = served.prediction_log.read_text(encoding="utf-8").split("\n")  # not splitlines: \u2028 is text
            logged = {json.loads(line).get(column) for line in lines if line.strip()}
    return logged


def test_csv_cells_keep_their_line_breaks_and_a_bom_is_not_a_column(served: Server, champion: Champion) -> None:
    """As MLflow's server reads CSV (pandas): a quoted cell's line breaks are its own, a BOM is not text."""
    import pandas as pd

    marks = {f"west\nunit {i}" for i in range(2)} | {"north\u2028annex", "east\x0cdock"}
    frame = pd.DataFrame([with_value(row, "region", mark) for row, mark in zip(champion.rows[:len(marks)], sorted(marks), strict=True)])
    text = frame.to_csv(index=False)
    answer = httpx.post(f"{served.url}/invocations", content=text.encode("utf-8"), headers={"Content-Type": "text/csv"})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == len(marks)  # one row per record, none split at a line break
    assert marks <= logged_values(served, "region", marks)  # the model was fed the cells as written

    plain = pd.DataFrame(champion.rows[:3]).to_csv(index=False)
    expected = httpx.post(f"{served.url}/invocations", content=plain,
                          headers={"Content-Type": "text/csv"}).raise_for_status().json()["predictions"]
    with_bom = httpx.post(f"{served.url}/invocations", content=("\ufeff" + plain).encode("utf-8"),
                          headers={"Content-Type": "text/csv"})
    assert with_bom.status_code == 200, with_bom.text
    assert with_bom.json()["predictions"] == expected


def test_dataframe_split_with_a_non_text_column_name_is_400(served: Server, champion: Champion) -> None:
    names = list(champion.rows[0])
    body = {"dataframe_split": {"columns": [[names[0]], *names[1:]], "data": [list(champion.rows[0].values())]}}
    response = httpx.post(f"{served.url}/invocations", json=body)
    assert response.status_code == 400, response.text  # was a 500: the list name reached a set()
    assert response.json()["error_code"] == "BAD_REQUEST" and "columns[0]" in response.json()["message"]


def test_v2_empty_outputs_list_answers_every_output(served: Server, champion: Champion) -> None:
    rows = champion.rows[:3]
    inputs = [{"name": n, "datatype": "BYTES" if isinstance(rows[0][n], str) else "FP64", "shape": [3],
               "data": [r[n] for r in rows]} for n in rows[0]]
    url = f"{served.url}/v2/models/{champion.name}/infer"
    answer = httpx.post(url, json={"inputs": inputs, "outputs": []}).raise_for_status().json()
    assert [o["name"] for o in answer["outputs"]] == ["predictions", "probabilities"]


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_tritonclient_compressed_requests(served: Server, champion: Champion, algorithm: str) -> None:
    """tritonclient's `request_compression_algorithm`: the body is compressed whole, the header length is not."""
    tritonclient_http = pytest.importorskip("tritonclient.http")
    from .grpc_clients import inputs

    client = tritonclient_http.InferenceServerClient(served.url.removeprefix("http://"))
    rows = champion.rows[:20]
    plain = client.infer(champion.name, inputs(tritonclient_http, rows))
    packed = client.infer(champion.name, inputs(tritonclient_http, rows), request_compression_algorithm=algorithm)
    assert packed.as_numpy("predictions").tolist() == plain.as_numpy("predictions").tolist()
    assert np.array_equal(packed.as_numpy("probabilities"), plain.as_numpy("probabilities"))


def test_compressed_bodies_that_cannot_be_read_are_refused(served: Server, champion: Champion) -> None:
    import gzip

    url = f"{served.url}/invocations"
    body = json.dumps({"dataframe_records": champion.rows[:2]}).encode()
    ok = httpx.post(url, content=gzip.compress(body), headers={"Content-Type": "application/json",
                                                              "Content-Encoding": "gzip"})
    assert ok.status_code == 200, ok.text
    cases = {  # encoding, body → status, words
        "br": (body, 415, "'br' is not supported"),
        "gzip": (body, 400, "not valid gzip"),  # not compressed at all
        "deflate": (gzip.compress(body)[:-12], 400, "not valid deflate"),
    }
    for encoding, (content, status, words) in cases.items():
        response = httpx.post(url, content=content, headers={"Content-Type": "application/json",
                                                             "Content-Encoding": encoding})
        assert response.status_code == status and words in response.json()["message"], (encoding, response.text)
    truncated = httpx.post(url, content=gzip.compress(body)[:-12], headers={"Content-Type": "application/json",
                                                                            "Content-Encoding": "gzip"})
    assert truncated.status_code == 400 and "ends before" in truncated.json()["message"], truncated.text
    # 64 KiB is this server's limit: a 40 KiB body that inflates past it is refused, and costs no more
    bomb = gzip.compress(b" " * 10_000_000)
    assert len(bomb) < 65536
    response = httpx.post(url, content=bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert response.status_code == 413 and "once decompressed" in response.json()["message"], response.text


def test_a_csv_cell_over_the_csv_modules_limit_is_a_400_not_a_500() -> None:
    from driftloop.serve.errors import ClientError
    from driftloop.serve.schema import InputSchema

    schema = InputSchema(("a",), ("c",), max_rows=4)
    text = "a,c\n1," + "x" * 200_000 + "\n"  # pandas reads it; Python's csv module stops at 128 KiB a field
    with pytest.raises(ClientError) as refused:
        schema.columns_of_csv(text)
    assert refused.value.status == 400 and "csv line" in refused.value.message and "field limit" in refused.value.message
