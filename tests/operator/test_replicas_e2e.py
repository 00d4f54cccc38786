"""Two operator replicas on one Lease: one acts; when it is killed mid-burst, the standby takes over.

The resources are suspended (their Jobs are made, no pod runs): what is under test is that
every resource gets exactly one Job, whoever made it, and that only the Lease's holder acts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..conftest import free_port
from .cluster import LocalCluster
from .conftest import NAMESPACE, OperatorProcess, wait_until
from .test_operator_e2e import create, example, owned, resource

pytestmark = pytest.mark.slow

LEASE_S = "6"  # short, so the test waits little; the default is 15 s
BURST = 12


HEALTH_PORT = free_port()


@pytest.fixture
def replicas(cluster: LocalCluster, tmp_path: Path) -> Iterator[tuple[OperatorProcess, OperatorProcess]]:
    args = ("--lease-duration", LEASE_S)
    first = OperatorProcess(cluster, tmp_path / "a.log", args=(*args, "--identity", "replica-a"))
    second = OperatorProcess(cluster, tmp_path / "b.log", args=(
        *args, "--identity", "replica-b", "--liveness", f"http://127.0.0.1:{HEALTH_PORT}/healthz"))
    first.start()
    second.start(leading=False)
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()


def _lease(kube: Any) -> dict[str, Any]:
    import kubernetes

    lease = kubernetes.client.CoordinationV1Api(kube).read_namespaced_lease("driftloop-operator", NAMESPACE)
    return kube.sanitize_for_serialization(lease)


def _health() -> tuple[int, str]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{HEALTH_PORT}/healthz", timeout=10) as answer:
        return answer.status, answer.read().decode()


def _has_job(kube: Any, name: str) -> bool:
    return bool((resource(kube, name).get("status") or {}).get("jobName"))


def test_the_standby_takes_over_when_the_leader_dies_mid_burst_and_no_resource_gets_two_jobs(
        cluster: LocalCluster, kube: Any, replicas: tuple[OperatorProcess, OperatorProcess], tmp_path: Path) -> None:
    leader, standby = replicas
    assert _lease(kube)["spec"]["holderIdentity"] == "replica-a"
    assert _health() == (200, '{"standby": true}')  # a standby's probe passes: Kubernetes must not restart it
    names = [f"burst-{i}" for i in range(BURST)]
    for name in names[: BURST // 2]:
        create(cluster, example(name, "http://127.0.0.1:1", spec={"suspend": True}), tmp_path)
    wait_until(lambda: _has_job(kube, names[0]), timeout=60, what="the leader to act")
    leader.kill()  # mid-burst: some of the first half may be half-done
    # In step when the leader died: this generation's Job recorded, suspended as asked. A new leader
    # leaves these alone (no resume handler, no API call), so it gets to the new resources at once.
    in_step = {name for name in names[: BURST // 2]
               if (resource(kube, name).get("status") or {}).get("jobName") == f"{name}-g1"
               and resource(kube, name)["status"].get("phase") == "Suspended"}
    for name in names[BURST // 2:]:
        create(cluster, example(name, "http://127.0.0.1:1", spec={"suspend": True}), tmp_path)
    assert "Handler 'start_training'" not in standby.log()  # a standby does nothing until it leads

    wait_until(lambda: all(_has_job(kube, name) for name in names), timeout=120, what="every resource's Job")
    lease = _lease(kube)["spec"]
    assert lease["holderIdentity"] == "replica-b" and lease["leaseTransitions"] == 1, lease
    assert "acquired lease default/driftloop-operator as replica-b" in standby.log()
    status, said = _health()  # the same port, now kopf's own probe
    assert status == 200 and "standby" not in said, said
    for name in names:
        jobs = [j["metadata"]["name"] for j in owned(kube, "Job", name)]
        assert jobs == [f"{name}-g1"], (name, jobs)
        assert resource(kube, name)["status"]["phase"] == "Suspended"
    # What the leader made before it died (at least the first) and the rest, made by the standby.
    assert "Handler 'start_training'" in standby.log() and "Handler 'start_training'" in leader.log()
    assert in_step  # the first at least
    resumed = standby.log().count("Resuming is processed")  # kopf's line when resume handlers ran
    assert resumed <= BURST // 2 - len(in_step), (resumed, sorted(in_step))
    # A clean stop (SIGTERM, as on a rollout) exits by itself and hands the Lease over: the next
    # replica need not wait out the duration.
    standby.stop()
    assert standby.process is not None and standby.process.returncode == 0, standby.log()[-2000:]
    assert _lease(kube)["spec"].get("holderIdentity") is None
