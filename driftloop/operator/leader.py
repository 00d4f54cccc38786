"""Leader election on a coordination.k8s.io/v1 Lease, the way client-go's `leaderelection` does it.

kopf's own peering pauses every peer of equal priority (two replicas froze), so replicas run
kopf standalone and only the Lease's holder runs it at all: a standby waits to acquire the
Lease, the leader renews it every `retry_period_s`, and a leader that cannot renew within
`renew_deadline_s` exits at once (its pod restarts as a standby). A standby takes a Lease
whose holder has not renewed for `duration_s`, judged by its own clock from when it last saw
the record change (as client-go does: no trust in other nodes' clocks), and every write is
conditional on the resourceVersion read, so two candidates never both win.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from driftloop.k8s_gateway import Cluster, KubernetesApiError

logger = logging.getLogger("driftloop.operator.leader")


@dataclass(frozen=True)
class LeaseConfig:
    """Which Lease, who we are, and its timing (client-go's defaults: 15 s, 10 s, 2 s)."""

    namespace: str
    name: str
    identity: str
    duration_s: float = 15.0

    @property
    def renew_deadline_s(self) -> float:
        return self.duration_s * 2 / 3

    @property
    def retry_period_s(self) -> float:
        return self.duration_s * 2 / 15


def _micro_time() -> str:
    """Now as a Lease's MicroTime."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """One candidate for the Lease; `acquire`, then `renew_until_lost` in a thread, `release` on shutdown."""

    def __init__(self, cluster: Cluster, config: LeaseConfig) -> None:
        self.cluster, self.config = cluster, config
        self._seen: tuple[Any, Any] | None = None  # (holder, renewTime) as last read
        self._seen_at = 0.0  # monotonic time that record was first seen

    def _body(self, spec: dict[str, Any]) -> dict[str, Any]:
        meta = {"name": self.config.name, "namespace": self.config.namespace}
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec}

    def try_acquire_or_renew(self) -> bool:
        """One attempt: True if we hold the Lease now (acquired or renewed)."""
        c, now = self.config, _micro_time()
        ours = {"holderIdentity": c.identity, "leaseDurationSeconds": max(1, round(c.duration_s)),
                "acquireTime": now, "renewTime": now}
        lease = self.cluster.read_lease(c.namespace, c.name)
        if lease is None:
            return self.cluster.create_lease(c.namespace, self._body(ours | {"leaseTransitions": 0})) is not None
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        if (holder, spec.get("renewTime")) != self._seen:
            self._seen, self._seen_at = (holder, spec.get("renewTime")), time.monotonic()
        if holder and holder != c.identity and \
                time.monotonic() - self._seen_at < float(spec.get("leaseDurationSeconds") or c.duration_s):
            return False  # held, and renewed within its duration as far as we have seen
        if holder == c.identity:
            ours["acquireTime"] = spec.get("acquireTime") or now
        ours["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (0 if holder == c.identity else 1)
        if not self.cluster.update_lease(c.namespace, c.name, ours, resource_version=lease["metadata"]["resourceVersion"]):
            return False  # another candidate wrote first
        self._seen, self._seen_at = (c.identity, now), time.monotonic()
        return True

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Block until we hold the Lease (True) or `stop` is set (False)."""
        stop = stop or threading.Event()
        logger.info(f"waiting for lease {self.config.namespace}/{self.config.name} as {self.config.identity}")
        while not stop.is_set():
            try:
                if self.try_acquire_or_renew():
                    logger.info(f"acquired lease {self.config.namespace}/{self.config.name} as {self.config.identity}")
                    return True
            except KubernetesApiError as e:
                logger.warning(f"lease {self.config.name}: {e}")
            # Often (a GET a second): the takeover is judged from when a standby saw the last renewal, so
            # a slow poll would add its period twice. Jittered, so candidates spread out.
            stop.wait(min(self.config.retry_period_s, 1.0) * random.uniform(1.0, 1.2))
        return False

    def renew_until_lost(self, stop: threading.Event) -> bool:
        """Renew every retry period until `stop` (True) or until a renewal deadline passes unrenewed (False)."""
        renewed = time.monotonic()
        while not stop.wait(self.config.retry_period_s):
            try:
                if self.try_acquire_or_renew():
                    renewed = time.monotonic()
                    continue
            except KubernetesApiError as e:
                logger.warning(f"lease {self.config.name}: renewal failed: {e}")
            if self._seen and self._seen[0] != self.config.identity or \
                    time.monotonic() - renewed > self.config.renew_deadline_s:
                return False
        return True

    def release(self) -> None:
        """Give the Lease up (on a clean shutdown), so a standby takes over at once rather than after its duration."""
        c = self.config
        try:
            lease = self.cluster.read_lease(c.namespace, c.name)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != c.identity:
                return
            spec = dict(lease["spec"]) | {"holderIdentity": None, "leaseDurationSeconds": 1,
                                          "renewTime": _micro_time()}
            self.cluster.update_lease(c.namespace, c.name, spec, resource_version=lease["metadata"]["resourceVersion"])
        except KubernetesApiError as e:
            logger.warning(f"lease {c.name}: release failed: {e}")
