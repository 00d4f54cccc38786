"""The operator's drift policy end to end on the emulator: `spec.drift` → a CronJob; firing it runs a
real `driftloop drift` (a local process) against the champion the operator trained, and its outcome
becomes conditions, events and, on drift, a new training generation.

The emulator has no CronJob controller: `fire_cronjob` starts a check as `kubectl create job
--from=cronjob/…` does, and the Job runner runs it like any other Job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from driftloop.example import DriftKnobs, customers

from ..conftest import S3, registry_for
from .cluster import LocalCluster
from .conftest import GROUP, NAMESPACE, PLURAL, VERSION, OperatorProcess, kubectl, wait_until
from .test_operator_e2e import (
    SECRET,
    _hold_jobs,
    conditions,
    create,
    events_for,
    example,
    owned,
    resource,
    wait_finished,
)

pytestmark = pytest.mark.slow

BUCKET = "driftloop-drift"
CURRENT_KEY = "live/current.csv"
CHECK_TIMEOUT = 300


@pytest.fixture(scope="module")
def data(cluster: LocalCluster, s3: S3, mlflow_uri: str) -> dict[str, Any]:
    """Training data in S3 and the credentials Secret the pods read (the drift check's too)."""
    import kubernetes

    client = s3.client()
    client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key="customers/customers.csv", Body=customers(rows=1500).to_csv(index=False))
    api = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))
    kubernetes.client.CoreV1Api(api).create_namespaced_secret(NAMESPACE, {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET, "namespace": NAMESPACE},
        "type": "Opaque", "stringData": dict(s3.env)})
    return {"mlflow": mlflow_uri, "s3": client}


def with_drift(name: str, mlflow_uri: str, **drift: Any) -> dict[str, Any]:
    policy = {"schedule": "*/30 * * * *", "currentData": f"s3://{BUCKET}/{CURRENT_KEY}", "cooldown": "1h"} | drift
    return example(name, mlflow_uri, spec={"dataSource": {"s3Bucket": BUCKET}, "outputPath": f"s3://{BUCKET}/runs",
                                           "drift": policy})


def cronjob(kube: Any, name: str) -> dict[str, Any] | None:
    import kubernetes
    from kubernetes.client.rest import ApiException

    try:
        found = kubernetes.client.BatchV1Api(kube).read_namespaced_cron_job(name, NAMESPACE)
    except ApiException as e:
        if e.status == 404:
            return None
        raise
    return kube.sanitize_for_serialization(found)


def patch_spec(kube: Any, name: str, spec: dict[str, Any]) -> None:
    import kubernetes

    kubernetes.client.CustomObjectsApi(kube).patch_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name,
                                                                           {"spec": spec})


def checked(kube: Any, name: str, job: str) -> dict[str, Any]:
    """status once the operator recorded check `job`."""
    def recorded() -> dict[str, Any] | None:
        status = resource(kube, name).get("status") or {}
        return status if (status.get("drift") or {}).get("lastCheckJob") == job else None

    return wait_until(recorded, timeout=CHECK_TIMEOUT, what=f"the operator to record drift check {job}")


def test_drift_policy_owns_a_cronjob_that_follows_the_spec(cluster: LocalCluster, kube: Any,
                                                           operator: OperatorProcess, data: dict[str, Any],
                                                           tmp_path: Path) -> None:
    _hold_jobs(cluster, True)  # the training Jobs never run: this is about the CronJob
    try:
        create(cluster, with_drift("drift-crud", data["mlflow"]), tmp_path)
        found = wait_until(lambda: cronjob(kube, "drift-crud-drift"), timeout=60, what="the CronJob")
        uid = resource(kube, "drift-crud")["metadata"]["uid"]
        assert found["metadata"]["ownerReferences"][0]["uid"] == uid
        assert found["spec"]["schedule"] == "*/30 * * * *" and found["spec"]["concurrencyPolicy"] == "Forbid"
        pod = found["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert "--retrain" in pod["containers"][0]["command"]
        assert (resource(kube, "drift-crud").get("status") or {}).get("drift", {}).get("cronJobName") == \
            "drift-crud-drift"

        patch_spec(kube, "drift-crud", {"drift": {"schedule": "@hourly", "retrain": False}})
        updated = wait_until(lambda: (c := cronjob(kube, "drift-crud-drift")) and c["spec"]["schedule"] == "@hourly"
                             and c, timeout=60, what="the CronJob's new schedule")
        pod = updated["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert "--retrain" not in pod["containers"][0]["command"] and not pod.get("serviceAccountName")
        assert pod["automountServiceAccountToken"] is False

        patch_spec(kube, "drift-crud", {"drift": None})
        wait_until(lambda: cronjob(kube, "drift-crud-drift") is None, timeout=60, what="the CronJob to go")
        wait_until(lambda: "drift" not in (resource(kube, "drift-crud").get("status") or {}), timeout=30,
                   what="status.drift to go")
        assert {"DriftCheckScheduled", "DriftCheckRemoved"} <= set(events_for(kube, "drift-crud"))
    finally:
        kubectl(cluster, "delete", "mltj", "drift-crud")
        _hold_jobs(cluster, False)


def test_a_cronjob_the_api_server_refuses_is_a_warning_naming_why(cluster: LocalCluster, kube: Any,
                                                                   operator: OperatorProcess, data: dict[str, Any],
                                                                   tmp_path: Path) -> None:
    """A schedule the CronJob controller's parser rejects (`99 * * * *` passes the CRD's pattern) is a 422 on
    the CronJob's create: `kubectl describe` says so, rather than nothing."""
    import kubernetes
    from kmock import action

    from .cluster import Fault

    refusal = Fault(action.CREATE, "cronjobs", status=422)
    _hold_jobs(cluster, True)
    cluster.call(cluster.cluster.faults.append, refusal)
    try:
        create(cluster, with_drift("drift-refused", data["mlflow"], schedule="99 * * * *"), tmp_path)
        wait_until(lambda: "DriftCheckRefused" in events_for(kube, "drift-refused"), timeout=60,
                   what="the DriftCheckRefused event")
        events = kubernetes.client.CoreV1Api(kube).list_namespaced_event(NAMESPACE).items
        [said] = [e for e in events if e.reason == "DriftCheckRefused" and e.involved_object.name == "drift-refused"]
        assert said.type == "Warning" and "injected 422 for CREATE cronjobs" in said.message, said.message
        assert cronjob(kube, "drift-refused-drift") is None
    finally:
        cluster.call(cluster.cluster.faults.remove, refusal)
        kubectl(cluster, "delete", "mltj", "drift-refused")
        _hold_jobs(cluster, False)


def test_a_drifted_check_retrains_and_a_calm_one_does_not(cluster: LocalCluster, kube: Any,
                                                          operator: OperatorProcess, data: dict[str, Any],
                                                          tmp_path: Path) -> None:
    create(cluster, with_drift("churn-drift", data["mlflow"]), tmp_path)
    status = wait_finished(kube, "churn-drift")
    assert status["phase"] == "Succeeded" and status["modelVersion"] == "1", status
    assert cronjob(kube, "churn-drift-drift") is not None

    # same distribution as the training data: no drift, nothing retrained
    data["s3"].put_object(Bucket=BUCKET, Key=CURRENT_KEY, Body=customers(rows=600, seed=11).to_csv(index=False))
    calm = cluster.fire_cronjob(NAMESPACE, "churn-drift-drift")
    status = checked(kube, "churn-drift", calm)
    found = conditions(status)
    assert found["DriftDetected"]["status"] == "False" and found["DriftDetected"]["reason"] == "NoDrift", found
    assert found["DriftDetected"]["observedGeneration"] == found["RetrainScheduled"]["observedGeneration"] == 1
    assert found["RetrainScheduled"]["status"] == "False"
    assert status["drift"]["result"] == "NoDrift" and status["drift"]["driftedFeatures"] == []
    run_id = status["drift"]["runId"]
    assert status["drift"]["report"] == f"runs:/{run_id}/drift/drift.html"
    registry = registry_for(data["mlflow"])
    assert registry.client.get_run(run_id).data.tags["driftloop.drift"] == "false"
    assert resource(kube, "churn-drift")["metadata"]["generation"] == 1
    assert "NoDrift" in events_for(kube, "churn-drift")

    # tenure shifted by 0.8 sd: drift, and the check asks the operator for generation 2
    shifted = customers(rows=600, seed=12, drift=DriftKnobs(mean_shift={"tenure_months": 0.8}))
    data["s3"].put_object(Bucket=BUCKET, Key=CURRENT_KEY, Body=shifted.to_csv(index=False))
    started = cluster.cluster.jobs_started
    drifted = cluster.fire_cronjob(NAMESPACE, "churn-drift-drift")
    # let the check run, then hold the Jobs it causes: the new generation's Job only has to appear
    wait_until(lambda: cluster.cluster.jobs_started > started, timeout=60, what="the check to start")
    _hold_jobs(cluster, True)
    try:
        status = checked(kube, "churn-drift", drifted)
        found = conditions(status)
        assert found["DriftDetected"]["status"] == "True", found
        assert "tenure_months" in found["DriftDetected"]["message"]
        assert status["drift"]["result"] == "Drift" and "tenure_months" in status["drift"]["driftedFeatures"]
        assert found["RetrainScheduled"]["status"] == "True", found
        assert found["RetrainScheduled"]["reason"] == "RetrainTokenPatched"
        body = resource(kube, "churn-drift")
        assert body["metadata"]["generation"] == 2 and body["spec"]["retrainToken"].startswith("drift-")
        jobs = wait_until(lambda: sorted(j["metadata"]["name"] for j in owned(kube, "Job", "churn-drift"))
                          == ["churn-drift-g1", "churn-drift-g2"], timeout=60, what="generation 2's Job")
        assert jobs
        status = resource(kube, "churn-drift")["status"]
        assert status["observedGeneration"] == 2 and conditions(status)["DriftDetected"]["status"] == "True"
        assert {"DriftDetected", "RetrainScheduled"} <= set(events_for(kube, "churn-drift"))
    finally:
        kubectl(cluster, "delete", "mltj", "churn-drift")
        _hold_jobs(cluster, False)
    assert cronjob(kube, "churn-drift-drift") is None  # owned, so collected with the resource


def test_a_cronjob_update_keeps_a_label_written_between_its_read_and_its_write(
        cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """The update is made from what was read: at that resourceVersion only (409 otherwise), then read again."""
    import kubernetes

    from driftloop.k8s_gateway import Cluster
    from driftloop.operator.drift_policy import apply_cronjob
    from driftloop.operator.drift_render import ANNOTATION_SPEC_HASH

    def cronjob(spec_hash: str, schedule: str) -> dict[str, Any]:
        return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {
            "name": "raced-drift", "namespace": NAMESPACE, "labels": {"driftloop.io/drift-check": "raced"},
            "annotations": {ANNOTATION_SPEC_HASH: spec_hash},
            "ownerReferences": [{"apiVersion": f"{GROUP}/{VERSION}", "kind": "MLTrainingJob", "name": "raced",
                                 "uid": "raced-uid", "controller": True}]},
            "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "check", "image": "driftloop"}]}}}}}}

    class SomeoneWritesAfterTheFirstRead(Cluster):
        reads = 0

        def create_or_read(self, body: dict[str, Any], *, owner_uid: str) -> dict[str, Any] | None:
            found = super().create_or_read(body, owner_uid=owner_uid)
            self.reads += 1
            if self.reads == 1:  # another controller (or `kubectl label`) writes before our patch
                kubernetes.client.BatchV1Api(self.api).patch_namespaced_cron_job(
                    "raced-drift", NAMESPACE, {"metadata": {"labels": {"team": "a"}}})
            return found

    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    with Cluster.connect() as plain:
        assert apply_cronjob(plain, cronjob("h1", "@daily"), owner_uid="raced-uid") == "created"
    with SomeoneWritesAfterTheFirstRead.connect() as racing:
        assert apply_cronjob(racing, cronjob("h2", "@hourly"), owner_uid="raced-uid") == "updated"
        assert racing.reads == 2  # the first patch was refused (409): read again, then written
        stored = racing.read("CronJob", NAMESPACE, "raced-drift")
        racing.delete("CronJob", NAMESPACE, "raced-drift")
    assert stored["spec"]["schedule"] == "@hourly" and stored["metadata"]["annotations"][ANNOTATION_SPEC_HASH] == "h2"
    assert stored["metadata"]["labels"] == {"driftloop.io/drift-check": "raced", "team": "a"}
