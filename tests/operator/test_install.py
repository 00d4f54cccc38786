"""The install (`kubectl apply -k manifests/overlays/dev`): one pass from empty, MLflow behind its basic-auth app,
NetworkPolicies that name their clients.

What one pass needs is checked here on the build kubectl applies (test_apply_e2e runs the real
`kubectl apply -k` on the test cluster); MLflow's auth runs for real, configured exactly as the
manifests configure it.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftloop.operator.drift_render import drift_labels
from driftloop.operator.render import Owner, labels

from ..conftest import REPO, free_port, wait_for

CLUSTER_SCOPED = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}


def build(overlay: str) -> list[dict[str, Any]]:
    done = subprocess.run(["kubectl", "kustomize", str(REPO / "manifests" / overlay)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return [o for o in yaml.safe_load_all(done.stdout) if o]


@pytest.fixture(scope="module")
def dev() -> list[dict[str, Any]]:
    return build("overlays/dev")


def named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [found] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def test_one_apply_from_empty_has_everything_it_refers_to(dev: list[dict[str, Any]]) -> None:
    kinds_defined = {o["spec"]["names"]["kind"] for o in dev if o["kind"] == "CustomResourceDefinition"}
    # An object of a kind whose CRD is in the same apply fails there (the CRD is not established yet).
    assert not [o["kind"] for o in dev if o["kind"] in kinds_defined]
    namespaces = [o["metadata"]["name"] for o in dev if o["kind"] == "Namespace"]
    first_namespaced = next(i for i, o in enumerate(dev) if o["kind"] not in CLUSTER_SCOPED)
    assert dev[0]["kind"] == "Namespace" and first_namespaced > 0
    for o in dev:
        if o["kind"] not in CLUSTER_SCOPED:
            assert o["metadata"].get("namespace") in namespaces, (o["kind"], o["metadata"]["name"])
    # Every Secret, ConfigMap, claim and account a pod needs is in the apply, so no pod waits on a missing one.
    present = {(o["kind"], o["metadata"]["name"]) for o in dev}
    for deployment in (o for o in dev if o["kind"] == "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        needed = {("ServiceAccount", pod["serviceAccountName"])} if pod.get("serviceAccountName") else set()
        for volume in pod.get("volumes") or []:
            if "configMap" in volume:
                needed.add(("ConfigMap", volume["configMap"]["name"]))
            if "persistentVolumeClaim" in volume:
                needed.add(("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]))
        for container in pod["containers"]:
            for item in container.get("env") or []:
                ref = (item.get("valueFrom") or {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    needed.add(("Secret", ref["name"]))
        assert needed <= present, (deployment["metadata"]["name"], needed - present)


def test_mlflow_runs_its_basic_auth_app_with_the_admin_from_a_secret(dev: list[dict[str, Any]]) -> None:
    container = named(dev, "Deployment", "mlflow")["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:4] == ["mlflow", "server", "--app-name", "basic-auth"]
    env = {e["name"]: e for e in container["env"]}
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "password"
    ini = named(dev, "ConfigMap", "mlflow-auth")["data"]["basic_auth.ini"]
    assert "password" not in ini  # the password lives in the Secret only


def _served(dev: list[dict[str, Any]], tmp_path: Path) -> tuple[str, subprocess.Popen]:
    """MLflow as the dev overlay's Deployment runs it: its command, env, auth config and Secret, on loopback."""
    deployment = named(dev, "Deployment", "mlflow")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: tmp_path / m["name"] for m in container["volumeMounts"]}
    for mount in container["volumeMounts"]:
        local = mounts[mount["mountPath"]]
        local.mkdir()
        if "configMap" in volumes[mount["name"]]:
            for file, text in named(dev, "ConfigMap", volumes[mount["name"]]["configMap"]["name"])["data"].items():
                (local / file).write_text(text)

    prefixes = re.compile("(" + "|".join(map(re.escape, sorted(mounts, key=len, reverse=True))) + ")/")

    def local(text: str) -> str:  # in one pass: a local path must not be mapped again
        return prefixes.sub(lambda m: f"{mounts[m.group(1)]}/", text)

    for file in mounts["/etc/mlflow-auth"].iterdir():
        file.write_text(local(file.read_text()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = local(item["value"])
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            secret = named(dev, "Secret", ref["name"])
            env[item["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
    port = free_port()
    argv = [local(a) for a in container["command"]]
    argv[argv.index("--host") + 1], argv[argv.index("--port") + 1] = "127.0.0.1", str(port)
    argv[argv.index("--workers") + 1] = "1"
    log = open(tmp_path / "mlflow.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", *argv], env=env, cwd=tmp_path, stdout=log,
                               stderr=subprocess.STDOUT)
    uri = f"http://127.0.0.1:{port}"
    wait_for(f"{uri}/health", timeout=120, process=process)  # the probes' path needs no credentials
    return uri, process


def test_mlflow_as_deployed_refuses_clients_without_the_credentials(dev: list[dict[str, Any]], tmp_path: Path) -> None:
    uri, process = _served(dev, tmp_path)
    try:
        probe = ("import sys\nfrom driftloop.mlflow_gateway import connect\n"
                 "from driftloop.runner import error_line\n"
                 "try:\n    connect(sys.argv[1])\n"
                 "except Exception as e:\n    print(error_line(e)); sys.exit(1)\nprint('ok')\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | {
            "PYTHONPATH": str(REPO), "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
        refused = subprocess.run([sys.executable, "-c", probe, uri], env=env, capture_output=True, text=True,
                                 timeout=120)
        assert refused.returncode == 1 and "401" in refused.stdout + refused.stderr, refused.stdout + refused.stderr
        wrong = env | {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": "guess"}
        assert subprocess.run([sys.executable, "-c", probe, uri], env=wrong, capture_output=True, text=True,
                              timeout=120).returncode == 1
        # What a client's driftloop-credentials Secret holds in dev (see overlays/dev).
        client = env | {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": "driftloop-dev"}
        allowed = subprocess.run([sys.executable, "-c", probe, uri], env=client, capture_output=True, text=True,
                                 timeout=120)
        assert allowed.returncode == 0 and allowed.stdout.strip() == "ok", allowed.stdout + allowed.stderr
    finally:
        process.terminate()
        process.wait(timeout=30)


def _selects(peer: dict[str, Any], labels: dict[str, str]) -> bool:
    wanted = (peer.get("podSelector") or {}).get("matchLabels") or {}
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def test_network_policies_name_their_clients(dev: list[dict[str, Any]]) -> None:
    policies = [o for o in dev if o["kind"] == "NetworkPolicy"]
    for policy in policies:
        for rule in policy["spec"].get("ingress") or []:
            assert rule.get("from"), f"{policy['metadata']['name']} lets any pod in"
    mlflow = named(dev, "NetworkPolicy", "mlflow")["spec"]["ingress"]
    peers = [peer for rule in mlflow for peer in rule["from"]]
    owner = Owner("churn", "team-b", "uid", 1)
    serving = build("serving")
    kserve = build("serving/kserve")
    server = named(serving, "Deployment", "driftloop-serving")["spec"]["template"]
    predictor = named(kserve, "InferenceService", "customers")["spec"]["predictor"]
    clients = {
        "training pod": labels(owner),
        "drift-check pod": drift_labels("churn"),
        "model server": server["metadata"]["labels"],
        # KServe's pods carry the predictor's labels beside its own
        "KServe predictor": {**predictor.get("labels", {}), "serving.kserve.io/inferenceservice": "customers",
                             "component": "predictor"},
    }
    for who, pod_labels in clients.items():
        assert any(_selects(peer, pod_labels) for peer in peers), who
    # both servers fetch @champion themselves, so both log in (MLflow runs with basic auth)
    runtime = named(kserve, "ServingRuntime", "driftloop")["spec"]["containers"][0]
    for who, container in (("model server", server["spec"]["containers"][0]), ("KServe runtime", runtime)):
        assert {"name": "driftloop-credentials", "optional": True} in [
            source.get("secretRef") for source in container.get("envFrom", [])], who
    # The operator never calls MLflow (its training pods register), so MLflow does not let it in.
    operator = named(dev, "Deployment", "driftloop-operator")["spec"]["template"]["metadata"]["labels"]
    assert not any(_selects(peer, operator) for peer in peers)
    assert all("namespaceSelector" in peer for peer in peers)  # training pods live in their resources' namespaces
    assert not any(_selects(peer, {"app.kubernetes.io/name": "mlflow"}) for peer in peers)
    assert named(dev, "NetworkPolicy", "driftloop-operator")["spec"]["ingress"] == []
