"""The Open Inference Protocol over gRPC, driven by the clients users run: tritonclient[grpc] and KServe's
InferenceGRPCClient (each in a process of its own: see grpc_clients.py). Both transports must give the REST
route's answers, errors and metrics, and the batch path's predictions."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from driftloop import __version__
from driftloop.onnx_model import OnnxModel

from ..conftest import DRIFTLOOP, REPO, cli_env, free_port, grpc_client
from .conftest import Champion, Server
from .grpc_clients import BAD_CASES, bad_inputs, inputs

tritonclient_http = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402

ROWS = 20


def drive(mode: str, served: Server, champion: Champion, tmp_path: Path) -> dict[str, Any]:
    return grpc_client(mode, served, champion.name, champion.rows[:ROWS], tmp_path)


@pytest.fixture(scope="module")
def triton(served: Server, champion: Champion, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return drive("triton", served, champion, tmp_path_factory.mktemp("grpc"))


@pytest.fixture(scope="module")
def rest(served: Server):
    return tritonclient_http.InferenceServerClient(served.url.removeprefix("http://"))


@pytest.fixture(scope="module")
def expected(champion: Champion) -> tuple[list, np.ndarray]:
    model = OnnxModel(champion.model_path)
    frame = pd.DataFrame(champion.rows[:ROWS])
    return model.predict(frame), model.run(frame)


def test_health_and_metadata_match_rest(triton: dict, rest, champion: Champion) -> None:
    assert triton["live"] and triton["ready"]
    # a model not served here is not ready, as over REST, where tritonclient turns the 404 into False
    assert triton["model_ready"] == [True, True, False, False]
    assert triton["server_metadata"] == {"name": "driftloop", "version": __version__,
                                         "extensions": ["binary_tensor_data"]}
    found = triton["model_metadata"]
    for tensor in found["inputs"] + found["outputs"]:  # protobuf's JSON writes int64 as text
        tensor["shape"] = [int(d) for d in tensor["shape"]]
    assert found == rest.get_model_metadata(champion.name)
    status, message = triton["metadata_of_another"]
    assert status == "StatusCode.NOT_FOUND" and "'other' is not served here" in message


def test_tritonclient_infer_gives_the_batch_answers(triton: dict, champion: Champion, expected) -> None:
    infer = triton["infer"]
    assert infer["predictions"] == expected[0]
    assert np.allclose(np.asarray(infer["probabilities"], dtype=np.float64), expected[1], atol=1e-6)
    assert (infer["model_name"], infer["model_version"], infer["id"]) == (champion.name, "1", "req-7")
    assert triton["only_predictions"] == {"outputs": ["predictions"], "predictions": expected[0][:3]}


def test_kserve_grpc_client_with_typed_contents(served: Server, champion: Champion, expected, tmp_path: Path) -> None:
    report = drive("kserve", served, champion, tmp_path)
    assert report["live"] and report["ready"] and report["model_ready"]
    assert report["typed_contents"]  # fp32_contents and bytes_contents, no raw_input_contents
    assert report["infer"]["predictions"] == expected[0]
    assert np.allclose(np.asarray(report["infer"]["probabilities"], dtype=np.float64), expected[1], atol=1e-6)


def test_errors_are_status_codes_with_the_rest_message(triton: dict, rest, champion: Champion) -> None:
    for case, overrides in BAD_CASES:
        status, message = triton["bad"][case]
        with pytest.raises(InferenceServerException) as over_rest:
            rest.infer(champion.name, bad_inputs(tritonclient_http, champion.rows[:2], overrides))
        assert status == "StatusCode.INVALID_ARGUMENT" and over_rest.value.status() == "400", case
        assert message == over_rest.value.message(), case  # one validation, one text
    status, message = triton["too_many_rows"]  # INVALID_ARGUMENT, as Triton answers: no retry policy retries it
    assert status == "StatusCode.INVALID_ARGUMENT" and "100" in message  # the server's --max-rows
    # tritonclient's class_count asks for the classification extension: refused, not silently ignored
    status, message = triton["class_count"]
    with pytest.raises(InferenceServerException) as over_rest:
        rest.infer(champion.name, inputs(tritonclient_http, champion.rows[:2]),
                   outputs=[tritonclient_http.InferRequestedOutput("probabilities", class_count=1)])
    assert status == "StatusCode.INVALID_ARGUMENT" and "classification" in message
    assert over_rest.value.status() == "400" and over_rest.value.message() == message
    assert triton["another_model"][0] == "StatusCode.NOT_FOUND"
    # a message over --max-body-bytes (64 KiB here) is refused by gRPC itself, as REST answers 413
    status, message = triton["too_large"]
    assert status == "StatusCode.RESOURCE_EXHAUSTED" and "65536" in message, message
    # the same rows over REST, for the record: the gRPC answers above came from the same route code
    assert rest.infer(champion.name, inputs(tritonclient_http, champion.rows[:2])).as_numpy("predictions").size == 2


def test_grpc_requests_are_counted_and_logged(triton: dict, served: Server) -> None:
    def counted(status: str) -> float:
        text = httpx.get(f"{served.url}/metrics").text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("driftloop_requests_total{") and 'protocol="v2-grpc"' in line
                   and 'route="infer"' in line and f'status="{status}"' in line)

    def logged() -> bool:
        access = [json.loads(line) for line in served.log_text().splitlines() if '"event":"access"' in line]
        return any(a["method"] == "GRPC" and a["path"] == "/inference.GRPCInferenceService/ModelInfer"
                   and a["status"] == 200 and a["rows"] == ROWS for a in access)

    def done() -> bool:
        return counted("200") >= 2 and counted("400") >= len(BAD_CASES) and counted("413") >= 1 and logged()

    deadline = time.monotonic() + 10  # each worker flushes its counts and log lines every WATCH_TICK_S
    while not done() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert counted("200") >= 2 and counted("400") >= len(BAD_CASES) and counted("413") >= 1
    assert logged()


def test_the_standard_health_service_answers_probes(served: Server, champion: Champion, tmp_path: Path) -> None:
    """What Kubernetes' `grpc` probes, grpc_health_probe and meshes ask (`grpc.health.v1.Health/Check`)."""
    assert grpc_client("health", served, champion.name, [], tmp_path) == {
        "server": "SERVING", "inference": "SERVING", "unknown": "StatusCode.NOT_FOUND"}


def test_health_watchers_hear_not_serving_before_the_server_goes(champion: Champion, start_server) -> None:
    """A load balancer watching the server's health is told it stops serving, before its connection drops."""
    port = free_port()
    server = start_server("--model", champion.name, "--workers", "1", "--grpc-port", str(port))
    watcher = subprocess.Popen([sys.executable, "-m", "tests.serve.grpc_clients", "watch", f"127.0.0.1:{port}"],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert watcher.stdout is not None
        first = watcher.stdout.readline().strip()  # the watch's first answer: the status now
        assert first == "SERVING", (first, watcher.stderr.read() if watcher.poll() is not None else "")
        assert server.stop() == 0, server.log_text()[-2000:]
        after = watcher.communicate(timeout=60)[0].splitlines()
    finally:
        if watcher.poll() is None:
            watcher.kill()
    assert after and after[0] == "NOT_SERVING", after
    assert after[-1].startswith("ended"), after


def test_grpc_port_mistakes_are_one_line(served: Server, tmp_path: Path, mlflow_uri: str, s3) -> None:
    taken, free = served.url.rsplit(":", 1)[1], str(free_port())
    env = cli_env(mlflow_uri, s3)
    for args, words in ((["--port", free, "--grpc-port", taken], f"cannot listen on 127.0.0.1:{taken}"),
                        (["--port", free, "--grpc-port", free], "is the HTTP port")):
        proc = subprocess.run([*DRIFTLOOP, "serve", *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert words in proc.stderr, proc.stderr
