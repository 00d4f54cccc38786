"""The Open Inference Protocol (V2) over REST, driven by a real V2 client: tritonclient[http]."""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
import pytest

from driftloop.onnx_model import OnnxModel

from .conftest import Champion, Server

tritonclient_http = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402


@pytest.fixture(scope="module")
def client(served: Server):
    return tritonclient_http.InferenceServerClient(url=served.url.removeprefix("http://"))


@pytest.fixture(scope="module")
def expected(champion: Champion) -> tuple[list, np.ndarray]:
    model = OnnxModel(champion.model_path)
    frame = pd.DataFrame(champion.rows[:20])
    return model.predict(frame), model.run(frame)


def tensors(rows: list[dict], *, binary: bool, ints: bool = False, overrides: dict | None = None) -> list:
    """One InferInput per raw column: BYTES for text, FP32 (or INT64 for whole numbers when `ints`) for numbers."""
    inputs = []
    for name in rows[0]:
        values = [row[name] for row in rows]
        if isinstance(values[0], str):
            array, datatype = np.array(values, dtype=object).reshape(-1, 1), "BYTES"
        elif ints and all(isinstance(v, int) for v in values):
            array, datatype = np.array(values, dtype=np.int64).reshape(-1, 1), "INT64"
        else:
            array, datatype = np.array(values, dtype=np.float32).reshape(-1, 1), "FP32"
        if overrides and name in overrides:
            array, datatype = overrides[name]
        tensor = tritonclient_http.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array, binary_data=binary)
        inputs.append(tensor)
    return inputs


def test_health_and_metadata(client, champion: Champion) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(champion.name) and client.is_model_ready(champion.name, "1")
    assert not client.is_model_ready("other") and not client.is_model_ready(champion.name, "7")
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
    metadata = client.get_model_metadata(champion.name)
    assert metadata["name"] == champion.name and metadata["versions"] == ["1"]
    kinds = {i["name"]: i["datatype"] for i in metadata["inputs"]}
    assert kinds == {name: ("BYTES" if isinstance(value, str) else "FP32") for name, value in champion.rows[0].items()}
    assert all(i["shape"] == [-1, 1] for i in metadata["inputs"])
    assert metadata["outputs"] == [{"name": "predictions", "datatype": "INT64", "shape": [-1]},
                                   {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}]
    assert client.get_model_metadata(champion.name, "1") == metadata


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
@pytest.mark.parametrize("ints", [False, True], ids=["fp32", "int64"])
def test_infer_matches_the_model(client, champion: Champion, expected, binary: bool, ints: bool) -> None:
    outputs = [tritonclient_http.InferRequestedOutput("predictions", binary_data=binary),
               tritonclient_http.InferRequestedOutput("probabilities", binary_data=binary)]
    result = client.infer(champion.name, tensors(champion.rows[:20], binary=binary, ints=ints), outputs=outputs,
                          request_id="r-1")
    labels, probabilities = expected
    assert result.as_numpy("predictions").tolist() == labels
    assert np.allclose(result.as_numpy("probabilities"), probabilities, atol=1e-6)
    response = result.get_response()
    assert response["model_name"] == champion.name and response["model_version"] == "1" and response["id"] == "r-1"


def test_infer_all_outputs_binary_by_default_and_versioned(client, champion: Champion, expected) -> None:
    result = client.infer(champion.name, tensors(champion.rows[:20], binary=True), model_version="1")
    assert result.as_numpy("predictions").tolist() == expected[0]
    assert result.as_numpy("probabilities").shape == (20, 2)


def test_v2_json_over_plain_http(served: Server, champion: Champion, expected) -> None:
    rows = champion.rows[:20]
    inputs = [{"name": n, "datatype": "BYTES" if isinstance(rows[0][n], str) else "FP64", "shape": [20],
               "data": [r[n] for r in rows]} for n in rows[0]]
    answer = httpx.post(f"{served.url}/v2/models/{champion.name}/infer", json={"inputs": inputs}).raise_for_status()
    outputs = {o["name"]: o for o in answer.json()["outputs"]}
    assert outputs["predictions"]["data"] == expected[0] and outputs["predictions"]["shape"] == [20]
    assert np.allclose(np.reshape(outputs["probabilities"]["data"], (20, 2)), expected[1], atol=1e-6)


NUMBER = "data_usage_gb"


def bad_cases() -> list:
    return [
        ("wrong datatype", {NUMBER: (np.array([["a"], ["b"]], dtype=object), "BYTES")}, 400, [f"'{NUMBER}'", "BYTES"]),
        # a number tensor for a category is its codes' text (as on V1), but no infinity is one
        ("infinity for a category", {"plan": (np.array([[1.0], [np.inf]], dtype=np.float32), "FP32")}, 400,
         ["'plan'", "row 1", "not a category"]),
        ("non-finite", {NUMBER: (np.array([[0.5], [np.inf]], dtype=np.float32), "FP32")}, 400,
         [f"'{NUMBER}'", "row 1", "finite"]),
        ("too large for float32", {NUMBER: (np.array([[0.5], [1e39]], dtype=np.float64), "FP64")}, 400,
         [f"'{NUMBER}'", "row 1", "range"]),
        ("ragged", {NUMBER: (np.array([[0.5]], dtype=np.float32), "FP32")}, 400, [f"'{NUMBER}'", "1 rows"]),
        ("not one value per row", {NUMBER: (np.array([[0.5, 1.0], [1.0, 2.0]], dtype=np.float32), "FP32")}, 400,
         [f"'{NUMBER}'", "shape"]),
    ]


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_bad_tensors_are_400_naming_the_input(client, champion: Champion, binary: bool) -> None:
    for case, overrides, status, words in bad_cases():
        with pytest.raises(InferenceServerException) as raised:
            client.infer(champion.name, tensors(champion.rows[:2], binary=binary, overrides=overrides))
        assert raised.value.status() == str(status), case
        assert all(word in raised.value.message() for word in words), (case, raised.value.message())


def test_protocol_errors(served: Server, client, champion: Champion) -> None:
    inputs = tensors(champion.rows[:1], binary=False)
    with pytest.raises(InferenceServerException) as raised:
        client.infer(champion.name, inputs[:-1])
    assert raised.value.status() == "400" and "missing" in raised.value.message()
    with pytest.raises(InferenceServerException) as raised:
        client.infer("other", inputs)
    assert raised.value.status() == "404"
    with pytest.raises(InferenceServerException) as raised:
        client.infer(champion.name, inputs, model_version="7")
    assert raised.value.status() == "404" and "'7'" in raised.value.message()
    with pytest.raises(InferenceServerException) as raised:
        client.infer(champion.name, inputs, outputs=[tritonclient_http.InferRequestedOutput("labels")])
    assert raised.value.status() == "400" and "'labels'" in raised.value.message()
    with pytest.raises(InferenceServerException) as raised:
        client.infer(champion.name, tensors(champion.rows[:1] * 101, binary=True))
    assert raised.value.status() == "413"
    url = f"{served.url}/v2/models/{champion.name}/infer"
    for body in (b"", b"{", b"[]", b'{"inputs": []}', b'{"inputs": [1]}'):
        response = httpx.post(url, content=body)
        assert response.status_code == 400 and set(response.json()) == {"error"}, body
    truncated = httpx.post(url, content=b'{"inputs": []}', headers={"Inference-Header-Content-Length": "99"})
    assert truncated.status_code == 400 and "Inference-Header-Content-Length" in truncated.json()["error"]
    assert httpx.get(url).status_code == 405
    assert httpx.get(f"{served.url}/v2/models/{champion.name}/versions").status_code == 404
