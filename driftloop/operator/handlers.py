"""kopf handlers: one per cause, each a thin adapter over render / the Kubernetes gateway / outcome.

Flow: a resource is created (or its spec changes) → `start_training` creates the
generation's Job (its pod template carries the run spec). The Job's pod trains, registers and promotes with the
resource's credentials (see `outcome`). The Job watcher mirrors the Job's state into an
annotation on the resource, so that `follow_job` — a resource handler, with kopf's
retries and progress kept across restarts — writes into `status` what the pod reported.
The operator never calls MLflow.

Importing this module registers its handlers with kopf; `driftloop.operator.main` does so.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import kopf

from driftloop.errors import InvalidSpec
from driftloop.k8s_gateway import Cluster, KubernetesApiError, OwnedByAnother
from driftloop.operator import constants as k
from driftloop.operator.conditions import set_condition, utc_now
from driftloop.operator.diffbase import ProgressAnnotations, StatusDiffBase
from driftloop.operator.drift_render import DRIFT_CONDITIONS
from driftloop.operator.render import Owner, owned_name, render_children
from driftloop.operator.resource import parse_resource_spec, training_hash

RESOURCE = (k.GROUP, k.VERSION, k.PLURAL)
RETRY_DELAY_S = 10  # a namesake's objects still being collected
API_RETRY_DELAY_S = 2  # an API server error or throttling: usually gone in a moment
WORKERS = 16  # threads for the (synchronous) handlers, and as many API connections
JOB_DELETE_BUDGET_S = 10.0  # the most the finalizer holds a delete: the Job's own delete, nothing else
EVENT_SOURCE = "driftloop-operator"
EVENT_POSTERS = 4
MIRROR_RETRY_DELAYS_S = (1, 2, 4, 8, 16)  # a Job's state onto its resource: retried for ~30 s (see annotate_with_retries)


@contextmanager
def kubernetes_errors() -> Iterator[None]:
    """API errors as kopf understands them: server-side (or no answer) are retried, the rest are final."""
    try:
        yield
    except KubernetesApiError as e:
        if not _refused(e):
            raise kopf.TemporaryError(f"{e}; retrying",  # "answered 503 …" or "unreachable: …"
                                      delay=API_RETRY_DELAY_S) from None
        raise kopf.PermanentError(f"Kubernetes API refused: {e.status} {e.reason}: {_api_message(e)}") from None


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """All settings in one place; clients are built here, once, and shared through `memo`."""
    # Progress lives in annotations under our own prefix: the status schema is strict, and a
    # restarted operator must see what was in flight. Not the bare group: kopf ignores every
    # annotation under its own prefix, ours included. The last-handled spec goes in status, in the
    # request that writes the handlers' status (see `diffbase`).
    settings.persistence.progress_storage = ProgressAnnotations(prefix=k.KOPF_PREFIX)
    settings.persistence.diffbase_storage = StatusDiffBase()
    # The delete handler's finalizer, under our name (what `kubectl get -o yaml` shows a user).
    settings.persistence.finalizer = k.FINALIZER
    # Only our own Jobs (training and drift checks) come down the watch: the API server filters, so a
    # cluster's thousands of other Jobs cost the operator neither bandwidth nor memory.
    for plural in ("jobs", "cronjobs"):
        settings.watching.label_selectors["batch", plural] = k.OWNED_SELECTOR
    # kopf would post an Event for every INFO log line ("Handler … succeeded"); the operator posts
    # the ones that tell the story itself (JobCreated, Running, Promoted …) and kopf only problems.
    settings.posting.level = logging.WARNING
    # Our Events go through kopf's poster too: queued and sent by the event loop in the background,
    # so no handler thread waits on an Event (a courtesy) before taking the next resource's Job.
    settings.posting.reporting_component = EVENT_SOURCE
    settings.posting.event_name_prefix = f"{EVENT_SOURCE}-"
    # A few posters at a time, each gone as soon as its object has nothing queued: under a burst
    # of new resources, Events queue behind the Jobs instead of taking turns with them.
    settings.posting.worker_limit = EVENT_POSTERS
    settings.posting.idle_timeout = 0.1
    settings.execution.max_workers = WORKERS
    settings.networking.request_timeout = 60
    settings.watching.server_timeout = 300
    memo.cluster = Cluster.connect(pool_size=2 * WORKERS)  # handler threads + the executor's
    # The blocking client calls of async handlers run here, beside (not in) kopf's handler threads.
    memo.executor = concurrent.futures.ThreadPoolExecutor(WORKERS, thread_name_prefix="kubernetes-api")


def post_event(body: kopf.Body, *, reason: str, message: str, warning: bool = False) -> None:
    """A Kubernetes Event on the resource (what `kubectl describe` lists), queued: never blocks, never raises."""
    kopf.event(body, type="Warning" if warning else "Normal", reason=reason, message=message[:1024])


def _training_out_of_step(spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status,
                          reason: kopf.Reason | None = None, **_: Any) -> bool:
    """Whether `start_training` has anything to do on resume: status does not yet record this generation's Job
    (or what `spec.suspend` asks of it).

    A new leader resumes every existing resource before it serves a new one (kopf handles its initial
    listing first); filtered here, one that is in step costs no handler run, no progress annotations
    and no API call, so a takeover with 1,000 resources in place reaches a new resource's Job at once.
    Mirrors `start_training`'s own tests: what passes this filter is what it would act on.
    """
    # kopf's pre-check ("does any handler care about this object?") asks every handler's filter on
    # every event, whatever its cause, before it picks handlers by cause. Only a resume needs the
    # answer; the training hash below (a pydantic parse and a YAML read per hyperparameter) was a
    # tenth of the operator's CPU in a burst, on its event loop. True adds nothing: the create
    # handler, unfiltered, passes that pre-check on its own.
    if reason is not None and reason != kopf.Reason.RESUME:
        return True
    if not status.get("jobName") or status.get("observedGeneration") != int(meta.get("generation") or 1):
        return True
    known = status.get("trainingHash")
    if known and known != training_hash(dict(spec)):
        return True
    suspend, phase = bool(spec.get("suspend")), status.get("phase")
    return (suspend and phase not in (*k.TERMINAL_PHASES, k.PHASE_SUSPENDED)) or \
        (not suspend and phase == k.PHASE_SUSPENDED)


@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
@kopf.on.resume(*RESOURCE, when=_training_out_of_step)
async def start_training(body: kopf.Body, spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status, name: str,
                         namespace: str, uid: str, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    """Create this generation's Job (once: names derive from the generation).

    A change to the training fields supersedes the generation still in flight (its Job is deleted);
    a change to `drift` or `suspend` alone starts no Job, and `suspend` is passed on to the current one.
    Async, so a resource holds a thread only while one of its API calls is in flight.
    """
    generation = int(meta.get("generation") or 1)
    try:  # parsed once, for the hash and the render (pydantic's validation is a good part of a resource's CPU)
        resource, invalid = parse_resource_spec(dict(spec), where=f"{namespace}/{name}"), None
    except InvalidSpec as e:
        resource, invalid = None, e
    trains = training_hash(dict(spec), parsed=resource)
    known = status.get("trainingHash")  # absent in a status written before it existed: compare generations
    if status.get("jobName") and (known == trains if known else status.get("observedGeneration") == generation):
        await _keep_generation(spec, status, namespace, generation, patch, memo)
        return  # the same training: this generation's objects exist (made before a restart, or before the edit)
    # a new generation starts its conditions afresh, but the drift policy's describe the data, not the Job
    kept = [c for c in status.get("conditions") or [] if c.get("type") in DRIFT_CONDITIONS]
    kept = await _supersede(body, status, namespace, generation, kept, memo)
    try:
        if resource is None:  # the spec did not parse above: reported now, after any supersede
            assert invalid is not None
            raise invalid
        children = render_children(resource, Owner(name, namespace, uid, generation), resource_labels=meta.get("labels"))
    except InvalidSpec as e:
        _not_started(patch, kept, reason="InvalidSpec", message=str(e), generation=generation, trains=trains)
        raise kopf.PermanentError(str(e)) from None
    kopf.adopt(children, owner=body)
    try:
        await ensure_all(memo, children, owner_uid=uid)
    except OwnedByAnother as e:  # a deleted namesake's Job is still being collected
        raise kopf.TemporaryError(str(e), delay=RETRY_DELAY_S) from None
    except KubernetesApiError as e:
        if not _refused(e):
            with kubernetes_errors():
                raise  # a server-side error or no answer: kopf retries it
        # Refused for good (422: a field the API server rejects; 403: a permission the operator lacks): said in
        # status and as a Warning, since nothing else would show it; no child of this generation is left behind
        text = f"the API server refused this generation's objects: {_api_message(e)}"
        await _in_executor(memo, _delete_jobs, memo.cluster, children)
        _not_started(patch, kept, reason="RefusedByAPIServer", message=text, generation=generation, trains=trains)
        post_event(body, reason="RefusedByAPIServer", message=text, warning=True)
        raise kopf.PermanentError(text) from None
    job = owned_name(name, generation)
    _started(patch, kept, job=job, generation=generation, trains=trains, suspended=resource.suspend,
             model_name=resource.mlflow.model_name or name)
    post_event(body, reason="JobCreated", message=f"Job {job} created for generation {generation}")


def _started(patch: kopf.Patch, conditions: list[dict[str, Any]], *, job: str, generation: int, trains: str,
             suspended: bool, model_name: str) -> None:
    """A new generation's status: its Job made (suspended, if spec.suspend), nothing of the last one's outcome."""
    conditions = set_condition(conditions, k.COND_JOB_CREATED, True, "JobCreated", f"Job {job} created",
                               generation=generation)
    if suspended:
        conditions = set_condition(conditions, k.COND_SUSPENDED, True, "SuspendedBySpec",
                                   f"Job {job} is suspended (spec.suspend)", generation=generation)
    patch.status.update(phase=k.PHASE_SUSPENDED if suspended else k.PHASE_PENDING, jobName=job,
                        observedGeneration=generation, trainingHash=trains, conditions=conditions,
                        modelName=model_name, runId=None, modelVersion=None, gate=None,
                        gateReasons=None, message=None, startTime=None, completionTime=None)


def _not_started(patch: kopf.Patch, conditions: list[dict[str, Any]], *, reason: str, message: str, generation: int,
                 trains: str) -> None:
    """A generation that made no Job: Failed with why, and nothing of an earlier generation's Job or outcome."""
    patch.status.update(phase=k.PHASE_FAILED, message=message[:4000], observedGeneration=generation,
                        trainingHash=trains, jobName=None, runId=None, modelVersion=None, gate=None, gateReasons=None,
                        startTime=None, completionTime=utc_now(),
                        conditions=set_condition(conditions, k.COND_FAILED, True, reason, message, generation=generation))


def _refused(error: KubernetesApiError) -> bool:
    """A final answer about the request itself (4xx but throttling), which a retry would only get again."""
    return error.status is not None and 400 <= error.status < 500 and error.status != 429


def _api_message(error: KubernetesApiError) -> str:
    """The API server's own sentence (its `Status.message`), else the status line."""
    import json

    try:
        message = json.loads(error.body or "{}").get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message)[:1000] if message else f"{error.status} {error.reason}"


def _delete_jobs(cluster: Cluster, children: list[dict[str, Any]]) -> None:
    """Best effort: a Job `ensure_all` made before another child (its Service) was refused must not run untracked.
    (A Service runs nothing; it goes with its owner.)"""
    for child in children:
        if child["kind"] != "Job":
            continue
        try:
            cluster.delete("Job", child["metadata"]["namespace"], child["metadata"]["name"])
        except KubernetesApiError:
            continue  # its owner reference still has the garbage collector take it with the resource


async def _in_executor(memo: kopf.Memo, call: Any, *args: Any) -> Any:
    with kubernetes_errors():
        return await asyncio.get_running_loop().run_in_executor(memo.executor, functools.partial(call, *args))


async def _supersede(body: kopf.Body, status: kopf.Status, namespace: str, generation: int,
                     conditions: list[dict[str, Any]], memo: kopf.Memo) -> list[dict[str, Any]]:
    """Delete the Job of a generation still in flight: one generation trains at a time.

    Its pods get SIGTERM and end their own MLflow run as KILLED (they hold the credentials; see
    `driftloop.runner.killed_on_sigterm`).
    """
    old, name = status.get("jobName"), body["metadata"]["name"]
    if not old or status.get("phase") in k.TERMINAL_PHASES or old == owned_name(name, generation):
        return conditions
    await _in_executor(memo, memo.cluster.delete, "Job", namespace, old)
    text = (f"Job {old} deleted: the training fields changed in generation {generation}; "
            "its pod ends its MLflow run as KILLED")
    post_event(body, reason="Superseded", message=text)
    return set_condition(conditions, k.COND_SUPERSEDED, True, "SpecChanged", text, generation=generation)


def _job_in_flight(status: kopf.Status, meta: kopf.Meta, **_: Any) -> bool:
    """Whether a delete has a training to stop: a generation's Job not yet finished whose pods have run
    (`startTime`, set when the Job first reports active pods), or the finalizer is on already (it stays
    until the generation ends, a superseding one's pending Job included)."""
    if not status.get("jobName") or status.get("phase") in k.TERMINAL_PHASES:
        return False
    return bool(status.get("startTime")) or k.FINALIZER in (meta.get("finalizers") or [])


# Filtered, so kopf holds the finalizer only while a Job is training. Unfiltered, kopf patches the
# finalizer onto a new resource and handles it only in the cycle after (that patch's watch event):
# a request and a round trip before every Job. Added once the Job was created, it was still a
# third request (and watch event, and handling cycle) per new resource, in a burst of them taking
# turns with the next resources' Jobs. Now it comes with the first sign of pods: until then a
# delete has nothing to stop (a held, queued or suspended Job runs no pod) and the Job goes with
# its owner reference, the garbage collector stopping any pod that started in that moment (it
# gets SIGTERM and ends its own MLflow run, as on the finalizer's delete, a little later).
@kopf.on.delete(*RESOURCE, when=_job_in_flight)
async def end_training(body: kopf.Body, status: kopf.Status, name: str, namespace: str, uid: str, memo: kopf.Memo,
                       **_: Any) -> None:
    """Deleted mid-training: delete the Job, whose pods then end their MLflow run as KILLED (never raises).

    The finalizer waits on one Job delete (at most `JOB_DELETE_BUDGET_S`), never on MLflow: the pods
    get SIGTERM and their grace period from the delete (propagation: Background).
    """
    job = status.get("jobName")
    if not job or status.get("phase") in k.TERMINAL_PHASES:
        return
    try:  # at once, not when the garbage collector gets to it: the pods stop training now
        deleted = await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(
            memo.executor, memo.cluster.delete, "Job", namespace, job), JOB_DELETE_BUDGET_S)
    except (KubernetesApiError, TimeoutError):
        return  # the owner reference still has the garbage collector delete it
    if deleted:
        post_event(body, reason="JobDeleted",
                   message=f"Job {job} deleted with the resource; its pod ends its MLflow run as KILLED")


async def _keep_generation(spec: kopf.Spec, status: kopf.Status, namespace: str, generation: int,
                           patch: kopf.Patch, memo: kopf.Memo) -> None:
    """The training is unchanged (an edit of `drift` or `suspend`): pass `suspend` on to the Job."""
    patch.status["observedGeneration"] = generation
    suspend, phase, job = bool(spec.get("suspend")), status.get("phase"), status["jobName"]
    conditions = list(status.get("conditions") or [])
    if suspend and phase not in (*k.TERMINAL_PHASES, k.PHASE_SUSPENDED):
        await _in_executor(memo, memo.cluster.patch, "Job", namespace, job, {"spec": {"suspend": True}})
        patch.status.update(phase=k.PHASE_SUSPENDED, conditions=set_condition(
            _paused(conditions, job, generation), k.COND_SUSPENDED, True, "SuspendedBySpec",
            f"Job {job} is suspended (spec.suspend)", generation=generation))
    elif not suspend and phase == k.PHASE_SUSPENDED:  # only what we suspended: a queue's hold is the queue's
        await _in_executor(memo, memo.cluster.patch, "Job", namespace, job, {"spec": {"suspend": False}})
        patch.status.update(phase=k.PHASE_PENDING, conditions=set_condition(
            conditions, k.COND_SUSPENDED, False, "Resumed", f"Job {job} resumed", generation=generation))


def _paused(conditions: list[dict[str, Any]], job: str, generation: int) -> list[dict[str, Any]]:
    """A suspended Job's pods are gone: `Running` turns False (when it was True), never True beside `Suspended`."""
    if any(c.get("type") == k.COND_RUNNING and c.get("status") == "True" for c in conditions):
        return set_condition(conditions, k.COND_RUNNING, False, "JobSuspended", f"Job {job} is suspended",
                             generation=generation)
    return conditions


async def ensure_all(memo: kopf.Memo, children: list[dict[str, Any]], *, owner_uid: str) -> None:
    """Create (or find) every child at once: one round trip to the Job, not one per child.

    The Job need not wait for its Service (workers > 1): torchrun's rendezvous waits for the
    DNS names. All calls finish before the first error is raised, so a retry never races a
    call still in flight.
    """
    loop = asyncio.get_running_loop()
    calls = [loop.run_in_executor(memo.executor, functools.partial(memo.cluster.ensure, child, owner_uid=owner_uid))
             for child in children]
    for outcome in await asyncio.gather(*calls, return_exceptions=True):
        if isinstance(outcome, BaseException):
            raise outcome


def job_state(job_status: dict[str, Any]) -> str | None:
    """What the Job controller says: succeeded, failed, suspended, active, or nothing yet."""
    return job_outcome(job_status)[0]


def job_outcome(job_status: dict[str, Any]) -> tuple[str | None, str | None]:
    """The Job's state and, once it failed, the Job controller's reason (DeadlineExceeded, PodFailurePolicy …)."""
    suspended = False
    for condition in job_status.get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "SuccessCriteriaMet"):
            return k.JOB_SUCCEEDED, None
        if condition.get("status") == "True" and condition.get("type") in ("Failed", "FailureTarget"):
            return k.JOB_FAILED, condition.get("reason")
        suspended |= condition.get("status") == "True" and condition.get("type") == "Suspended"
    if suspended:
        return k.JOB_SUSPENDED, None
    return (k.JOB_ACTIVE if job_status.get("active") else None), None


def _job_settled(status: kopf.Status, meta: kopf.Meta, type: str | None = None, **_: Any) -> bool:  # noqa: A002
    """Only Jobs with a state worth mirroring reach a handler (a new Job has none yet), and every Job that goes."""
    return type == "DELETED" or (job_state(dict(status)) is not None and not meta.get("deletionTimestamp"))


@kopf.on.event("batch", "v1", "jobs", labels={k.LABEL_RESOURCE: kopf.PRESENT}, when=_job_settled)
async def mirror_job_state(body: kopf.Body, meta: kopf.Meta, namespace: str, memo: kopf.Memo, logger: kopf.Logger,
                           type: str | None = None, **_: Any) -> None:  # noqa: A002 (kopf's name)
    """Copy the Job's state onto its resource (`mirrored_state`), where `follow_job` picks it up.

    A Job deleted before it finished (by hand, by a TTL) is mirrored as `deleted`; one that had finished keeps
    its last state.
    """
    state, reason = job_outcome(dict(body.get("status") or {}))
    if type == "DELETED":
        if state not in (k.JOB_SUCCEEDED, k.JOB_FAILED):
            state, reason = k.JOB_DELETED, None
    elif state is None or body.get("metadata", {}).get("deletionTimestamp"):
        return
    owner = next((o.get("uid") for o in meta.get("ownerReferences") or [] if o.get("controller")), None)
    if state == k.JOB_DELETED:
        reason = owner  # where an operator before the owner field read it: a rolled-back operator still fails it
    await annotate_with_retries(memo, logger, namespace, meta["labels"][k.LABEL_RESOURCE],
                                {k.ANNOTATION_JOB_STATE: mirrored_state(meta["name"], state, reason, owner)})


def mirrored_state(job: str, state: str, reason: str | None, owner_uid: str | None) -> str:
    """`<job>:<state>:<reason>:<owner uid>`. The Job's name alone is not enough: a resource deleted and made
    again under its name (a new uid) gets the same Job name, and the old Job's last state, written onto the
    new resource, would read as its own (an end it has not reached), or, being the same text as its own Job's
    next state, hide that state (kopf's field handler fires on a change only)."""
    return f"{job}:{state}:{reason or ''}:{owner_uid or ''}"


def _for_this_resource(state: str, owner: str, uid: str) -> bool:
    """Whether a mirrored state is this resource's Job's, not a namesake's: its owner's uid, or none recorded (an
    older operator's value), except for `deleted`, which always named the owner."""
    return owner == uid or (not owner and state != k.JOB_DELETED)


def read_mirrored_state(value: str | None) -> tuple[str, str, str, str]:
    """(job, state, reason, owner uid); a value an older operator wrote (`<job>:<state>[:<reason>]`, the owner's
    uid as the reason of `deleted`) reads as it meant."""
    parts = (value or "").split(":")
    job, state, reason, owner = (parts + ["", "", "", ""])[:4]
    if len(parts) <= 3 and state == k.JOB_DELETED:
        reason, owner = "", reason
    return job, state, reason, owner


async def annotate_with_retries(memo: kopf.Memo, logger: kopf.Logger, namespace: str, name: str,
                                annotations: dict[str, str]) -> None:
    """Annotate the resource, retrying what a retry can mend (5xx, 429, no answer) for about half a minute.

    For the Job watchers: kopf never retries an event handler, and a finished Job sends no further event,
    so one lost write would leave the resource Running for good. The sleeps hold no thread.
    """
    loop = asyncio.get_running_loop()
    for delay in (*MIRROR_RETRY_DELAYS_S, None):
        try:
            await loop.run_in_executor(memo.executor, memo.cluster.annotate_resource, namespace, name, annotations)
            return
        except KubernetesApiError as e:
            if delay is None or _refused(e):
                raise
            logger.warning(f"annotating {namespace}/{name} failed ({e}); retrying in {delay} s")
            await asyncio.sleep(delay)


def _termination_message(cluster: Cluster, namespace: str, job: str) -> str | None:
    """The rank-0 pod's termination message (the newest attempt's)."""
    pods = cluster.job_pods(namespace, job)
    messages = []
    for pod in pods:
        index = (pod["metadata"].get("annotations") or {}).get("batch.kubernetes.io/job-completion-index", "0")
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (container.get("state") or {}).get("terminated") or {}
            if index == "0" and terminated.get("message"):
                messages.append(terminated["message"])
    return messages[-1] if messages else None


@kopf.on.field(*RESOURCE, field=("metadata", "annotations", k.ANNOTATION_JOB_STATE), retries=30,
               backoff=RETRY_DELAY_S)
def follow_job(new: str | None, **kwargs: Any) -> None:
    """Write the Job's progress, and what its pod reported when it ended, into `status`."""
    _follow(new, **kwargs)


def _end_unrecorded(meta: kopf.Meta, status: kopf.Status, **_: Any) -> bool:
    """A Job's end mirrored onto the resource, but not yet into its status (else: nothing to resume)."""
    _, state, _, owner = read_mirrored_state((meta.get("annotations") or {}).get(k.ANNOTATION_JOB_STATE))
    return state in (k.JOB_SUCCEEDED, k.JOB_FAILED) and _for_this_resource(state, owner, str(meta.get("uid") or "")) \
        and status.get("phase") not in k.TERMINAL_PHASES


# Filtered (as `start_training`'s resume is), so a resource with nothing to catch up costs a new
# leader nothing: no handler thread, no progress annotations.
@kopf.on.resume(*RESOURCE, retries=30, backoff=RETRY_DELAY_S, when=_end_unrecorded)
def catch_up(meta: kopf.Meta, status: kopf.Status, **kwargs: Any) -> None:
    """Finish a generation whose end was recorded but not its status (kopf writes those in two requests)."""
    for field_kwarg in ("new", "old", "diff"):  # kopf passes these (empty) to resume handlers too
        kwargs.pop(field_kwarg, None)
    state = (meta.get("annotations") or {}).get(k.ANNOTATION_JOB_STATE)
    _follow(state, meta=meta, status=status, **kwargs)


def _follow(new: str | None, *, body: kopf.Body, spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status, name: str,
            namespace: str, uid: str, patch: kopf.Patch, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    job, state, job_reason, owner = read_mirrored_state(new)
    if not job or job != status.get("jobName") or status.get("phase") in k.TERMINAL_PHASES:
        return  # an older generation's Job, or already finished
    if not _for_this_resource(state, owner, uid):
        return  # a namesake's Job (the resource was deleted and made again), going as the garbage collector takes it
    conditions = list(status.get("conditions") or [])
    seen = int(meta.get("generation") or 1)  # the resource generation these conditions are judged at
    if state == k.JOB_DELETED:
        known = status.get("trainingHash")
        if known and known != training_hash(dict(spec)):
            return  # superseded: an edit of the training fields deleted it, and its generation's Job is on the way
        text = (f"Job {job} was deleted before it finished (kubectl delete, or its TTL); bump spec.retrainToken "
                "to train this generation again")
        conditions = set_condition(conditions, k.COND_RUNNING, False, "JobDeleted", text, generation=seen)
        _finish_status(patch, conditions, failed=True, message=text, run_id=status.get("runId"), generation=seen,
                       reason="JobDeleted")
        post_event(body, reason="JobDeleted", message=text, warning=True)
        return
    if state == k.JOB_SUSPENDED:  # by spec.suspend, or by a queue (Kueue) until it admits the Job
        ours = bool(spec.get("suspend"))
        reason, text = ("SuspendedBySpec", f"Job {job} is suspended (spec.suspend)") if ours else \
            ("Queued", f"Job {job} is suspended by its queue until admitted")
        patch.status.update(phase=k.PHASE_SUSPENDED if ours else k.PHASE_QUEUED, conditions=set_condition(
            _paused(conditions, job, seen), k.COND_SUSPENDED, True, reason, text, generation=seen))
        return
    if state == k.JOB_ACTIVE:
        if any(c.get("type") == k.COND_SUSPENDED and c.get("status") == "True" for c in conditions):
            conditions = set_condition(conditions, k.COND_SUSPENDED, False, "Resumed", f"Job {job} resumed",
                                       generation=seen)
        patch.status.update(phase=k.PHASE_RUNNING, startTime=status.get("startTime") or utc_now(),
                            conditions=set_condition(conditions, k.COND_RUNNING, True, "JobRunning",
                                                     f"Job {job} is running", generation=seen))
        post_event(body, reason="Running", message=f"Job {job} is running")
        return
    with kubernetes_errors():
        message = _termination_message(memo.cluster, namespace, job)
    from driftloop.operator.outcome import failure_message, succeeded_outcome

    conditions = set_condition(conditions, k.COND_RUNNING, False, "JobFinished", f"Job {job} finished",
                               generation=seen)
    if state == k.JOB_FAILED:
        text = failure_message(message, job=job)
        _finish_status(patch, conditions, failed=True, message=text, run_id=_reported_run(message),
                       reason=job_reason or "TrainingFailed", generation=seen)
        post_event(body, reason="Failed", message=text, warning=True)
        return
    outcome = succeeded_outcome(message, job=job)
    if not outcome.readable:  # the Job succeeded; what it made cannot be told without asking MLflow, which we do not
        _finish_status(patch, conditions, failed=False, message=outcome.error or "", run_id=None, generation=seen,
                       reason="TerminationMessageUnreadable")
        post_event(body, reason="TerminationMessageUnreadable", message=outcome.error or "", warning=True)
        return
    gate_message = "; ".join(outcome.gate_reasons)
    conditions = set_condition(conditions, k.COND_GATE_PASSED, outcome.gate_passed,
                               "GatePassed" if outcome.gate_passed else "GateDeclined", gate_message, generation=seen)
    conditions = set_condition(conditions, k.COND_PROMOTED, outcome.promoted,
                               "Promoted" if outcome.promoted else "NotPromoted",
                               f"version {outcome.model_version} is @champion" if outcome.promoted
                               else "@champion unchanged", generation=seen)
    summary = (f"registered version {outcome.model_version} as @champion" if outcome.promoted
               else "gate declined; @champion unchanged")
    summary += " (an earlier attempt had registered it)" if outcome.already_registered else ""
    _finish_status(patch, conditions, failed=False, message=summary, run_id=outcome.run_id, generation=seen)
    patch.status.update(modelVersion=outcome.model_version, gate="Passed" if outcome.gate_passed else "Declined",
                        gateReasons=outcome.gate_reasons)
    logger.info(f"{summary} (run {outcome.run_id})")
    post_event(body, reason="Promoted" if outcome.promoted else "GateDeclined", message=summary)


def _reported_run(message: str | None) -> str | None:
    from driftloop.operator.outcome import parse_termination_message

    return parse_termination_message(message).get("run_id")


def job_generation(job: str, *, fallback: int) -> int:
    """The generation a Job was made for: its name ends in `-g<generation>` (see `owned_name`)."""
    _, _, number = job.rpartition("-g")
    return int(number) if number.isdigit() else fallback


def _finish_status(patch: kopf.Patch, conditions: list[dict[str, Any]], *, failed: bool, message: str,
                   run_id: str | None, generation: int, reason: str | None = None) -> None:
    """Succeeded (and Failed) with the reason: the Job's own (DeadlineExceeded …) or TrainingFailed; Succeeded, or
    TerminationMessageUnreadable when the pod's report is missing."""
    reason = reason or ("TrainingFailed" if failed else "Succeeded")
    conditions = set_condition(conditions, k.COND_SUCCEEDED, not failed, reason, message, generation=generation)
    if failed:
        conditions = set_condition(conditions, k.COND_FAILED, True, reason, message, generation=generation)
    patch.status.update(phase=k.PHASE_FAILED if failed else k.PHASE_SUCCEEDED, conditions=conditions,
                        message=message[:4000], runId=run_id, completionTime=utc_now())
