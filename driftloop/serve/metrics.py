"""Prometheus metrics shared by all worker processes (prometheus_client's multiprocess mode).

Each worker writes its samples to memory-mapped files in PROMETHEUS_MULTIPROC_DIR (set
by `driftloop serve` before the workers start); `/metrics` on any worker aggregates all
of them, so a scrape sees the whole server whichever worker answers it.

Names a KServe dashboard expects are exposed as well: `request_predict_seconds{model_name}`
is the histogram KServe's model server keeps of its predict calls (`kserve/metrics.py`);
here it times the model run (validation excluded), as KServe's does.
"""

from __future__ import annotations

from typing import Any

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ServeMetrics:
    """The server's metrics; label children are cached so a request costs two dict lookups."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.requests = Counter("driftloop_requests", "HTTP requests by protocol, route and status code.",
                                ["protocol", "route", "status"])
        self.latency = Histogram("driftloop_request_duration_seconds", "Time from request to response.",
                                 ["protocol", "route"], buckets=LATENCY_BUCKETS)
        self.batch_rows = Histogram("driftloop_batch_rows", "Rows per prediction request.", buckets=BATCH_BUCKETS)
        self.predictions = Counter("driftloop_predictions", "Rows predicted.", ["model"])
        self.predict_seconds = Histogram("request_predict_seconds", "Model run latency (KServe's name).",
                                         ["model_name"], buckets=LATENCY_BUCKETS)
        # info-style: the version is a label, so it can be joined and grouped on, not just graphed. One
        # series per worker process (pid label), so a half-finished swap is visible; the version a worker
        # left is set to 0 rather than removed, because multiprocess files keep every series they saw
        self.model_info = Gauge("driftloop_model_info", "1 for the model version each worker serves, else 0.",
                                ["model", "alias", "version"], multiprocess_mode="liveall")
        self.reloads = Counter("driftloop_model_reloads", "Model swaps by outcome.", ["model", "outcome"])
        self._requests: dict[tuple[str, str, int], Any] = {}
        self._latency: dict[tuple[str, str], Any] = {}
        self._predict: dict[str, Any] = {}

    def observe(self, protocol: str, route: str, status: int, seconds: float) -> None:
        counter = self._requests.get((protocol, route, status))
        if counter is None:
            counter = self._requests[(protocol, route, status)] = self.requests.labels(protocol, route, str(status))
        counter.inc()
        histogram = self._latency.get((protocol, route))
        if histogram is None:
            histogram = self._latency[(protocol, route)] = self.latency.labels(protocol, route)
        histogram.observe(seconds)

    def predicted(self, model: str, rows: int, seconds: float) -> None:
        self.batch_rows.observe(rows)
        histogram = self._predict.get(model)
        if histogram is None:
            histogram = self._predict[model] = self.predict_seconds.labels(model)
        histogram.observe(seconds)

    def served(self, model: str, alias: str, version: str, previous: str | None) -> None:
        if previous is not None:
            self.model_info.labels(model, alias, previous).set(0)
            self.reloads.labels(model, "swapped").inc()
        self.model_info.labels(model, alias, version).set(1)

    def render(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest, multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)


def mark_worker_dead(pid: int) -> None:
    """Drop a stopped worker's live gauges, so they do not linger in the aggregate."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)
