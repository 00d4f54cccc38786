"""Leader election on a Lease, against the emulated API server (its optimistic concurrency included)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from driftloop.k8s_gateway import Cluster
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
