"""Prometheus metrics shared by all worker processes (prometheus_client's multiprocess mode).

Each worker writes its samples to memory-mapped files in PROMETHEUS_MULTIPROC_DIR (set
by `driftloop serve` before the workers start); `/metrics` on any worker aggregates all
of them, so a scrape sees the whole server whichever worker answers it.

Names a KServe dashboard expects are exposed as well: `request_predict_seconds{model_name}`
is the histogram KServe's model server keeps of its predict calls (`kserve/metrics.py`);
here it times the model run (validation excluded), as KServe's does.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ServeMetrics:
    """The server's metrics, counted in plain Python per request and written to the shared files once per
    event-loop turn.

    Each prometheus_client update in multiprocess mode takes a lock and writes a memory-mapped file; a
    request made five of them (~10 µs, with the interference, a good share of a one-row request). Here a
    request adds to dicts, and `flush` (scheduled with `call_soon` by the first request of a loop turn, so
    it runs right after the requests that arrived together) writes the sums: under load one write per
    series per turn, at low load still before the client can send its next request. `/metrics` flushes
    its own worker first.
    """

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
        # what happened since the last flush
        self._requests: dict[tuple[str, str, int], int] = {}
        self._latency: dict[tuple[str, str], list[float]] = {}
        self._rows: list[int] = []
        self._predict: dict[str, list[float]] = {}
        self._predicted: dict[str, int] = {}
        self._scheduled = False
        # each series' write calls, looked up once: `labels()` (a lock and a tuple check) and the histogram's
        # internals cost ~3 µs of a ~11 µs flush when looked up again on every flush
        self._counters: dict[tuple[str, ...], Callable[[float], None]] = {}
        self._histograms: dict[tuple[str, ...], Callable[[list[float]], None]] = {}

    def observe(self, protocol: str, route: str, status: int, seconds: float) -> None:
        key = (protocol, route, status)
        self._requests[key] = self._requests.get(key, 0) + 1
        latency = self._latency.get((protocol, route))
        if latency is None:
            latency = self._latency[(protocol, route)] = []
        latency.append(seconds)
        self._schedule()

    def predicted(self, model: str, rows: int, seconds: float) -> None:
        """One model run of `rows` rows (a request's, or its share of a joined batch's run)."""
        self._rows.append(rows)
        self._predicted[model] = self._predicted.get(model, 0) + rows
        run = self._predict.get(model)
        if run is None:
            run = self._predict[model] = []
        run.append(seconds)
        self._schedule()

    def _schedule(self) -> None:
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside a server (a script, a test): write now
            self.flush()
            return
        self._scheduled = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write what was counted since the last flush to the shared files."""
        self._scheduled = False
        requests, self._requests = self._requests, {}
        latency, self._latency = self._latency, {}
        rows, self._rows = self._rows, []
        predict, self._predict = self._predict, {}
        predicted, self._predicted = self._predicted, {}
        for (protocol, route, status), count in requests.items():
            self._counter("requests", protocol, route, str(status))(count)
        for (protocol, route), values in latency.items():
            self._histogram("latency", protocol, route)(values)
        if rows:
            self._histogram("batch_rows")(rows)
        for model, values in predict.items():
            self._histogram("predict_seconds", model)(values)
        for model, count in predicted.items():
            self._counter("predictions", model)(count)

    def _counter(self, metric: str, *labels: str) -> Callable[[float], None]:
        key = (metric, *labels)
        inc = self._counters.get(key)
        if inc is None:
            inc = self._counters[key] = getattr(self, metric).labels(*labels).inc
        return inc

    def _histogram(self, metric: str, *labels: str) -> Callable[[list[float]], None]:
        key = (metric, *labels)
        observe = self._histograms.get(key)
        if observe is None:
            histogram = getattr(self, metric)
            observe = self._histograms[key] = _observer(histogram.labels(*labels) if labels else histogram)
        return observe

    def served(self, model: str, alias: str, version: str, previous: str | None) -> None:
        if previous is not None:
            self.model_info.labels(model, alias, previous).set(0)
            self.reloads.labels(model, "swapped").inc()
        self.model_info.labels(model, alias, version).set(1)

    def render(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest, multiprocess

        self.flush()
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)


def _observer(histogram: Any) -> Callable[[list[float]], None]:
    """A function doing `histogram.observe(v)` for each value, with one write per bucket that got any: the same
    buckets observe picks (the first upper bound ≥ the value)."""
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None:  # another prometheus_client layout: the public call
        def observe_each(values: list[float]) -> None:
            for value in values:
                histogram.observe(value)
        return observe_each
    bucket_incs = [bucket.inc for bucket in buckets]
    sum_inc = total.inc

    def observe_all(values: list[float]) -> None:
        if len(values) == 1:  # a quiet loop turn: one request
            value = values[0]
            bucket_incs[bisect_left(bounds, value)](1)
            sum_inc(value)
            return
        counts: dict[int, int] = {}
        for value in values:
            index = bisect_left(bounds, value)
            counts[index] = counts.get(index, 0) + 1
        for index, count in counts.items():
            bucket_incs[index](count)
        sum_inc(sum(values))

    return observe_all


def mark_worker_dead(pid: int) -> None:
    """Drop a stopped worker's live gauges, so they do not linger in the aggregate."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)
