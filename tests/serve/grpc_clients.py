"""Drive `driftloop serve --grpc-port` with a real gRPC client in a process of its own; print what it saw as JSON.

    python -m tests.serve.grpc_clients triton|infer|kserve|health HOST:PORT MODEL ROWS.json
    python -m tests.serve.grpc_clients watch HOST:PORT

Its own process because tritonclient[grpc] and kserve each register the protocol's messages
(`inference.*`) in protobuf's default pool: one Python process can import only one of them,
and the suite imports kserve for its REST client (test_conformance.py).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import numpy as np

NUMBER = "monthly_charges"
# (case, overrides of one column's (array, datatype); None: the last column is left out)
BAD_CASES: list[tuple[str, dict[str, tuple[np.ndarray, str]] | None]] = [
    ("missing column", None),
    ("wrong datatype", {NUMBER: (np.array([["a"], ["b"]], dtype=object), "BYTES")}),
    ("non-finite", {NUMBER: (np.array([[0.5], [np.inf]], dtype=np.float32), "FP32")}),
    ("too large for float32", {NUMBER: (np.array([[0.5], [1e39]]), "FP64")}),
]


def inputs(client_module: Any, rows: list[dict], overrides: dict | None = None) -> list:
    """One InferInput per column, from numpy, as users of tritonclient (grpc or http) build them: over gRPC it
    travels as raw_input_contents, over REST as the binary tensor extension."""
    built = []
    for name in rows[0]:
        values = [row[name] for row in rows]
        text = isinstance(values[0], str)
        array = np.array(values, dtype=object if text else np.float32).reshape(-1, 1)
        datatype = "BYTES" if text else "FP32"
        if overrides and name in overrides:
            array, datatype = overrides[name]
        tensor = client_module.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)
        built.append(tensor)
    return built


def bad_inputs(client_module: Any, rows: list[dict], overrides: dict | None) -> list:
    built = inputs(client_module, rows, overrides)
    return built[:-1] if overrides is None else built


def triton(address: str, model: str, rows: list[dict]) -> dict[str, Any]:
    import tritonclient.grpc as grpc_client
    from tritonclient.utils import InferenceServerException

    client = grpc_client.InferenceServerClient(address)
    deadline = time.monotonic() + 30  # the workers start their gRPC servers beside the HTTP routes
    while True:
        try:
            client.is_server_live()
            break
        except InferenceServerException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)

    def failure(call: Any) -> list[str]:
        try:
            call()
        except InferenceServerException as error:
            return [error.status(), error.message()]
        return ["no error", ""]

    report: dict[str, Any] = {
        "live": client.is_server_live(), "ready": client.is_server_ready(),
        "model_ready": [client.is_model_ready(model), client.is_model_ready(model, "1"),
                        client.is_model_ready("other"), client.is_model_ready(model, "7")],
        "server_metadata": client.get_server_metadata(as_json=True),
        "model_metadata": client.get_model_metadata(model, as_json=True),
        "metadata_of_another": failure(lambda: client.get_model_metadata("other")),
    }
    result = client.infer(model, inputs(grpc_client, rows), request_id="req-7")
    response = result.get_response(as_json=True)
    report["infer"] = {"predictions": result.as_numpy("predictions").tolist(),
                       "probabilities": result.as_numpy("probabilities").tolist(),
                       "model_name": response["model_name"], "model_version": response["model_version"],
                       "id": response["id"]}
    only = client.infer(model, inputs(grpc_client, rows[:3]),
                        outputs=[grpc_client.InferRequestedOutput("predictions")])
    report["only_predictions"] = {"outputs": [o["name"] for o in only.get_response(as_json=True)["outputs"]],
                                  "predictions": only.as_numpy("predictions").tolist()}
    report["bad"] = {case: failure(lambda o=overrides: client.infer(model, bad_inputs(grpc_client, rows[:2], o)))
                     for case, overrides in BAD_CASES}
    report["class_count"] = failure(lambda: client.infer(
        model, inputs(grpc_client, rows[:2]), outputs=[grpc_client.InferRequestedOutput("probabilities", class_count=1)]))
    report["too_large"] = failure(lambda: client.infer(model, inputs(grpc_client, rows[:1] * 3000)))
    report["too_many_rows"] = failure(lambda: client.infer(model, inputs(grpc_client, rows[:1] * 101)))
    report["another_model"] = failure(lambda: client.infer("other", inputs(grpc_client, rows[:1])))
    return report


def infer(address: str, model: str, rows: list[dict]) -> dict[str, Any]:
    """The rows, typed as the model's metadata says (FP32 numbers, BYTES text), and what came back: any model,
    a regression's FP32 predictions or a classifier's text labels (BYTES, decoded here)."""
    import tritonclient.grpc as grpc_client

    client = grpc_client.InferenceServerClient(address)
    metadata = client.get_model_metadata(model, as_json=True)
    tensors = []
    for item in metadata["inputs"]:
        text = item["datatype"] == "BYTES"
        # a missing value as a tensor can carry it: NaN for a number, "" for text (what the server reads JSON null as)
        values = [row.get(item["name"]) for row in rows]
        values = [("" if v is None else v if isinstance(v, str) else str(v)) if text else
                  (np.nan if v is None else float(v)) for v in values]
        array = np.array(values, dtype=object if text else np.float32).reshape(-1, 1)
        tensor = grpc_client.InferInput(item["name"], list(array.shape), item["datatype"])
        tensor.set_data_from_numpy(array)
        tensors.append(tensor)
    result = client.infer(model, tensors)
    outputs = {o["name"]: o["datatype"] for o in metadata["outputs"]}
    report = {name: [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy(name).tolist()]
              for name in outputs}
    return report | {"datatypes": outputs}


def kserve(address: str, model: str, rows: list[dict]) -> dict[str, Any]:
    """KServe's client sends list data as typed `contents` (fp32_contents, bytes_contents), not raw bytes."""
    from kserve import InferenceGRPCClient, InferInput, InferRequest

    tensors = []
    for name in rows[0]:
        values = [row[name] for row in rows]
        text = isinstance(values[0], str)
        tensors.append(InferInput(name, [len(rows), 1], "BYTES" if text else "FP32",
                                  data=values if text else [float(v) for v in values]))
    sent = InferRequest(model, tensors).to_grpc()

    async def drive() -> dict[str, Any]:
        client = InferenceGRPCClient(address)
        try:
            report: dict[str, Any] = {"live": await client.is_server_live(), "ready": await client.is_server_ready(),
                                      "model_ready": await client.is_model_ready(model),
                                      "typed_contents": not sent.raw_input_contents
                                      and all(t.HasField("contents") for t in sent.inputs)}
            outputs = {o.name: o for o in (await client.infer(InferRequest(model, tensors))).outputs}
            report["infer"] = {"predictions": outputs["predictions"].as_numpy().tolist(),
                               "probabilities": outputs["probabilities"].as_numpy().tolist()}
            return report
        finally:
            await client.close()

    return asyncio.run(drive())


def health(address: str, model: str, rows: list[dict]) -> dict[str, Any]:
    """gRPC's standard health service, asked as Kubernetes' `grpc` probe and grpc_health_probe ask it (Check),
    for the server (""), the inference service by name, and a service the server does not have."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    def check(service: str) -> str:
        try:
            answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=30)
        except grpc.RpcError as e:
            return str(e.code())
        return health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)

    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return {"server": check(""), "inference": check("inference.GRPCInferenceService"),
                "unknown": check("no.such.Service")}


def watch(address: str) -> None:
    """Watch the server's health ("") and print each status as it comes (a load balancer's view), then how it ended."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        stream = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=120)
        try:
            for answer in stream:
                print(health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status), flush=True)
        except grpc.RpcError as e:
            print(f"ended {e.code()}", flush=True)
            return
    print("ended", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "watch":
        watch(sys.argv[2])
        sys.exit()
    mode, address, model, rows_file = sys.argv[1:5]
    with open(rows_file, encoding="utf-8") as handle:
        rows = json.load(handle)
    print(json.dumps({"triton": triton, "infer": infer, "kserve": kserve, "health": health}[mode](address, model, rows)))
