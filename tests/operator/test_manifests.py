"""The operator's manifests as `kubectl kustomize` builds them: scope and RBAC (the cluster part is in the e2e tests)."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml

from driftloop.operator.drift_render import CLUSTER_ROLE, SERVICE_ACCOUNT, render_drift_identity

from ..conftest import REPO

DISCOVERY = [{"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
              "verbs": ["list", "watch"]},
             {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]}]


def built(overlay: str) -> dict[tuple[str, str], dict[str, Any]]:
    done = subprocess.run(["kubectl", "kustomize", str(REPO / "manifests" / overlay)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(done.stdout) if o}


@pytest.fixture(scope="module")
def base() -> dict[tuple[str, str], dict[str, Any]]:
    return built("base")


@pytest.fixture(scope="module")
def namespaced() -> dict[tuple[str, str], dict[str, Any]]:
    return built("overlays/namespaced")


def test_the_namespaced_overlay_grants_in_one_namespace_and_only_reads_cluster_wide(
        base: dict[tuple[str, str], Any], namespaced: dict[tuple[str, str], Any]) -> None:
    cluster_rules = base["ClusterRole", "driftloop-operator"]["rules"]
    assert cluster_rules[:2] == DISCOVERY
    assert namespaced["ClusterRole", "driftloop-operator"]["rules"] == DISCOVERY
    role = namespaced["Role", "driftloop-operator"]
    assert role["metadata"]["namespace"] == "driftloop"
    assert role["rules"] == cluster_rules[2:]  # all the base grants cluster-wide, but discovery
    binding = namespaced["RoleBinding", "driftloop-operator"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "driftloop-operator"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "driftloop-operator", "namespace": "driftloop"}]
    command = namespaced["Deployment", "driftloop-operator"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[-2:] == ["--namespace", "driftloop"]
    assert "--namespace" not in base["Deployment", "driftloop-operator"]["spec"]["template"]["spec"]["containers"][0][
        "command"]
    # Nothing cluster-wide in this overlay lets the operator write (the aggregated user roles are not the operator's).
    operator_roles = [o for (kind, name), o in namespaced.items() if kind == "ClusterRole"
                      and "aggregate-to-edit" not in str(o["metadata"].get("labels"))]
    for role in operator_roles:
        for rule in role["rules"]:
            assert set(rule["verbs"]) <= {"get", "list", "watch", "patch"} or rule.get("resourceNames"), rule


def test_mltrainingjobs_join_the_built_in_edit_and_view_roles(base: dict[tuple[str, str], Any]) -> None:
    edit = base["ClusterRole", "driftloop-mltrainingjobs-edit"]
    view = base["ClusterRole", "driftloop-mltrainingjobs-view"]
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert {"create", "patch", "delete"} <= set(edit["rules"][0]["verbs"])
    assert set(view["rules"][0]["verbs"]) == {"get", "list", "watch"}
    assert "mltrainingjobs/status" in view["rules"][0]["resources"]


@pytest.mark.parametrize(("overlay", "kind"), [("base", "ClusterRole"), ("overlays/namespaced", "Role")])
def test_the_operator_may_set_blocking_owner_references(overlay: str, kind: str) -> None:
    """kopf.adopt sets blockOwnerDeletion, which OwnerReferencesPermissionEnforcement (OpenShift) allows only
    with `update` on the owner's finalizers: without it every Job, Service and CronJob create is a 403 there."""
    rules = built(overlay)[kind, "driftloop-operator"]["rules"]
    assert any("driftloop.io" in r["apiGroups"] and "mltrainingjobs/finalizers" in r["resources"]
               and "update" in r["verbs"] for r in rules), rules


def test_the_operator_may_bind_the_drift_check_role_and_no_other(base: dict[tuple[str, str], Any]) -> None:
    rules = base["ClusterRole", "driftloop-operator"]["rules"]
    binds = [r for r in rules if "bind" in r["verbs"] or "escalate" in r["verbs"]]
    assert binds == [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"],
                      "resourceNames": [CLUSTER_ROLE]}]
    assert base["ClusterRole", CLUSTER_ROLE]["rules"] == [
        {"apiGroups": ["driftloop.io"], "resources": ["mltrainingjobs"], "verbs": ["get", "patch"]}]
    # What the operator creates in a resource's namespace names that role and account.
    account, binding = render_drift_identity("team-b")
    assert account["metadata"]["name"] == SERVICE_ACCOUNT
    assert binding["roleRef"]["name"] == CLUSTER_ROLE and binding["subjects"][0]["namespace"] == "team-b"
    assert not any(kind == "ServiceAccount" and name == SERVICE_ACCOUNT for kind, name in base)  # the operator's job


@pytest.mark.parametrize("overlay", ["base", "overlays/dev", "overlays/namespaced"])
def test_the_operator_holds_no_mlflow_credentials_and_cannot_reach_mlflow(overlay: str) -> None:
    """The training pods register with the resource's Secret; the operator has no Secret, no MLflow env,
    may read no Secret, and MLflow's NetworkPolicy does not admit it."""
    objects = built(overlay)
    pod = objects["Deployment", "driftloop-operator"]["spec"]["template"]["spec"]
    for container in pod["containers"] + pod.get("initContainers", []):
        assert "envFrom" not in container, container["envFrom"]
        for env in container.get("env") or []:
            assert not env["name"].startswith(("MLFLOW_", "AWS_")), env
            assert "secretKeyRef" not in (env.get("valueFrom") or {}), env
    assert not any("secret" in volume or "projected" in volume for volume in pod.get("volumes") or [])
    for (kind, name), role in objects.items():
        if kind in ("Role", "ClusterRole") and name == "driftloop-operator":
            assert not any("secrets" in rule.get("resources", []) or "*" in rule.get("resources", [])
                           for rule in role["rules"]), role["rules"]
    policy = objects.get(("NetworkPolicy", "mlflow"))
    if policy is not None:
        clients = [peer.get("podSelector", {}).get("matchLabels", {}) for rule in policy["spec"]["ingress"]
                   for peer in rule.get("from", [])]
        assert {"app.kubernetes.io/name": "driftloop-operator"} not in clients, clients
        assert {"app.kubernetes.io/name": "driftloop"} in clients  # the pods that register do reach it
