"""The operator end to end: kubectl → emulated API server → the real operator (a subprocess) →
a Job whose pod really trains (a local process) against a real MLflow server and S3 endpoint.

One emulator, one operator and one MLflow server serve the whole module.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftloop.constants import ENV_TERMINATION_GRACE_S, TERMINATION_GRACE_S
from driftloop.example import customers
from driftloop.runner import stop_budget_s

from ..conftest import REPO, S3, registry_for
from ..mlflow_proxy import MLflowProxy
from .cluster import Fault, LocalCluster
from .conftest import GROUP, NAMESPACE, PLURAL, VERSION, OperatorProcess, kubectl, wait_until

pytestmark = pytest.mark.slow

BUCKET = "driftloop-data"
SECRET = "driftloop-credentials"
EXAMPLE = REPO / "examples" / "mltrainingjob.yaml"
TRAIN_TIMEOUT = 400


def deep_merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        out[key] = deep_merge(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


@pytest.fixture(scope="module")
def training(cluster: LocalCluster, s3: S3, mlflow_uri: str) -> dict[str, Any]:
    """Data in S3 and the credentials Secret the example's pods read, created as a user would."""
    client = s3.client()
    client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key="customers/customers.csv", Body=customers(rows=1500).to_csv(index=False))
    broken = customers(rows=300).drop(columns=["churned"])
    client.put_object(Bucket=BUCKET, Key="customers/broken.csv", Body=broken.to_csv(index=False))
    import kubernetes

    # Through the client, not `kubectl create secret`: kubectl sends built-in kinds as protobuf,
    # which the emulator does not decode.
    api = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))
    kubernetes.client.CoreV1Api(api).create_namespaced_secret(NAMESPACE, {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET, "namespace": NAMESPACE},
        "type": "Opaque", "stringData": dict(s3.env)})
    return {"mlflow": mlflow_uri}


def example(name: str, mlflow_uri: str, **changes: Any) -> dict[str, Any]:
    """The shipped example, pointed at the test servers and made small enough to train in seconds."""
    body = yaml.safe_load(EXAMPLE.read_text())
    body = deep_merge(body, {"metadata": {"name": name, "namespace": NAMESPACE}, "spec": {
        "mlflow": {"trackingUri": mlflow_uri, "modelName": name},
        "hyperparameters": {"epochs": "15", "lr": "0.003", "patience": "3"},
        "gate": {"min": {"roc_auc": 0.7}},  # a small table trained briefly
        "resources": {"cpu": "1", "memory": "1Gi"},
        "runPolicy": {"backoffLimit": 0}}})
    return deep_merge(body, changes)


def create(cluster: LocalCluster, body: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / f"{body['metadata']['name']}.yaml"
    path.write_text(yaml.safe_dump(body))
    # The emulator serves no OpenAPI document for kubectl's client-side check; it validates server-side.
    done = kubectl(cluster, "create", "--validate=false", "-f", str(path))
    assert done.returncode == 0, done.stderr


def resource(kube: Any, name: str) -> dict[str, Any]:
    import kubernetes

    return kubernetes.client.CustomObjectsApi(kube).get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL,
                                                                                 name)


def wait_finished(kube: Any, name: str, *, generation: int = 1, timeout: float = TRAIN_TIMEOUT) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        status = resource(kube, name).get("status") or {}
        done = status.get("observedGeneration") == generation and status.get("phase") in ("Succeeded", "Failed")
        return status if done else None

    return wait_until(finished, timeout=timeout, what=f"{name} generation {generation} to finish")


def owned(kube: Any, kind: str, name: str) -> list[dict[str, Any]]:
    """Objects labelled as belonging to resource `name` (selector applied client-side too: the emulator ignores it)."""
    import kubernetes

    selector = f"driftloop.io/mltrainingjob={name}"
    if kind == "Job":
        items = kubernetes.client.BatchV1Api(kube).list_namespaced_job(NAMESPACE, label_selector=selector).items
    else:
        items = kubernetes.client.CoreV1Api(kube).list_namespaced_pod(NAMESPACE, label_selector=selector).items
    found = [kube.sanitize_for_serialization(item) for item in items]
    return [o for o in found if (o["metadata"].get("labels") or {}).get("driftloop.io/mltrainingjob") == name]


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status.get("conditions") or []}


def events_for(kube: Any, name: str) -> list[str]:
    import kubernetes

    events = kubernetes.client.CoreV1Api(kube).list_namespaced_event(NAMESPACE).items
    return [e.reason for e in events if e.involved_object is not None and e.involved_object.name == name]


def wait_for_events(kube: Any, name: str, *reasons: str) -> None:
    """Events are posted in the background (as kube's own controllers do): eventually there, not at once."""
    wait_until(lambda: set(reasons) <= set(events_for(kube, name)), timeout=60, what=f"events {reasons} on {name}")


def test_example_trains_registers_then_a_declined_generation_and_cleanup(
        cluster: LocalCluster, kube: Any, operator: OperatorProcess, training: dict[str, Any], tmp_path: Path) -> None:
    create(cluster, example("churn", training["mlflow"]), tmp_path)
    status = wait_finished(kube, "churn")
    assert status["phase"] == "Succeeded", status
    uid = resource(kube, "churn")["metadata"]["uid"]
    assert status.get("modelVersion") == "1" and status["gate"] == "Passed" and status["modelName"] == "churn", (registry_for(training["mlflow"]).versions("churn"), status)
    assert status["jobName"] == "churn-g1" and status["observedGeneration"] == 1 and status["runId"]
    assert status["startTime"] <= status["completionTime"]
    found = conditions(status)
    assert {"JobCreated", "Running", "Succeeded", "GatePassed", "Promoted"} <= set(found)
    assert found["Promoted"]["status"] == "True" and found["GatePassed"]["status"] == "True"
    assert found["Running"]["status"] == "False" and found["Succeeded"]["reason"] == "Succeeded"
    assert all(r.startswith("PASS") for r in status["gateReasons"]) and status["gateReasons"]

    registry = registry_for(training["mlflow"])
    champion = registry.champion("churn")
    assert champion.version == "1" and champion.run_id == status["runId"]
    assert champion.tags["driftloop.k8s.uid"] == uid and champion.tags["driftloop.k8s.generation"] == "1"
    assert champion.tags["driftloop.k8s.namespace"] == NAMESPACE and champion.tags["driftloop.k8s.name"] == "churn"
    assert len(champion.tags["driftloop.data_sha256"]) == 64
    run = registry.client.get_run(status["runId"])
    assert run.data.tags["driftloop.k8s.uid"] == uid and run.data.tags["driftloop.deployed"] == "true"

    jobs = owned(kube, "Job", "churn")
    assert [j["metadata"]["name"] for j in jobs] == ["churn-g1"]
    assert jobs[0]["metadata"]["ownerReferences"][0]["uid"] == uid
    wait_for_events(kube, "churn", "JobCreated", "Running", "Promoted")
    shown = kubectl(cluster, "get", "mltj", "churn", "-o", "yaml")
    assert shown.returncode == 0 and yaml.safe_load(shown.stdout)["status"]["modelVersion"] == "1"
    _recreated_job_registers_nothing(kube, "churn-g1", mlflow_uri=training["mlflow"], run_id=status["runId"], uid=uid)

    # A spec change (here weaker training and a new retrainToken) is a new generation and a new Job;
    # this one's gate declines, so it succeeds without touching the champion.
    import kubernetes

    kubernetes.client.CustomObjectsApi(kube).patch_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, "churn", {"spec": {
            "retrainToken": "drift-2026-11-23",
            "hyperparameters": {"epochs": "1", "hidden_sizes": "[1]", "lr": "0.00001"},
            "gate": {"vsChampion": {"roc_auc": 0.0}}}})
    status = wait_finished(kube, "churn", generation=2)
    assert status["phase"] == "Succeeded" and status["jobName"] == "churn-g2", status
    assert status["gate"] == "Declined" and status.get("modelVersion") is None
    found = conditions(status)
    assert found["GatePassed"]["status"] == "False" and found["Promoted"]["status"] == "False"
    assert any(r.startswith("FAIL") for r in status["gateReasons"])
    assert registry.champion("churn").version == "1"
    assert [v["version"] for v in registry.versions("churn")] == ["1"]
    assert sorted(j["metadata"]["name"] for j in owned(kube, "Job", "churn")) == ["churn-g1", "churn-g2"]
    wait_for_events(kube, "churn", "GateDeclined")

    # Deleting the resource removes what it owns (owner references → garbage collection).
    deleted = kubectl(cluster, "delete", "mltj", "churn")
    assert deleted.returncode == 0, deleted.stderr
    assert owned(kube, "Job", "churn") == []
    assert owned(kube, "Pod", "churn") == []
    assert [v["version"] for v in registry.versions("churn")] == ["1"]  # the registry keeps its history


def _recreated_job_registers_nothing(kube: Any, job_name: str, *, mlflow_uri: str, run_id: str, uid: str) -> None:
    """The pod registers exactly once per uid+generation: the same generation's Job made again (as a retried
    pod would) finds the version an earlier pod tagged, trains nothing, opens no run and makes no second version."""
    import kubernetes

    batch = kubernetes.client.BatchV1Api(kube)
    job = kube.sanitize_for_serialization(batch.read_namespaced_job(job_name, NAMESPACE))
    batch.delete_namespaced_job(job_name, NAMESPACE, propagation_policy="Background")
    wait_until(lambda: job_name not in {j.metadata.name for j in batch.list_namespaced_job(NAMESPACE).items},
               timeout=30, what=f"{job_name} deleted")
    kept = ("labels", "ownerReferences")
    batch.create_namespaced_job(NAMESPACE, {"apiVersion": "batch/v1", "kind": "Job", "spec": job["spec"], "metadata": {
        "name": job_name, "namespace": NAMESPACE, **{key: job["metadata"][key] for key in kept}}})

    def finished_pod() -> dict[str, Any] | None:
        pods = [p for p in owned(kube, "Pod", job["metadata"]["labels"]["driftloop.io/mltrainingjob"])
                if p["metadata"]["labels"].get("job-name") == job_name and p["status"].get("containerStatuses")]
        return pods[0] if pods else None

    pod = wait_until(finished_pod, timeout=TRAIN_TIMEOUT, what=f"the re-created {job_name}'s pod to finish")
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    reported = json.loads(terminated["message"])
    assert terminated["exitCode"] == 0 and reported["already_registered"] is True, reported
    assert reported["model_version"] == "1" and reported["run_id"] == run_id and reported["deployed"] is True
    assert len(terminated["message"].encode()) < 4096
    registry = registry_for(mlflow_uri)
    assert [v["version"] for v in registry.versions(reported["model_name"])] == ["1"]
    runs = registry.client.search_runs([registry.client.get_run(run_id).info.experiment_id],
                                       f"tags.`driftloop.k8s.uid` = '{uid}'")
    assert [r.info.run_id for r in runs] == [run_id]  # no second run either


def test_the_pod_reads_its_run_spec_from_its_own_template_and_no_configmap_is_made(
        cluster: LocalCluster, kube: Any, operator: OperatorProcess, training: dict[str, Any], tmp_path: Path) -> None:
    """A generation costs the API server one create (the Job): the run spec rides on the pod template,
    and the pod reads it through a downward-API volume, so no ConfigMap is made, read or waited for."""
    import kubernetes

    before = dict(cluster.cluster.served)
    create(cluster, example("churn-lean", training["mlflow"], spec={"hyperparameters": {
        "epochs": "15", "lr": "0.003", "patience": "3", "hidden_sizes": "[16, 4]"}}), tmp_path)
    status = wait_finished(kube, "churn-lean")
    assert status["phase"] == "Succeeded" and status["modelVersion"] == "1", status
    configmap_requests = {verb: count - before.get(verb, 0) for verb, count in cluster.cluster.served.items()
                          if "configmaps" in verb and count > before.get(verb, 0)}
    assert configmap_requests == {}, configmap_requests
    job = kube.sanitize_for_serialization(
        kubernetes.client.BatchV1Api(kube).read_namespaced_job("churn-lean-g1", NAMESPACE))
    assert not any("configMap" in volume for volume in job["spec"]["template"]["spec"]["volumes"])
    [pod] = owned(kube, "Pod", "churn-lean")
    carried = yaml.safe_load(pod["metadata"]["annotations"]["driftloop.io/run-spec"])
    assert carried["registry"]["model_name"] == "churn-lean" and carried["train"]["hidden_sizes"] == [16, 4]
    # What the pod trained with is that spec: its run logged the hyperparameters the annotation carried.
    run = registry_for(training["mlflow"]).client.get_run(status["runId"])
    assert run.data.params["train.hidden_sizes"] == "[16, 4]", run.data.params


def test_a_new_resource_gets_its_job_before_any_write_to_it_and_the_finalizer_once_it_trains(
        cluster: LocalCluster, kube: Any, operator: OperatorProcess, training: dict[str, Any], tmp_path: Path) -> None:
    """No request waits before the Job's create (kopf once patched a finalizer on first and acted in the
    cycle after). A Job that runs no pod yet has nothing for a delete to stop: no finalizer, and a delete
    goes at once, the Job with it. Once its pods run, the finalizer holds a delete while the Job is deleted first."""
    from kmock import action

    writes: list[float] = []  # when each write to the resource itself (not its status) arrived

    def spied(request: Any) -> bool:
        if request.name in ("churn-first", "churn-held"):
            writes.append(time.monotonic())
        return False  # a spy: it never answers for the emulator

    spy = Fault(action.UPDATE, PLURAL, when=spied)
    _hold_jobs(cluster, True)
    cluster.call(cluster.cluster.faults.append, spy)
    try:
        create(cluster, example("churn-first", training["mlflow"], spec=ENDLESS), tmp_path)
        create(cluster, example("churn-held", training["mlflow"]), tmp_path)
        for name in ("churn-first", "churn-held"):
            wait_until(lambda name=name: resource(kube, name).get("status", {}).get("jobName"), timeout=60,
                       what=f"{name}'s status to record its Job")
            assert resource(kube, name)["status"]["phase"] == "Pending"
            assert not resource(kube, name)["metadata"].get("finalizers")  # no pod yet: nothing to hold a delete for
        job_created = cluster.cluster.created_at["jobs", NAMESPACE, "churn-first-g1"]
        assert all(job_created < write for write in writes), (job_created, writes)
        job_deletes = cluster.cluster.served.get("DELETE jobs", 0)
        deleted = kubectl(cluster, "delete", "mltj", "churn-held")  # nothing holds it
        assert deleted.returncode == 0, deleted.stderr
        wait_until(lambda: owned(kube, "Job", "churn-held") == [], timeout=60, what="the garbage collector")
        assert cluster.cluster.served.get("DELETE jobs", 0) == job_deletes  # the collector's, not the operator's
    finally:
        cluster.call(cluster.cluster.faults.remove, spy)
        _hold_jobs(cluster, False)
    finalizers = lambda: resource(kube, "churn-first")["metadata"].get("finalizers")  # noqa: E731
    assert wait_until(finalizers, timeout=60, what="the finalizer") == ["driftloop.io/end-mlflow-run"]
    assert resource(kube, "churn-first")["status"]["startTime"]  # its pod runs
    job_deletes = cluster.cluster.served.get("DELETE jobs", 0)  # the garbage collector sends none
    deleted = kubectl(cluster, "delete", "mltj", "churn-first")  # waits until the finalizer lets it go
    assert deleted.returncode == 0, deleted.stderr
    assert cluster.cluster.served.get("DELETE jobs", 0) > job_deletes  # the operator's, before the resource went
    assert owned(kube, "Job", "churn-first") == []


def test_two_workers_train_data_parallel_and_register_one_version(cluster: LocalCluster, kube: Any,
                                                                  operator: OperatorProcess,
                                                                  training: dict[str, Any], tmp_path: Path) -> None:
    """workers: 2 → an Indexed Job of two pods plus a headless Service; torchrun joins the pods (gloo on
    loopback, the Service name resolved as cluster DNS would) and rank 0 registers the one model."""
    import kubernetes

    create(cluster, example("churn-ddp", training["mlflow"], spec={"workers": 2}), tmp_path)
    status = wait_finished(kube, "churn-ddp")
    assert status["phase"] == "Succeeded" and status["modelVersion"] == "1", status
    job = kubernetes.client.BatchV1Api(kube).read_namespaced_job("churn-ddp-g1", NAMESPACE)
    assert job.spec.completion_mode == "Indexed" and job.spec.completions == 2 and job.status.succeeded == 2
    service = kubernetes.client.CoreV1Api(kube).read_namespaced_service("churn-ddp-g1", NAMESPACE)
    assert service.spec.cluster_ip == "None"
    assert service.metadata.owner_references[0].uid == resource(kube, "churn-ddp")["metadata"]["uid"]
    pods = owned(kube, "Pod", "churn-ddp")
    assert sorted(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in pods) == ["0", "1"]
    assert all(p["status"]["phase"] == "Succeeded" for p in pods)

    registry = registry_for(training["mlflow"])
    assert [v["version"] for v in registry.versions("churn-ddp")] == ["1"]
    run = registry.client.get_run(status["runId"])
    assert run.data.params["train.world_size"] == "2"
    assert run.data.tags["driftloop.k8s.uid"] == resource(kube, "churn-ddp")["metadata"]["uid"]


def test_bad_data_fails_at_once_with_the_pods_reason_and_registers_nothing(
        cluster: LocalCluster, kube: Any, operator: OperatorProcess, training: dict[str, Any], tmp_path: Path) -> None:
    """A table without its target column never trains, so three retries would be three wasted pods."""
    import kubernetes

    body = example("churn-broken", training["mlflow"], spec={"dataSource": {"path": "customers/broken.csv"},
                                                             "runPolicy": {"backoffLimit": 3}})
    create(cluster, body, tmp_path)
    status = wait_finished(kube, "churn-broken")
    assert status["phase"] == "Failed", status
    failed = conditions(status)["Failed"]
    assert failed["status"] == "True" and failed["reason"] == "PodFailurePolicy", failed
    pods = owned(kube, "Pod", "churn-broken")
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    terminated = pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 4
    pod_error = json.loads(terminated["message"])["error"]  # the pod's termination message: `--json`'s error line
    assert "churned" in pod_error and failed["message"] == pod_error == status["message"], (pod_error, failed)
    assert kubernetes.client.BatchV1Api(kube).read_namespaced_job("churn-broken-g1", NAMESPACE).status.failed == 1
    assert "modelVersion" not in status or status["modelVersion"] is None
    assert registry_for(training["mlflow"]).client.search_model_versions("name='churn-broken'") == []
    wait_for_events(kube, "churn-broken", "Failed")


def test_a_lost_write_of_a_finished_jobs_state_is_retried(
        cluster: LocalCluster, kube: Any, operator: OperatorProcess, training: dict[str, Any], tmp_path: Path) -> None:
    """kopf never retries a Job watcher, and a finished Job sends no further event: the operator retries the
    write that carries its end onto the resource, or the resource would read Running for good."""
    from kmock import action

    from driftloop.operator.constants import ANNOTATION_JOB_STATE

    def final_state_of_lost(request: Any) -> bool:
        data = request.data if isinstance(request.data, dict) else {}
        state = ((data.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_JOB_STATE) or ""
        return request.name == "churn-lost" and ":failed" in state

    lost = Fault(action.UPDATE, PLURAL, status=503, times=2, when=final_state_of_lost)
    cluster.call(cluster.cluster.faults.append, lost)
    try:
        body = example("churn-lost", training["mlflow"], spec={"dataSource": {"path": "customers/broken.csv"}})
        create(cluster, body, tmp_path)
        status = wait_finished(kube, "churn-lost", timeout=120)
        assert status["phase"] == "Failed" and conditions(status)["Failed"]["reason"] == "PodFailurePolicy", status
        assert lost.times == 0, lost  # both refusals were met before the write went through
    finally:
        cluster.call(cluster.cluster.faults.remove, lost)
        kubectl(cluster, "delete", "mltj", "churn-lost")


def test_a_job_deleted_before_it_finished_fails_its_generation_saying_so(
        cluster: LocalCluster, kube: Any, operator: OperatorProcess, training: dict[str, Any], tmp_path: Path) -> None:
    """A Job deleted (by hand, by a TTL) under a generation in flight: without a word, it would read Pending for good."""
    _hold_jobs(cluster, True)
    try:
        create(cluster, example("churn-gone", training["mlflow"]), tmp_path)
        wait_until(lambda: (resource(kube, "churn-gone").get("status") or {}).get("jobName"), timeout=60,
                   what="the Job recorded")
        import kubernetes

        # as `kubectl delete job` does (kubectl itself sends built-in kinds as protobuf, which the emulator cannot read)
        kubernetes.client.BatchV1Api(kube).delete_namespaced_job("churn-gone-g1", NAMESPACE,
                                                                 propagation_policy="Background")
        status = wait_finished(kube, "churn-gone", timeout=60)
        assert status["phase"] == "Failed" and conditions(status)["Failed"]["reason"] == "JobDeleted", status
        assert "churn-gone-g1 was deleted before it finished" in status["message"], status
        wait_for_events(kube, "churn-gone", "JobDeleted")
    finally:
        kubectl(cluster, "delete", "mltj", "churn-gone")
        _hold_jobs(cluster, False)


def test_a_namesakes_job_state_arriving_late_is_not_taken_as_the_new_resources_own(
        cluster: LocalCluster, kube: Any, operator: OperatorProcess, training: dict[str, Any], tmp_path: Path) -> None:
    """A resource deleted and made again under its name gets the same Job name. The old Job's last state can land on
    the new resource late (the mirror retries a failed write for about half a minute): it must not end the new
    generation, nor, being the same words as the new Job's own end, hide that end."""
    from driftloop.operator.constants import ANNOTATION_JOB_STATE

    _hold_jobs(cluster, True)
    name = "churn-again"
    try:
        create(cluster, example(name, training["mlflow"], spec={"dataSource": {"path": "customers/broken.csv"}}),
               tmp_path)
        wait_until(lambda: (resource(kube, name).get("status") or {}).get("jobName"), timeout=60,
                   what="the Job recorded")
        # the old resource's Job failed as this one's will, and its end is written here only now
        stale = f"{name}-g1:failed:PodFailurePolicy:00000000-0000-0000-0000-00000000dead"
        followed = _followed(operator)
        done = kubectl(cluster, "annotate", "mltj", name, f"{ANNOTATION_JOB_STATE}={stale}")
        assert done.returncode == 0, done.stderr
        wait_until(lambda: _followed(operator) > followed, timeout=30, what="the stale state handled")
        # the log does not name the object, so watch a while too: taken as its own, it would read Failed at once
        for _ in range(10):
            assert resource(kube, name)["status"]["phase"] == "Pending"
            time.sleep(0.3)
        _hold_jobs(cluster, False)
        status = wait_finished(kube, name, timeout=120)  # its own Job's end, in other words than the stale one
        assert status["phase"] == "Failed" and conditions(status)["Failed"]["reason"] == "PodFailurePolicy", status
        own = resource(kube, name)["metadata"]["annotations"][ANNOTATION_JOB_STATE]
        assert own.endswith(":" + resource(kube, name)["metadata"]["uid"]), own
    finally:
        kubectl(cluster, "delete", "mltj", name)
        _hold_jobs(cluster, False)


def _followed(operator: OperatorProcess) -> int:
    """How many times `follow_job` has run to success (the plain log does not name the object)."""
    return operator.log().count("Handler 'follow_job/")


def _hold_jobs(cluster: LocalCluster, hold: bool) -> None:
    def switch() -> None:
        if hold:
            cluster.cluster.job_gate = asyncio.Event()
        elif cluster.cluster.job_gate is not None:
            cluster.cluster.job_gate.set()

    cluster.call(switch)


def _processed(operator: OperatorProcess) -> int:
    """Handling cycles the operator's log reports done (a resource in step is filtered out and logs none)."""
    log = operator.log()
    return log.count("Resuming is processed") + log.count("Updating is processed")


def test_restarts_make_one_job_and_one_version(cluster: LocalCluster, kube: Any, operator: OperatorProcess,
                                               training: dict[str, Any], tmp_path: Path) -> None:
    _hold_jobs(cluster, True)  # pods wait: the Job exists but has not run
    try:
        create(cluster, example("churn-restart", training["mlflow"]), tmp_path)
        wait_until(lambda: owned(kube, "Job", "churn-restart"), timeout=60, what="the Job")
        # 1. killed after the Job was created
        wait_until(lambda: (resource(kube, "churn-restart").get("status") or {}).get("jobName"), timeout=60,
                   what="the status to record the Job")
        before = operator.log().count("Resuming is processed")
        operator.kill()
        operator.start()
        # Its Job recorded, the resource is in step: resuming it runs no handler and makes no API call. A
        # resource made after the restart gets its Job after the listing that held this one was handled.
        create(cluster, example("churn-restart-probe", training["mlflow"], spec={"suspend": True}), tmp_path)
        wait_until(lambda: owned(kube, "Job", "churn-restart-probe"), timeout=60, what="the restarted operator")
        kubectl(cluster, "delete", "mltj", "churn-restart-probe", "--wait=false")
        assert len(owned(kube, "Job", "churn-restart")) == 1
        assert operator.log().count("Resuming is processed") == before  # nothing was out of step
        # 2. killed before the Job finished; it finishes while no operator runs, so none registered it
        operator.kill()
    finally:
        _hold_jobs(cluster, False)

    import kubernetes

    batch = kubernetes.client.BatchV1Api(kube)
    wait_until(lambda: (batch.read_namespaced_job("churn-restart-g1", NAMESPACE).status.succeeded or 0) >= 1,
               timeout=TRAIN_TIMEOUT, what="the Job to finish")
    assert resource(kube, "churn-restart")["status"]["phase"] == "Pending"  # nobody followed it
    operator.start()
    status = wait_finished(kube, "churn-restart")
    assert status["phase"] == "Succeeded" and status["modelVersion"] == "1", status
    versions = registry_for(training["mlflow"]).client.search_model_versions("name='churn-restart'")
    assert [v.version for v in versions] == ["1"]
    assert len(owned(kube, "Job", "churn-restart")) == 1


def test_restart_between_registration_and_status_registers_once(cluster: LocalCluster, kube: Any,
                                                                operator: OperatorProcess, training: dict[str, Any],
                                                                tmp_path: Path) -> None:
    """A crash while the outcome's status write is in flight must not lose the outcome nor register a
    second version on restart. kopf's record of what it handled rides in that same write (status),
    so the restarted operator sees the Job's end as unhandled and follows it again."""
    from kmock import action

    held: list[dict[str, Any]] = []

    def final_status_of(name: str) -> Any:
        def outcome(request: Any) -> bool:
            status = (request.data or {}).get("status") or {}
            if request.name == name and status.get("modelVersion"):
                held.append(status)
                return True
            return False
        return outcome

    # The status write carrying the outcome hangs, as if the operator died while sending it.
    hang = Fault(action.UPDATE, PLURAL, subresource="status", delay=3600, when=final_status_of("churn-crash"))
    cluster.call(cluster.cluster.faults.append, hang)
    try:
        create(cluster, example("churn-crash", training["mlflow"]), tmp_path)
        wait_until(lambda: hang.seen == 1, timeout=TRAIN_TIMEOUT, what="the outcome's status write")
        registry = registry_for(training["mlflow"])
        assert [v.version for v in registry.client.search_model_versions("name='churn-crash'")] == ["1"]
        assert held[0].get("lastHandledConfiguration"), held[0]  # the record and the outcome: one request
        before = _processed(operator)
        operator.kill()
    finally:
        cluster.call(cluster.cluster.faults.remove, hang)
    assert resource(kube, "churn-crash")["status"]["phase"] != "Succeeded"
    operator.start()
    status = wait_finished(kube, "churn-crash", timeout=120)
    assert status["phase"] == "Succeeded" and status["modelVersion"] == "1", status
    assert [v.version for v in registry.client.search_model_versions("name='churn-crash'")] == ["1"]
    assert registry.champion("churn-crash").version == "1"
    assert _processed(operator) > before  # the restarted operator, not a late answer to the killed one


def test_api_errors_are_retried_until_the_state_converges(cluster: LocalCluster, kube: Any,
                                                          operator: OperatorProcess, training: dict[str, Any],
                                                          tmp_path: Path) -> None:
    from kmock import action

    faults = [Fault(action.CREATE, "jobs", status=500),  # refused: the handler is retried
              Fault(action.CREATE, "jobs", status=500, after=True),  # done, answer lost: the retry meets a 409
              Fault(action.FETCH, "jobs", delay=3.0),  # slow: the read of the Job the lost answer made
              Fault(action.UPDATE, PLURAL, status=503, subresource="status"),  # status write refused once
              Fault(action.UPDATE, PLURAL, status=500, delay=1.0)]  # progress write slow, then refused
    _hold_jobs(cluster, True)
    cluster.call(cluster.cluster.faults.extend, faults)
    try:
        create(cluster, example("churn-flaky", training["mlflow"]), tmp_path)

        def converged() -> dict[str, Any] | None:
            status = resource(kube, "churn-flaky").get("status") or {}
            return status if status.get("jobName") else None

        status = wait_until(converged, timeout=120, what="status after the injected errors")
        assert status["phase"] == "Pending" and conditions(status)["JobCreated"]["status"] == "True"
        assert [j["metadata"]["name"] for j in owned(kube, "Job", "churn-flaky")] == ["churn-flaky-g1"]
        assert all(f.times == 0 for f in faults), faults  # every injected error was met, and survived
    finally:
        cluster.call(cluster.cluster.faults.clear)
        kubectl(cluster, "delete", "mltj", "churn-flaky")
        _hold_jobs(cluster, False)


def test_spec_the_schema_cannot_judge_fails_without_a_job(cluster: LocalCluster, kube: Any, operator: OperatorProcess,
                                                           training: dict[str, Any], tmp_path: Path) -> None:
    # A hyperparameter value of the wrong type passes the schema and the CEL rules (both see strings,
    # and the rule checks only the names), so the operator is the one that must say no.
    body = example("churn-typo", training["mlflow"], spec={"hyperparameters": {"epochs": "many"}})
    create(cluster, body, tmp_path)
    status = wait_finished(kube, "churn-typo", timeout=60)
    assert status["phase"] == "Failed" and "spec.hyperparameters.epochs" in status["message"], status
    assert conditions(status)["Failed"]["reason"] == "InvalidSpec"
    assert owned(kube, "Job", "churn-typo") == []
    assert not resource(kube, "churn-typo")["metadata"].get("finalizers")  # nothing in flight: a delete is free


def test_a_job_the_api_server_refuses_fails_the_generation_with_the_servers_words(
        cluster: LocalCluster, kube: Any, operator: OperatorProcess, training: dict[str, Any], tmp_path: Path) -> None:
    """A 4xx on the Job's create (a value the schema let through, a permission the operator lacks) will not go
    away on a retry: status and a Warning say what the API server said, instead of nothing at all."""
    from kmock import action

    refusal = Fault(action.CREATE, "jobs", status=422)
    cluster.call(cluster.cluster.faults.append, refusal)
    try:
        create(cluster, example("churn-refused", training["mlflow"]), tmp_path)
        status = wait_finished(kube, "churn-refused", timeout=60)
        assert status["phase"] == "Failed" and "injected 422 for CREATE jobs" in status["message"], status
        assert status["message"].startswith("the API server refused this generation's objects: "), status
        assert conditions(status)["Failed"]["reason"] == "RefusedByAPIServer" and not status.get("jobName")
        assert refusal.times == 0 and owned(kube, "Job", "churn-refused") == []
        wait_for_events(kube, "churn-refused", "RefusedByAPIServer")
    finally:
        cluster.call(cluster.cluster.faults.clear)
        kubectl(cluster, "delete", "mltj", "churn-refused")


def _patch(kube: Any, name: str, change: dict[str, Any]) -> None:
    import kubernetes

    kubernetes.client.CustomObjectsApi(kube).patch_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name,
                                                                            change)


def _job_names(kube: Any, name: str) -> list[str]:
    return sorted(j["metadata"]["name"] for j in owned(kube, "Job", name))


QUEUE = {"kueue.x-k8s.io/queue-name": "team-a", "kueue.x-k8s.io/priority-class": "high"}


def test_an_edit_supersedes_the_generation_in_flight_and_drift_or_labels_start_nothing(
        cluster: LocalCluster, kube: Any, operator: OperatorProcess, training: dict[str, Any], tmp_path: Path) -> None:
    _hold_jobs(cluster, True)  # generation 1's pods wait: it is in flight when the edits come
    try:
        body = example("churn-edit", training["mlflow"])
        body["metadata"]["labels"] = dict(QUEUE)
        create(cluster, body, tmp_path)
        wait_until(lambda: _job_names(kube, "churn-edit") == ["churn-edit-g1"], timeout=60, what="the Job")
        # Labels, annotations and the drift policy are no training: no Job, generation 1 still in flight.
        _patch(kube, "churn-edit", {"metadata": {"labels": {"team": "a"}, "annotations": {"note": "x"}},
                                    "spec": {"drift": {"schedule": "0 * * * *", "currentData": "s3://b/live.csv"}}})
        wait_until(lambda: (resource(kube, "churn-edit").get("status") or {}).get("observedGeneration") == 2,
                   timeout=60, what="generation 2 observed")
        assert _job_names(kube, "churn-edit") == ["churn-edit-g1"]
        assert resource(kube, "churn-edit")["status"]["jobName"] == "churn-edit-g1"
        # A training field supersedes it: its Job is deleted, the new generation's made.
        _patch(kube, "churn-edit", {"spec": {"hyperparameters": {"epochs": "10"}}})
        wait_until(lambda: _job_names(kube, "churn-edit") == ["churn-edit-g3"], timeout=60,
                   what="generation 1's Job replaced by generation 3's")
    finally:
        _hold_jobs(cluster, False)
    status = wait_finished(kube, "churn-edit", generation=3)
    assert status["phase"] == "Succeeded" and status["jobName"] == "churn-edit-g3", status
    superseded = conditions(status)["Superseded"]
    assert superseded["status"] == "True" and superseded["reason"] == "SpecChanged", superseded
    assert "churn-edit-g1" in superseded["message"] and superseded["observedGeneration"] == 3
    assert all(c.get("observedGeneration") == 3 for c in status["conditions"] if c["type"] != "DriftDetected")
    job = owned(kube, "Job", "churn-edit")[0]
    assert {key: job["metadata"]["labels"][key] for key in QUEUE} == QUEUE
    run = registry_for(training["mlflow"]).client.get_run(status["runId"])
    assert run.data.tags["driftloop.k8s.generation"] == "3"
    wait_for_events(kube, "churn-edit", "Superseded")


def test_suspend_holds_the_job_and_resuming_trains_which_kubectl_wait_sees(
        cluster: LocalCluster, kube: Any, operator: OperatorProcess, training: dict[str, Any], tmp_path: Path) -> None:
    import kubernetes

    batch = kubernetes.client.BatchV1Api(kube)
    create(cluster, example("churn-suspend", training["mlflow"], spec={"suspend": True}), tmp_path)
    wait_until(lambda: (resource(kube, "churn-suspend").get("status") or {}).get("phase") == "Suspended",
               timeout=60, what="phase Suspended")
    assert batch.read_namespaced_job("churn-suspend-g1", NAMESPACE).spec.suspend is True
    assert owned(kube, "Pod", "churn-suspend") == []
    _patch(kube, "churn-suspend", {"spec": {"suspend": False}})
    waited = kubectl(cluster, "wait", "--for=condition=Succeeded", "mltj/churn-suspend", f"--timeout={TRAIN_TIMEOUT}s")
    assert waited.returncode == 0 and "condition met" in waited.stdout, waited.stderr
    status = resource(kube, "churn-suspend")["status"]
    assert status["phase"] == "Succeeded" and status["jobName"] == "churn-suspend-g1", status
    assert conditions(status)["Suspended"]["status"] == "False" and conditions(status)["Suspended"]["reason"] == "Resumed"
    assert conditions(status)["Succeeded"]["observedGeneration"] == 2
    assert batch.read_namespaced_job("churn-suspend-g1", NAMESPACE).spec.suspend is False


def test_a_job_its_queue_suspends_reads_queued_until_admitted(
        cluster: LocalCluster, kube: Any, operator: OperatorProcess, training: dict[str, Any], tmp_path: Path) -> None:
    import kubernetes

    cluster.call(setattr, cluster.cluster, "kueue", True)  # Kueue's webhook: queued Jobs are created suspended
    try:
        body = example("churn-queued", training["mlflow"])
        body["metadata"]["labels"] = dict(QUEUE)
        create(cluster, body, tmp_path)
        wait_until(lambda: (resource(kube, "churn-queued").get("status") or {}).get("phase") == "Queued",
                   timeout=60, what="phase Queued")
        assert conditions(resource(kube, "churn-queued")["status"])["Suspended"]["reason"] == "Queued"
    finally:
        cluster.call(setattr, cluster.cluster, "kueue", False)
    # Kueue admits the Job by unsuspending it.
    kubernetes.client.BatchV1Api(kube).patch_namespaced_job("churn-queued-g1", NAMESPACE, {"spec": {"suspend": False}})
    status = wait_finished(kube, "churn-queued")
    assert status["phase"] == "Succeeded", status


def test_a_spec_error_in_the_pod_fails_the_job_at_once_with_its_reason(
        cluster: LocalCluster, kube: Any, operator: OperatorProcess, training: dict[str, Any], tmp_path: Path) -> None:
    import kubernetes

    batch = kubernetes.client.BatchV1Api(kube)
    _hold_jobs(cluster, True)
    try:
        create(cluster, example("churn-badspec", training["mlflow"], spec={"runPolicy": {"backoffLimit": 3}}),
               tmp_path)
        wait_until(lambda: owned(kube, "Job", "churn-badspec"), timeout=60, what="the Job")
        # A spec `driftloop run` refuses (exit 2): retrying cannot help. (The pod reads its spec from its
        # template's annotation, which the emulator, unlike an API server, lets a test change.)
        batch.patch_namespaced_job("churn-badspec-g1", NAMESPACE, {"spec": {"template": {"metadata": {
            "annotations": {"driftloop.io/run-spec": "train: {}\n"}}}}})
    finally:
        _hold_jobs(cluster, False)
    status = wait_finished(kube, "churn-badspec", timeout=120)
    failed = conditions(status)["Failed"]
    assert status["phase"] == "Failed" and failed["reason"] == "PodFailurePolicy", status
    assert conditions(status)["Succeeded"]["status"] == "False" and failed["observedGeneration"] == 1
    assert "data" in failed["message"], failed  # the pod's own last words: the refused key
    assert batch.read_namespaced_job("churn-badspec-g1", NAMESPACE).status.failed == 1  # not 4 attempts
    waited = kubectl(cluster, "wait", "--for=condition=Failed", "mltj/churn-badspec", "--timeout=10s")
    assert waited.returncode == 0, waited.stderr


def test_a_job_that_succeeds_without_a_termination_message_says_so_without_asking_mlflow(
        cluster: LocalCluster, kube: Any, operator: OperatorProcess, training: dict[str, Any], tmp_path: Path) -> None:
    """The termination message is all the operator reads: when a pod leaves none, the condition says so."""
    import kubernetes

    batch = kubernetes.client.BatchV1Api(kube)
    _hold_jobs(cluster, True)
    try:
        create(cluster, example("churn-mute", training["mlflow"]), tmp_path)
        wait_until(lambda: owned(kube, "Job", "churn-mute"), timeout=60, what="the Job")
        # Its pod exits 0 and writes nothing (an image that is not driftloop's, say).
        job = kube.sanitize_for_serialization(batch.read_namespaced_job("churn-mute-g1", NAMESPACE))
        container = job["spec"]["template"]["spec"]["containers"][0] | {"command": ["true"]}
        batch.patch_namespaced_job("churn-mute-g1", NAMESPACE, {"spec": {"template": {"spec": {
            "containers": [container]}}}})
    finally:
        _hold_jobs(cluster, False)
    status = wait_finished(kube, "churn-mute", timeout=120)
    succeeded = conditions(status)["Succeeded"]
    assert status["phase"] == "Succeeded" and succeeded["status"] == "True", status
    assert succeeded["reason"] == "TerminationMessageUnreadable" and "\n" not in succeeded["message"]
    assert "churn-mute-g1 succeeded but its pod left no termination message" in succeeded["message"], succeeded
    assert status.get("modelVersion") is None and "GatePassed" not in conditions(status)
    waited = kubectl(cluster, "wait", "--for=condition=Succeeded", "mltj/churn-mute", "--timeout=10s")
    assert waited.returncode == 0, waited.stderr


# Trains until stopped: early stopping never triggers, so the run is RUNNING when the test acts.
ENDLESS = {"hyperparameters": {"epochs": "100000", "patience": "100000", "lr": "0.003"}}


def test_suspending_a_running_job_leaves_no_running_condition_beside_suspended(
        cluster: LocalCluster, kube: Any, operator: OperatorProcess, training: dict[str, Any], tmp_path: Path) -> None:
    create(cluster, example("churn-pause", training["mlflow"], spec=ENDLESS), tmp_path)
    try:
        wait_until(lambda: (resource(kube, "churn-pause").get("status") or {}).get("phase") == "Running",
                   timeout=120, what="phase Running")
        _patch(kube, "churn-pause", {"spec": {"suspend": True}})
        status = wait_until(lambda: (lambda s: s if s.get("phase") == "Suspended" else None)(
            resource(kube, "churn-pause").get("status") or {}), timeout=60, what="phase Suspended")
        assert conditions(status)["Suspended"]["status"] == "True", status
        running = conditions(status)["Running"]
        assert running["status"] == "False" and running["reason"] == "JobSuspended", running
    finally:
        kubectl(cluster, "delete", "mltj", "churn-pause")


def _run_of(mlflow_uri: str, name: str, generation: int, *, status: str = "RUNNING") -> Any:
    """The generation's MLflow run once it has `status` (found by the tags the pod put on it; KILLED: and the
    tags that say why)."""
    client = registry_for(mlflow_uri).client

    def found() -> Any:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            return None
        query = f"tags.`driftloop.k8s.generation` = '{generation}' and attributes.status = '{status}'"
        if status == "KILLED":  # a SIGTERM'd pod writes the status, then the tags: wait for both
            query += " and tags.`driftloop.status` = 'killed'"
        runs = client.search_runs([experiment.experiment_id], query)
        return runs[0] if runs else None

    return wait_until(found, timeout=TRAIN_TIMEOUT, what=f"{name} generation {generation}'s run {status}")


def _pods_ended(cluster: LocalCluster, name: str, count: int) -> dict[str, Any]:
    """How the pods of resource `name` stopped when their Jobs were deleted (the emulator's kubelet records it)."""
    def ended() -> dict[str, Any] | None:
        found = {pod: how for (_, pod), how in dict(cluster.cluster.terminations).items()
                 if pod.startswith(f"{name}-g")}
        return found if len(found) >= count else None

    return wait_until(ended, timeout=60, what=f"{count} pod(s) of {name} to stop")


def _how_pods_stopped(cluster: LocalCluster, name: str) -> str:
    """What the emulator's kubelet saw of resource `name`'s pods: how each stopped, which still run, their last words."""
    emulator = cluster.cluster
    told = [f"pod {pod}: exit {how.exit_code} {how.seconds:.1f} s after SIGTERM" + (", SIGKILLed" if how.killed else "")
            for (_, pod), how in sorted(dict(emulator.terminations).items()) if pod.startswith(f"{name}-g")]
    told += [f"pod {pod} still running (no SIGTERM)" for (_, job), pods in dict(emulator._processes).items()
             if job.startswith(f"{name}-g") for pod in list(pods)]
    for log in sorted(emulator.workdir.glob(f"*/{name}-g*/log.txt")):
        told.append(f"{log.parent.name}'s log ends: " + " | ".join(log.read_text(errors="replace").splitlines()[-4:]))
    return "; ".join(told) or f"no pod of {name} seen"


def test_superseding_or_deleting_mid_training_ends_the_mlflow_run_as_killed(
        cluster: LocalCluster, kube: Any, operator: OperatorProcess, training: dict[str, Any], tmp_path: Path) -> None:
    """The operator only deletes the Job; its pod gets SIGTERM and ends its own run (it holds the credentials)."""
    create(cluster, example("churn-kill", training["mlflow"], spec=ENDLESS), tmp_path)
    first = _run_of(training["mlflow"], "churn-kill", 1)
    _patch(kube, "churn-kill", {"spec": {"hyperparameters": {"epochs": "99999"}}})
    killed = _run_of(training["mlflow"], "churn-kill", 1, status="KILLED")
    assert killed.info.run_id == first.info.run_id
    assert killed.data.tags["driftloop.error"] == "stopped by SIGTERM" and killed.data.tags["driftloop.status"] == "killed"
    second = _run_of(training["mlflow"], "churn-kill", 2)
    superseded = conditions(resource(kube, "churn-kill")["status"])["Superseded"]
    assert "Job churn-kill-g1 deleted" in superseded["message"] and "KILLED" in superseded["message"], superseded
    assert resource(kube, "churn-kill")["metadata"]["finalizers"] == ["driftloop.io/end-mlflow-run"]

    deleted = kubectl(cluster, "delete", "mltj", "churn-kill")  # waits until the finalizer lets it go
    assert deleted.returncode == 0, deleted.stderr
    try:
        ended = _run_of(training["mlflow"], "churn-kill", 2, status="KILLED")  # the pod's, a moment after the delete
    except AssertionError as e:
        raise AssertionError(f"{e}; {_how_pods_stopped(cluster, 'churn-kill')}") from None
    assert ended.info.run_id == second.info.run_id and ended.data.tags["driftloop.error"] == "stopped by SIGTERM"
    assert owned(kube, "Job", "churn-kill") == [] and owned(kube, "Pod", "churn-kill") == []
    # Each pod exited by itself on SIGTERM (143), within its grace period: never SIGKILLed.
    stopped = _pods_ended(cluster, "churn-kill", 2)
    assert all(how.exit_code == 143 and not how.killed and how.seconds < 20 for how in stopped.values()), stopped
    wait_for_events(kube, "churn-kill", "Superseded", "JobDeleted")


def test_a_delete_never_waits_on_mlflow_and_the_pods_killed_write_is_bounded(
        cluster: LocalCluster, kube: Any, operator: OperatorProcess, training: dict[str, Any], tmp_path: Path) -> None:
    """MLflow hangs mid-run, then the resource is deleted: the operator, which never calls MLflow, lets the
    delete go at once; the pod gives its KILLED write its budget (15 s of the 20 s grace period) and exits
    in its grace period, the run left open."""
    import time

    proxy = MLflowProxy(training["mlflow"])
    try:
        create(cluster, example("churn-hang", training["mlflow"],
                                spec=deep_merge(ENDLESS, {"mlflow": {"trackingUri": proxy.uri}})), tmp_path)
        run = _run_of(training["mlflow"], "churn-hang", 1)  # read past the proxy: MLflow itself
        proxy.hanging.set()
        started = time.monotonic()
        deleted = kubectl(cluster, "delete", "mltj", "churn-hang")  # waits until the finalizer lets it go
        assert deleted.returncode == 0, deleted.stderr
        assert time.monotonic() - started < 8, "the delete waited"  # one Job delete; MLflow's budget alone is 15 s
        stopped = _pods_ended(cluster, "churn-hang", 1)
        assert registry_for(training["mlflow"]).client.get_run(run.info.run_id).info.status == "RUNNING"
    finally:
        proxy.close()
    (pod, how), = stopped.items()
    # It waited on MLflow for its budget (the grace period it was told, less the margin), then exited by
    # itself: 143, before SIGKILL at 20 s.
    budget = stop_budget_s({ENV_TERMINATION_GRACE_S: str(TERMINATION_GRACE_S)})
    assert budget == 15
    assert how.exit_code == 143 and not how.killed and budget - 0.5 <= how.seconds < 20, how
    log = (cluster.workdir / "nodes" / NAMESPACE / pod / "log.txt").read_text(errors="replace")
    assert f"MLflow did not answer within {budget:g} s, so run {run.info.run_id} was left open" in log, log[-2000:]
    assert owned(kube, "Job", "churn-hang") == []
    assert "RunNotEnded" not in events_for(kube, "churn-hang")  # the operator had nothing to do with MLflow


def test_scheduling_and_pod_template_reach_the_jobs_pods(
        cluster: LocalCluster, kube: Any, operator: OperatorProcess, training: dict[str, Any], tmp_path: Path) -> None:
    import kubernetes

    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["eu-1a"]}]}]}}}
    body = example("churn-placed", training["mlflow"], spec={
        "suspend": True,  # only the Job's pod template is under test: no pod needs to run
        "scheduling": {"nodeSelector": {"pool": "training"}, "affinity": affinity, "priorityClassName": "batch-low",
                       "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml",
                                        "effect": "NoSchedule"}]},
        "podTemplate": {"labels": {"team": "risk"}, "annotations": {"cost-center": "42"},
                        "serviceAccountName": "s3-reader", "imagePullSecrets": [{"name": "registry-creds"}]}})
    create(cluster, body, tmp_path)
    wait_until(lambda: (resource(kube, "churn-placed").get("status") or {}).get("phase") == "Suspended",
               timeout=60, what="phase Suspended")
    job = kube.sanitize_for_serialization(
        kubernetes.client.BatchV1Api(kube).read_namespaced_job("churn-placed-g1", NAMESPACE))
    template = job["spec"]["template"]
    pod = template["spec"]
    assert pod["nodeSelector"] == {"pool": "training"} and pod["affinity"] == affinity
    assert pod["priorityClassName"] == "batch-low" and pod["serviceAccountName"] == "s3-reader"
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}]
    assert pod["imagePullSecrets"] == [{"name": "registry-creds"}]
    assert template["metadata"]["labels"]["team"] == "risk"
    assert template["metadata"]["labels"]["driftloop.io/mltrainingjob"] == "churn-placed"
    assert template["metadata"]["annotations"]["cost-center"] == "42"
    assert set(template["metadata"]["annotations"]) == {"cost-center", "driftloop.io/run-spec"}
    assert resource(kube, "churn-placed")["spec"]["scheduling"]["affinity"] == affinity  # stored as written


def test_the_job_watch_asks_the_api_server_for_the_operators_jobs_only(
        cluster: LocalCluster, kube: Any, operator: OperatorProcess) -> None:
    import kubernetes

    # Someone else's Job in the same namespace: the server-side selector keeps it off the operator's watch.
    kubernetes.client.BatchV1Api(kube).create_namespaced_job(NAMESPACE, {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "not-ours", "labels": {"app": "other"}},
        "spec": {"suspend": True, "template": {"spec": {"restartPolicy": "Never",
                                                        "containers": [{"name": "c", "image": "busybox"}]}}}})
    selectors = {selector for plural, selector in cluster.cluster.watch_selectors if plural == "jobs"}
    assert selectors == {"app.kubernetes.io/managed-by=driftloop-operator"}, selectors
    batch = kubernetes.client.BatchV1Api(kube)
    seen = {job.metadata.name for job in batch.list_namespaced_job(NAMESPACE, label_selector=selectors.pop()).items}
    everything = {job.metadata.name for job in batch.list_namespaced_job(NAMESPACE).items}
    assert "not-ours" in everything and "not-ours" not in seen, seen  # what that watch sees: the operator's Jobs


USER_MODEL = '''\
from sklearn.ensemble import RandomForestClassifier


def build(n_features, n_outputs, task, params):
    return RandomForestClassifier(n_estimators=params["trees"], max_depth=params["depth"], random_state=0)
'''


def test_a_user_module_trains_in_the_pod_with_slices_gated(
        cluster: LocalCluster, kube: Any, operator: OperatorProcess, training: dict[str, Any], tmp_path: Path) -> None:
    # The file's text travels in the resource (as `driftloop run` carries a local module in the spec):
    # the pod runs the image as it is, with no image built for one file.
    body = example("forest", training["mlflow"], spec={
        "hyperparameters": {"module": "forest.py:build", "module_source": USER_MODEL,
                            "params": "{trees: 20, depth: 4}"},
        "evaluate": {"slices": ["region"]},
        "gate": {"slices": {"minRows": 20, "min": {"accuracy": 0.5}}}})
    body["spec"]["hyperparameters"].pop("epochs"), body["spec"]["hyperparameters"].pop("lr")
    create(cluster, body, tmp_path)
    status = wait_finished(kube, "forest")
    assert status["phase"] == "Succeeded", status
    assert status["gate"] == "Passed" and status.get("modelVersion") == "1", status["gateReasons"]
    assert any(r.startswith("PASS slice region=") for r in status["gateReasons"]), status["gateReasons"]

    registry = registry_for(training["mlflow"])
    run = registry.client.get_run(status["runId"])
    # resolved next to the spec file in the pod, as data.path is
    assert run.data.params["train.module"].endswith("/forest.py:build") and run.data.params["train.params.trees"] == "20"
    code = registry.client.list_artifacts(status["runId"], "code")
    assert [Path(f.path).name for f in code] == ["forest.py"]
    assert any(key.startswith("slice.region.") for key in run.data.metrics)


def test_a_search_runs_in_the_pod_as_nested_runs(
        cluster: LocalCluster, kube: Any, operator: OperatorProcess, training: dict[str, Any], tmp_path: Path) -> None:
    body = example("searched", training["mlflow"], spec={
        "modelType": "gbm",
        "hyperparameters": {"search": "{trials: 3, space: {gbm.max_iter: {low: 10, high: 40}}}"}})
    for knob in ("epochs", "lr", "patience"):
        body["spec"]["hyperparameters"].pop(knob)
    create(cluster, body, tmp_path)
    status = wait_finished(kube, "searched")
    assert status["phase"] == "Succeeded", status
    registry = registry_for(training["mlflow"])
    parent = registry.client.get_run(status["runId"])
    assert parent.data.params["train.model"] == "gbm" and parent.data.metrics["search.trials"] == 3
    trials = registry.client.search_runs([parent.info.experiment_id],
                                         f"tags.`mlflow.parentRunId` = '{status['runId']}'")
    assert len(trials) == 3 and all(10 <= int(t.data.params["train.gbm.max_iter"]) <= 40 for t in trials)
    assert int(parent.data.params["search.best.gbm.max_iter"]) in {int(t.data.params["train.gbm.max_iter"]) for t in trials}
