"""The operator's scope: `--namespace` watches and acts in one namespace only; drift checks get a
working ServiceAccount in whichever namespace their resource lives."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .cluster import LocalCluster
from .conftest import GROUP, PLURAL, VERSION, OperatorProcess, kubectl, wait_until
from .test_operator_e2e import _hold_jobs, example

OWN, OTHER = "team-a", "team-b"


def create_in(cluster: LocalCluster, namespace: str, body: dict[str, Any], tmp_path: Path) -> None:
    body = body | {"metadata": body["metadata"] | {"namespace": namespace}}
    path = tmp_path / f"{namespace}-{body['metadata']['name']}.yaml"
    path.write_text(yaml.safe_dump(body))
    done = kubectl(cluster, "create", "--validate=false", "-f", str(path))
    assert done.returncode == 0, done.stderr


def status_of(kube: Any, namespace: str, name: str) -> dict[str, Any]:
    import kubernetes

    found = kubernetes.client.CustomObjectsApi(kube).get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                                                                  name)
    return found.get("status") or {}


def jobs_in(kube: Any, namespace: str) -> list[str]:
    import kubernetes

    return [job.metadata.name for job in kubernetes.client.BatchV1Api(kube).list_namespaced_job(namespace).items]


@pytest.fixture(scope="module", autouse=True)
def namespaces(kube: Any) -> None:
    """A namespaced kopf serves a namespace once it has seen it exist."""
    import kubernetes

    for name in (OWN, OTHER):
        kubernetes.client.CoreV1Api(kube).create_namespace({"apiVersion": "v1", "kind": "Namespace",
                                                            "metadata": {"name": name}})


@pytest.fixture
def scoped(cluster: LocalCluster, tmp_path: Path) -> Iterator[OperatorProcess]:
    process = OperatorProcess(cluster, tmp_path / "operator.log", args=("--namespace", OWN, "--standalone"))
    process.start()
    try:
        yield process
    finally:
        process.stop()


def test_a_namespaced_operator_watches_and_acts_in_its_namespace_only(
        cluster: LocalCluster, kube: Any, scoped: OperatorProcess, tmp_path: Path) -> None:
    _hold_jobs(cluster, True)  # the Jobs need not run: that they are made, and where, is the point
    try:
        create_in(cluster, OTHER, example("elsewhere", "http://mlflow.invalid:5000"), tmp_path)
        create_in(cluster, OWN, example("here", "http://mlflow.invalid:5000"), tmp_path)
        wait_until(lambda: status_of(kube, OWN, "here").get("jobName"), timeout=60, what="the Job in team-a")
        assert jobs_in(kube, OWN) and jobs_in(kube, OTHER) == []
        assert status_of(kube, OTHER, "elsewhere") == {}, scoped.log()[-2000:]
        # No watch of the whole cluster, for the resource or for Jobs: kopf asked for team-a's only.
        watched = {(plural, ns) for plural, ns in cluster.cluster.watch_namespaces if plural in (PLURAL, "jobs")}
        assert watched == {(PLURAL, OWN), ("jobs", OWN)}, watched
    finally:
        _hold_jobs(cluster, False)


def test_a_retraining_drift_check_gets_its_service_account_in_its_namespace(
        cluster: LocalCluster, kube: Any, tmp_path: Path) -> None:
    import kubernetes

    process = OperatorProcess(cluster, tmp_path / "operator.log", args=("--standalone",))
    process.start()
    _hold_jobs(cluster, True)
    try:
        drift = {"schedule": "*/30 * * * *", "currentData": "s3://live/current.csv"}
        create_in(cluster, OTHER, example("watched", "http://mlflow.invalid:5000", spec={"drift": drift}), tmp_path)
        batch = kubernetes.client.BatchV1Api(kube)

        def cronjob() -> Any:
            found = batch.list_namespaced_cron_job(OTHER).items
            return found[0] if found else None

        made = wait_until(cronjob, timeout=60, what="the drift CronJob in team-b")
        pod = made.spec.job_template.spec.template.spec
        assert pod.service_account_name == "driftloop-drift-check" and pod.automount_service_account_token
        core, rbac = kubernetes.client.CoreV1Api(kube), kubernetes.client.RbacAuthorizationV1Api(kube)
        account = core.read_namespaced_service_account("driftloop-drift-check", OTHER)
        assert account.metadata.labels["app.kubernetes.io/managed-by"] == "driftloop-operator"
        binding = rbac.read_namespaced_role_binding("driftloop-drift-check", OTHER)
        assert (binding.role_ref.kind, binding.role_ref.name) == ("ClusterRole", "driftloop-drift-check")
        assert [(s.kind, s.name, s.namespace) for s in binding.subjects] == [
            ("ServiceAccount", "driftloop-drift-check", OTHER)]

        # A second resource in that namespace finds them there (an admin's own would do as well).
        create_in(cluster, OTHER, example("watched-too", "http://mlflow.invalid:5000", spec={"drift": drift}),
                  tmp_path)
        wait_until(lambda: len(batch.list_namespaced_cron_job(OTHER).items) == 2, timeout=60,
                   what="the second CronJob")
        assert len(core.list_namespaced_service_account(OTHER).items) == 1
        assert "Traceback" not in process.log()
    finally:
        _hold_jobs(cluster, False)
        process.stop()
