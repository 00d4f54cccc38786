"""The Open Inference Protocol over gRPC against the same protocol over REST, on one `driftloop serve`.

One server (the bundled `customers` example, trained here; workers one per core; prediction log at
1%, as bench/serve.py runs it) with `--grpc-port`. The same client library drives both transports,
as a V2 user would switch between them: tritonclient's asyncio clients, `tritonclient.grpc.aio`
(raw_input_contents) and `tritonclient.http.aio` (the binary tensor extension), with the same numpy
inputs, for SECONDS each at 1 and 16 concurrent requests and 1 and 100 rows, alternating transports.

The client is Python and shares the cores with the server, so these figures are client-bound: they
say what a tritonclient user gets from each transport on this machine, not the server's ceiling
(bench/serve.py measures that with wrk, which cannot speak gRPC). gRPC runs over one channel (one
connection: one server worker) and over one channel per worker. `ratio` = the better gRPC / REST req/s at
16 concurrent one-row requests; the goal (ours, the issue sets none) is that gRPC is no slower.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import write_result
from serve import MODEL, VENV_BIN, columns, free_port, start, stop, train

NAME = "serve_grpc"
CONCURRENCY = (1, 16)
ROWS = (1, 100)
SECONDS = float(os.environ.get("DRIFTLOOP_BENCH_SERVE_SECONDS", "5"))
GOAL_RATIO = 1.0


def inputs(module: Any, rows: int) -> list:
    built = []
    for name, values in columns(rows).items():
        text = isinstance(values[0], str)
        array = np.array(values, dtype=object if text else np.float32).reshape(-1, 1)
        tensor = module.InferInput(name, list(array.shape), "BYTES" if text else "FP32")
        tensor.set_data_from_numpy(array)
        built.append(tensor)
    return built


async def drive(transport: str, address: str, rows: int, concurrency: int, seconds: float,
                channels: int = 1) -> dict[str, Any]:
    """`concurrency` requests in flight over `channels` clients (for gRPC, one HTTP/2 connection each)."""
    if transport == "grpc":
        import tritonclient.grpc as sync_module
        import tritonclient.grpc.aio as module
    else:
        import tritonclient.http as sync_module
        import tritonclient.http.aio as module
    # gRPC shares one connection among a process's channels to the same target unless each has its own
    # subchannel pool: without it, N channels are still one connection, pinned to one server worker
    options = {"channel_args": [("grpc.use_local_subchannel_pool", 1)]} if transport == "grpc" else {}
    clients = [module.InferenceServerClient(address, **options) for _ in range(channels)]
    tensors = inputs(sync_module, rows)
    latencies: list[float] = []
    errors = 0
    try:
        for client in clients:
            await client.infer(MODEL, tensors)  # one answered before the clock starts
        deadline = time.perf_counter() + seconds

        async def worker(client: Any) -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    await client.infer(MODEL, tensors)
                except Exception:  # noqa: BLE001 (counted, not raised: the figure says how many failed)
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker(clients[i % channels]) for i in range(concurrency)))
        elapsed = time.perf_counter() - began
    finally:
        for client in clients:
            await client.close()
    quantiles = statistics.quantiles(latencies, n=100)
    return {"transport": transport if channels == 1 else f"{transport}-{channels}ch", "concurrency": concurrency,
            "rows": rows, "rps": round(len(latencies) / elapsed, 2), "requests": len(latencies),
            "p50_ms": round(quantiles[49] * 1000, 3), "p99_ms": round(quantiles[98] * 1000, 3), "errors": errors}


def main() -> None:
    from driftloop.serve.config import default_workers

    workers = default_workers()
    root = Path(tempfile.mkdtemp(prefix="driftloop-bench-grpc-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env |= {"MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}", "PATH": f"{VENV_BIN}:{env.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1"}
    train(root, env)
    http, grpc = free_port(), free_port()
    server = start([sys.executable, "-m", "driftloop", "serve", "--model", MODEL, "--port", str(http), "--grpc-port",
                    str(grpc), "--workers", str(workers), "--prediction-log", str(root / "predictions.jsonl"),
                    "--prediction-log-rate", "0.01"], env, root / "driftloop.log", f"http://127.0.0.1:{http}/readyz")
    addresses = {"grpc": f"127.0.0.1:{grpc}", "http": f"127.0.0.1:{http}"}
    runs = []
    # one channel is one HTTP/2 connection, which the kernel hands to one worker; a channel per worker is
    # how a gRPC client reaches them all (the REST client opens a connection per request in flight)
    plans = [("grpc", 1), ("grpc", workers), ("http", 1)] if workers > 1 else [("grpc", 1), ("http", 1)]
    try:
        for transport, channels in plans:  # warm-up
            asyncio.run(drive(transport, addresses[transport], 1, 16, 1.0, channels))
        for rows in ROWS:
            for concurrency in CONCURRENCY:
                for transport, channels in plans:
                    if channels > concurrency:
                        continue
                    run = asyncio.run(drive(transport, addresses[transport], rows, concurrency, SECONDS, channels))
                    print(run, flush=True)
                    runs.append(run)
    finally:
        stop(server)

    def pick(transport: str, concurrency: int, rows: int) -> dict[str, Any]:
        return next(r for r in runs if (r["transport"], r["concurrency"], r["rows"]) == (transport, concurrency, rows))

    ratios = {f"{run['transport'].replace('-', '_')}_over_http_{run['concurrency']}c_{run['rows']}rows":
              round(run["rps"] / pick("http", run["concurrency"], run["rows"])["rps"], 3)
              for run in runs if run["transport"] != "http"}
    best = max((r for r in runs if r["transport"] != "http" and (r["concurrency"], r["rows"]) == (16, 1)),
               key=lambda r: r["rps"])
    measured, baseline = best["rps"], pick("http", 16, 1)["rps"]
    ratio = measured / baseline
    errors = sum(r["errors"] for r in runs)
    path = write_result(NAME, {
        "unit": "req/s", "measured": measured, "baseline": baseline, "ratio": round(ratio, 3),
        "goal": {"metric": "ratio", "op": ">=", "value": GOAL_RATIO}, "passed_goal": ratio >= GOAL_RATIO and not errors,
        "ratios": ratios, "client": "tritonclient grpc.aio / http.aio (binary tensors), in one Python process",
        "workers": workers, "seconds_per_run": SECONDS, "runs": runs})
    print(f"gRPC ({best['transport']}) {measured:,.0f} req/s vs REST V2 {baseline:,.0f} req/s at 16 concurrent one-row requests: "
          f"{ratio:.2f}x; {ratios}; errors {errors}; wrote {path}")


if __name__ == "__main__":
    main()
