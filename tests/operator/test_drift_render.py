"""The drift policy's CronJob and the reading of a check's outcome: pure functions, no cluster."""

from __future__ import annotations

import copy
import json

import pytest

from driftloop.drift.summary import LIMIT_BYTES, outcome_summary
from driftloop.operator.constants import DEFAULT_IMAGE
from driftloop.operator.drift_policy import cronjob_update
from driftloop.operator.drift_render import read_check, render_drift_cronjob, retrain_condition
from driftloop.operator.render import Owner, render_job
from driftloop.operator.resource import parse_resource_spec

from .test_render import EXAMPLE

OWNER = Owner("churn", "ml", "5b1e-uid", 3)
DRIFT = {"schedule": "*/30 * * * *", "currentData": "s3://lake/churn/today.csv", "cooldown": "12h"}


def spec(**changes: object):
    return parse_resource_spec(copy.deepcopy(EXAMPLE["spec"]) | changes, where="ml/churn")


def test_no_drift_policy_no_cronjob() -> None:
    assert render_drift_cronjob(spec(), OWNER) is None


def test_cronjob_runs_the_drift_check_with_the_training_jobs_image_credentials_and_security() -> None:
    resource = spec(drift=DRIFT, resources={"cpu": "2", "memory": "4Gi", "gpu": 1})
    cronjob = render_drift_cronjob(resource, OWNER)
    training = render_job(resource, OWNER)["spec"]["template"]["spec"]
    assert cronjob["apiVersion"] == "batch/v1" and cronjob["kind"] == "CronJob"
    assert cronjob["metadata"]["name"] == "churn-drift" and cronjob["metadata"]["namespace"] == "ml"
    assert cronjob["spec"]["schedule"] == "*/30 * * * *" and cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert "timeZone" not in cronjob["spec"]  # the controller's own zone, as a CronJob without one
    zoned = render_drift_cronjob(spec(drift=DRIFT | {"timeZone": "Europe/Berlin"}), OWNER)
    assert zoned["spec"]["timeZone"] == "Europe/Berlin"
    assert zoned["metadata"]["annotations"] != cronjob["metadata"]["annotations"]  # a change the CronJob gets
    labels = cronjob["metadata"]["labels"]
    assert labels["driftloop.io/drift-check"] == "churn" and "driftloop.io/mltrainingjob" not in labels
    job = cronjob["spec"]["jobTemplate"]
    assert job["metadata"]["labels"] == labels == job["spec"]["template"]["metadata"]["labels"]
    assert job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == [
        "driftloop", "drift", "--model", "churn", "--current", "s3://lake/churn/today.csv",
        "--tracking-uri", "http://mlflow.driftloop.svc:5000", "--cooldown", "12h", "--out-dir", "/tmp/driftloop/drift",
        "--summary", "/dev/termination-log", "-q", "--retrain", "k8s", "--k8s-job", "churn", "--namespace", "ml"]
    # The training pod's image, but its CPU build: a check compares tables and gets no GPU.
    assert container["image"] == resource.check_image == DEFAULT_IMAGE
    assert training["containers"][0]["image"] == resource.training_image == f"{DEFAULT_IMAGE}-cuda"
    assert container["envFrom"] == training["containers"][0]["envFrom"] == [
        {"secretRef": {"name": "driftloop-credentials"}}]
    assert container["securityContext"] == training["containers"][0]["securityContext"]
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "4Gi"}  # no GPU to compare tables
    assert pod["securityContext"] == training["securityContext"] and pod["restartPolicy"] == "Never"
    assert container["terminationMessagePath"] == "/dev/termination-log"
    # the k8s trigger needs the API: its own least-privilege account, token mounted
    assert pod["serviceAccountName"] == "driftloop-drift-check" and pod["automountServiceAccountToken"] is True


def test_the_live_tables_read_options_reach_the_check() -> None:
    """`drift.read` (as `dataSource.read`): the check reads a `;`-separated export as `driftloop drift --read` does."""
    from driftloop.spec import read_flags

    plain = render_drift_cronjob(spec(drift=DRIFT), OWNER)
    read = render_drift_cronjob(spec(drift=DRIFT | {"read": {"sep": ";", "decimal": ",", "naValues": ["-", "?"]}}),
                                OWNER)
    command = read["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
    flags = [command[i + 1] for i, word in enumerate(command) if word == "--read"]
    assert read_flags(flags) == {"sep": ";", "decimal": ",", "na_values": ["-", "?"]}
    assert "--read" not in plain["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert read["metadata"]["annotations"] != plain["metadata"]["annotations"]  # a change the CronJob gets


def test_retrain_false_checks_only_and_mounts_no_token() -> None:
    cronjob = render_drift_cronjob(spec(drift=DRIFT | {"retrain": False}), OWNER)
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert "--retrain" not in pod["containers"][0]["command"] and "--k8s-job" not in pod["containers"][0]["command"]
    assert pod["automountServiceAccountToken"] is False and "serviceAccountName" not in pod


def test_a_changed_policy_changes_the_hash_and_its_patch_removes_what_is_gone() -> None:
    import jsonpatch

    before = render_drift_cronjob(spec(drift=DRIFT), OWNER)  # the example's secretRef: the pods' envFrom
    without_secret = {"trackingUri": "http://mlflow.driftloop.svc:5000", "modelName": "churn"}
    after = render_drift_cronjob(spec(drift=DRIFT | {"schedule": "@hourly", "retrain": False},
                                      mlflow=without_secret), OWNER)
    same = render_drift_cronjob(spec(drift=DRIFT, retrainToken="drift-abc"), OWNER)
    hash_of = lambda c: c["metadata"]["annotations"]["driftloop.io/spec-hash"]  # noqa: E731
    assert hash_of(before) == hash_of(same) != hash_of(after)  # a retrain alone leaves the CronJob be
    pod = lambda c: c["spec"]["jobTemplate"]["spec"]["template"]["spec"]  # noqa: E731
    assert pod(before)["containers"][0].get("envFrom") and not pod(after)["containers"][0].get("envFrom")
    stored = copy.deepcopy(before)
    stored["metadata"]["labels"]["team"] = "a"  # written by someone else: kept
    stored["metadata"]["annotations"]["note"] = "kept too"
    stored["metadata"]["resourceVersion"] = "41"  # as read: the patch is made at that version only
    patch = cronjob_update(stored, after)
    assert patch[0] == {"op": "replace", "path": "/metadata/resourceVersion", "value": "41"}
    # A JSON patch: the client would send a dict as a strategic merge patch, which merges `containers` by name and
    # keeps the envFrom of the removed secretRef
    assert isinstance(patch, list)
    updated = jsonpatch.apply_patch(stored, patch)
    assert updated["spec"] == after["spec"] and "envFrom" not in pod(updated)["containers"][0]
    assert pod(updated)["automountServiceAccountToken"] is False and "serviceAccountName" not in pod(updated)
    assert updated["metadata"]["labels"]["team"] == "a" and updated["metadata"]["annotations"]["note"] == "kept too"
    assert hash_of(updated) == hash_of(after)


def _summary(exit_code: int, **data: object) -> str:
    base = {"is_drift": exit_code == 3, "drifted_features": [], "features": [{"tested": True}] * 6 + [{"tested": False}], "run_id": "r1",
            "checked_at": "2026-11-23T10:00:00Z", "retrain": {"requested": "k8s", "status": "not_needed"}}
    return json.dumps(outcome_summary(base | data, exit_code=exit_code))


def test_outcomes_become_conditions() -> None:
    drift = read_check("churn-drift-1", 3, _summary(3, drifted_features=["tenure_months"], retrain={
        "requested": "k8s", "status": "submitted", "reason": "patched",
        "result": {"patched": True, "token": "drift-k1"}}))
    assert drift.result == "Drift" and drift.drifted == ["tenure_months"] and drift.features == 6
    assert drift.report == "runs:/r1/drift/drift.html"
    assert "1 of 6 tested features drifted: tenure_months" in drift.drift_message  # the untested one not counted
    assert retrain_condition(drift) == (True, "RetrainTokenPatched", "retrainToken=drift-k1: a new training generation")

    cooled = read_check("j2", 3, _summary(3, drifted_features=["age"], retrain={
        "requested": "k8s", "status": "suppressed", "reason": "cooldown: retrain #1 at …"}))
    assert retrain_condition(cooled) == (False, "RetrainSuppressed", "cooldown: retrain #1 at …")
    off = read_check("j3", 3, _summary(3, drifted_features=["age"], retrain={"requested": None,
                                                                            "status": "not_requested"}))
    assert retrain_condition(off)[:2] == (False, "RetrainDisabled")

    calm = read_check("j4", 0, _summary(0))
    assert calm.result == "NoDrift" and retrain_condition(calm)[:2] == (False, "NoDrift")

    crashed = read_check("j5", 1, "Traceback …\nerror: s3://lake/churn/today.csv: no such object")
    assert crashed.result == "Failed" and crashed.error == "error: s3://lake/churn/today.csv: no such object"
    assert read_check("j6", 3, '{"is_drift": tr').result == "Failed"  # a cut message is not believed


def test_summary_fits_a_termination_message_with_many_drifted_features() -> None:
    names = [f"feature_with_a_rather_long_name_{i}" for i in range(400)]
    summary = outcome_summary({"is_drift": True, "drifted_features": names, "features": [{}] * 400,
                               "retrain": {"status": "suppressed", "reason": "x" * 5000}}, exit_code=3)
    assert len(json.dumps(summary, indent=2).encode()) < LIMIT_BYTES
    assert summary["drifted_count"] == 400 and summary["drifted_features"] == names[:len(summary["drifted_features"])]


def test_cronjob_is_a_valid_kubernetes_1_30_object() -> None:
    import kubernetes_validate

    for retrain in (True, False):
        cronjob = render_drift_cronjob(spec(drift=DRIFT | {"retrain": retrain}), OWNER)
        kubernetes_validate.validate(cronjob, "1.30.0", strict=True)  # raises, naming the field, when it is not


def test_a_cronjob_written_to_between_every_read_and_write_is_left_to_kopfs_retry() -> None:
    """Three 409s in a row (someone else keeps writing): a TemporaryError, which kopf retries later; nothing else."""
    import kopf

    from driftloop.k8s_gateway import KubernetesApiError
    from driftloop.operator.drift_policy import CONFLICT_ATTEMPTS, apply_cronjob

    body = render_drift_cronjob(spec(drift=DRIFT), OWNER)

    class AlwaysWrittenInBetween:
        reads = patches = 0

        def create_or_read(self, wanted: dict[str, object], *, owner_uid: str) -> dict[str, object]:
            self.reads += 1
            stored = copy.deepcopy(wanted)
            stored["metadata"]["annotations"] = {"driftloop.io/spec-hash": "older"}
            stored["metadata"]["resourceVersion"] = str(self.reads)
            return stored

        def patch(self, kind: str, namespace: str, name: str, patch: list[dict[str, object]]) -> None:
            self.patches += 1
            assert patch[0] == {"op": "replace", "path": "/metadata/resourceVersion", "value": str(self.reads)}
            raise KubernetesApiError(409, "Conflict", "the object has been modified")

    cluster = AlwaysWrittenInBetween()
    with pytest.raises(kopf.TemporaryError, match="409"):
        apply_cronjob(cluster, body, owner_uid=OWNER.uid)  # type: ignore[arg-type]
    assert cluster.reads == cluster.patches == CONFLICT_ATTEMPTS
