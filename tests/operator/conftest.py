"""Operator fixtures: the emulated cluster (with the CRD), the operator as a real subprocess, clients."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftloop.constants import K8S_GROUP, K8S_PLURAL, K8S_VERSION

from ..conftest import REPO
from .cluster import LocalCluster

CRD_FILE = REPO / "crds" / "mltrainingjob.yaml"
GROUP, VERSION, PLURAL = K8S_GROUP, K8S_VERSION, K8S_PLURAL  # the tests' short names for the one definition
NAMESPACE = "default"


def wait_until(predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class OperatorProcess:
    """`driftloop operator` as a subprocess against the emulator; killed and restarted by tests."""

    def __init__(self, cluster: LocalCluster, log_path: Path, *, args: tuple[str, ...] = ()) -> None:
        self.cluster = cluster
        self.log_path = log_path
        self.args = args  # e.g. ("--identity", "b"): a second replica on the same host needs its own name
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self, *, leading: bool = True) -> None:
        """Start it; with `leading`, wait until it watches (a standby waits for the Lease instead)."""
        emulator = self.cluster.cluster
        before = emulator.watches.get(PLURAL, 0), emulator.watches.get("jobs", 0)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AWS_", "KUBE"))}
        env |= {"KUBECONFIG": str(self.cluster.kubeconfig), "PYTHONUNBUFFERED": "1"}
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "driftloop", "operator", "--log-format", "plain",
                                         *self.args],
                                        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.log_path.parent)
        log.close()
        self.starts += 1
        if not leading:
            wait_until(lambda: "waiting for lease" in self.log(), timeout=90, what="the standby to wait for the Lease")
            return

        def watching() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"operator exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            return emulator.watches.get(PLURAL, 0) > before[0] and emulator.watches.get("jobs", 0) > before[1]

        wait_until(watching, timeout=90, what="the operator to watch MLTrainingJobs and Jobs")

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, exactly like a node dying."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path_factory.mktemp("cluster")) as local:
        local.call(local.cluster.install_crd, yaml.safe_load(CRD_FILE.read_text()))
        yield local


@pytest.fixture(scope="module")
def kube(cluster: LocalCluster) -> Any:
    """The official client, configured from the emulator's kubeconfig."""
    import kubernetes

    return kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    process = OperatorProcess(cluster, tmp_path_factory.mktemp("operator") / "operator.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()


def kubectl(cluster: LocalCluster, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["kubectl", "--kubeconfig", str(cluster.kubeconfig), *args], input=stdin,
                          capture_output=True, text=True, timeout=60)
