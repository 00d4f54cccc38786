"""Leader election on a Lease, against the emulated API server (its optimistic concurrency included)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from driftloop.k8s_gateway import Cluster, KubernetesApiError
from driftloop.operator import leader as leader_module
from driftloop.operator.leader import LeaderElector, LeaseConfig

from .cluster import LocalCluster
from .conftest import NAMESPACE


@pytest.fixture
def api(cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    with Cluster.connect() as connected:
        yield connected


def _candidate(api: Cluster, identity: str, lease: str) -> LeaderElector:
    return LeaderElector(api, LeaseConfig(namespace=NAMESPACE, name=lease, identity=identity, duration_s=3))


def test_one_candidate_holds_the_lease_and_a_standby_takes_it_once_renewals_stop(api: Cluster) -> None:
    leader, standby = _candidate(api, "a", "one-leader"), _candidate(api, "b", "one-leader")
    assert leader.try_acquire_or_renew() and not standby.try_acquire_or_renew()
    assert leader.try_acquire_or_renew() and not standby.try_acquire_or_renew()  # renewed: still held
    held = api.read_lease(NAMESPACE, "one-leader")["spec"]
    assert held["holderIdentity"] == "a" and held["leaseTransitions"] == 0 and held["leaseDurationSeconds"] == 3
    # The leader stops renewing (its process died): the standby waits out the duration, then takes it.
    assert standby.acquire(threading.Event())
    taken = api.read_lease(NAMESPACE, "one-leader")["spec"]
    assert taken["holderIdentity"] == "b" and taken["leaseTransitions"] == 1
    assert not leader.renew_until_lost(threading.Event())  # the old leader, should it wake, sees it lost


def test_a_write_at_a_stale_version_loses(api: Cluster) -> None:
    first, second = _candidate(api, "a", "race"), _candidate(api, "b", "race")
    assert first.try_acquire_or_renew()
    stale = api.read_lease(NAMESPACE, "race")
    assert first.try_acquire_or_renew()  # a renewal moves the version on
    assert not api.update_lease(NAMESPACE, "race", stale["spec"] | {"holderIdentity": "b"},
                                resource_version=stale["metadata"]["resourceVersion"])
    assert api.read_lease(NAMESPACE, "race")["spec"]["holderIdentity"] == "a"
    assert not second.try_acquire_or_renew()


def test_a_released_lease_is_taken_at_once(api: Cluster) -> None:
    leader, standby = _candidate(api, "a", "handover"), _candidate(api, "b", "handover")
    assert leader.try_acquire_or_renew() and not standby.try_acquire_or_renew()
    leader.release()
    assert standby.try_acquire_or_renew()  # no wait for the duration: a clean shutdown handed it over
    assert api.read_lease(NAMESPACE, "handover")["spec"]["holderIdentity"] == "b"


# -- when a standby judges the Lease expired: the holder's renewTime, clamped into its own polls ---------------


class _Clock:
    """Both clocks the elector reads, moved by hand: monotonic seconds, and a wall clock `skew` s off it."""

    def __init__(self) -> None:
        self.t = 1000.0

    def monotonic(self) -> float:
        return self.t

    def wall(self, skew: float = 0.0) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=self.t + skew)


class _Leases:
    """A Lease store with the API server's optimistic concurrency, on the fake clock (no network)."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0

    def renewed_by(self, holder: str, at: datetime) -> None:
        self.version += 1
        self.lease = {"metadata": {"resourceVersion": str(self.version)},
                      "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                               "renewTime": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}}

    def read_lease(self, namespace: str, name: str, *, timeout: float | None = None) -> dict[str, Any] | None:
        return self.lease

    def update_lease(self, namespace: str, name: str, spec: dict[str, Any], *, resource_version: str,
                     timeout: float | None = None) -> str | None:
        if self.lease is None or self.lease["metadata"]["resourceVersion"] != resource_version:
            return None
        self.version += 1
        self.lease = {"metadata": {"resourceVersion": str(self.version)}, "spec": self.lease["spec"] | spec}
        return str(self.version)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    clock = _Clock()
    monkeypatch.setattr(leader_module.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(leader_module, "_wall", clock.wall)
    return clock


def _standby(leases: _Leases) -> LeaderElector:
    return LeaderElector(leases, LeaseConfig(namespace=NAMESPACE, name="l", identity="b", duration_s=15))  # type: ignore[arg-type]


@pytest.mark.parametrize(("skew", "dated"), [
    (0.0, 1000.6),  # clocks agree: the renewal itself, so the standby wakes exactly when the Lease expires
    (-30.0, 1000.0),  # the holder's clock is behind: never before the previous poll (it saw the older record)
    (+30.0, 1001.0),  # ahead: never after this poll answered
])
def test_a_standby_dates_a_renewal_by_its_renew_time_clamped_between_its_polls(
        clock: _Clock, skew: float, dated: float) -> None:
    leases = _Leases()
    leases.renewed_by("a", clock.wall(skew) - timedelta(seconds=1))
    standby = _standby(leases)
    assert not standby.try_acquire_or_renew()  # the first sight: no earlier poll to bound it, so dated now
    assert standby.expires_in() == 15
    clock.t = 1000.6
    leases.renewed_by("a", clock.wall(skew))  # renewed between the two polls
    clock.t = 1001.0
    assert not standby.try_acquire_or_renew()
    assert standby.expires_in() == pytest.approx(dated + 15 - clock.t, abs=1e-3)
    clock.t = dated + 15 - 0.01
    assert not standby.try_acquire_or_renew()  # not yet: still within the duration
    clock.t = dated + 15 + 0.01
    assert standby.try_acquire_or_renew()  # expired: taken, at the version it read
    assert leases.lease is not None and leases.lease["spec"]["holderIdentity"] == "b"


def test_a_renewal_is_one_conditional_write_and_after_a_conflict_a_read(clock: _Clock) -> None:
    leases = _Leases()
    leases.renewed_by("a", clock.wall())
    leader = _standby(leases)
    assert not leader.try_acquire_or_renew()
    clock.t += 20  # not renewed since: expired
    assert leader.try_acquire_or_renew()
    calls: list[str] = []
    read, update = leases.read_lease, leases.update_lease
    leases.read_lease = lambda *a, **kw: calls.append("read") or read(*a, **kw)  # type: ignore[method-assign]
    leases.update_lease = lambda *a, **kw: calls.append("update") or update(*a, **kw)  # type: ignore[method-assign]
    clock.t += 2
    assert leader.renew() and calls == ["update"]
    leases.renewed_by("c", clock.wall())  # another wrote since (it judged the Lease expired)
    calls.clear()
    assert not leader.renew() and calls == ["update", "read"]  # the write at the old version lost: read, not retaken
    assert leases.lease is not None and leases.lease["spec"]["holderIdentity"] == "c"


def test_a_leader_whose_renewals_hang_gives_up_at_its_renew_deadline(api: Cluster) -> None:
    leader = _candidate(api, "a", "hung")
    assert leader.try_acquire_or_renew()
    hung, stop = threading.Event(), threading.Event()
    calls: list[str] = []

    def hanging(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[1])
        hung.wait()  # a dead connection: the renewal never answers
        raise KubernetesApiError(None, "connection reset")

    leader.cluster = type("Hung", (), {"read_lease": staticmethod(hanging),  # type: ignore[assignment]
                                       "update_lease": staticmethod(hanging)})()
    try:
        assert not leader.renew_until_lost(stop)  # returns while the renewal is still hanging
        assert calls == ["hung"] and not hung.is_set()
    finally:
        stop.set()
        hung.set()


# -- a new leader resumes only what is out of step (kopf resumes every resource before serving new ones) ----------


def _in_step(spec: dict[str, Any], **status: Any) -> dict[str, Any]:
    from driftloop.operator.resource import training_hash

    return {"jobName": "x-g2", "observedGeneration": 2, "trainingHash": training_hash(spec), "phase": "Pending"} | status


@pytest.mark.parametrize(("spec", "status", "resumes"), [
    ({}, {}, False),  # this generation's Job recorded: nothing to do, no API call
    ({}, {"phase": "Succeeded"}, False),
    ({"suspend": True}, {"phase": "Suspended"}, False),
    ({"suspend": True}, {"phase": "Succeeded"}, False),  # finished: nothing to suspend
    ({}, {"phase": "Queued"}, False),  # a queue's hold is the queue's
    ({}, {"jobName": None}, True),  # its Job never made (or not recorded)
    ({}, {"observedGeneration": 1}, True),
    ({}, {"trainingHash": "older"}, True),
    ({"suspend": True}, {"phase": "Running"}, True),  # suspend not yet passed on
    ({}, {"phase": "Suspended"}, True),  # nor its lifting
])
def test_resume_runs_start_training_only_for_a_resource_out_of_step(
        spec: dict[str, Any], status: dict[str, Any], resumes: bool) -> None:
    from driftloop.operator.handlers import _training_out_of_step

    spec = {"dataSource": {"uri": "s3://b/t.csv", "target": "y"}} | spec
    assert _training_out_of_step(spec=spec, meta={"generation": 2}, status=_in_step(spec, **status)) is resumes


def test_the_resume_filter_leaves_other_causes_to_the_create_handlers_precheck() -> None:
    """kopf asks every filter on every event; only a resume computes the training hash (a spec that cannot hash)."""
    import kopf

    from driftloop.operator.handlers import _training_out_of_step

    spec = {"dataSource": {"uri": "s3://b/t.csv", "target": "y"}}
    in_step = _in_step(spec)
    assert _training_out_of_step(spec=spec, meta={"generation": 2}, status=in_step, reason=kopf.Reason.RESUME) is False
    for reason in (kopf.Reason.NOOP, kopf.Reason.UPDATE, kopf.Reason.CREATE):
        assert _training_out_of_step(spec={"hyperparameters": "not a mapping"}, meta={"generation": 2},
                                     status=in_step, reason=reason) is True


@pytest.mark.parametrize(("annotation", "phase", "resumes"), [
    (None, "Running", False),
    ("x-g1:active", "Running", False),
    ("x-g1:succeeded", "Succeeded", False),
    ("x-g1:succeeded", "Running", True),  # the Job's end seen, its status not yet written
    ("x-g1:failed:DeadlineExceeded", "Running", True),
    ("x-g1:failed:DeadlineExceeded:uid-1", "Running", True),  # as this operator writes it: the owner's uid last
    ("x-g1:succeeded::uid-1", "Running", True),
    ("x-g1:succeeded::uid-0", "Running", False),  # a namesake's Job: the resource was deleted and made again
])
def test_resume_catches_up_only_an_end_not_yet_recorded(annotation: str | None, phase: str, resumes: bool) -> None:
    from driftloop.operator import constants as k
    from driftloop.operator.handlers import _end_unrecorded

    meta = {"uid": "uid-1", "annotations": {k.ANNOTATION_JOB_STATE: annotation} if annotation else {}}
    assert _end_unrecorded(meta=meta, status={"phase": phase}) is resumes


def test_a_mirrored_state_reads_back_and_an_older_operators_reads_as_it_meant() -> None:
    from driftloop.operator.handlers import mirrored_state, read_mirrored_state

    assert read_mirrored_state(mirrored_state("x-g1", "failed", "DeadlineExceeded", "uid-1")) == \
        ("x-g1", "failed", "DeadlineExceeded", "uid-1")
    assert read_mirrored_state(mirrored_state("x-g1", "active", None, "uid-1")) == ("x-g1", "active", "", "uid-1")
    assert mirrored_state("x-g1", "succeeded", None, "uid-1") != mirrored_state("x-g1", "succeeded", None, "uid-2")
    assert read_mirrored_state("x-g1:failed:BackoffLimitExceeded") == ("x-g1", "failed", "BackoffLimitExceeded", "")
    assert read_mirrored_state("x-g1:deleted:uid-1") == ("x-g1", "deleted", "", "uid-1")  # the uid was its reason
    # and still is, so that an operator rolled back to before the owner field reads it too
    assert read_mirrored_state(mirrored_state("x-g1", "deleted", "uid-1", "uid-1")) == ("x-g1", "deleted", "uid-1", "uid-1")
    assert read_mirrored_state(None) == ("", "", "", "")
