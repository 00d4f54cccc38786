"""kopf handlers of the drift policy: `spec.drift` → a CronJob; each finished check → conditions and events.

Flow: on create, spec change or resume, `reconcile_drift_cronjob` creates, updates or deletes
the resource's CronJob. The check Jobs the CronJob starts carry `driftloop.io/drift-check=<name>`;
the Job watcher pokes an annotation on the resource when one finishes, and `record_drift_check` —
a resource handler, so it never races the training handlers' status writes — lists the checks,
reads the newest finished one's outcome and writes `DriftDetected`, `RetrainScheduled` and
`status.drift`. Listing (rather than trusting the poke) keeps a restarted operator, which sees
every old check again, from recording an older one over a newer one.
"""

from __future__ import annotations

from typing import Any

import kopf

from driftloop.errors import InvalidSpec
from driftloop.k8s_gateway import Cluster, KubernetesApiError, OwnedByAnother
from driftloop.operator import constants as k
from driftloop.operator.conditions import set_condition, utc_now
from driftloop.operator.drift_render import (
    ANNOTATION_DRIFT_STATE,
    ANNOTATION_SPEC_HASH,
    COND_DRIFT_DETECTED,
    COND_RETRAIN_SCHEDULED,
    DRIFT_CONDITIONS,
    LABEL_DRIFT_CHECK,
    RESULT_DRIFT,
    RESULT_FAILED,
    DriftCheck,
    drift_check_name,
    read_check,
    render_drift_cronjob,
    render_drift_identity,
    retrain_condition,
)
from driftloop.operator.handlers import (
    RESOURCE,
    RETRY_DELAY_S,
    annotate_with_retries,
    job_state,
    kubernetes_errors,
    post_event,
)
from driftloop.operator.render import Owner
from driftloop.operator.resource import parse_resource_spec

# -- the CronJob ---------------------------------------------------------------------------

CONFLICT_ATTEMPTS = 3  # read, patch at that version; again if someone wrote in between


def cronjob_update(existing: dict[str, Any], body: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON patch (RFC 6902) that brings `existing` to `body`: its spec replaced whole, our labels and the spec hash
    merged into the metadata others may have written to.

    Not a merge patch: the client sends a dict as a strategic merge patch, which merges `containers` by name and
    would keep what `body` no longer has (the `envFrom` of a removed secretRef, a dropped env var).

    The patch names the resourceVersion it was made from, a precondition the API server checks as for a replace
    (409 Conflict): the merged labels and annotations are `existing`'s, and a label written since would be lost.
    """
    meta = existing.get("metadata") or {}
    labels = {**(meta.get("labels") or {}), **body["metadata"]["labels"]}
    annotations = {**(meta.get("annotations") or {}), **body["metadata"]["annotations"]}
    at = [{"op": "replace", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]}] \
        if meta.get("resourceVersion") else []  # an API server always sends one
    return [*at, {"op": "add", "path": "/metadata/labels", "value": labels},  # "add" sets a member, present or not
            {"op": "add", "path": "/metadata/annotations", "value": annotations},
            {"op": "replace", "path": "/spec", "value": body["spec"]}]


def apply_cronjob(cluster: Cluster, body: dict[str, Any], *, owner_uid: str) -> str:
    """Create the CronJob, or bring the existing one to `body`: 'created', 'updated' or 'unchanged'.

    Raises:
        OwnedByAnother: a CronJob of that name belongs to another resource.
        kopf.TemporaryError: written to by someone else between each of our reads and writes.
    """
    for attempt in range(CONFLICT_ATTEMPTS):
        existing = cluster.create_or_read(body, owner_uid=owner_uid)
        if existing is None:
            return "created"
        meta = existing.get("metadata") or {}
        wanted = body["metadata"]["annotations"][ANNOTATION_SPEC_HASH]
        if (meta.get("annotations") or {}).get(ANNOTATION_SPEC_HASH) == wanted:
            return "unchanged"
        try:
            cluster.patch("CronJob", body["metadata"]["namespace"], body["metadata"]["name"],
                          cronjob_update(existing, body))
            return "updated"
        except KubernetesApiError as e:
            if e.status != 409:
                raise
            if attempt == CONFLICT_ATTEMPTS - 1:  # written to between each read and write: kopf tries again later
                raise kopf.TemporaryError(f"CronJob {meta.get('name')}: {e}; retrying", delay=RETRY_DELAY_S) from None
    raise AssertionError("unreachable")


def _has_or_had_policy(spec: kopf.Spec, status: kopf.Status, **_: Any) -> bool:
    return bool(spec.get("drift") or status.get("drift"))


# Filtered, so a resource without a drift policy costs no handler run (nor kopf's progress
# records for one) on the path to its training Job; nor on resume, where a new leader would
# otherwise send a CronJob DELETE for every resource before it serves a new one.
@kopf.on.create(*RESOURCE, when=_has_or_had_policy)
@kopf.on.update(*RESOURCE, field="spec", when=_has_or_had_policy)
@kopf.on.resume(*RESOURCE, when=_has_or_had_policy)
def reconcile_drift_cronjob(body: kopf.Body, spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status, name: str,
                            namespace: str, uid: str, patch: kopf.Patch, memo: kopf.Memo, reason: kopf.Reason,
                            old: Any = None, **_: Any) -> None:
    """`spec.drift` set: its CronJob exists and matches; unset: no CronJob, no drift status."""
    if not spec.get("drift") and not status.get("drift") and reason == kopf.Reason.UPDATE \
            and not (old or {}).get("drift"):
        return  # it never had a policy: nothing to remove
    try:
        resource = parse_resource_spec(dict(spec), where=f"{namespace}/{name}")
    except InvalidSpec:
        return  # start_training reports it in status
    owner = Owner(name, namespace, uid, int(meta.get("generation") or 1))
    cronjob = render_drift_cronjob(resource, owner)
    cron_name = drift_check_name(name)
    if cronjob is None:
        with kubernetes_errors():
            deleted = memo.cluster.delete("CronJob", namespace, cron_name)  # its check Jobs go with it
        if deleted or status.get("drift"):
            patch.status["drift"] = None
            patch.status["conditions"] = [c for c in status.get("conditions") or []
                                          if c.get("type") not in DRIFT_CONDITIONS]
            post_event(body, reason="DriftCheckRemoved", message=f"CronJob {cron_name} deleted")
        return
    kopf.adopt(cronjob, owner=body)
    try:
        with kubernetes_errors():
            if resource.drift is not None and resource.drift.retrain:
                for identity in render_drift_identity(namespace):  # before the CronJob whose pods run as it
                    memo.cluster.create(identity)  # an existing one (409) is taken as it is
            done = apply_cronjob(memo.cluster, cronjob, owner_uid=uid)
    except OwnedByAnother as e:  # a deleted namesake's CronJob is still being collected
        raise kopf.TemporaryError(str(e), delay=RETRY_DELAY_S) from None
    except kopf.PermanentError as e:  # refused for good (a schedule its parser rejects, a permission): say so
        post_event(body, reason="DriftCheckRefused", message=f"CronJob {cron_name}: {e}", warning=True)
        raise
    if (status.get("drift") or {}).get("cronJobName") != cron_name:
        patch.status["drift"] = {"cronJobName": cron_name}
    if done != "unchanged":
        assert resource.drift is not None
        post_event(body, reason="DriftCheckScheduled",
                   message=f"CronJob {cron_name} {done}: drift check {resource.drift.schedule!r} on "
                           f"{resource.drift.current_data}" + ("" if resource.drift.retrain else " (retrain off)"))


# -- the checks ----------------------------------------------------------------------------


@kopf.on.event("batch", "v1", "jobs", labels={LABEL_DRIFT_CHECK: kopf.PRESENT})
async def mirror_drift_check(body: kopf.Body, meta: kopf.Meta, namespace: str, memo: kopf.Memo, logger: kopf.Logger,
                             **_: Any) -> None:
    """Poke the resource when one of its checks finished; `record_drift_check` does the rest."""
    state = job_state(dict(body.get("status") or {}))
    if state not in (k.JOB_SUCCEEDED, k.JOB_FAILED) or meta.get("deletionTimestamp"):
        return
    await annotate_with_retries(memo, logger, namespace, meta["labels"][LABEL_DRIFT_CHECK],
                                {ANNOTATION_DRIFT_STATE: f"{meta['name']}:{state}"})


def newest_finished_check(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    found = cluster.list_jobs(namespace, label_selector=f"{LABEL_DRIFT_CHECK}={name}")
    finished = [j for j in found if (j["metadata"].get("labels") or {}).get(LABEL_DRIFT_CHECK) == name
                and job_state(j.get("status") or {}) in (k.JOB_SUCCEEDED, k.JOB_FAILED)]
    # the Job controller's creation order; the name breaks ties within a second
    finished.sort(key=lambda j: (j["metadata"].get("creationTimestamp") or "", j["metadata"]["name"]))
    return finished[-1] if finished else None


def check_outcome(cluster: Cluster, namespace: str, job: str) -> tuple[int | None, str | None]:
    """The exit code and termination message of the check's newest pod."""
    for pod in reversed(cluster.job_pods(namespace, job)):
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (container.get("state") or {}).get("terminated")
            if terminated:
                return terminated.get("exitCode"), terminated.get("message")
    return None, None


@kopf.on.field(*RESOURCE, field=("metadata", "annotations", ANNOTATION_DRIFT_STATE), retries=30,
               backoff=RETRY_DELAY_S)
def record_drift_check(**kwargs: Any) -> None:
    """The newest finished check → `DriftDetected`, `RetrainScheduled`, `status.drift` and events."""
    _record(**kwargs)


def _has_policy(spec: kopf.Spec, **_: Any) -> bool:
    return bool(spec.get("drift"))


@kopf.on.resume(*RESOURCE, retries=30, backoff=RETRY_DELAY_S, when=_has_policy)
def catch_up_drift_checks(spec: kopf.Spec, **kwargs: Any) -> None:
    """Checks that finished while no operator ran."""
    for field_kwarg in ("new", "old", "diff"):
        kwargs.pop(field_kwarg, None)
    _record(spec=spec, **kwargs)


def _record(*, body: kopf.Body, meta: kopf.Meta, status: kopf.Status, name: str, namespace: str,
            patch: kopf.Patch, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    with kubernetes_errors():
        job = newest_finished_check(memo.cluster, namespace, name)
        drift = dict(status.get("drift") or {})
        if job is None or drift.get("lastCheckJob") == job["metadata"]["name"]:
            return
        job_name = job["metadata"]["name"]
        exit_code, message = check_outcome(memo.cluster, namespace, job_name)
    check = read_check(job_name, exit_code, message)
    conditions = list(status.get("conditions") or [])
    seen = int(meta.get("generation") or 1)
    if check.result != RESULT_FAILED:  # a failed check says nothing new about drift
        conditions = set_condition(conditions, COND_DRIFT_DETECTED, check.result == RESULT_DRIFT,
                                   "DriftDetected" if check.result == RESULT_DRIFT else "NoDrift", check.drift_message,
                                   generation=seen)
        scheduled, reason, text = retrain_condition(check)
        conditions = set_condition(conditions, COND_RETRAIN_SCHEDULED, scheduled, reason, text, generation=seen)
    patch.status["conditions"] = conditions
    patch.status["drift"] = {
        "cronJobName": drift.get("cronJobName") or drift_check_name(name), "lastCheckJob": job_name,
        "lastCheckTime": check.checked_at or utc_now(), "result": check.result, "driftedFeatures": check.drifted,
        "retrain": check.retrain_status, "message": check.drift_message[:1000], "runId": check.run_id,
        "report": check.report}
    logger.info(f"drift check {job_name}: {check.result}")
    _post_events(body, check)


def _post_events(body: kopf.Body, check: DriftCheck) -> None:
    if check.result == RESULT_FAILED:
        post_event(body, reason="DriftCheckFailed", message=check.drift_message, warning=True)
        return
    if check.result != RESULT_DRIFT:
        post_event(body, reason="NoDrift", message=check.drift_message)
        return
    post_event(body, reason="DriftDetected", message=check.drift_message, warning=True)
    scheduled, reason, text = retrain_condition(check)
    post_event(body, reason="RetrainScheduled" if scheduled else reason, message=text or reason)
