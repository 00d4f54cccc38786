"""`driftloop serve`: resolve and fetch the model once, then start the HTTP workers.

Why Granian (RSGI) and not uvicorn + Starlette: on 2 cores with a 20-feature MLP the
ONNX run is ~13 µs of a 110–280 µs request, so the HTTP layer decides the throughput.
Measured with the same load generator at 16 connections, one row: uvicorn + Starlette
~3,700 req/s in one process and ~7,100 with 2 workers, Granian RSGI ~9,000 with 2
workers (its HTTP parsing and connection handling are Rust, not Python), and
`mlflow models serve` 558. `bench/serve.py` measures this server against
`mlflow models serve` in the same run; with validation, metrics and both logs on, on 2
cores shared with other jobs, it gave 10,357 req/s at 16 connections (p99 9.6 ms), 11×
mlflow's faster mode, so the Rust HTTP layer earns its place. One worker process per core, each with a
single-threaded ONNX Runtime session, so workers never fight over cores.

The CLI process fails fast with one line (registry unreachable, no such model or alias,
a model file ONNX Runtime cannot load) before any worker starts.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click

from driftloop.console import Console

if TYPE_CHECKING:
    from driftloop.mlflow_gateway import MLflowGateway


@click.command()
@click.option("--model", "model_name", envvar="DRIFTLOOP_SERVE_MODEL",
              help="Registered model [default: the only one in the registry; env DRIFTLOOP_SERVE_MODEL].")
@click.option("--alias", default="champion", show_default=True, envvar="DRIFTLOOP_SERVE_ALIAS",
              help="Registry alias to serve and follow [env DRIFTLOOP_SERVE_ALIAS].")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (0.0.0.0 in a container).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Worker processes [default: one per core].")
@click.option("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or ./.driftloop).")
@click.option("--poll-interval", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Seconds between registry checks for a moved alias; 0 turns polling off.")
@click.option("--max-body-bytes", type=click.IntRange(min=1024), default=10 * 1024 * 1024, show_default=True,
              help="Larger bodies get 413.")
@click.option("--max-rows", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="More rows in one request get 413.")
@click.option("--access-log/--no-access-log", default=True, show_default=True,
              help="One JSON line per request on stderr.")
@click.option("--prediction-log", type=click.Path(dir_okay=False), help="Append sampled rows and predictions here "
              "(JSON Lines; input of `driftloop drift --current`).")
@click.option("--prediction-log-rate", type=click.FloatRange(0, 1), default=None,
              help="Share of rows written to --prediction-log [default: 1 with --prediction-log, else off].")
@click.option("--batch-max-rows", type=click.IntRange(min=0), default=64, show_default=True,
              help="Micro-batching: join concurrent requests into one feed and model call of up to this many rows "
                   "(0 = off).")
@click.option("--batch-max-wait-ms", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Micro-batching: longest a request waits for others (0 = until the event loop's next turn).")
@click.option("--admin-token", envvar="DRIFTLOOP_ADMIN_TOKEN", help="Require 'Authorization: Bearer TOKEN' on "
              "POST /admin/reload [env DRIFTLOOP_ADMIN_TOKEN].")
@click.option("--grpc-port", type=click.IntRange(1, 65535), default=None, envvar="DRIFTLOOP_SERVE_GRPC_PORT",
              help="Also serve the Open Inference Protocol over gRPC on this port, on the same host "
                   "(needs the grpc extra) [env DRIFTLOOP_SERVE_GRPC_PORT].")
def serve(model_name: str | None, alias: str, host: str, port: int, workers: int | None, tracking_uri: str | None,
          poll_interval: float, max_body_bytes: int, max_rows: int, access_log: bool, prediction_log: str | None,
          prediction_log_rate: float | None, batch_max_rows: int, batch_max_wait_ms: float,
          admin_token: str | None, grpc_port: int | None) -> None:
    """Serve a registered model over HTTP (MLflow scoring, KServe V1, Open Inference Protocol V2), following its alias.

    With --grpc-port, the Open Inference Protocol is served over gRPC as well (`inference.GRPCInferenceService`)."""
    from driftloop.errors import UsageError
    from driftloop.mlflow_gateway import connect
    from driftloop.serve.config import CONFIG_ENV, ServeConfig, default_workers
    from driftloop.serve.model import RegistrySource, load_served

    if prediction_log_rate is not None and not prediction_log:
        raise UsageError("--prediction-log-rate needs --prediction-log FILE")
    if prediction_log_rate is None:
        prediction_log_rate = 1.0 if prediction_log else 0.0
    _check_bindable(host, port)
    if grpc_port is not None:
        if grpc_port == port:
            raise UsageError(f"--grpc-port {grpc_port} is the HTTP port; give gRPC a port of its own")
        _check_grpc_installed()
        _check_bindable(host, grpc_port)
    registry = connect(tracking_uri)
    uri = registry.tracking_uri
    name = model_name or _only_model(registry, uri)
    state_dir = Path(tempfile.mkdtemp(prefix="driftloop-serve-"))
    try:
        source = RegistrySource(uri, name, alias, state_dir / "models", registry=registry)
        version = source.resolve()
        path = source.fetch(version)
        load_served(path, name=name, alias=alias, version=str(version.version), max_rows=max_rows)  # fail here, not in N workers
        config = ServeConfig(model_name=name, alias=alias, tracking_uri=uri, state_dir=str(state_dir),
                             initial_version=str(version.version), poll_interval_s=poll_interval,
                             max_body_bytes=max_body_bytes, max_rows=max_rows, access_log=access_log,
                             prediction_log=str(Path(prediction_log).resolve()) if prediction_log else None,
                             prediction_log_rate=prediction_log_rate, admin_token=admin_token,
                             batch_max_rows=batch_max_rows, batch_max_wait_ms=batch_max_wait_ms,
                             grpc_host=host, grpc_port=grpc_port)
        metrics_dir = state_dir / "prometheus"
        metrics_dir.mkdir()
        os.environ[CONFIG_ENV] = config.to_env()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        count = workers or default_workers()
        polling = f"polled every {poll_interval:g}s" if poll_interval else "not polled"
        grpc = f" and grpc://{host}:{grpc_port}" if grpc_port is not None else ""
        Console().info(f"serving {name} v{version.version} (@{alias}) on http://{host}:{port}{grpc} with {count} "
                       f"worker{'s' if count > 1 else ''} (granian rsgi); registry {uri}, {polling}")
        _run_granian(host, port, count)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


def _check_bindable(host: str, port: int) -> None:
    """A taken port or a foreign address as one line, not a panic from the server's Rust core."""
    import socket

    from driftloop.errors import UsageError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def _check_grpc_installed() -> None:
    """The gRPC service's packages, checked before any worker starts: grpcio, its health service, tritonclient's messages."""
    import importlib.util

    from driftloop.errors import UsageError

    def absent(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is None
        except ModuleNotFoundError:  # a parent package is missing (tritonclient for tritonclient.grpc)
            return True

    # tritonclient.grpc, not just tritonclient: tritonclient[http] alone has the package without it
    missing = [name for name in ("grpc", "google.protobuf", "grpc_health", "tritonclient.grpc") if absent(name)]
    if missing:
        raise UsageError(f"--grpc-port needs {' and '.join(missing)}, which are not installed: "
                         "pip install 'driftloop[grpc]'")


def _only_model(registry: MLflowGateway, uri: str) -> str:
    from driftloop.errors import ModelNotFound, UsageError

    names = registry.model_names()
    if len(names) == 1:
        return names[0]
    if not names:
        raise ModelNotFound(f"no registered models at {uri}; run `driftloop run` first")
    raise UsageError(f"{len(names)} registered models at {uri}; choose one with --model ({', '.join(names)})")


def _run_granian(host: str, port: int, workers: int) -> None:
    from granian.constants import Interfaces

    server = _granian_server()("driftloop.serve.rsgi:app", address=host, port=port, interface=Interfaces.RSGI,
                               workers=workers, respawn_failed_workers=True, log_access=False,
                               backlog=2048, workers_kill_timeout=30)
    server.serve()


def _granian_server() -> type:
    """Granian's server, whose signal handlers never take a lock on the thread the signal interrupted.

    Granian's handlers set a `threading.Event`, whose lock is not reentrant. A handler runs on the main
    thread between two bytecodes, so when that thread already holds the lock (inside `Event.set` of a
    first signal's handler, or entering or leaving `Event.wait` in Granian's own loop) the handler waits
    for it forever: seen when `timeout` forwarded a SIGTERM that `kill` had also sent, which left the main
    process hung with its workers gone. The handlers here set Granian's flag and leave the `set` to a
    thread of its own, which takes the lock once the interrupted thread lets it go.
    """
    import threading

    from granian import Granian

    class SignalSafeGranian(Granian):  # type: ignore[misc, valid-type]
        def signal_handler_interrupt(self, *args: object, **kwargs: object) -> None:
            self.interrupt_signal = True
            self._wake()

        def signal_handler_reload(self, *args: object, **kwargs: object) -> None:
            self.reload_signal = True
            self._wake()

        def _wake(self) -> None:
            threading.Thread(target=self.main_loop_interrupt.set, name="granian-signal", daemon=True).start()

    return SignalSafeGranian
