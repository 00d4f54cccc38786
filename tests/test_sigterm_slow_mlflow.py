"""A SIGTERM'd `driftloop run` ends its MLflow run as KILLED within its stop budget, even when MLflow is slow.

What a training pod does when its Job is deleted (`killed_on_sigterm`): the budget is the grace period
less a margin (15 s of 20 s). Here the run talks to the session's real MLflow server through a proxy
that, once the run is training, makes each request reach MLflow seconds late (an overloaded MLflow),
or holds every request (a hung one). Each case is a real `driftloop run` subprocess, SIGTERM'd.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from driftloop.constants import TERMINATION_GRACE_S
from driftloop.example import customers
from driftloop.runner import stop_budget_s

from .conftest import REPO, registry_for
from .mlflow_proxy import MLflowProxy

# Each request reaches MLflow this late: the status and the tags (two requests) take 11 s together,
# within the 15 s budget, but more than the 10 s the KILLED write had when it wrote the tags first.
SLOW_REQUEST_S = 5.5


@pytest.fixture
def proxy(mlflow_uri: str) -> Iterator[MLflowProxy]:
    proxy = MLflowProxy(mlflow_uri)
    try:
        yield proxy
    finally:
        proxy.close()


def _training(tmp_path: Path, proxy: MLflowProxy, model: str) -> subprocess.Popen[str]:
    """`driftloop run` through the proxy, training until stopped (early stopping never triggers)."""
    data = tmp_path / f"{model}.csv"
    customers(rows=800).to_csv(data, index=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AWS_", "DRIFTLOOP_"))}
    env |= {"MLFLOW_TRACKING_URI": proxy.uri, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "driftloop", "run", "--data", str(data), "--target", "churned", "--model", model,
         "--set", "train.model=mlp", "--set", "train.epochs=100000", "--set", "train.patience=100000",
         "--set", f"output={tmp_path / 'out'}", "-q"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _open_run(mlflow_uri: str, model: str, process: subprocess.Popen[str]) -> Any:
    """The run once the process has it open (its first params are logged), read at MLflow itself."""
    client = registry_for(mlflow_uri).client
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"driftloop run exited {process.returncode}: {process.communicate()[1][-2000:]}")
        experiment = client.get_experiment_by_name(model)
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        if runs and "data.dropped_missing_target" in runs[0].data.params:
            return runs[0]
        time.sleep(0.3)
    process.kill()
    raise AssertionError(f"no open run of {model} within 300 s")


def _stop(process: subprocess.Popen[str]) -> tuple[int, str, float]:
    """SIGTERM it: its exit code, its stderr, and the seconds from the signal to its exit."""
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        _, stderr = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return process.returncode, stderr, time.monotonic() - signalled


@pytest.mark.slow
def test_a_slow_mlflow_still_records_killed_within_the_budget(
        mlflow_uri: str, proxy: MLflowProxy, tmp_path: Path) -> None:
    process = _training(tmp_path, proxy, "sigterm-slow")
    run = _open_run(mlflow_uri, "sigterm-slow", process)
    proxy.delay_s = SLOW_REQUEST_S
    code, stderr, seconds = _stop(process)
    assert code == 143, stderr[-2000:]
    assert "left open" not in stderr and "not written" not in stderr, stderr[-2000:]
    # within its grace period (the budget is 15 s of it); the test's own bound is generous, for a loaded machine
    assert seconds < TERMINATION_GRACE_S, (seconds, stderr[-2000:])
    ended = registry_for(mlflow_uri).client.get_run(run.info.run_id)
    assert ended.info.status == "KILLED", (ended.info.status, stderr[-2000:])
    assert ended.data.tags["driftloop.status"] == "killed"
    assert ended.data.tags["driftloop.error"] == "stopped by SIGTERM"


@pytest.mark.slow
def test_a_hung_mlflow_leaves_the_run_open_and_exits_within_the_budget(
        mlflow_uri: str, proxy: MLflowProxy, tmp_path: Path) -> None:
    budget = stop_budget_s({})  # `driftloop run` outside Kubernetes: the default grace period's budget
    assert budget == 15
    process = _training(tmp_path, proxy, "sigterm-hung")
    run = _open_run(mlflow_uri, "sigterm-hung", process)
    proxy.hanging.set()
    code, stderr, seconds = _stop(process)
    assert code == 143, stderr[-2000:]
    assert f"MLflow did not answer within {budget:g} s, so run {run.info.run_id} was left open" in stderr, stderr
    assert budget - 0.5 <= seconds < TERMINATION_GRACE_S, (seconds, stderr[-2000:])
    assert registry_for(mlflow_uri).client.get_run(run.info.run_id).info.status == "RUNNING"


@pytest.mark.parametrize(("grace", "budget"), [("20", 15), ("30", 25), ("6", 3), (None, 15), ("soon", 15), ("0", 15)])
def test_the_budget_is_the_grace_period_the_pod_was_told_less_the_margin(grace: str | None, budget: float) -> None:
    # a grace period under twice the 5 s margin keeps half for it; no (usable) value: the operator's 20 s
    assert stop_budget_s({} if grace is None else {"DRIFTLOOP_TERMINATION_GRACE_S": grace}) == budget


def test_a_lost_request_is_sent_again_within_the_deadline(tmp_path: Path) -> None:
    """The first update never gets an answer (a dead connection): it is given up after `attempt_s`, not
    MLflow's 20 s timeout and backoff, and the second one lands."""
    import http.server
    import json
    import threading

    from mlflow import MlflowClient

    from driftloop.mlflow_gateway import MLflowGateway

    seen: list[tuple[str, dict[str, Any]]] = []
    release = threading.Event()

    class Stub(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, body))
            if len(seen) == 1:
                release.wait(30)  # lost: no answer until the test ends
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        gateway = MLflowGateway(MlflowClient(tracking_uri=uri, registry_uri=uri), uri)
        started = time.monotonic()
        gateway.end_run("r1", "KILLED", deadline=started + 30, attempt_s=1.0)
        took = time.monotonic() - started
        updates = list(seen)
        seen.clear()  # the next request is lost too, and the deadline comes before its attempt's 5 s
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            gateway.set_run_tags("r1", {"driftloop.status": "killed"}, deadline=started + 1.5, attempt_s=5.0)
        gave_up = time.monotonic() - started
    finally:
        release.set()
        server.shutdown()
    assert [path for path, _ in updates] == ["/api/2.0/mlflow/runs/update"] * 2
    assert updates[1][1]["status"] == "KILLED" and updates[1][1]["run_id"] == "r1"
    assert 1.0 <= took < 10, took  # one attempt's 1 s, then a resend: not MLflow's own 20 s timeout and backoff
    assert 1.5 <= gave_up < 5, gave_up  # at the deadline, not at the attempt's 5 s
