"""Conformance with the clients users already run, each against the same champion.

MLflow's `ScoringServerClient`, KServe's `InferenceRESTClient` (V1 and V2) and Triton's
`tritonclient.http` (V2) must each work unchanged, and every one of them must get the
predictions the batch path (`OnnxModel`, what evaluation uses) gives for the same rows.
"""

from __future__ import annotations

import asyncio
import io
import json

import httpx
import numpy as np
import pandas as pd
import pytest

from driftloop.onnx_model import OnnxModel

from .conftest import Champion, Server

pytest.importorskip("kserve")
tritonclient_http = pytest.importorskip("tritonclient.http")

ROWS = 25


@pytest.fixture(scope="module")
def batch(champion: Champion) -> tuple[list, np.ndarray]:
    """What the batch path predicts for the rows every client sends."""
    model = OnnxModel(champion.model_path)
    frame = pd.DataFrame(champion.rows[:ROWS])
    return model.predict(frame), model.run(frame)


def agree(labels: list, probabilities: np.ndarray, batch: tuple[list, np.ndarray]) -> None:
    assert list(labels) == batch[0]
    assert np.allclose(np.asarray(probabilities, dtype=np.float64), batch[1], atol=1e-6)


def test_mlflow_scoring_server_client(served: Server, champion: Champion, batch) -> None:
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    host, port = served.url.removeprefix("http://").split(":")
    client = ScoringServerClient(host, int(port))
    client.wait_server_ready(timeout=10)
    client.ping()
    assert client.get_version()
    frame = pd.DataFrame(champion.rows[:ROWS])
    # a DataFrame (dataframe_split), records (inputs: [rows]) and a body as text (dataframe_records); a dict
    # is not tried: MLflow's dump_input_data iterates a dict's keys as pairs and fails before sending it
    records = json.dumps({"dataframe_records": champion.rows[:ROWS]})
    for data in (frame, champion.rows[:ROWS], records):
        answer = client.invoke(data)
        agree(answer["predictions"], answer["probabilities"], batch)
    csv = httpx.post(f"{served.url}/invocations", content=frame.to_csv(index=False),
                     headers={"Content-Type": "text/csv"}).raise_for_status().json()
    agree(csv["predictions"], csv["probabilities"], batch)
    with pytest.raises(Exception, match="BAD_REQUEST"):  # the client surfaces MLflow's error body
        client.invoke(frame.drop(columns=["plan"]))


def test_kserve_v1_rest_client(served: Server, champion: Champion, batch) -> None:
    from kserve import InferenceRESTClient, RESTConfig

    async def drive() -> dict:
        client = InferenceRESTClient(RESTConfig(protocol="v1", retries=0))
        try:
            assert await client.is_server_live(served.url)
            assert await client.is_model_ready(served.url, champion.name)
            answer = await client.infer(served.url, {"instances": champion.rows[:ROWS]}, model_name=champion.name)
            with pytest.raises(httpx.HTTPStatusError, match="'customer_age' is missing"):  # KServe's {"error"} reaches the message
                await client.infer(served.url, {"instances": [{"plan": 1}]}, model_name=champion.name)
            return answer
        finally:
            await client.close()

    answer = asyncio.run(drive())
    agree(answer["predictions"], answer["probabilities"], batch)


def test_kserve_v2_rest_client(served: Server, champion: Champion, batch) -> None:
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

    rows = champion.rows[:ROWS]
    inputs = []
    for name in rows[0]:
        values = [row[name] for row in rows]
        text = isinstance(values[0], str)
        tensor = InferInput(name, [ROWS, 1], "BYTES" if text else "FP32")
        tensor.set_data_from_numpy(np.array(values, dtype=object if text else np.float32).reshape(-1, 1),
                                   binary_data=False)
        inputs.append(tensor)

    async def drive():
        client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0))
        try:
            assert await client.is_server_live(served.url) and await client.is_server_ready(served.url)
            assert await client.is_model_ready(served.url, champion.name)
            return await client.infer(served.url, InferRequest(champion.name, inputs), model_name=champion.name)
        finally:
            await client.close()

    outputs = {o.name: o for o in asyncio.run(drive()).outputs}
    agree(outputs["predictions"].as_numpy().tolist(), outputs["probabilities"].as_numpy(), batch)


def test_tritonclient_v2(served: Server, champion: Champion, batch) -> None:
    client = tritonclient_http.InferenceServerClient(url=served.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(champion.name)
    rows = champion.rows[:ROWS]
    inputs = []
    for item in client.get_model_metadata(champion.name)["inputs"]:  # built from the metadata, as a V2 user does
        name, datatype = item["name"], item["datatype"]
        values = np.array([row[name] for row in rows], dtype=object if datatype == "BYTES" else np.float32)
        tensor = tritonclient_http.InferInput(name, [ROWS, 1], datatype)
        tensor.set_data_from_numpy(values.reshape(-1, 1))
        inputs.append(tensor)
    result = client.infer(champion.name, inputs)
    agree(result.as_numpy("predictions").tolist(), result.as_numpy("probabilities"), batch)


def test_every_protocol_reads_the_same_csv_rows(served: Server, champion: Champion) -> None:
    """The same table, as CSV with pandas' index and as V1 rows, gives the same answer."""
    frame = pd.DataFrame(champion.rows[:ROWS])
    text = io.StringIO()
    frame.to_csv(text)
    csv = httpx.post(f"{served.url}/invocations", content=text.getvalue(), headers={"Content-Type": "text/csv"})
    v1 = httpx.post(f"{served.url}/v1/models/{champion.name}:predict", json={"instances": champion.rows[:ROWS]})
    assert csv.json()["predictions"] == v1.json()["predictions"]
