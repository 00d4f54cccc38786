"""KFP area fixtures: a fake Kubeflow Pipelines v2beta1 REST server on loopback.

It speaks just enough of the API that `kfp.Client` uses (healthz, experiments, runs),
keeps what it was sent so tests can assert on it, and can demand a bearer token.
Reusable by any test that submits runs (the drift trigger's `--retrain kfp` too):
take the `kfp_server` fixture and point `--host` at `kfp_server.url`.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

API = "/apis/v2beta1"


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: Any


@dataclass
class FakeKfpServer:
    """State and knobs of the fake endpoint.

    `token`: when set, requests without `Authorization: Bearer <token>` get 401.
    `final_state`: where every run ends; `polls_until_final` GETs of a run answer RUNNING first.
    """

    url: str = ""
    token: str | None = None
    final_state: str = "SUCCEEDED"
    polls_until_final: int = 1
    requests: list[Received] = field(default_factory=list)
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    polls: dict[str, int] = field(default_factory=dict)

    def received(self, method: str, path: str) -> list[Received]:
        return [r for r in self.requests if r.method == method and r.path == API + path]

    def add_experiment(self, name: str, namespace: str | None = None) -> str:
        experiment_id = str(uuid.uuid4())
        self.experiments[experiment_id] = {"experiment_id": experiment_id, "display_name": name,
                                           "namespace": namespace, "storage_state": "AVAILABLE"}
        return experiment_id

    # -- the API ------------------------------------------------------------------------------
    def answer(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        if path == f"{API}/healthz" and method == "GET":
            return 200, {"multi_user": False}
        if path == f"{API}/experiments" and method == "GET":
            return 200, self._list_experiments(query)
        if path == f"{API}/experiments" and method == "POST":
            experiment_id = self.add_experiment(body["display_name"], body.get("namespace"))
            return 200, self.experiments[experiment_id]
        if path.startswith(f"{API}/experiments/") and method == "GET":
            found = self.experiments.get(path.rsplit("/", 1)[1])
            return (200, found) if found else (404, _error(5, "experiment not found"))
        if path == f"{API}/runs" and method == "POST":
            return self._create_run(body)
        if path.startswith(f"{API}/runs/") and method == "GET":
            return self._get_run(path.rsplit("/", 1)[1])
        return 404, _error(5, f"no route {method} {path}")

    def _list_experiments(self, query: dict[str, list[str]]) -> dict[str, Any]:
        predicates = json.loads(query.get("filter", ["{}"])[0]).get("predicates", [])
        wanted = {p["key"]: p.get("stringValue") for p in predicates}
        found = [e for e in self.experiments.values()
                 if all(e.get(key) == value for key, value in wanted.items())]
        return {"experiments": found, "total_size": len(found)} if found else {}

    def _create_run(self, body: dict[str, Any]) -> tuple[int, Any]:
        if body.get("experiment_id") not in self.experiments:
            return 400, _error(3, f"experiment {body.get('experiment_id')} does not exist")
        if "root" not in pipeline_spec_of(body):
            return 400, _error(3, "run has no pipeline spec")
        run_id = str(uuid.uuid4())
        self.runs[run_id] = {**body, "run_id": run_id, "state": "PENDING", "created_at": "2026-01-01T00:00:00Z"}
        self.polls[run_id] = 0
        return 200, self.runs[run_id]

    def _get_run(self, run_id: str) -> tuple[int, Any]:
        run = self.runs.get(run_id)
        if run is None:
            return 404, _error(5, f"run {run_id} not found")
        self.polls[run_id] += 1
        run["state"] = self.final_state if self.polls[run_id] > self.polls_until_final else "RUNNING"
        return 200, run


def pipeline_spec_of(run: dict[str, Any]) -> dict[str, Any]:
    """A run's pipeline spec: kfp.Client nests it beside the platform spec when there is one."""
    spec = run.get("pipeline_spec") or {}
    return spec.get("pipeline_spec", spec)


def platform_spec_of(run: dict[str, Any]) -> dict[str, Any]:
    return (run.get("pipeline_spec") or {}).get("platform_spec", {})


def _error(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "details": []}


def _handler(server: FakeKfpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            server.requests.append(Received(method, url.path, parse_qs(url.query),
                                           {k.lower(): v for k, v in self.headers.items()}, body))
            if server.token is not None and self.headers.get("Authorization") != f"Bearer {server.token}":
                status, answer = 401, _error(16, "Unauthenticated: invalid bearer token")
            else:
                status, answer = server.answer(method, url.path, parse_qs(url.query), body)
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

        def log_message(self, *_: Any) -> None:  # keep pytest output clean
            return

    return Handler


@pytest.fixture
def kfp_server() -> Iterator[FakeKfpServer]:
    state = FakeKfpServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
