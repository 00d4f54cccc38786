"""manifests/serving/kserve: a ServingRuntime and an InferenceService that serve driftloop over V2.

Two checks, both offline. The fields KServe documents for a custom runtime (what the
controller joins on: model format, runtime name, protocol version; the container it runs,
and that its command line is a valid `driftloop serve`). And every field of both documents
is one KServe's API defines, checked strictly against the `kserve` SDK's models (generated
from KServe's OpenAPI spec, with the `kubernetes` client's models for the core types they
embed): an unknown or misspelt field fails, as `kubectl apply --validate=strict` would.
"""

from __future__ import annotations

import copy
import subprocess
from typing import Any

import pytest
import yaml

from ..conftest import REPO

KSERVE = REPO / "manifests" / "serving" / "kserve"
CRD_FILES = {"InferenceService": "serving.kserve.io_inferenceservices.yaml",
             "ServingRuntime": "serving.kserve.io_servingruntimes.yaml"}


def built(path: Any) -> dict[str, dict]:
    out = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return {doc["kind"]: doc for doc in yaml.safe_load_all(out.stdout)}


@pytest.fixture(scope="module")
def docs() -> dict[str, dict]:
    return built(KSERVE)


@pytest.fixture(scope="module")
def grpc_docs() -> dict[str, dict]:
    return built(KSERVE.parent / "kserve-grpc")


def test_inference_service_uses_the_driftloop_runtime_over_v2(docs: dict[str, dict]) -> None:
    assert set(docs) == {"ServingRuntime", "InferenceService"}
    runtime, isvc = docs["ServingRuntime"], docs["InferenceService"]
    assert runtime["apiVersion"] == "serving.kserve.io/v1alpha1" and isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    model = isvc["spec"]["predictor"]["model"]
    assert model["protocolVersion"] == "v2" and "v2" in runtime["spec"]["protocolVersions"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["modelFormat"]["name"] in {f["name"] for f in runtime["spec"]["supportedModelFormats"]}
    assert "storageUri" not in model  # the server fetches @champion from MLflow itself
    assert runtime["metadata"]["namespace"] == isvc["metadata"]["namespace"]


def test_runtime_container_is_a_valid_serve_command(docs: dict[str, dict]) -> None:
    from driftloop.serve.command import serve

    container = docs["ServingRuntime"]["spec"]["containers"][0]
    assert container["name"] == "kserve-container"  # the name KServe merges the predictor's overrides into
    assert container["command"] == ["driftloop"] and container["args"][0] == "serve"
    context = serve.make_context("serve", list(container["args"][1:]))
    assert context.params["host"] == "0.0.0.0" and context.params["port"] == 8080
    assert context.params["grpc_port"] is None  # HTTP only: a gRPC fault cannot stop it (kserve-grpc serves gRPC)
    assert context.params["model_name"] == "{{.Name}}"  # KServe puts the InferenceService's name here
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    envvars = {p.envvar for p in serve.params if p.envvar} | {"MLFLOW_TRACKING_URI", "HOME"}
    assert {e["name"] for e in container["env"]} <= envvars


_SCALARS = {"str", "int", "float", "bool", "object", "date", "datetime"}


def unknown_fields(value: Any, type_name: str, path: str = "") -> list[str]:
    """The paths in `value` that the API type `type_name` (as the SDK models name it) does not define."""
    import re

    import kserve
    import kubernetes.client

    if type_name in _SCALARS or value is None:
        return []
    if match := re.fullmatch(r"list\[(.+)\]", type_name):
        return [bad for i, item in enumerate(value) for bad in unknown_fields(item, match.group(1), f"{path}[{i}]")]
    if match := re.fullmatch(r"dict\(str, (.+)\)", type_name):
        return [bad for key, item in value.items() for bad in unknown_fields(item, match.group(1), f"{path}.{key}")]
    model = getattr(kserve, type_name, None) or getattr(kubernetes.client, type_name)
    by_json_name = {json_name: attribute for attribute, json_name in model.attribute_map.items()}
    found = []
    for key, item in value.items():
        if key not in by_json_name:
            found.append(f"{path}.{key}".lstrip("."))
        else:
            found += unknown_fields(item, model.openapi_types[by_json_name[key]], f"{path}.{key}")
    return found


API_TYPES = {"InferenceService": "V1beta1InferenceService", "ServingRuntime": "V1alpha1ServingRuntime"}


@pytest.mark.parametrize("kind", sorted(API_TYPES))
def test_every_field_is_one_kserves_api_defines(docs: dict[str, dict], grpc_docs: dict[str, dict], kind: str) -> None:
    assert unknown_fields(docs[kind], API_TYPES[kind]) == []
    assert unknown_fields(grpc_docs[kind], API_TYPES[kind]) == []


def test_the_grpc_overlay_serves_and_exposes_grpc_and_nothing_else_changes(docs: dict[str, dict],
                                                                          grpc_docs: dict[str, dict]) -> None:
    """KServe exposes one predictor port: the overlay names the gRPC one on the InferenceService, as KServe's
    runtimes document for a RawDeployment, and the runtime's container declares the same single port (a merge
    with 8080 would leave HTTP first); probes stay on HTTP, which is always served."""
    from driftloop.serve.command import serve

    grpc_port = [{"name": "grpc-port", "containerPort": 8081, "protocol": "TCP"}]
    runtime, isvc = copy.deepcopy(grpc_docs["ServingRuntime"]), copy.deepcopy(grpc_docs["InferenceService"])
    container = runtime["spec"]["containers"][0]
    context = serve.make_context("serve", list(container["args"][1:]))
    assert context.params["grpc_port"] == 8081 and context.params["port"] == 8080
    assert container.pop("ports") == grpc_port
    assert container["readinessProbe"]["httpGet"]["port"] == context.params["port"]
    assert container.pop("args")[:-2] == docs["ServingRuntime"]["spec"]["containers"][0]["args"]
    base = copy.deepcopy(docs["ServingRuntime"])
    del base["spec"]["containers"][0]["ports"], base["spec"]["containers"][0]["args"]
    assert runtime == base
    assert isvc["spec"]["predictor"]["model"].pop("ports") == grpc_port
    assert isvc == docs["InferenceService"]


def test_the_field_check_catches_a_misspelt_field(docs: dict[str, dict]) -> None:
    isvc = copy.deepcopy(docs["InferenceService"])
    isvc["spec"]["predictor"]["model"]["protocolVerison"] = isvc["spec"]["predictor"]["model"].pop("protocolVersion")
    isvc["spec"]["predictor"]["model"]["env"] = [{"name": "X", "valu": "1"}]
    assert unknown_fields(isvc, API_TYPES["InferenceService"]) == ["spec.predictor.model.protocolVerison",
                                                                   "spec.predictor.model.env[0].valu"]
