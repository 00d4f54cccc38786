"""The only module that calls the Kubernetes API (with the official `kubernetes` client).

Everything here is idempotent: `ensure` creates an object or finds the one a previous
attempt created, so handlers can be retried and the operator restarted at any point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from driftloop.operator import constants as k


class OwnedByAnother(Exception):
    """An object with the name we derive exists but belongs to another resource (e.g. a deleted namesake's)."""


@dataclass
class Cluster:
    """Typed clients sharing one connection, built once at start-up and kept in kopf's memo."""

    api: Any

    @classmethod
    def connect(cls, *, pool_size: int = 16) -> Cluster:
        """In a pod, the service account; elsewhere, the kubeconfig (as kubectl does)."""
        import kubernetes

        from driftloop.kubeconfig import kube_configuration

        configuration = kube_configuration()
        # One connection per handler thread, so handlers never queue for a socket.
        configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize or 0, pool_size)
        return cls(kubernetes.client.ApiClient(configuration))

    def _core(self) -> Any:
        import kubernetes

        return kubernetes.client.CoreV1Api(self.api)

    def _batch(self) -> Any:
        import kubernetes

        return kubernetes.client.BatchV1Api(self.api)

    def _custom(self) -> Any:
        import kubernetes

        return kubernetes.client.CustomObjectsApi(self.api)

    @staticmethod
    def _json(method: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Call without the client's model deserialisation, by far its slowest part under load."""
        import json

        response = method(*args, _preload_content=False, **kwargs)
        return json.loads(response.data) if response.data else {}

    def _methods(self, kind: str) -> tuple[Any, Any]:
        if kind == "ConfigMap":
            return self._core().create_namespaced_config_map, self._core().read_namespaced_config_map
        if kind == "Service":
            return self._core().create_namespaced_service, self._core().read_namespaced_service
        if kind == "Job":
            return self._batch().create_namespaced_job, self._batch().read_namespaced_job
        raise ValueError(f"the operator does not create {kind} objects")

    def ensure(self, body: dict[str, Any], *, owner_uid: str) -> bool:
        """Create `body`, or accept the one that exists if the same owner made it. True if created now."""
        from kubernetes.client.rest import ApiException

        create, read = self._methods(body["kind"])
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        try:
            self._json(create, namespace, body)
            return True
        except ApiException as e:
            if e.status != 409:
                raise
        existing = self._json(read, name, namespace)
        owners = {ref.get("uid") for ref in existing.get("metadata", {}).get("ownerReferences") or []}
        if owner_uid not in owners:
            raise OwnedByAnother(f"{body['kind']} {namespace}/{name} exists and belongs to another owner")
        return False

    def job_pods(self, namespace: str, job_name: str) -> list[dict[str, Any]]:
        """The Job's pods, oldest first."""
        found = self._json(self._core().list_namespaced_pod, namespace, label_selector=f"job-name={job_name}")
        found = found.get("items") or []
        # Filtered again here: selectors are the server's job, but a cheap check keeps us exact.
        mine = [p for p in found if (p.get("metadata", {}).get("labels") or {}).get("job-name") == job_name]
        return sorted(mine, key=lambda p: p["metadata"].get("creationTimestamp") or "")

    def post_event(self, involved: dict[str, Any], *, reason: str, message: str, warning: bool = False) -> None:
        """A Kubernetes Event on `involved` (what `kubectl describe` lists); best effort, never raises."""
        import logging
        from datetime import UTC, datetime

        from kubernetes.client.rest import ApiException

        meta = involved.get("metadata", {})
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {"apiVersion": "v1", "kind": "Event",
                 "metadata": {"generateName": f"{meta.get('name')}.", "namespace": meta.get("namespace")},
                 "involvedObject": {"apiVersion": involved.get("apiVersion"), "kind": involved.get("kind"),
                                    "name": meta.get("name"), "namespace": meta.get("namespace"),
                                    "uid": meta.get("uid")},
                 "reason": reason, "message": message[:1024], "type": "Warning" if warning else "Normal",
                 "source": {"component": "driftloop-operator"}, "reportingComponent": "driftloop-operator",
                 "firstTimestamp": now, "lastTimestamp": now, "count": 1}
        try:
            self._json(self._core().create_namespaced_event, meta.get("namespace"), event)
        except (ApiException, OSError) as e:  # an Event is a courtesy; status carries the truth
            logging.getLogger(__name__).warning(f"could not post event {reason}: {e}")

    def annotate_resource(self, namespace: str, name: str, annotations: dict[str, str]) -> bool:
        """Merge annotations into an MLTrainingJob; False if it is gone."""
        from kubernetes.client.rest import ApiException

        try:
            self._json(self._custom().patch_namespaced_custom_object, k.GROUP, k.VERSION, namespace, k.PLURAL, name,
                       {"metadata": {"annotations": annotations}})
        except ApiException as e:
            if e.status == 404:
                return False
            raise
        return True
