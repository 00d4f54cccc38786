"""Prometheus metrics shared by all worker processes (prometheus_client's multiprocess mode).

Each worker writes its samples to memory-mapped files in PROMETHEUS_MULTIPROC_DIR (set
by `driftloop serve` before the workers start); `/metrics` on any worker aggregates all
of them, so a scrape sees the whole server whichever worker answers it.
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

        self.requests = Counter("driftloop_requests", "HTTP requests by route and status code.", ["route", "status"])
        self.latency = Histogram("driftloop_request_duration_seconds", "Time from request to response, by route.",
                                 ["route"], buckets=LATENCY_BUCKETS)
        self.batch_rows = Histogram("driftloop_batch_rows", "Rows per prediction request.", buckets=BATCH_BUCKETS)
        self.predictions = Counter("driftloop_predictions", "Rows predicted.", ["model"])
        # one series per worker process (pid label), so a half-finished swap is visible
        self.model_version = Gauge("driftloop_model_version", "Registered model version each worker serves.",
                                   ["model", "alias"], multiprocess_mode="liveall")
        self.reloads = Counter("driftloop_model_reloads", "Model swaps by outcome.", ["model", "outcome"])
        self._requests: dict[tuple[str, int], Any] = {}
        self._latency: dict[str, Any] = {}

    def observe(self, route: str, status: int, seconds: float) -> None:
        counter = self._requests.get((route, status))
        if counter is None:
            counter = self._requests[(route, status)] = self.requests.labels(route, str(status))
        counter.inc()
        histogram = self._latency.get(route)
        if histogram is None:
            histogram = self._latency[route] = self.latency.labels(route)
        histogram.observe(seconds)

    def served(self, model: str, alias: str, version: str, previous: str | None) -> None:
        try:
            self.model_version.labels(model, alias).set(float(version))
        except ValueError:  # MLflow versions are integers; anything else is still served, just not graphed
            pass
        if previous is not None:
            self.reloads.labels(model, "swapped").inc()

    def render(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest, multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)


def mark_worker_dead(pid: int) -> None:
    """Drop a stopped worker's live gauges, so they do not linger in the aggregate."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)
