"""Pure functions from a resource to the objects the operator owns: no API calls here.

Names derive from the resource's name and generation, so a restarted operator (or a
retried handler) computes the same names and finds what it already created.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from driftloop.errors import InvalidSpec
from driftloop.operator import constants as k
from driftloop.operator.resource import MLTrainingJobSpec, to_run_spec

_MAX_NAME = 52  # Job names feed the job-name label and, indexed, pod hostnames `<job>-<index>` (63 chars)


@dataclass(frozen=True)
class Owner:
    """The identity of the MLTrainingJob that owned objects point back to."""

    name: str
    namespace: str
    uid: str
    generation: int


def owned_name(name: str, generation: int) -> str:
    """`churn` generation 3 → `churn-g3`; long names keep a hash so two never collide."""
    return bounded_name(name, f"-g{generation}")


def bounded_name(name: str, suffix: str) -> str:
    """`name` + `suffix` within the length Job names allow; a long name keeps a hash so two never collide."""
    if len(name) + len(suffix) <= _MAX_NAME:
        return name + suffix
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"{name[:_MAX_NAME - len(suffix) - 7].rstrip('-')}-{digest}{suffix}"


def labels(owner: Owner) -> dict[str, str]:
    return {"app.kubernetes.io/name": "driftloop", "app.kubernetes.io/component": "training",
            "app.kubernetes.io/managed-by": k.MANAGED_BY,
            k.LABEL_RESOURCE: owner.name, k.LABEL_GENERATION: str(owner.generation)}


def run_tags(owner: Owner) -> dict[str, str]:
    """Tags on the MLflow run and the model version that tie them to one resource generation."""
    return {k.TAG_NAMESPACE: owner.namespace, k.TAG_NAME: owner.name, k.TAG_UID: owner.uid,
            k.TAG_GENERATION: str(owner.generation)}


def render_run_spec(spec: MLTrainingJobSpec, owner: Owner) -> str:
    """The run spec the Job's container reads, as `driftloop run --spec` expects it (YAML)."""
    return to_run_spec(spec, name=owner.name, output=f"{k.WORK_DIR}/runs").to_yaml()


def render_service(owner: Owner) -> dict[str, Any]:
    """The headless Service that gives each indexed pod a DNS name for torchrun's rendezvous."""
    name = owned_name(owner.name, owner.generation)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": owner.namespace, "labels": labels(owner)},
            "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                     "selector": {k.LABEL_RESOURCE: owner.name, k.LABEL_GENERATION: str(owner.generation)},
                     "ports": [{"name": "rendezvous", "port": k.RENDEZVOUS_PORT,
                                "targetPort": k.RENDEZVOUS_PORT}]}}


def training_command(spec: MLTrainingJobSpec, owner: Owner) -> list[str]:
    """The container's command: the whole gated `driftloop run`, deploy included; torchrun around it for workers > 1.

    The pod registers and promotes with the resource's credentials, exactly once per generation:
    `--once-by` the uid and generation tags, so a retried pod (backoffLimit) or a re-created Job finds
    the version an earlier attempt made. `--force`: a new generation trains even on data and spec a
    version was made from (bumping `retrainToken` asks for exactly that). Its outcome goes to the
    termination message, compact and within the kubelet's 4 KiB, which is all the operator reads.
    """
    run = ["run", "--spec", f"{k.SPEC_MOUNT_DIR}/{k.SPEC_FILE}", "--force", "--json", k.TERMINATION_LOG,
           "--json-max-bytes", str(k.TERMINATION_MESSAGE_BYTES), "--bad-input-exit", str(k.EXIT_BAD_INPUT), "-q"]
    for key, value in run_tags(owner).items():
        run += ["--tag", f"{key}={value}"]
    for key in (k.TAG_UID, k.TAG_GENERATION):
        run += ["--once-by", key]
    if spec.workers == 1:
        return ["driftloop", *run]
    # $(VAR) is expanded by the kubelet from the container's env below.
    return ["torchrun", "--nnodes=$(WORLD_SIZE)", "--nproc-per-node=1", "--node-rank=$(NODE_RANK)",
            "--rdzv-backend=static", "--master-addr=$(MASTER_ADDR)", "--master-port=$(MASTER_PORT)",
            "-m", "driftloop", *run]


def base_env() -> list[dict[str, Any]]:
    """Every driftloop container's env: the root filesystem is read-only, so home and temp go to the emptyDir."""
    return [{"name": "HOME", "value": k.WORK_DIR}, {"name": "TMPDIR", "value": k.WORK_DIR},
            {"name": "PYTHONUNBUFFERED", "value": "1"}]


def container_security_context() -> dict[str, Any]:
    return {"runAsNonRoot": True, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
            "privileged": False, "capabilities": {"drop": ["ALL"]}}


def pod_security_context() -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"}}


def _env(spec: MLTrainingJobSpec, owner: Owner) -> list[dict[str, Any]]:
    # The root filesystem is read-only: home, temporary files and outputs go to the emptyDir.
    env = base_env() + [{"name": k.ENV_TERMINATION_GRACE_S, "value": str(k.TERMINATION_GRACE_S)}]
    if spec.workers > 1:
        name = owned_name(owner.name, owner.generation)
        env += [{"name": "WORLD_SIZE", "value": str(spec.workers)},
                {"name": "NODE_RANK", "valueFrom": {"fieldRef": {
                    "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}},
                {"name": "MASTER_ADDR", "value": f"{name}-0.{name}.{owner.namespace}.svc"},
                {"name": "MASTER_PORT", "value": str(k.RENDEZVOUS_PORT)}]
    return env


def pod_failure_policy() -> dict[str, Any]:
    """Fail the Job at once on bad data or spec (a retry never helps); a disruption (preemption, drain) is no failure.

    Any other exit (a failed step, an OOM kill's 137) counts against `backoffLimit`, as without a policy.
    """
    return {"rules": [
        {"action": "FailJob", "onExitCodes": {"containerName": k.CONTAINER_NAME, "operator": "In",
                                              "values": [k.EXIT_SPEC_ERROR, k.EXIT_BAD_INPUT]}},
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]}


def scheduling(spec: MLTrainingJobSpec) -> dict[str, Any]:
    """The pod spec's placement and identity fields from `spec.scheduling` and `spec.podTemplate` (only those set)."""
    placement, template = spec.scheduling, spec.pod_template
    tolerations = [t.model_dump(by_alias=True, exclude_none=True) for t in placement.tolerations]
    if spec.resources.gpu > 0 and not any(_tolerates_gpu_taint(t) for t in tolerations):
        tolerations.append(dict(k.GPU_TOLERATION))  # GPU nodes are tainted so that only GPU pods land there
    fields: dict[str, Any] = {
        "nodeSelector": placement.node_selector or None,
        "tolerations": tolerations or None,
        "affinity": placement.affinity or None,
        "priorityClassName": placement.priority_class_name,
        "serviceAccountName": template.service_account_name,
        "imagePullSecrets": [{"name": ref.name} for ref in template.image_pull_secrets] or None}
    return {key: value for key, value in fields.items() if value is not None}


def _tolerates_gpu_taint(toleration: dict[str, Any]) -> bool:
    if toleration.get("effect") not in (None, "NoSchedule"):
        return False
    if toleration.get("operator") == "Exists" and not toleration.get("key"):
        return True  # tolerates every taint
    return toleration.get("key") == k.GPU_TOLERATION["key"]


def pod_metadata(spec: MLTrainingJobSpec, owner: Owner) -> dict[str, Any]:
    """The pod's labels (the user's, then ours: the Service and the operator select on ours) and annotations
    (the user's, then the run spec, which the pod reads through its `spec` volume).

    The run spec rides on the pod template rather than in a ConfigMap of its own, so a generation
    costs one API request (the Job) and the pod can never start before its spec exists. It is a few
    KiB; the schema bounds every field, and a spec that would still pass the API server's limit on a
    pod's annotations is refused here, with a message, instead of by the server on the Job's create.
    """
    annotations = dict(spec.pod_template.annotations) | {k.ANNOTATION_RUN_SPEC: render_run_spec(spec, owner)}
    size = sum(len(key.encode()) + len(value.encode()) for key, value in annotations.items())
    if size > k.POD_ANNOTATIONS_MAX_BYTES:
        raise InvalidSpec(f"{owner.namespace}/{owner.name}: the run spec and spec.podTemplate.annotations take "
                          f"{size} bytes, over the {k.POD_ANNOTATIONS_MAX_BYTES} a pod's annotations may hold")
    return {"labels": spec.pod_template.labels | labels(owner), "annotations": annotations}


def spec_volume() -> dict[str, Any]:
    """The run spec as the file `driftloop run --spec` reads: the pod's own annotation, by the downward API."""
    return {"name": "spec", "downwardAPI": {"items": [{
        "path": k.SPEC_FILE, "fieldRef": {"fieldPath": f"metadata.annotations['{k.ANNOTATION_RUN_SPEC}']"}}]}}


def queue_labels(resource_labels: dict[str, str] | None) -> dict[str, str]:
    """The resource's Kueue labels (queue name, priority class), which its Job carries too."""
    return {key: value for key, value in (resource_labels or {}).items() if key in k.KUEUE_LABELS}


def render_job(spec: MLTrainingJobSpec, owner: Owner, *, extra_labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A batch/v1 Job whose pod(s) run the in-process pipeline up to the gate.

    Args:
        extra_labels: on the Job (not its pods), e.g. `queue_labels()` for Kueue.
    """
    name = owned_name(owner.name, owner.generation)
    quantities: dict[str, Any] = {"cpu": spec.resources.cpu, "memory": spec.resources.memory}
    if spec.resources.gpu:
        quantities["nvidia.com/gpu"] = spec.resources.gpu
    container: dict[str, Any] = {
        "name": k.CONTAINER_NAME, "image": spec.training_image, "imagePullPolicy": "IfNotPresent",
        "command": training_command(spec, owner), "workingDir": k.WORK_DIR, "env": _env(spec, owner),
        "resources": {"requests": quantities, "limits": quantities},
        "terminationMessagePath": k.TERMINATION_LOG, "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": container_security_context(),
        "volumeMounts": [{"name": "spec", "mountPath": k.SPEC_MOUNT_DIR, "readOnly": True},
                         {"name": "work", "mountPath": k.WORK_DIR}],
    }
    if spec.workers > 1:
        container["ports"] = [{"name": "rendezvous", "containerPort": k.RENDEZVOUS_PORT}]
    if spec.mlflow.secret_ref is not None:
        container["envFrom"] = [{"secretRef": {"name": spec.mlflow.secret_ref.name}}]
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never", "automountServiceAccountToken": False,
        # On SIGTERM (the Job deleted: superseded or the resource deleted; or an eviction) the pod ends its
        # MLflow run as KILLED, giving MLflow this grace period less a margin for torchrun to pass the
        # signal on and for the exit (driftloop.runner.stop_budget_s: 15 s of 20). The env var tells the
        # pod the same number. 20 s frees the pod's quota (GPUs) sooner than the default 30.
        "terminationGracePeriodSeconds": k.TERMINATION_GRACE_S,
        "securityContext": pod_security_context(),
        "containers": [container],
        "volumes": [spec_volume(), {"name": "work", "emptyDir": {}}],
    }
    pod_spec |= scheduling(spec)
    job_spec: dict[str, Any] = {"backoffLimit": spec.run_policy.backoff_limit, "suspend": spec.suspend,
                                "podFailurePolicy": pod_failure_policy(),
                                "template": {"metadata": pod_metadata(spec, owner), "spec": pod_spec}}
    if spec.workers > 1:
        pod_spec["subdomain"] = name
        job_spec |= {"completionMode": "Indexed", "completions": spec.workers, "parallelism": spec.workers}
    if spec.run_policy.active_deadline_seconds is not None:
        job_spec["activeDeadlineSeconds"] = spec.run_policy.active_deadline_seconds
    if spec.run_policy.ttl_seconds_after_finished is not None:
        job_spec["ttlSecondsAfterFinished"] = spec.run_policy.ttl_seconds_after_finished
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": owner.namespace, "labels": (extra_labels or {}) | labels(owner)},
            "spec": job_spec}


def render_children(spec: MLTrainingJobSpec, owner: Owner, *,
                    resource_labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """What one generation owns, the Job last (created together: its pods wait for the Service's DNS name).

    Args:
        resource_labels: the resource's labels; its Kueue labels go onto the Job.
    """
    children = []
    if spec.workers > 1:
        children.append(render_service(owner))
    children.append(render_job(spec, owner, extra_labels=queue_labels(resource_labels)))
    return children
