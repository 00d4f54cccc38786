"""Hot reload: the alias moves (promotion, `driftloop rollback`) under a request stream, and no request fails."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
import pytest

from driftloop.serve.app import WATCH_TICK_S

from ..conftest import DRIFTLOOP, S3, cli_env, registry_for
from .conftest import Champion, Server

pytestmark = pytest.mark.slow

RELOAD_MODEL = "serve_reload"


class RequestStream:
    """Clients sending one-row predictions back to back, recording every status and served version."""

    def __init__(self, url: str, rows: list[dict], clients: int = 2) -> None:
        self.url, self.rows = url, rows
        self.answers: list[tuple[int, str | None]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def _client(self) -> None:
        with httpx.Client(timeout=30) as client:
            i = 0
            while not self._stop.is_set():
                i += 1
                try:
                    response = client.post(self.url, json={"instances": [self.rows[i % len(self.rows)]]})
                    version = response.json().get("model_version") if response.status_code == 200 else None
                    self.answers.append((response.status_code, version))
                except httpx.HTTPError as e:
                    self.errors.append(f"{type(e).__name__}: {e}")

    def __enter__(self) -> RequestStream:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def wait_for_version(self, version: str, *, streak: int = 40, timeout: float = 60) -> None:
        """Until `streak` answers in a row came from `version` (both workers have swapped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            recent = [v for _, v in self.answers[-streak:]]
            if len(recent) == streak and all(v == version for v in recent):
                return
            time.sleep(0.1)
        raise AssertionError(f"version {version} not served after {timeout}s; last: {self.answers[-5:]}")


def test_champion_moves_under_load_without_failed_requests(champion: Champion, mlflow_uri: str, s3: S3,
                                                          start_server: Callable[..., Server], tmp_path) -> None:
    import subprocess

    registry = registry_for(mlflow_uri)
    first = registry.register_candidate(RELOAD_MODEL, champion.run_id, tags={})
    registry.promote(RELOAD_MODEL, first.version)
    server = start_server("--model", RELOAD_MODEL, "--workers", "2", "--poll-interval", "1", "--no-access-log")
    url = f"{server.url}/v1/models/{RELOAD_MODEL}:predict"
    with RequestStream(url, champion.rows) as stream:
        stream.wait_for_version(first.version, streak=20)
        second = registry.register_candidate(RELOAD_MODEL, champion.run_id, tags={})
        registry.promote(RELOAD_MODEL, second.version)
        reloaded = httpx.post(f"{server.url}/admin/reload", timeout=60)
        assert reloaded.status_code == 200, reloaded.text
        # The poller (every 1 s) may swap first on a slow machine; then the reload finds nothing to change.
        # Either way the answer names the new version (the reload's own swap: test_admin_token_guards_reload).
        moved = {"model": RELOAD_MODEL, "version": second.version, "previous": first.version, "changed": True}
        polled = {"model": RELOAD_MODEL, "version": second.version, "previous": None, "changed": False}
        assert reloaded.json() in (moved, polled), reloaded.json()
        stream.wait_for_version(second.version)
        # `driftloop rollback` only moves the alias; the poller must notice it on its own
        back = subprocess.run([*DRIFTLOOP, "rollback", "--model", RELOAD_MODEL], env=cli_env(mlflow_uri, s3),
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert back.returncode == 0, back.stderr
        stream.wait_for_version(first.version)
    assert stream.errors == []
    statuses = {status for status, _ in stream.answers}
    assert statuses == {200}, [a for a in stream.answers if a[0] != 200][:5]
    order = [v for i, (_, v) in enumerate(stream.answers) if i == 0 or v != stream.answers[i - 1][1]]
    assert order[0] == first.version and second.version in order and order[-1] == first.version
    assert len(stream.answers) > 100
    again = httpx.post(f"{server.url}/admin/reload", timeout=60).json()
    assert again["changed"] is False and again["version"] == first.version
    # two workers, two swaps each; a worker follows its sibling's reload within a watch tick, so
    # the last swap may land just after the answer above: read the counters until they settle
    swapped = f'driftloop_model_reloads_total{{model="{RELOAD_MODEL}",outcome="swapped"}}'
    deadline = time.monotonic() + 10
    while True:
        metrics = httpx.get(f"{server.url}/metrics").text
        if f"{swapped} 4.0" in metrics or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert f"{swapped} 4.0" in metrics, [line for line in metrics.splitlines() if "reloads_total" in line]


def test_admin_token_guards_reload(champion: Champion, mlflow_uri: str, start_server: Callable[..., Server]) -> None:
    registry = registry_for(mlflow_uri)
    if registry.by_alias(RELOAD_MODEL, "champion") is None:
        registry.promote(RELOAD_MODEL, registry.register_candidate(RELOAD_MODEL, champion.run_id, tags={}).version)
    server = start_server("--model", RELOAD_MODEL, "--workers", "1", "--poll-interval", "0",
                          env={"DRIFTLOOP_ADMIN_TOKEN": "s3cret"})
    assert httpx.post(f"{server.url}/admin/reload").status_code == 401
    assert httpx.post(f"{server.url}/admin/reload", headers={"Authorization": "Bearer wrong"}).status_code == 401
    newer = registry.register_candidate(RELOAD_MODEL, champion.run_id, tags={})  # not promoted: no alias moves
    ok = httpx.post(f"{server.url}/admin/reload", headers={"Authorization": "Bearer s3cret"}, timeout=60)
    assert ok.status_code == 200 and ok.json()["changed"] is False
    # Not polled (interval 0): only a reload moves the server. The one above signalled its siblings through
    # the reload marker, which the worker itself must not follow a watch tick later, into what is promoted now.
    served = ok.json()["version"]
    registry.promote(RELOAD_MODEL, newer.version)
    time.sleep(4 * WATCH_TICK_S)
    assert httpx.get(f"{server.url}/readyz").json()["version"] == served
    moved = httpx.post(f"{server.url}/admin/reload", headers={"Authorization": "Bearer s3cret"}, timeout=60)
    assert moved.status_code == 200
    assert moved.json() == {"model": RELOAD_MODEL, "version": newer.version, "previous": served, "changed": True}
