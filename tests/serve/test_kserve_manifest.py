"""manifests/serving/kserve: a ServingRuntime and an InferenceService that serve driftloop over V2.

Two checks, both offline. Always: the fields KServe documents for a custom runtime (what
the controller joins on: model format, runtime name, protocol version; the container it
runs, and that its command line is a valid `driftloop serve`). And, where KServe's CRDs are
on disk (`KSERVE_CRDS`: a folder with `serving.kserve.io_inferenceservices.yaml` and
`serving.kserve.io_servingruntimes.yaml` from kserve/kserve `config/crd/full`), the
documents validate against their OpenAPI schemas, strictly: an unknown field fails, as
`kubectl apply --validate=strict` would. The CRDs are not vendored (2 MB, another project's).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..conftest import REPO

KSERVE = REPO / "manifests" / "serving" / "kserve"
CRD_FILES = {"InferenceService": "serving.kserve.io_inferenceservices.yaml",
             "ServingRuntime": "serving.kserve.io_servingruntimes.yaml"}


@pytest.fixture(scope="module")
def docs() -> dict[str, dict]:
    out = subprocess.run(["kubectl", "kustomize", str(KSERVE)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return {doc["kind"]: doc for doc in yaml.safe_load_all(out.stdout)}


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
    assert context.params["model_name"] == "{{.Name}}"  # KServe puts the InferenceService's name here
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    envvars = {p.envvar for p in serve.params if p.envvar} | {"MLFLOW_TRACKING_URI", "HOME"}
    assert {e["name"] for e in container["env"]} <= envvars


def strict(schema: Any) -> Any:
    """An OpenAPI v3 structural schema as JSON Schema that rejects unknown fields, as the API server prunes them."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields") \
            and "additionalProperties" not in schema:
        out["additionalProperties"] = False
    return out


@pytest.mark.skipif(not os.environ.get("KSERVE_CRDS"), reason="KSERVE_CRDS (KServe's config/crd/full) is not set")
@pytest.mark.parametrize("kind", sorted(CRD_FILES))
def test_validates_against_kserve_crd_schema(docs: dict[str, dict], kind: str) -> None:
    import jsonschema

    crd = yaml.safe_load((Path(os.environ["KSERVE_CRDS"]) / CRD_FILES[kind]).read_text())
    doc = docs[kind]
    version = doc["apiVersion"].split("/")[1]
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    schema = strict(served["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {"type": "object"}  # ObjectMeta is validated by the API server, not the CRD
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors[:10])


def test_strict_schema_rejects_an_unknown_field() -> None:
    import jsonschema

    schema = strict({"type": "object", "properties": {"spec": {"type": "object", "properties": {"a": {}}}}})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"spec": {"protocolVerison": "v2"}}, schema)
