"""Drift fixtures: a Kubernetes API (kmock's emulator) served on loopback from a background thread.

`driftloop drift` runs as separate processes, so the emulator needs its own event loop that
keeps serving while the test waits on them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftloop.constants import K8S_GROUP, K8S_PLURAL, K8S_VERSION


@dataclass
class Emulator:
    """The running emulator, its URL and a kubeconfig file pointing at it."""

    kmock: Any
    url: str
    kubeconfig: Path
    loop: asyncio.AbstractEventLoop

    @property
    def resource(self) -> Any:
        import kmock

        return kmock.resource(K8S_GROUP, K8S_VERSION, K8S_PLURAL)

    def put_job(self, namespace: str, name: str, *, spec: dict[str, Any], status: dict[str, Any]) -> None:
        self.kmock.objects[self.resource, namespace, name] = {
            "apiVersion": f"{K8S_GROUP}/{K8S_VERSION}", "kind": "MLTrainingJob",
            "metadata": {"name": name, "namespace": namespace, "generation": 1}, "spec": spec, "status": status}

    def set_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """What the operator writes, in place: kmock keeps a patch's history, this is no patch."""
        self.kmock.objects[self.resource, namespace, name]["status"] = status

    def job(self, namespace: str, name: str) -> dict[str, Any]:
        return dict(self.kmock.objects[self.resource, namespace, name])

    def requests(self, method: str, name: str) -> list[Any]:
        """Requests of one HTTP method that addressed the named MLTrainingJob."""
        return [r for r in list(self.kmock) if str(r.method).upper().endswith(method)
                and r.url.path.endswith(f"/{K8S_PLURAL}/{name}")]


def _emulator() -> Any:
    """kmock's emulator, answering a read of a missing object with 404 as the API server does (kmock 0.8 sends 500)."""
    import kmock

    class NotFoundAware(kmock.KubernetesEmulator):
        async def _serve_fetch(self, request: Any) -> Any:
            try:
                return await super()._serve_fetch(request)
            except kmock.KubernetesNotFoundError as e:
                return kmock.Response(status=404, payload={"apiVersion": "v1", "kind": "Status", "status": "Failure",
                                                           "reason": "NotFound", "code": 404, "message": e.message})

    return NotFoundAware()


@pytest.fixture
def k8s(tmp_path: Path) -> Iterator[Emulator]:
    import kmock

    emulator = _emulator()
    emulator.resources[f"{K8S_GROUP}/{K8S_VERSION}/{K8S_PLURAL}"] = {}
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def serve() -> None:
        async with kmock.Server(emulator) as server:
            box["url"], box["stop"] = str(server.url).rstrip("/"), asyncio.Event()
            ready.set()
            await box["stop"].wait()

    thread = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
    thread.start()
    assert ready.wait(30), "the Kubernetes emulator did not start"
    kubeconfig = tmp_path / "kubeconfig.yaml"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "emulator",
        "clusters": [{"name": "emulator", "cluster": {"server": box["url"]}}],
        "users": [{"name": "tester", "user": {"token": "test-token"}}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "tester"}}]}))
    try:
        yield Emulator(emulator, box["url"], kubeconfig, loop)
    finally:
        loop.call_soon_threadsafe(box["stop"].set)
        thread.join(10)
