"""Leader election on a coordination.k8s.io/v1 Lease, the way client-go's `leaderelection` does it.

kopf's own peering pauses every peer of equal priority (two replicas froze), so replicas run
kopf standalone and only the Lease's holder runs it at all: a standby waits to acquire the
Lease, the leader renews it every `retry_period_s`, and a leader that has not renewed for
`renew_deadline_s` exits at once (its pod restarts as a standby), whatever its API calls are doing.

A standby takes a Lease whose holder has not renewed for `duration_s`. When did the holder renew?
Its `renewTime` says, by the holder's clock; the standby's polls say, by its own: the write landed
after the last poll that saw the older record began and before the first that saw the new one
answered. The standby takes `renewTime`, clamped into that window: with synchronised clocks that
is the renewal itself, so it wakes exactly when the Lease expires (takeover within the duration
after a kill, not a poll later); with skewed clocks it is off by at most one poll, well inside the
margin between the holder's renew deadline (2/3 of the duration) and the duration. Every write is
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

    @property
    def request_timeout_s(self) -> float:
        """A Lease call that has not answered by now has failed: room for a retry before the renew deadline."""
        return self.renew_deadline_s / 2


POLL_S = 1.0  # a standby's GET: often, so a renewal's time is known within a second (see the module's note)
EXPIRY_MARGIN_S = 0.05  # wake just after the expiry, not on it: the holder's clock and ours round differently


def _wall() -> datetime:
    """This node's clock (a function, so tests can skew it)."""
    return datetime.now(UTC)


def _micro_time() -> str:
    """Now as a Lease's MicroTime."""
    return _wall().strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_micro_time(value: Any) -> datetime | None:
    """A Lease's MicroTime (or RFC 3339 time) as an aware datetime; None if absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class LeaderElector:
    """One candidate for the Lease; `acquire`, then `renew_until_lost`, `release` on shutdown."""

    def __init__(self, cluster: Cluster, config: LeaseConfig) -> None:
        self.cluster, self.config = cluster, config
        self._seen: tuple[Any, Any] | None = None  # (holder, renewTime) as last read
        self._seen_at = 0.0  # monotonic: when that record was written, as well as we can tell
        self._seen_duration = config.duration_s  # its leaseDurationSeconds
        self._polled_at: float | None = None  # monotonic: when the last GET that answered was sent
        self._renewed_at = 0.0  # monotonic: when our last successful write was sent (the leader's deadline)
        self._version: str | None = None  # the resourceVersion our last write left: a renewal writes at it

    def _body(self, spec: dict[str, Any]) -> dict[str, Any]:
        meta = {"name": self.config.name, "namespace": self.config.namespace}
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec}

    def _observe(self, spec: dict[str, Any], sent: float, answered: float) -> None:
        """Note a record read between `sent` and `answered`; a new one is dated by its renewTime, clamped."""
        record = (spec.get("holderIdentity"), spec.get("renewTime"))
        polled, self._polled_at = self._polled_at, sent
        self._seen_duration = float(spec.get("leaseDurationSeconds") or self.config.duration_s)
        if record == self._seen:
            return
        self._seen, self._seen_at = record, answered  # the first sight of a record: no earlier bound, so now
        claimed = _parse_micro_time(spec.get("renewTime"))
        if claimed is None or polled is None:
            return
        claimed_at = answered - (_wall() - claimed).total_seconds()  # the holder's clock, on ours
        # Written after the previous poll was sent (it saw the older record) and before this one answered.
        self._seen_at = min(answered, max(polled, claimed_at))

    def expires_in(self) -> float:
        """Seconds until the Lease, as last read, expires (≤ 0: it has; or nobody holds it)."""
        if not self._seen or not self._seen[0]:
            return 0.0
        return self._seen_at + self._seen_duration - time.monotonic()

    def try_acquire_or_renew(self) -> bool:
        """One attempt: True if we hold the Lease now (acquired or renewed)."""
        c, timeout = self.config, self.config.request_timeout_s
        sent = time.monotonic()
        now = _micro_time()
        ours = {"holderIdentity": c.identity, "leaseDurationSeconds": max(1, round(c.duration_s)),
                "acquireTime": now, "renewTime": now}
        lease = self.cluster.read_lease(c.namespace, c.name, timeout=timeout)
        if lease is None:
            created = self.cluster.create_lease(c.namespace, self._body(ours | {"leaseTransitions": 0}),
                                                timeout=timeout)
            if created is None:
                return False
            self._seen, self._seen_at, self._renewed_at = (c.identity, now), sent, sent
            self._version = (created.get("metadata") or {}).get("resourceVersion")
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        self._observe(spec, sent, time.monotonic())
        if holder and holder != c.identity and self.expires_in() > 0:
            return False  # held, and renewed within its duration
        if holder == c.identity:
            ours["acquireTime"] = spec.get("acquireTime") or now
        ours["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (0 if holder == c.identity else 1)
        # Stamped as it is sent: the standby dates the renewal by renewTime, the leader its deadline by `sent`.
        sent, ours["renewTime"] = time.monotonic(), _micro_time()
        version = self.cluster.update_lease(c.namespace, c.name, ours, resource_version=lease["metadata"]["resourceVersion"],
                                            timeout=timeout)
        if version is None:
            return False  # another candidate wrote first
        self._seen, self._seen_at, self._renewed_at, self._version = (c.identity, ours["renewTime"]), sent, sent, version
        return True

    def renew(self) -> bool:
        """The leader's renewal: one conditional write at the version its last write left (no read first,
        so a busy API server costs it one round trip, not two); on a conflict, the full read-then-write."""
        c = self.config
        if self._version is None or not self._seen or self._seen[0] != c.identity:
            return self.try_acquire_or_renew()
        sent, now = time.monotonic(), _micro_time()
        version = self.cluster.update_lease(c.namespace, c.name, {
            "holderIdentity": c.identity, "leaseDurationSeconds": max(1, round(c.duration_s)), "renewTime": now},
            resource_version=self._version, timeout=c.request_timeout_s)
        if version is None:  # written by another since: read who holds it, and take it back only if expired
            return self.try_acquire_or_renew()
        self._seen, self._seen_at, self._renewed_at, self._version = (c.identity, now), sent, sent, version
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
            # Poll every second (each poll narrows when the next renewal was written), but wake just
            # after the expiry when it comes sooner: the takeover waits for the Lease, not for a poll.
            # Jittered, so candidates spread out.
            poll = min(self.config.retry_period_s, POLL_S) * random.uniform(1.0, 1.2)
            stop.wait(max(0.0, min(poll, self.expires_in() + EXPIRY_MARGIN_S)))
        return False

    def renew_until_lost(self, stop: threading.Event) -> bool:
        """Renew every retry period until `stop` (True), or until the Lease is lost (False).

        Lost: another holds it, or `renew_deadline_s` passed since our last renewal was sent. The
        deadline is watched here, apart from the renewals (a thread of their own), so a renewal
        hanging on a dead connection cannot keep a leader acting past it.
        """
        wake = threading.Event()  # set by the renewer when it stops: on `stop`, or on seeing another holder
        if not self._renewed_at:
            self._renewed_at = time.monotonic()
        threading.Thread(target=self._renew, args=(stop, wake), name="lease-renewer", daemon=True).start()
        while True:
            left = self._renewed_at + self.config.renew_deadline_s - time.monotonic()
            if stop.is_set():
                return True
            if wake.is_set() or left <= 0:
                wake.set()  # the renewer, if still at it, ends at its next turn
                holder = self._seen[0] if self._seen else None
                logger.warning(f"lease {self.config.name}: held by {holder}" if holder != self.config.identity else
                               f"lease {self.config.name}: not renewed within {self.config.renew_deadline_s:.1f}s")
                return False
            wake.wait(left)

    def _renew(self, stop: threading.Event, wake: threading.Event) -> None:
        started = time.monotonic()
        try:
            # A retry period from the last attempt's start, not its end: a slow answer does not stretch
            # the period, so a busy API server leaves more tries before the deadline.
            while not stop.wait(max(0.0, started + self.config.retry_period_s - time.monotonic())) \
                    and not wake.is_set():
                started = time.monotonic()
                try:
                    renewed = self.renew()
                except KubernetesApiError as e:
                    logger.warning(f"lease {self.config.name}: renewal failed after {time.monotonic() - started:.1f}s: {e}")
                    renewed = False
                took = time.monotonic() - started
                if took > self.config.retry_period_s:  # the API server (or this process) is slow: a takeover looms
                    logger.warning(f"lease {self.config.name}: a renewal took {took:.1f}s")
                if renewed:
                    continue
                if self._seen and self._seen[0] == self.config.identity:
                    logger.warning(f"lease {self.config.name}: a renewal lost a write race; retrying")
                if self._seen and self._seen[0] != self.config.identity:
                    return  # another candidate holds it: no point waiting for the deadline
        finally:
            wake.set()

    def release(self) -> None:
        """Give the Lease up (on a clean shutdown), so a standby takes over at once rather than after its duration."""
        c = self.config
        try:
            lease = self.cluster.read_lease(c.namespace, c.name, timeout=c.request_timeout_s)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != c.identity:
                return
            spec = dict(lease["spec"]) | {"holderIdentity": None, "leaseDurationSeconds": 1,
                                          "renewTime": _micro_time()}
            self.cluster.update_lease(c.namespace, c.name, spec, resource_version=lease["metadata"]["resourceVersion"],
                                      timeout=c.request_timeout_s)
        except KubernetesApiError as e:
            logger.warning(f"lease {c.name}: release failed: {e}")
