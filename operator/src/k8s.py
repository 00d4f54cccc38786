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
    def connect(cls) -> Cluster:
        """In a pod, the service account; elsewhere, the kubeconfig (as kubectl does)."""
        import kubernetes

        try:
            kubernetes.config.load_incluster_config()
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config()
        return cls(kubernetes.client.ApiClient())

    def _core(self) -> Any:
        import kubernetes

        return kubernetes.client.CoreV1Api(self.api)

    def _batch(self) -> Any:
        import kubernetes

        return kubernetes.client.BatchV1Api(self.api)

    def _custom(self) -> Any:
        import kubernetes

        return kubernetes.client.CustomObjectsApi(self.api)

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
            create(namespace, body)
            return True
        except ApiException as e:
            if e.status != 409:
                raise
        existing = self.api.sanitize_for_serialization(read(name, namespace))
        owners = {ref.get("uid") for ref in existing.get("metadata", {}).get("ownerReferences") or []}
        if owner_uid not in owners:
            raise OwnedByAnother(f"{body['kind']} {namespace}/{name} exists and belongs to another owner")
        return False

    def job_pods(self, namespace: str, job_name: str) -> list[dict[str, Any]]:
        """The Job's pods, oldest first."""
        pods = self._core().list_namespaced_pod(namespace, label_selector=f"job-name={job_name}")
        found = [self.api.sanitize_for_serialization(p) for p in pods.items]
        # Filtered again here: selectors are the server's job, but a cheap check keeps us exact.
        mine = [p for p in found if (p.get("metadata", {}).get("labels") or {}).get("job-name") == job_name]
        return sorted(mine, key=lambda p: p["metadata"].get("creationTimestamp") or "")

    def annotate_resource(self, namespace: str, name: str, annotations: dict[str, str]) -> bool:
        """Merge annotations into an MLTrainingJob; False if it is gone."""
        from kubernetes.client.rest import ApiException

        try:
            self._custom().patch_namespaced_custom_object(k.GROUP, k.VERSION, namespace, k.PLURAL, name,
                                                          {"metadata": {"annotations": annotations}})
        except ApiException as e:
            if e.status == 404:
                return False
            raise
        return True
