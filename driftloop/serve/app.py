"""The HTTP routes, independent of the server that runs them.

`Service.handle` takes a parsed request and returns a response; the server adapter
(`driftloop.serve.rsgi`) only moves bytes. Each protocol answers in its reference server's
shapes, errors included (`driftloop.serve.http.error_body`). Routes:

    POST /v1/models/<name>:predict   KServe V1: {"instances": [...]} rows or {"inputs": {col: [...]}} columns
    POST /v1/models/<name>:explain   501, as KServe answers for a model without an explainer
    GET  /v1/models, /v1/models/<name>   KServe V1 model list and metadata (inputs in positional order)
    GET  /                           KServe liveness: {"status": "alive"}
    POST /invocations                MLflow scoring: dataframe_records, dataframe_split, instances, inputs; text/csv
    GET  /ping  /health  /version    MLflow scoring server's health and version
    GET  /v2/health/live|ready, /v2, /v2/models/<name>[/versions/<v>][/ready]   Open Inference Protocol (V2)
    POST /v2/models/<name>[/versions/<v>]/infer   one tensor per raw column (`driftloop.serve.v2`)
    GET  /healthz  /readyz
    GET  /metrics                    Prometheus text format
    POST /admin/reload               load the version the alias points at now, swap it in

With `--grpc-port`, `driftloop.serve.oip_grpc` serves the Open Inference Protocol over gRPC from the same
`Service` (its `_run` and `record`).
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from pathlib import Path
from typing import Any, NamedTuple

from driftloop.serve import v2
from driftloop.serve.batching import MicroBatcher
from driftloop.serve.config import ServeConfig
from driftloop.serve.errors import ClientError
from driftloop.serve.http import JSON, Request, Response, error_body, json_response, parse_json, protocol_of
from driftloop.serve.jsonlines import JsonLinesSink
from driftloop.serve.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from driftloop.serve.metrics import ServeMetrics
from driftloop.serve.model import ModelHolder, RegistrySource, load_served, reload_marker, touch
from driftloop.serve.predlog import PredictionLog

_MODELS_PREFIX = "/v1/models/"
_PREDICT_SUFFIX = ":predict"
_EXPLAIN_SUFFIX = ":explain"
WATCH_TICK_S = 0.5  # how often a worker checks its siblings' reload signal and flushes its logs


__all__ = ["Handled", "Request", "Response", "Service", "error_response", "route_of"]


class Handled(NamedTuple):
    route: str
    response: Response
    rows: int


def error_response(error: ClientError, path: str) -> Response:
    """The error in the shape of the protocol the path belongs to."""
    return error_body(protocol_of(path), error.status, error.message)


class Service:
    """One worker's routes, model holder, metrics and logs."""

    def __init__(self, config: ServeConfig, holder: ModelHolder, metrics: ServeMetrics, events: JsonLinesSink,
                 prediction_log: PredictionLog | None) -> None:
        self.config, self.holder, self.metrics = config, holder, metrics
        self.events, self.prediction_log = events, prediction_log
        self.state_dir = Path(config.state_dir)
        self.marker_seen: float | None = None  # the reload marker's mtime this worker has acted on (`watch`)
        self.pid = os.getpid()
        self.batcher = (MicroBatcher(config.batch_max_rows, config.batch_max_wait_ms / 1000)
                        if config.batch_max_rows > 0 else None)
        model = holder.current
        self.metrics.served(model.name, model.alias, model.version, None)
        from driftloop import __version__

        self.version_text = __version__.encode()

    @classmethod
    def start(cls, config: ServeConfig) -> Service:
        """Build a worker's service from the configuration, loading the version the CLI process fetched."""
        state = Path(config.state_dir)
        source = RegistrySource(config.tracking_uri, config.model_name, config.alias, state / "models")
        model = load_served(source.path(config.initial_version), name=config.model_name, alias=config.alias,
                            version=config.initial_version, max_rows=config.max_rows)
        holder = ModelHolder(source, model, max_rows=config.max_rows)
        events = JsonLinesSink(os.dup(2))
        prediction_log = None
        if config.prediction_log and config.prediction_log_rate > 0:
            prediction_log = PredictionLog(JsonLinesSink.append_to(config.prediction_log), config.prediction_log_rate)
        return cls(config, holder, ServeMetrics(), events, prediction_log)

    # --- request handling -------------------------------------------------------------------

    async def handle(self, request: Request) -> Handled:
        method, path = request.method, request.path
        try:
            if path.startswith(_MODELS_PREFIX):
                return await self._models(request, path[len(_MODELS_PREFIX):])
            if path.startswith("/v2"):
                return await self._v2(request)
            if path == "/invocations":
                _allow(method, "POST")
                return await self._invocations(request)
            if path in ("/healthz", "/ping", "/health"):
                _allow(method, "GET")
                return Handled("health", json_response(200, {"status": "ok"}), 0)
            if path == "/":
                _allow(method, "GET")  # KServe's liveness route; its clients and transformers probe it
                return Handled("health", json_response(200, {"status": "alive"}), 0)
            if path == "/version":
                _allow(method, "GET")  # MLflow's scoring server answers its own version here, as text
                return Handled("metadata", Response(200, "text/plain; charset=utf-8", self.version_text), 0)
            if path == "/readyz":
                _allow(method, "GET")
                model = self.holder.current
                return Handled("ready", json_response(200, {"status": "ready", "model": model.name,
                                                            "version": model.version}), 0)
            if path == "/metrics":
                _allow(method, "GET")
                return Handled("metrics", Response(200, METRICS_CONTENT_TYPE, self.metrics.render()), 0)
            if path == "/v1/models":
                _allow(method, "GET")
                return Handled("metadata", json_response(200, {"models": [self.holder.current.name]}), 0)
            if path == "/admin/reload":
                _allow(method, "POST")
                return Handled("reload", await self._reload(request), 0)
            raise ClientError(404, f"no route for {path}")
        except ClientError as error:
            return Handled(route_of(path), error_response(error, path), 0)
        except Exception as error:  # a bug must cost one request, not the worker
            self.event("internal_error", path=path, error=f"{type(error).__name__}: {error}"[:500])
            return Handled(route_of(path), error_body(protocol_of(path), 500,
                                                      f"internal error: {type(error).__name__}"), 0)

    async def _models(self, request: Request, rest: str) -> Handled:
        model = self.holder.current
        if rest.endswith(_PREDICT_SUFFIX):
            _allow(request.method, "POST")
            name = rest[: -len(_PREDICT_SUFFIX)]
            if name != model.name:
                raise ClientError(404, f"model {name!r} is not served here (serving {model.name!r})")
            columns, n = model.schema.columns_of(parse_json(request.body))
            return Handled("predict", await self._predict(model, columns, n), n)
        if rest.endswith(_EXPLAIN_SUFFIX):
            _allow(request.method, "POST")
            raise ClientError(501, f"model {rest[: -len(_EXPLAIN_SUFFIX)]!r} has no explainer; "
                                   f"POST /v1/models/<name>:predict for predictions")
        _allow(request.method, "GET")
        if rest != model.name:
            raise ClientError(404, f"model {rest!r} is not served here (serving {model.name!r})")
        return Handled("metadata", json_response(200, model.metadata()), 0)

    async def _v2(self, request: Request) -> Handled:
        path, model = request.path, self.holder.current
        if not path.startswith(v2.MODELS_PREFIX):
            _allow(request.method, "GET")
            answers = {"/v2": ("metadata", v2.server_metadata(self.version_text.decode())),
                       "/v2/health/live": ("health", {"live": True}), "/v2/health/ready": ("ready", {"ready": True})}
            if path not in answers:
                raise ClientError(404, f"no route for {path}")
            route, payload = answers[path]
            return Handled(route, json_response(200, payload), 0)
        target = v2.target_of(path)
        v2.require_served(model, target.name, target.version)
        if target.action == "infer":
            _allow(request.method, "POST")
            infer = v2.parse_infer(request.body, request.header_length, model)
            predictions, probabilities = await self._run(model, infer.columns, infer.n)
            return Handled("infer", v2.infer_response(model, infer, predictions, probabilities), infer.n)
        _allow(request.method, "GET")
        if target.action == "ready":
            return Handled("ready", json_response(200, {"name": model.name, "ready": True}), 0)
        return Handled("metadata", json_response(200, v2.model_metadata(model)), 0)

    async def _invocations(self, request: Request) -> Handled:
        model = self.holder.current
        kind = (request.content_type or JSON).split(";")[0].strip().lower()
        if kind == "text/csv":
            columns, n = model.schema.columns_of_csv(_text(request.body))
        elif kind == JSON or kind.endswith("+json"):
            columns, n = model.schema.columns_of(parse_json(request.body))
        else:
            raise ClientError(415, f"content type {kind!r} is not supported; use application/json or text/csv")
        return Handled("invocations", await self._predict(model, columns, n), n)

    async def _run(self, model: Any, columns: Any, n: int) -> tuple[Any, Any]:
        """Validate, predict, count and log one request's rows: the part every protocol shares."""
        if self.batcher is None:
            feed = model.schema.feed(columns)
            started = time.perf_counter()  # the model run alone, as KServe's request_predict_seconds
            predictions, probabilities = model.run(feed)
        else:  # validated with the requests it is joined with
            started = time.perf_counter()
            predictions, probabilities = await self.batcher.run(model, columns, n)
        self.metrics.predicted(model.name, n, time.perf_counter() - started)
        if self.prediction_log is not None:
            self.prediction_log.record(model, columns, n, predictions, probabilities)
        return predictions, probabilities

    async def _predict(self, model: Any, columns: Any, n: int) -> Response:
        predictions, probabilities = await self._run(model, columns, n)
        payload: dict[str, Any] = {"predictions": predictions if predictions.dtype.kind in "biuf" else predictions.tolist()}
        if probabilities is not None:
            payload["probabilities"] = probabilities
            payload["classes"] = model.classes if model.classes.dtype.kind in "biuf" else model.classes.tolist()
        payload["model_name"] = model.name
        payload["model_version"] = model.version
        return json_response(200, payload)

    async def _reload(self, request: Request) -> Response:
        token = self.config.admin_token
        if token and request.authorization != f"Bearer {token}":
            raise ClientError(401, "POST /admin/reload needs 'Authorization: Bearer <admin token>'")
        result = await self.sync("admin")
        if result is None:
            return json_response(503, {"error": "reload failed; the current version is still served",
                                       "version": self.holder.current.version})
        marker = reload_marker(self.state_dir)
        touch(marker)  # the other workers follow within WATCH_TICK_S
        # ...and not this one: its own signal would sync it again a tick later, a registry call for
        # nothing, or (an alias moved meanwhile) a swap nobody asked for after this answer said otherwise
        self.marker_seen = _mtime(marker)
        return json_response(200, {"model": self.holder.current.name, **result.to_json()})

    # --- after each request -----------------------------------------------------------------

    def completed(self, request: Request, handled: Handled, started: float) -> None:
        self.record(protocol_of(request.path), handled.route, request.method, request.path, handled.response.status,
                    time.perf_counter() - started, handled.rows)

    def record(self, protocol: str, route: str, method: str, path: str, status: int, seconds: float,
               rows: int) -> None:
        """Count one answered request and write its access line (rows are counted in `predicted`)."""
        self.metrics.observe(protocol, route, status, seconds)
        if self.config.access_log:
            self.events.write({"ts": round(time.time(), 3), "event": "access", "method": method, "path": path,
                               "status": status, "ms": round(seconds * 1000, 3), "rows": rows,
                               "version": self.holder.current.version, "pid": self.pid})

    def event(self, name: str, **fields: Any) -> None:
        self.events.write({"ts": round(time.time(), 3), "event": name, "pid": self.pid, **fields})
        self.events.flush()

    # --- hot reload -------------------------------------------------------------------------

    async def sync(self, reason: str) -> Any:
        """Follow the alias; logs and counts the outcome. None when the registry or the new model failed."""
        model = self.holder.current
        try:
            result = await self.holder.sync()
        except Exception as error:  # registry down or a broken file: keep serving what we have
            self.metrics.reloads.labels(model.name, "failed").inc()
            self.event("reload_failed", reason=reason, model=model.name, version=model.version,
                       error=f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:300])
            return None
        if result.previous is not None:
            self.metrics.served(model.name, model.alias, result.version, result.previous)
            self.event("model_swapped", reason=reason, model=model.name, version=result.version,
                       previous=result.previous)
        return result

    async def watch(self) -> None:
        """Poll the registry every `poll_interval_s`, follow sibling reloads, flush logs."""
        marker = reload_marker(self.state_dir)
        self.marker_seen = _mtime(marker)
        interval = self.config.poll_interval_s
        next_poll = time.monotonic() + interval if interval > 0 else math.inf
        while True:
            await asyncio.sleep(WATCH_TICK_S)
            self.flush()
            changed = _mtime(marker)
            now = time.monotonic()
            if changed != self.marker_seen or now >= next_poll:
                reason = "signal" if changed != self.marker_seen else "poll"
                self.marker_seen = changed
                if now >= next_poll:
                    next_poll = now + interval
                await self.sync(reason)

    def flush(self) -> None:
        self.metrics.flush()
        self.events.flush()
        if self.prediction_log is not None:
            self.prediction_log.sink.flush()


def _allow(method: str, allowed: str) -> None:
    if method != allowed:
        raise ClientError(405, f"method {method} not allowed; use {allowed}")


def route_of(path: str) -> str:
    if path.startswith("/v2"):
        if path.endswith("/infer"):
            return "infer"
        return "ready" if path.endswith("/ready") else "health" if path == "/v2/health/live" else "metadata"
    if path.startswith(_MODELS_PREFIX):
        if path.endswith(_PREDICT_SUFFIX):
            return "predict"
        return "explain" if path.endswith(_EXPLAIN_SUFFIX) else "metadata"
    known = {"/invocations": "invocations", "/healthz": "health", "/ping": "health", "/health": "health",
             "/": "health", "/version": "metadata", "/readyz": "ready", "/metrics": "metrics",
             "/v1/models": "metadata", "/admin/reload": "reload"}
    return known.get(path, "other")


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise ClientError(400, "body is not UTF-8 text") from None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0.0
