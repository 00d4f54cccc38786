"""The one Kubernetes gateway: the only driftloop module that imports the `kubernetes` client.

It serves the operator (owned objects, the Job's pods, the drift CronJob, its leader Lease), the k8s drift
trigger (read and patch an MLTrainingJob) and the serving rollout (patch a Deployment's pod
template). Callers get plain dicts and `KubernetesApiError`, never the client's models or
exceptions, so nothing else needs `kubernetes` (an import-linter contract keeps it so).

Every call skips the client's model deserialisation (`_preload_content=False` + json), by far
its slowest part under load (bench/operator_scale.py measures the operator's create path).
Writes are idempotent where the operator needs them to be: `ensure` creates an object or
finds the one a previous attempt created, so handlers can be retried and the operator
restarted at any point. Events are not sent from here: the operator posts them through
kopf's queued poster (`kopf.event`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from driftloop.constants import K8S_GROUP, K8S_PLURAL, K8S_VERSION
from driftloop.errors import DriftloopError

SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


class KubernetesApiError(DriftloopError):
    """The API server refused a request (`status` is its HTTP code) or could not be reached (`status` None).

    Attributes:
        status: the HTTP status code; None when no answer came (connection refused, timeout, TLS).
        reason: the HTTP reason phrase, or what went wrong on the way.
        body: the server's answer (a `Status` object as JSON text), or "".
    """

    def __init__(self, status: int | None, reason: str, body: str = "") -> None:
        super().__init__(f"Kubernetes API answered {status} {reason}" if status is not None
                         else f"Kubernetes API unreachable: {reason}")
        self.status, self.reason, self.body = status, reason, body


class KubernetesNotConfigured(DriftloopError):
    """Neither in a pod nor with a usable kubeconfig."""


class OwnedByAnother(Exception):
    """An object with the name we derive exists but belongs to another resource (e.g. a deleted namesake's)."""


def kube_configuration() -> Any:
    """A `kubernetes.client.Configuration` as kubectl would resolve it: the pod's service account, else the kubeconfig.

    $KUBECONFIG is read now: the client library captures it once, when it is first imported.

    Raises:
        KubernetesNotConfigured: neither in a pod nor with a usable kubeconfig.
    """
    import kubernetes

    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)
    except kubernetes.config.ConfigException:
        try:
            kubernetes.config.load_kube_config(config_file=os.environ.get("KUBECONFIG"),
                                               client_configuration=configuration)
        except (kubernetes.config.ConfigException, OSError) as e:
            raise KubernetesNotConfigured(str(e)) from e
    return configuration


def current_namespace() -> str:
    """The pod's own namespace in a cluster, else the kubeconfig context's, else 'default' (as kubectl does)."""
    try:
        with open(SERVICE_ACCOUNT_NAMESPACE, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        pass
    try:
        from kubernetes import config

        _, context = config.list_kube_config_contexts(config_file=os.environ.get("KUBECONFIG"))
        return context["context"].get("namespace", "default")
    except Exception:  # no kubeconfig, or one without contexts: the default namespace
        return "default"


@contextmanager
def _translated() -> Iterator[None]:
    """The client's exceptions as `KubernetesApiError`, so callers never import `kubernetes`."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        yield
    except ApiException as e:
        body = e.body.decode(errors="replace") if isinstance(e.body, bytes) else (e.body or "")
        raise KubernetesApiError(e.status, e.reason or "", body) from e
    except (HTTPError, OSError) as e:  # urllib3 wraps refused connections and timeouts in its own errors
        raise KubernetesApiError(None, str(e).splitlines()[0][:300] if str(e) else type(e).__name__) from e


def _json(method: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Call without the client's model deserialisation; the answer as a dict ({} when empty)."""
    import json

    with _translated():
        response = method(*args, _preload_content=False, **kwargs)
    return json.loads(response.data) if response.data else {}


@dataclass
class Cluster:
    """Typed access to one API server over one connection pool.

    The operator builds it once at start-up and keeps it in kopf's memo; a CLI command
    uses it as a context manager, which closes the pool (a run must not hold sockets open).
    """

    api: Any

    @classmethod
    def connect(cls, *, pool_size: int | None = None) -> Cluster:
        """In a pod, the service account; elsewhere, the kubeconfig (as kubectl does).

        Args:
            pool_size: connections to keep; one per handler thread, so handlers never queue for a socket.

        Raises:
            KubernetesNotConfigured: no configuration found.
        """
        import kubernetes

        configuration = kube_configuration()
        if pool_size is not None:
            configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize or 0, pool_size)
        return cls(kubernetes.client.ApiClient(configuration))

    def close(self) -> None:
        self.api.close()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- the client's typed APIs, built per call (cheap: they only hold the ApiClient) --------

    def _core(self) -> Any:
        import kubernetes

        return kubernetes.client.CoreV1Api(self.api)

    def _batch(self) -> Any:
        import kubernetes

        return kubernetes.client.BatchV1Api(self.api)

    def _apps(self) -> Any:
        import kubernetes

        return kubernetes.client.AppsV1Api(self.api)

    def _coordination(self) -> Any:
        import kubernetes

        return kubernetes.client.CoordinationV1Api(self.api)

    def _rbac(self) -> Any:
        import kubernetes

        return kubernetes.client.RbacAuthorizationV1Api(self.api)

    def _custom(self) -> Any:
        import kubernetes

        return kubernetes.client.CustomObjectsApi(self.api)

    def _api_of(self, kind: str) -> tuple[Any, str]:
        """The typed API and the method-name stem (`create_namespaced_<stem>` …) of a kind the operator owns."""
        stems = {"ConfigMap": (self._core, "config_map"), "Service": (self._core, "service"),
                 "Job": (self._batch, "job"), "CronJob": (self._batch, "cron_job"),
                 "ServiceAccount": (self._core, "service_account"), "RoleBinding": (self._rbac, "role_binding")}
        if kind not in stems:
            raise ValueError(f"the operator does not manage {kind} objects")
        api, stem = stems[kind]
        return api(), stem

    # -- owned objects (ConfigMap, Service, Job, CronJob) --------------------------------

    def create(self, body: dict[str, Any]) -> bool:
        """Create `body`; False if an object of that name already exists (409)."""
        api, stem = self._api_of(body["kind"])
        try:
            _json(getattr(api, f"create_namespaced_{stem}"), body["metadata"]["namespace"], body)
        except KubernetesApiError as e:
            if e.status == 409:
                return False
            raise
        return True

    def read(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        """The object as the API server has it."""
        api, stem = self._api_of(kind)
        return _json(getattr(api, f"read_namespaced_{stem}"), name, namespace)

    def patch(self, kind: str, namespace: str, name: str, patch: dict[str, Any] | list[dict[str, Any]]) -> dict[str, Any]:
        """Patch the object; the patched object. The client sends a dict as a strategic merge patch (a null deletes
        a key; lists such as `containers` merge by name) and a list as a JSON patch (RFC 6902)."""
        api, stem = self._api_of(kind)
        return _json(getattr(api, f"patch_namespaced_{stem}"), name, namespace, patch)

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        """Delete the object and (in the background) what it owns; False if there was none."""
        api, stem = self._api_of(kind)
        try:
            _json(getattr(api, f"delete_namespaced_{stem}"), name, namespace, body={"propagationPolicy": "Background"})
        except KubernetesApiError as e:
            if e.status == 404:
                return False
            raise
        return True

    def create_or_read(self, body: dict[str, Any], *, owner_uid: str) -> dict[str, Any] | None:
        """Create `body` (None), or return the namesake that exists if the same owner made it.

        Raises:
            OwnedByAnother: the namesake belongs to another owner.
        """
        if self.create(body):
            return None
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        existing = self.read(body["kind"], namespace, name)
        owners = {ref.get("uid") for ref in existing.get("metadata", {}).get("ownerReferences") or []}
        if owner_uid not in owners:
            raise OwnedByAnother(f"{body['kind']} {namespace}/{name} exists and belongs to another owner")
        return existing

    def ensure(self, body: dict[str, Any], *, owner_uid: str) -> bool:
        """Create `body`, or accept the one that exists if the same owner made it. True if created now."""
        return self.create_or_read(body, owner_uid=owner_uid) is None

    # -- Jobs and their pods -------------------------------------------------------------

    def list_jobs(self, namespace: str, *, label_selector: str) -> list[dict[str, Any]]:
        """The namespace's Jobs that match the selector."""
        return _json(self._batch().list_namespaced_job, namespace, label_selector=label_selector).get("items") or []

    def job_pods(self, namespace: str, job_name: str) -> list[dict[str, Any]]:
        """The Job's pods, oldest first."""
        found = _json(self._core().list_namespaced_pod, namespace, label_selector=f"job-name={job_name}")
        found = found.get("items") or []
        # Filtered again here: selectors are the server's job, but a cheap check keeps us exact.
        mine = [p for p in found if (p.get("metadata", {}).get("labels") or {}).get("job-name") == job_name]
        return sorted(mine, key=lambda p: p["metadata"].get("creationTimestamp") or "")

    # -- MLTrainingJobs --------------------------------------------------------------------

    def read_training_job(self, namespace: str, name: str) -> dict[str, Any]:
        """The MLTrainingJob resource (spec, status, metadata)."""
        return _json(self._custom().get_namespaced_custom_object, K8S_GROUP, K8S_VERSION, namespace, K8S_PLURAL,
                     name)

    def patch_training_job(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch an MLTrainingJob (its spec or metadata; status is the operator's, through kopf)."""
        return _json(self._custom().patch_namespaced_custom_object, K8S_GROUP, K8S_VERSION, namespace, K8S_PLURAL,
                     name, patch)

    def annotate_resource(self, namespace: str, name: str, annotations: dict[str, str]) -> bool:
        """Merge annotations into an MLTrainingJob; False if it is gone."""
        try:
            self.patch_training_job(namespace, name, {"metadata": {"annotations": annotations}})
        except KubernetesApiError as e:
            if e.status == 404:
                return False
            raise
        return True

    # -- Leases (the operator's leader election) ------------------------------------------

    def read_lease(self, namespace: str, name: str, *, timeout: float | None = None) -> dict[str, Any] | None:
        """The coordination.k8s.io/v1 Lease; None if there is none. `timeout`: seconds for the whole request."""
        try:
            return _json(self._coordination().read_namespaced_lease, name, namespace, _request_timeout=timeout)
        except KubernetesApiError as e:
            if e.status == 404:
                return None
            raise

    def create_lease(self, namespace: str, body: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any] | None:
        """Create the Lease; None if another made it first (409)."""
        try:
            return _json(self._coordination().create_namespaced_lease, namespace, body, _request_timeout=timeout)
        except KubernetesApiError as e:
            if e.status == 409:
                return None
            raise

    def update_lease(self, namespace: str, name: str, spec: dict[str, Any], *, resource_version: str,
                     timeout: float | None = None) -> str | None:
        """Merge `spec` into the Lease's if it is still at `resource_version`: its new resourceVersion, or None
        if another write came first (409).

        A patch that names the resourceVersion is a precondition the API server checks, like a replace.
        """
        try:
            written = _json(self._coordination().patch_namespaced_lease, name, namespace,
                            {"metadata": {"resourceVersion": resource_version}, "spec": spec}, _request_timeout=timeout)
        except KubernetesApiError as e:
            if e.status == 409:
                return None
            raise
        return str((written.get("metadata") or {}).get("resourceVersion") or "") or None

    # -- Deployments (serving) -----------------------------------------------------------

    def patch_pod_template(self, namespace: str, name: str, *, annotations: dict[str, str] | None = None,
                           env: dict[str, str] | None = None, container: str | None = None) -> dict[str, Any]:
        """Patch a Deployment's pod template: annotations merged, env vars set; Kubernetes rolls the pods.

        Args:
            annotations: merged into the template's annotations (a changed value rolls the pods).
            env: set on `container` (the first container when None); other env vars are kept.
            container: the container `env` goes to.
        """
        template: dict[str, Any] = {}
        if annotations:
            template["metadata"] = {"annotations": annotations}
        if env:
            deployment = _json(self._apps().read_namespaced_deployment, name, namespace)
            containers = deployment["spec"]["template"]["spec"]["containers"]
            target = next((c for c in containers if c["name"] == container), None) if container else containers[0]
            if target is None:
                raise KubernetesApiError(404, f"no container {container!r} in deployment {namespace}/{name}")
            # A strategic merge keyed on the container and env names: nothing else in the list changes.
            template["spec"] = {"containers": [{"name": target["name"],
                                                "env": [{"name": k, "value": v} for k, v in env.items()]}]}
        return _json(self._apps().patch_namespaced_deployment, name, namespace, {"spec": {"template": template}})
