"""Serving throughput: `driftloop serve` against `mlflow models serve --env-manager local`.

Both serve the same registered model (the bundled `customers` example, trained here into
a fresh SQLite MLflow store), with the same number of worker processes (one per core),
driven by the same load generator on loopback with byte-identical request bodies: the
TF-Serving/MLflow tensor layout `{"inputs": {column: [[value], ...]}}`, which both
servers accept (MLflow's ONNX flavour cannot take a DataFrame for a multi-input model
with [N,1] inputs). Every combination of 1, 16 and 64 connections and 1- and 100-row
requests runs for SECONDS, alternating the two servers so background load hits both.

driftloop serve runs as deployed: input validation, Prometheus metrics, the JSON access
log (to a file) and the prediction log (1% of rows) all on; `driftloop-batched` is the same
with micro-batching (`--batch-max-rows 64`), measured to decide whether it should be the default.

Goals (issue 7), at 16 connections: single row ≥ 10× mlflow's req/s with p99 ≤ 10 ms and
zero errors; 100-row requests ≥ 2,000 req/s. `ratio` = driftloop / mlflow req/s, 16 conn, 1 row,
against mlflow's faster mode: it is also driven without keep-alive (see CLOSE_NOTE).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from _common import write_result
from loadgen import ensure_wrk, run_python, run_wrk

NAME = "serve"
MODEL = "customers"
CONNECTIONS = (1, 16, 64)
ROWS = (1, 100)
SECONDS = float(os.environ.get("DRIFTLOOP_BENCH_SERVE_SECONDS", "5"))
GOAL_RATIO = 10.0
GOAL_P99_MS = 10.0
GOAL_100_ROWS_RPS = 2000.0
BATCH_MAX_ROWS = 64  # driftloop-batched: the same server with micro-batching on, to see whether it pays
VENV_BIN = Path(sys.executable).parent
CLOSE_NOTE = ("On keep-alive connections mlflow models serve (uvicorn) stalls ~40 ms per request (p50 ~48 ms at one "
              "connection, ~2.5 ms per request with a fresh connection each time), so it is also driven with "
              "'Connection: close' (mlflow-close) and the baseline is whichever of the two is faster.")


def train(root: Path, env: dict[str, str]) -> None:
    from driftloop.example import customers

    customers(rows=2000).to_csv(root / f"{MODEL}.csv", index=False)
    subprocess.run([sys.executable, "-m", "driftloop", "run", "--data", f"{MODEL}.csv", "--target", "churned",
                    "--set", "train.epochs=10", "--set", "evaluate.latency_samples=20", "-q"],
                   cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)


def body(rows: int) -> bytes:
    """The `inputs` tensor layout, numbers as floats (MLflow's ONNX flavour does not cast int64)."""
    from driftloop.example import customers

    frame = customers(rows=rows, seed=11).drop(columns=["churned"])
    inputs = {c: [[float(v)] if frame[c].dtype.kind in "if" else [str(v)] for v in frame[c].tolist()]
              for c in frame.columns}
    return json.dumps({"inputs": inputs}).encode()


def start(command: list[str], env: dict[str, str], log: Path, ready_url: str) -> subprocess.Popen:
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[:4]} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(ready_url, timeout=2):
                return process
        except OSError:
            time.sleep(0.5)
    stop(process)
    raise RuntimeError(f"{ready_url} did not answer within 180s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    """The server and its workers (its own session/process group)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    from driftloop.serve.config import default_workers

    workers = default_workers()
    wrk = ensure_wrk()
    generator = "wrk" if wrk else "python-asyncio"

    def load(url: str, payload: bytes, connections: int, seconds: float, close: bool = False) -> dict[str, Any]:
        if wrk:
            return run_wrk(wrk, url, payload, connections=connections, seconds=seconds, close=close)
        return run_python(url, payload, connections=connections, seconds=seconds, close=close)

    root = Path(tempfile.mkdtemp(prefix="driftloop-bench-serve-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env |= {"MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}", "PATH": f"{VENV_BIN}:{env.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1"}
    servers: dict[str, subprocess.Popen] = {}
    try:
        train(root, env)
        ours, theirs = free_port(), free_port()
        servers["driftloop"] = start(
            [sys.executable, "-m", "driftloop", "serve", "--model", MODEL, "--port", str(ours), "--workers", str(workers),
             "--prediction-log", str(root / "predictions.jsonl"), "--prediction-log-rate", "0.01"],
            env, root / "driftloop.log", f"http://127.0.0.1:{ours}/readyz")
        batched = free_port()
        servers["driftloop-batched"] = start(
            [sys.executable, "-m", "driftloop", "serve", "--model", MODEL, "--port", str(batched), "--workers",
             str(workers), "--prediction-log", str(root / "predictions-batched.jsonl"), "--prediction-log-rate", "0.01",
             "--batch-max-rows", str(BATCH_MAX_ROWS)],
            env, root / "driftloop-batched.log", f"http://127.0.0.1:{batched}/readyz")
        servers["mlflow"] = start(
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{MODEL}@champion", "--env-manager",
             "local", "--host", "127.0.0.1", "--port", str(theirs), "--workers", str(workers)],
            env, root / "mlflow.log", f"http://127.0.0.1:{theirs}/ping")
        urls = {"driftloop": f"http://127.0.0.1:{ours}/invocations", "mlflow": f"http://127.0.0.1:{theirs}/invocations",
                "driftloop-batched": f"http://127.0.0.1:{batched}/invocations"}
        # (server, URL, new connection per request): mlflow also without keep-alive, see CLOSE_NOTE
        targets = [("driftloop", urls["driftloop"], False), ("driftloop-batched", urls["driftloop-batched"], False),
                   ("mlflow", urls["mlflow"], False), ("mlflow-close", urls["mlflow"], True)]
        bodies = {rows: body(rows) for rows in ROWS}
        for name, url in urls.items():  # both must answer the body correctly before anything is timed
            request = urllib.request.Request(url, data=bodies[100], headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as answer:
                assert answer.status == 200, name
            load(url, bodies[1], 16, 2)  # warm-up
        runs: list[dict[str, Any]] = []
        for rows in ROWS:
            for connections in CONNECTIONS:
                for name, url, close in targets:
                    figures = load(url, bodies[rows], connections, SECONDS, close)
                    runs.append({"server": name, "connections": connections, "rows": rows, **figures})
                    print(f"{name:9} c={connections:<3} rows={rows:<4} {figures['rps']:9.1f} req/s "
                          f"p50 {figures['p50_ms']:.2f} ms p99 {figures['p99_ms']:.2f} ms errors {figures['errors']}",
                          flush=True)
    finally:
        for process in servers.values():
            stop(process)
        shutil.rmtree(root, ignore_errors=True)

    def pick(server: str, connections: int, rows: int) -> dict[str, Any]:
        return next(r for r in runs if r["server"] == server and r["connections"] == connections and r["rows"] == rows)

    ours_16 = pick("driftloop", 16, 1)
    theirs_16 = max(pick("mlflow", 16, 1), pick("mlflow-close", 16, 1), key=lambda r: r["rps"])
    ratio = ours_16["rps"] / theirs_16["rps"] if theirs_16["rps"] else float("inf")
    checks = {
        "ratio_vs_mlflow_16c_1row": {"value": round(ratio, 2), "goal": f">= {GOAL_RATIO}", "passed": ratio >= GOAL_RATIO},
        "p99_ms_16c_1row": {"value": ours_16["p99_ms"], "goal": f"<= {GOAL_P99_MS}", "passed": ours_16["p99_ms"] <= GOAL_P99_MS},
        "errors_driftloop": {"value": sum(r["errors"] for r in runs if r["server"] == "driftloop"), "goal": "== 0"},
        "rps_16c_100rows": {"value": pick("driftloop", 16, 100)["rps"], "goal": f">= {GOAL_100_ROWS_RPS}",
                            "passed": pick("driftloop", 16, 100)["rps"] >= GOAL_100_ROWS_RPS},
    }
    checks["errors_driftloop"]["passed"] = checks["errors_driftloop"]["value"] == 0
    table = {"columns": ["server", "conn", "rows", "req/s", "p50 ms", "p99 ms", "errors"],
             "rows": [[r["server"], r["connections"], r["rows"], round(r["rps"], 1), r["p50_ms"], r["p99_ms"], r["errors"]]
                      for r in runs]}
    path = write_result(NAME, {
        "unit": "req/s", "measured": round(ours_16["rps"], 1), "baseline": round(theirs_16["rps"], 1),
        "ratio": round(ratio, 3), "goal": {"metric": "ratio", "op": ">=", "value": GOAL_RATIO},
        "passed_goal": all(c["passed"] for c in checks.values()), "checks": checks,
        "notes": "measured/baseline = driftloop serve / mlflow models serve req/s at 16 connections, 1-row requests; "
                 "baseline is mlflow's better mode (" + theirs_16["server"] + "). " + CLOSE_NOTE,
        "load_generator": generator, "workers_each": workers, "seconds_per_run": SECONDS, "runs": runs, "table": table})
    print(f"{NAME}: {ratio:.1f}x mlflow models serve at 16 connections, 1 row -> {path}")


if __name__ == "__main__":
    main()
