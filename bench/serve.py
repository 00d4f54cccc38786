"""Serving throughput: `driftloop serve` against `mlflow models serve --env-manager local`.

Both serve the same registered model (the bundled `customers` example, trained here into
a fresh SQLite MLflow store), with the same number of worker processes (one per core),
driven by the same load generator on loopback with byte-identical request bodies: the
TF-Serving/MLflow tensor layout `{"inputs": {column: [[value], ...]}}`, which both
servers accept (MLflow's ONNX flavour cannot take a DataFrame for a multi-input model
with [N,1] inputs). Every combination of 1, 16 and 64 connections and 1- and 100-row
requests runs for SECONDS, alternating the two servers so background load hits both.

driftloop serve runs as deployed: input validation, Prometheus metrics, the JSON access
log (to a file) and the prediction log (1% of rows) all on, and micro-batching as by default
(`--batch-max-rows 64`); `driftloop-unbatched` is the same with it off (`--batch-max-rows 0`), to
show what joining concurrent requests into one feed and model run is worth.

Beside them, in the same run: `floor`, a do-nothing Granian RSGI app on the same workers
answering fixed bytes of the size of driftloop's one-row answer (`floor_server.py`): the HTTP
ceiling of this machine, a steadier anchor than mlflow, whose figure swings run to run. And
driftloop's own protocols with their native bodies: `driftloop-v1` (KServe V1 `instances`
rows), `driftloop-v2` (Open Inference Protocol, one JSON tensor per column) and
`driftloop-v2-binary` (the body tritonclient sends by default: a JSON header naming each tensor's
`binary_data_size`, then the tensors' raw bytes, with `Inference-Header-Content-Length`, and
binary outputs asked for). The binary figure is reported, not held to a goal.

Goals (issue 14), at 16 connections and one row: driftloop ≥ 0.8× the floor's req/s, p99 ≤ 2×
the floor's, ≥ 5× mlflow's faster mode (it is also driven without keep-alive, see CLOSE_NOTE),
zero errors; V2 at least as fast as V1, and at 100 rows ≥ 1.5× V1 (columnar tensors skip
per-row parsing). Kept from issue 7: 100-row requests ≥ 2,000 req/s.
`ratio` = driftloop / floor req/s, 16 connections, 1 row.
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
# e.g. "driftloop-v1,driftloop-v2": time only these servers, for a quick before/after of one change (the
# unneeded servers are not started); the figures go to results/serve-only.json and only the goals they decide
# are checked, so a partial run never replaces the full result
ONLY = frozenset(filter(None, os.environ.get("DRIFTLOOP_BENCH_SERVE_ONLY", "").split(",")))
GOAL_FLOOR_RATIO = 0.8
GOAL_FLOOR_P99 = 2.0  # driftloop's p99 at most this many times the floor's
GOAL_MLFLOW_RATIO = 5.0
GOAL_V2_OVER_V1 = 1.0
GOAL_V2_OVER_V1_100_ROWS = 1.5
GOAL_100_ROWS_RPS = 2000.0
UNBATCHED = "0"  # driftloop-unbatched: the same server with micro-batching off, to see what it pays
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


def columns(rows: int) -> dict[str, list]:
    """The request rows by column, numbers as floats (MLflow's ONNX flavour does not cast int64)."""
    from driftloop.example import customers

    frame = customers(rows=rows, seed=11).drop(columns=["churned"])
    return {c: [float(v) if frame[c].dtype.kind in "if" else str(v) for v in frame[c].tolist()] for c in frame.columns}


def body(rows: int) -> bytes:
    """The `inputs` tensor layout both /invocations servers accept."""
    return json.dumps({"inputs": {c: [[v] for v in values] for c, values in columns(rows).items()}}).encode()


def body_v1(rows: int) -> bytes:
    """KServe V1 as its clients send it: one object per row."""
    data = columns(rows)
    return json.dumps({"instances": [{c: data[c][i] for c in data} for i in range(rows)]}).encode()


def body_v2(rows: int) -> bytes:
    """The Open Inference Protocol: one JSON tensor per column."""
    inputs = [{"name": c, "shape": [rows, 1], "datatype": "BYTES" if isinstance(values[0], str) else "FP32",
               "data": values} for c, values in columns(rows).items()]
    return json.dumps({"inputs": inputs}).encode()


def body_v2_binary(rows: int) -> tuple[bytes, int]:
    """The Open Inference Protocol's binary tensor extension, byte for byte as tritonclient's `infer` sends it when
    given numpy arrays and no outputs: (body, length of its JSON header)."""
    import numpy as np

    inputs, blobs = [], []
    for c, values in columns(rows).items():
        if isinstance(values[0], str):  # BYTES: each element a 4-byte little-endian length, then its UTF-8
            blob = b"".join(len(v.encode()).to_bytes(4, "little") + v.encode() for v in values)
            datatype = "BYTES"
        else:
            blob, datatype = np.asarray(values, dtype="<f4").tobytes(), "FP32"
        inputs.append({"name": c, "shape": [rows, 1], "datatype": datatype, "parameters": {"binary_data_size": len(blob)}})
        blobs.append(blob)
    header = json.dumps({"inputs": inputs, "parameters": {"binary_data_output": True}}, separators=(",", ":")).encode()
    return b"".join([header, *blobs]), len(header)


def start_floor(port: int, workers: int, answer: bytes, env: dict[str, str], log: Path) -> subprocess.Popen:
    """The floor server, with the same Granian settings `driftloop serve` uses."""
    command = [sys.executable, "-m", "granian", "--interface", "rsgi", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers), "--backlog", "2048", "--no-log", "floor_server:app"]
    process = start(command, env | {"FLOOR_BODY": answer.decode()}, log, f"http://127.0.0.1:{port}/",
                    cwd=Path(__file__).resolve().parent)
    return process


def start(command: list[str], env: dict[str, str], log: Path, ready_url: str, cwd: Path | None = None) -> subprocess.Popen:
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                   cwd=cwd)
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
    if not wrk:
        print("WARNING: wrk is not installed (apt-get install wrk): falling back to a Python asyncio load generator, "
              "whose own CPU use on these cores caps every figure below; compare only runs made with wrk.",
              file=sys.stderr, flush=True)

    def load(url: str, payload: bytes, connections: int, seconds: float, close: bool = False,
             headers: dict[str, str] | None = None) -> dict[str, Any]:
        if wrk:
            return run_wrk(wrk, url, payload, connections=connections, seconds=seconds, close=close, headers=headers)
        return run_python(url, payload, connections=connections, seconds=seconds, close=close, headers=headers)

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
        unbatched = free_port()
        if not ONLY or "driftloop-unbatched" in ONLY:
            servers["driftloop-unbatched"] = start(
            [sys.executable, "-m", "driftloop", "serve", "--model", MODEL, "--port", str(unbatched), "--workers",
                 str(workers), "--prediction-log", str(root / "predictions-unbatched.jsonl"), "--prediction-log-rate",
                 "0.01", "--batch-max-rows", UNBATCHED],
                env, root / "driftloop-unbatched.log", f"http://127.0.0.1:{unbatched}/readyz")
        if not ONLY or ONLY & {"mlflow", "mlflow-close"}:
            servers["mlflow"] = start(
                [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{MODEL}@champion", "--env-manager",
                 "local", "--host", "127.0.0.1", "--port", str(theirs), "--workers", str(workers)],
                env, root / "mlflow.log", f"http://127.0.0.1:{theirs}/ping")
        urls = {"driftloop": f"http://127.0.0.1:{ours}/invocations", "mlflow": f"http://127.0.0.1:{theirs}/invocations",
                "driftloop-unbatched": f"http://127.0.0.1:{unbatched}/invocations",
                "driftloop-v1": f"http://127.0.0.1:{ours}/v1/models/{MODEL}:predict",
                "driftloop-v2": f"http://127.0.0.1:{ours}/v2/models/{MODEL}/infer",
                "driftloop-v2-binary": f"http://127.0.0.1:{ours}/v2/models/{MODEL}/infer"}
        if "driftloop-unbatched" not in servers:
            del urls["driftloop-unbatched"]
        if "mlflow" not in servers:
            del urls["mlflow"]
        bodies = {(kind, rows): make(rows) for rows in ROWS
                  for kind, make in (("inputs", body), ("v1", body_v1), ("v2", body_v2))}
        headers: dict[tuple[str, int], dict[str, str]] = {}
        for rows in ROWS:
            bodies[("v2-binary", rows)], length = body_v2_binary(rows)
            headers[("v2-binary", rows)] = {"Content-Type": "application/octet-stream",
                                            "Inference-Header-Content-Length": str(length)}
        kinds = {"driftloop-v1": "v1", "driftloop-v2": "v2", "driftloop-v2-binary": "v2-binary"}
        for name, url in urls.items():  # each must answer its body correctly before anything is timed
            for rows in ROWS:
                kind = kinds.get(name, "inputs")
                request = urllib.request.Request(url, data=bodies[(kind, rows)],
                                                 headers=headers.get((kind, rows), {"Content-Type": "application/json"}))
                with urllib.request.urlopen(request, timeout=30) as answer:
                    assert answer.status == 200, name
                    if name == "driftloop" and rows == 1:
                        one_row_answer = answer.read()
        if not ONLY or "floor" in ONLY:
            floor = free_port()
            servers["floor"] = start_floor(floor, workers, one_row_answer, env, root / "floor.log")
            urls["floor"] = f"http://127.0.0.1:{floor}/invocations"
        for name, url in urls.items():  # warm-up, each with its own protocol's body (an `inputs` body is a 400 on V2)
            load(url, bodies[(kinds.get(name, "inputs"), 1)], 16, 2, headers=headers.get((kinds.get(name, "inputs"), 1)))
        # (server, URL, body kind, new connection per request): mlflow also without keep-alive, see CLOSE_NOTE
        targets = [("floor", urls.get("floor"), "inputs", False), ("driftloop", urls["driftloop"], "inputs", False),
                   ("driftloop-v1", urls["driftloop-v1"], "v1", False),
                   ("driftloop-v2", urls["driftloop-v2"], "v2", False),
                   ("driftloop-v2-binary", urls["driftloop-v2-binary"], "v2-binary", False),
                   ("driftloop-unbatched", urls.get("driftloop-unbatched"), "inputs", False),
                   ("mlflow", urls.get("mlflow"), "inputs", False), ("mlflow-close", urls.get("mlflow"), "inputs", True)]
        targets = [target for target in targets if not ONLY or target[0] in ONLY]
        runs: list[dict[str, Any]] = []
        for rows in ROWS:
            for connections in CONNECTIONS:
                for name, url, kind, close in targets:
                    if name == "floor" and rows != 1:
                        continue  # its answer has the size of a one-row answer
                    figures = load(url, bodies[(kind, rows)], connections, SECONDS, close, headers.get((kind, rows)))
                    runs.append({"server": name, "connections": connections, "rows": rows, **figures})
                    print(f"{name:19} c={connections:<3} rows={rows:<4} {figures['rps']:9.1f} req/s "
                          f"p50 {figures['p50_ms']:.2f} ms p99 {figures['p99_ms']:.2f} ms errors {figures['errors']}",
                          flush=True)
    finally:
        for process in servers.values():
            stop(process)
        shutil.rmtree(root, ignore_errors=True)

    def pick(server: str, connections: int, rows: int) -> dict[str, Any]:
        return next(r for r in runs if r["server"] == server and r["connections"] == connections and r["rows"] == rows)

    def over(a: dict[str, Any], b: dict[str, Any], key: str = "rps") -> float:
        return round(a[key] / b[key], 3) if b[key] else float("inf")

    if ONLY:
        report_only(runs, generator, workers)
        return

    def check(value: float, op: str, goal: float) -> dict[str, Any]:
        return {"value": value, "goal": f"{op} {goal}", "passed": value >= goal if op == ">=" else value <= goal}

    ours_16, floor_16 = pick("driftloop", 16, 1), pick("floor", 16, 1)
    theirs_16 = max(pick("mlflow", 16, 1), pick("mlflow-close", 16, 1), key=lambda r: r["rps"])
    ratio = over(ours_16, floor_16)
    binary = {f"v2_binary_over_v1_16c_{rows}rows": over(pick("driftloop-v2-binary", 16, rows), pick("driftloop-v1", 16, rows))
              for rows in ROWS}
    errors = sum(r["errors"] for r in runs if r["server"].startswith("driftloop"))
    checks = {
        "ratio_vs_floor_16c_1row": check(ratio, ">=", GOAL_FLOOR_RATIO),
        "p99_vs_floor_16c_1row": check(over(ours_16, floor_16, "p99_ms"), "<=", GOAL_FLOOR_P99),
        "ratio_vs_mlflow_16c_1row": check(over(ours_16, theirs_16), ">=", GOAL_MLFLOW_RATIO),
        "v2_over_v1_16c_1row": check(over(pick("driftloop-v2", 16, 1), pick("driftloop-v1", 16, 1)), ">=",
                                     GOAL_V2_OVER_V1),
        "v2_over_v1_16c_100rows": check(over(pick("driftloop-v2", 16, 100), pick("driftloop-v1", 16, 100)), ">=",
                                        GOAL_V2_OVER_V1_100_ROWS),
        "rps_16c_100rows": check(pick("driftloop", 16, 100)["rps"], ">=", GOAL_100_ROWS_RPS),
        "errors_driftloop": {"value": errors, "goal": "== 0", "passed": errors == 0},
    }
    table = {"columns": ["server", "conn", "rows", "req/s", "p50 ms", "p99 ms", "errors"],
             "rows": [[r["server"], r["connections"], r["rows"], round(r["rps"], 1), r["p50_ms"], r["p99_ms"], r["errors"]]
                      for r in runs]}
    path = write_result(NAME, {
        "unit": "req/s", "measured": round(ours_16["rps"], 1), "baseline": round(floor_16["rps"], 1),
        "ratio": ratio, "goal": {"metric": "ratio", "op": ">=", "value": GOAL_FLOOR_RATIO},
        "passed_goal": all(c["passed"] for c in checks.values()), "checks": checks,
        "notes": "measured/baseline = driftloop serve / the floor (a do-nothing Granian RSGI app, same workers, "
                 "same-size answer) req/s at 16 connections, 1-row requests; against mlflow models serve the "
                 "baseline is its better mode (" + theirs_16["server"] + "). " + CLOSE_NOTE,
        "v2_binary_over_v1": binary, "load_generator": generator, "workers_each": workers, "seconds_per_run": SECONDS,
        "runs": runs, "table": table})
    for name, result in checks.items():
        print(f"{name:26} {result['value']:>10} goal {result['goal']:8} {'ok' if result['passed'] else 'MISSED'}")
    for name, value in binary.items():
        print(f"{name:26} {value:>10} (reported, no goal)")
    print(f"{NAME}: {ratio:.2f}x the floor, {checks['ratio_vs_mlflow_16c_1row']['value']}x mlflow models serve "
          f"at 16 connections, 1 row -> {path}")


def report_only(runs: list[dict[str, Any]], generator: str, workers: int) -> None:
    """A partial run (DRIFTLOOP_BENCH_SERVE_ONLY): its table, and V2 over V1 when both ran."""
    ratios = {}
    for rows in ROWS:
        for connections in CONNECTIONS:
            v1 = [r for r in runs if (r["server"], r["connections"], r["rows"]) == ("driftloop-v1", connections, rows)]
            for server, label in (("driftloop-v2", "v2"), ("driftloop-v2-binary", "v2_binary")):
                v2 = [r for r in runs if (r["server"], r["connections"], r["rows"]) == (server, connections, rows)]
                if v1 and v2 and v1[0]["rps"]:
                    ratios[f"{label}_over_v1_{connections}c_{rows}rows"] = round(v2[0]["rps"] / v1[0]["rps"], 3)
    path = write_result(f"{NAME}-only", {"unit": "req/s", "servers": sorted(ONLY), "v2_over_v1": ratios,
                                         "load_generator": generator, "workers_each": workers,
                                         "seconds_per_run": SECONDS, "runs": runs})
    for name, value in ratios.items():
        print(f"{name:26} {value:>10}")
    print(f"{NAME} (only {', '.join(sorted(ONLY))}) -> {path}")


if __name__ == "__main__":
    main()
