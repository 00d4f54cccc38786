"""The deploy step rolls serving targets onto the promoted version: a running server, a Kubernetes Deployment."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml

from driftloop.serve.rollout import MODEL_VERSION_ANNOTATION, roll_deployment

from ..conftest import DRIFTLOOP, REPO, S3, cli_env, free_port, registry_for
from .conftest import Champion, Server


@pytest.mark.slow
def test_driftloop_run_reloads_the_server_it_names(champion: Champion, mlflow_uri: str, s3: S3, tmp_path: Path,
                                                    start_server: Callable[..., Server]) -> None:
    name = "serve_rollout"
    registry = registry_for(mlflow_uri)
    registry.promote(name, registry.register_candidate(name, champion.run_id, tags={}).version)
    server = start_server("--model", name, "--workers", "1", "--poll-interval", "0")  # only a reload can move it
    dead = f"http://127.0.0.1:{free_port()}"
    run = subprocess.run([*DRIFTLOOP, "run", "--data", str(champion.data), "--target", "churned", "--model", name,
                          "--set", "train.epochs=8", "--set", "evaluate.latency_samples=20",
                          "--set", "gate.vs_champion.roc_auc=0.5",
                          "--set", f'serving.reload_urls=["{server.url}", "{dead}"]'],
                         cwd=tmp_path, env=cli_env(mlflow_uri, s3), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"reloaded {server.url} → v2" in run.stderr
    assert f"warning: could not reload {dead}/admin/reload" in run.stderr  # reported, and the promotion stands
    assert registry.champion(name).version == "2"
    assert httpx.get(f"{server.url}/readyz").json()["version"] == "2"


@pytest.fixture
def kubeconfig(kmock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "emulator",
        "clusters": [{"name": "emulator", "cluster": {"server": str(kmock.url).rstrip("/")}}],
        "users": [{"name": "me", "user": {"token": "t"}}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "me", "namespace": "ml"}}]}))
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


@pytest.mark.asyncio
async def test_deployment_from_manifests_is_rolled(kmock, kubeconfig: Path) -> None:
    from kubernetes import client, config

    built = subprocess.run(["kubectl", "kustomize", str(REPO / "manifests" / "serving")], capture_output=True,
                           text=True, check=True).stdout
    deployment = next(d for d in yaml.safe_load_all(built) if d["kind"] == "Deployment")
    config.load_kube_config(str(kubeconfig))
    with client.ApiClient() as api_client:
        apps = client.AppsV1Api(api_client)
        await asyncio.to_thread(apps.create_namespaced_deployment, "ml", deployment)
        line = await asyncio.to_thread(roll_deployment, "driftloop-serving", "churn", "7")  # namespace from context
        rolled = await asyncio.to_thread(apps.read_namespaced_deployment, "driftloop-serving", "ml")
    assert line == "rolling deployment ml/driftloop-serving → v7"
    annotations = rolled.spec.template.metadata.annotations
    assert annotations[MODEL_VERSION_ANNOTATION] == "7" and annotations["driftloop.io/model"] == "churn"
    assert annotations["prometheus.io/scrape"] == "true"  # a patch, not a replacement

    missing = await asyncio.to_thread(roll_deployment, "ml/no-such-deployment", "churn", "7")
    assert missing.startswith("warning: could not roll deployment ml/no-such-deployment")
