"""The Kubernetes gateway against kmock's emulator: idempotent creates, pod-template patches, errors in its own terms."""

from __future__ import annotations

import ast
import asyncio
import socket
from pathlib import Path

import pytest
import yaml

from driftloop.k8s_gateway import Cluster, KubernetesApiError, KubernetesNotConfigured, OwnedByAnother

from ..conftest import REPO


def _kubeconfig(path: Path, server: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": server}}], "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "ml"}}]}))
    return path


def test_only_the_gateway_imports_kubernetes() -> None:
    importers = set()
    for path in (REPO / "driftloop").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            if any(n == "kubernetes" or n.startswith("kubernetes.") for n in names):
                importers.add(path.relative_to(REPO).as_posix())
    assert importers == {"driftloop/k8s_gateway.py"}


def test_no_configuration_and_no_answer_are_gateway_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(KubernetesNotConfigured):
        Cluster.connect()
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{port}")))
    with Cluster.connect() as cluster, pytest.raises(KubernetesApiError) as caught:
        cluster.read_training_job("ml", "churn")
    assert caught.value.status is None and caught.value.reason


@pytest.mark.asyncio
async def test_ensure_is_idempotent_and_pod_templates_are_patched(kmock, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path / "kubeconfig", str(kmock.url).rstrip("/"))))
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"spec.yaml": "{}"},
                 "metadata": {"name": "churn-g1", "namespace": "ml",
                              "ownerReferences": [{"uid": "owner-1", "kind": "MLTrainingJob", "name": "churn"}]}}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "serve", "namespace": "ml"},
                  "spec": {"selector": {"matchLabels": {"app": "s"}}, "template": {
                      "metadata": {"labels": {"app": "s"}, "annotations": {"keep": "me"}},
                      "spec": {"containers": [{"name": "server", "image": "x"}]}}}}

    import kubernetes

    def scenario() -> None:
        with Cluster.connect() as cluster:
            assert cluster.ensure(configmap, owner_uid="owner-1") is True
            assert cluster.ensure(configmap, owner_uid="owner-1") is False  # a retry finds its own object
            with pytest.raises(OwnedByAnother):
                cluster.ensure(configmap, owner_uid="someone-else")
            assert cluster.read("ConfigMap", "ml", "churn-g1")["data"] == {"spec.yaml": "{}"}
            kubernetes.client.AppsV1Api(cluster.api).create_namespaced_deployment("ml", deployment)
            rolled = cluster.patch_pod_template("ml", "serve", annotations={"driftloop.io/model-version": "7"})
            assert rolled["spec"]["template"]["metadata"]["annotations"] == {"keep": "me",
                                                                             "driftloop.io/model-version": "7"}

    await asyncio.to_thread(scenario)
