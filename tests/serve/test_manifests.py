"""manifests/serving builds with kustomize, validates against Kubernetes 1.30, and matches the CLI it runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ..conftest import REPO

SERVING = REPO / "manifests" / "serving"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:
    out = subprocess.run(["kubectl", "kustomize", str(SERVING)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    path = tmp_path_factory.mktemp("manifests") / "serving.yaml"
    path.write_text(out.stdout)
    return path, {doc["kind"]: doc for doc in yaml.safe_load_all(out.stdout)}


def test_validates_against_kubernetes_1_30(built) -> None:
    path, _ = built
    validate = Path(sys.executable).parent / "kubernetes-validate"
    out = subprocess.run([str(validate), "-k", "1.30.0", "--strict", str(path)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("passed") == 6


def test_deployment_is_safe_and_probed(built) -> None:
    _, docs = built
    assert set(docs) == {"ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
                         "NetworkPolicy"}
    deployment = docs["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"cpu", "memory"} <= set(container["resources"]["requests"]) <= set(container["resources"]["limits"])
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert "driftloop.io/model-version" in deployment["spec"]["template"]["metadata"]["annotations"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = docs["Service"]
    assert all(labels.get(k) == v for k, v in service["spec"]["selector"].items())
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [p["name"] for p in container["ports"]]
    policy = docs["NetworkPolicy"]["spec"]["ingress"][0]["ports"]
    assert [p["port"] for p in policy] == [p["containerPort"] for p in container["ports"]]
    assert docs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    config = docs["ConfigMap"]
    assert container["envFrom"][0]["configMapRef"]["name"] == config["metadata"]["name"]  # hash suffix rewritten


def test_container_command_is_a_valid_serve_command_line(built) -> None:
    """The args parse with the real `driftloop serve` options, and the ConfigMap keys are ones it reads."""
    from driftloop.serve.command import serve

    _, docs = built
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["driftloop"] and container["args"][0] == "serve"
    context = serve.make_context("serve", list(container["args"][1:]))
    assert context.params["host"] == "0.0.0.0" and context.params["port"] == 8080
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": context.params["port"], "grpc": context.params["grpc_port"]}
    envvars = {p.envvar for p in serve.params if p.envvar} | {"MLFLOW_TRACKING_URI"}
    assert set(docs["ConfigMap"]["data"]) <= envvars
