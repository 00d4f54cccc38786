"""The drift policy as objects and conditions: pure functions, no API calls.

`spec.drift` becomes one CronJob per resource whose pods run `driftloop drift` against the
champion's reference sample and, with `retrain: true`, ask for a new generation through
`spec.retrainToken` (the k8s trigger, at most once per cooldown). Each finished check's
summary (its termination message) becomes the `DriftDetected` and `RetrainScheduled`
conditions and `status.drift`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from driftloop.constants import EXIT_DRIFT, EXIT_NO_DRIFT
from driftloop.operator import constants as k
from driftloop.operator.render import (
    Owner,
    base_env,
    bounded_name,
    container_security_context,
    pod_security_context,
)
from driftloop.operator.resource import MLTrainingJobSpec
from driftloop.spec import as_read_flags

# On the CronJob and on every check Job and pod: which resource they check. Not LABEL_RESOURCE:
# the training Job watcher follows that label, and a check must never pass for a training Job.
LABEL_DRIFT_CHECK = f"{k.GROUP}/drift-check"
# On the resource: the latest finished check, mirrored by the Job watcher (a poke; the Jobs are the truth).
ANNOTATION_DRIFT_STATE = f"{k.GROUP}/drift-check-state"
# On the CronJob: the hash of what the operator rendered, so a spec change is seen without diffing
# against the API server's defaults.
ANNOTATION_SPEC_HASH = f"{k.GROUP}/spec-hash"
# The drift pods' own ServiceAccount, made by the operator in each namespace that has a retraining
# drift policy, bound there to the ClusterRole of the same name (manifests/base: get and patch
# MLTrainingJobs, nothing else). A RoleBinding limits that role to its own namespace.
SERVICE_ACCOUNT = "driftloop-drift-check"
CLUSTER_ROLE = "driftloop-drift-check"
CONTAINER_NAME = "drift-check"
CHECK_DEADLINE_S = 3600  # a hung check must not block the next ones (concurrencyPolicy: Forbid)
STARTING_DEADLINE_S = 600
HISTORY_LIMIT = 3

COND_DRIFT_DETECTED, COND_RETRAIN_SCHEDULED = "DriftDetected", "RetrainScheduled"
DRIFT_CONDITIONS = (COND_DRIFT_DETECTED, COND_RETRAIN_SCHEDULED)
RESULT_DRIFT, RESULT_NO_DRIFT, RESULT_FAILED = "Drift", "NoDrift", "Failed"


def drift_check_name(name: str) -> str:
    """`churn` → `churn-drift`; the CronJob controller adds 11 characters for each Job."""
    return bounded_name(name, "-drift")


def drift_labels(resource_name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "driftloop", "app.kubernetes.io/component": "drift-check",
            "app.kubernetes.io/managed-by": k.MANAGED_BY, LABEL_DRIFT_CHECK: resource_name}


def render_drift_identity(namespace: str) -> list[dict[str, Any]]:
    """The ServiceAccount the retraining checks run as in `namespace`, and its RoleBinding.

    Shared by the namespace's resources and owned by none: the operator creates them when they
    are missing (it may bind only this ClusterRole), and a cluster admin may create them instead.
    """
    labels = {"app.kubernetes.io/name": "driftloop", "app.kubernetes.io/component": "drift-check",
              "app.kubernetes.io/managed-by": k.MANAGED_BY}
    meta = {"name": SERVICE_ACCOUNT, "namespace": namespace, "labels": labels}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": CLUSTER_ROLE},
         "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace}]},
    ]


def drift_command(spec: MLTrainingJobSpec, owner: Owner) -> list[str]:
    """`driftloop drift` on the champion's reference; with retrain, the k8s trigger on this very resource."""
    assert spec.drift is not None
    command = ["driftloop", "drift", "--model", spec.mlflow.model_name or owner.name,
               "--current", spec.drift.current_data, "--tracking-uri", spec.mlflow.tracking_uri,
               "--cooldown", spec.drift.cooldown, "--out-dir", f"{k.WORK_DIR}/drift",
               "--summary", k.TERMINATION_LOG, "-q"]
    for flag in as_read_flags(spec.drift.read.options()):
        command += ["--read", flag]
    if spec.drift.retrain:
        command += ["--retrain", "k8s", "--k8s-job", owner.name, "--namespace", owner.namespace]
    return command


def render_drift_cronjob(spec: MLTrainingJobSpec, owner: Owner) -> dict[str, Any] | None:
    """The CronJob of `spec.drift`, or None when the resource has no drift policy."""
    if spec.drift is None:
        return None
    name = drift_check_name(owner.name)
    labels = drift_labels(owner.name)
    quantities = {"cpu": spec.resources.cpu, "memory": spec.resources.memory}
    container: dict[str, Any] = {
        "name": CONTAINER_NAME, "image": spec.check_image, "imagePullPolicy": "IfNotPresent",
        "command": drift_command(spec, owner), "workingDir": k.WORK_DIR, "env": base_env(),
        # the training pod's CPU and memory (a check loads the same kind of table), never its GPUs
        "resources": {"requests": quantities, "limits": quantities},
        "terminationMessagePath": k.TERMINATION_LOG, "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": container_security_context(),
        "volumeMounts": [{"name": "work", "mountPath": k.WORK_DIR}],
    }
    if spec.mlflow.secret_ref is not None:
        container["envFrom"] = [{"secretRef": {"name": spec.mlflow.secret_ref.name}}]
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never", "securityContext": pod_security_context(), "containers": [container],
        "volumes": [{"name": "work", "emptyDir": {}}],
        # Only a check that may retrain talks to the API server, with its own least-privilege account.
        "automountServiceAccountToken": spec.drift.retrain,
    }
    if spec.drift.retrain:
        pod_spec["serviceAccountName"] = SERVICE_ACCOUNT
    cron_spec: dict[str, Any] = {
        "schedule": spec.drift.schedule, "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": STARTING_DEADLINE_S,
        # exit 3 (drift) fails the Job by design, so keep as many failed checks as good ones
        "successfulJobsHistoryLimit": HISTORY_LIMIT, "failedJobsHistoryLimit": HISTORY_LIMIT,
        "jobTemplate": {"metadata": {"labels": labels}, "spec": {
            # a retried check would only find its own retrain claimed; the next schedule tries again
            "backoffLimit": 0, "activeDeadlineSeconds": CHECK_DEADLINE_S,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec}}},
    }
    if spec.drift.time_zone is not None:
        cron_spec["timeZone"] = spec.drift.time_zone
    digest = hashlib.sha256(json.dumps(cron_spec, sort_keys=True).encode()).hexdigest()[:16]
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": name, "namespace": owner.namespace, "labels": labels,
                         "annotations": {ANNOTATION_SPEC_HASH: digest}},
            "spec": cron_spec}


@dataclass(frozen=True)
class DriftCheck:
    """One finished check, read from its pod's exit code and termination message."""

    job: str
    result: str  # Drift | NoDrift | Failed
    drifted: list[str] = field(default_factory=list)
    features: int = 0
    retrain_status: str | None = None  # not_requested | not_needed | submitted | suppressed | failed
    retrain_reason: str | None = None
    patched: bool = False
    token: str | None = None
    run_id: str | None = None
    report: str | None = None
    checked_at: str | None = None
    error: str | None = None

    @property
    def drift_message(self) -> str:
        where = f" (check {self.job}" + (f"; report {self.report})" if self.report else ")")
        if self.result == RESULT_DRIFT:
            return f"{len(self.drifted)} of {self.features} tested features drifted: {', '.join(self.drifted)}{where}"
        if self.result == RESULT_NO_DRIFT:
            return f"no drift in {self.features} tested features{where}"
        return f"drift check {self.job} failed: {self.error or 'no outcome'}"


def read_check(job: str, exit_code: int | None, message: str | None) -> DriftCheck:
    """The check's outcome: the summary it wrote, else (a crash) its last log line."""
    summary: dict[str, Any] = {}
    try:
        parsed = json.loads(message or "")
        summary = parsed if isinstance(parsed, dict) else {}
    except ValueError:
        pass
    retrain_failed = bool(summary.get("is_drift")) and (summary.get("retrain") or {}).get("status") == "failed"
    if retrain_failed:  # drift was found; only the retrain after it failed (exit 1)
        exit_code = EXIT_DRIFT
    if exit_code not in (EXIT_NO_DRIFT, EXIT_DRIFT) or not summary:
        lines = [line for line in (message or "").strip().splitlines() if line.strip()]
        error = summary.get("error") or (lines[-1] if lines else f"exit code {exit_code}")
        return DriftCheck(job, RESULT_FAILED, run_id=summary.get("run_id"), error=error[:1000])
    retrain = summary.get("retrain") or {}
    return DriftCheck(job, RESULT_DRIFT if exit_code == EXIT_DRIFT else RESULT_NO_DRIFT,
                      drifted=list(summary.get("drifted_features") or []), features=int(summary.get("features") or 0),
                      retrain_status=retrain.get("status"), retrain_reason=retrain.get("reason"),
                      patched=bool(retrain.get("patched")), token=retrain.get("token"), run_id=summary.get("run_id"),
                      report=summary.get("report"), checked_at=summary.get("checked_at"))


def retrain_condition(check: DriftCheck) -> tuple[bool, str, str]:
    """`RetrainScheduled`: True only when this check's trigger patched retrainToken."""
    if check.result == RESULT_NO_DRIFT:
        return False, "NoDrift", "no drift, no retrain"
    if check.patched:
        return True, "RetrainTokenPatched", f"retrainToken={check.token}: a new training generation"
    status, reason = check.retrain_status, check.retrain_reason or ""
    if status == "not_requested":
        return False, "RetrainDisabled", "spec.drift.retrain is false"
    if status == "suppressed":
        return False, "RetrainSuppressed", reason
    if status == "submitted":
        return False, "AlreadyRequested", reason
    return False, "RetrainFailed", reason or f"retrain {status}"
