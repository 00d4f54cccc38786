"""The Granian RSGI adapter: bytes in, bytes out, body size limits; the routes live in `app.Service`.

Granian imports `driftloop.serve.rsgi:app` in each worker process and calls
`__rsgi_init__` there before serving, which is where the model is loaded and the
reload watcher starts.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from driftloop.serve import worker_signals
from driftloop.serve.app import Handled, Request, Service, error_response, route_of
from driftloop.serve.config import ServeConfig
from driftloop.serve.errors import ClientError

GRPC_STOP_GRACE_S = 2.0

worker_signals.install()  # before the worker serves: it then sets up its stop signals with the once-only handler


class RSGIApp:
    def __init__(self) -> None:
        self.service: Service | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._grpc: Any = None  # oip_grpc.GrpcServer, with --grpc-port

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.service = Service.start(ServeConfig.from_env())
        self._watcher = loop.create_task(self.service.watch())
        config = self.service.config
        if config.grpc_port is not None:
            self._grpc = self._start_grpc(loop, config)
        model = self.service.holder.current
        self.service.event("worker_started", model=model.name, version=model.version)
        _calm_garbage_collector()

    def _start_grpc(self, loop: asyncio.AbstractEventLoop, config: ServeConfig) -> Any:
        """The gRPC server on this worker's loop, started before the worker takes HTTP requests.

        Granian calls `__rsgi_init__` before it runs the loop, so the start can run to completion here: a
        worker that cannot serve gRPC (a process took the port after the CLI checked it, a broken grpcio)
        says so and fails to start, rather than serving HTTP only behind a CLI line that promised gRPC.
        """
        from driftloop.serve import oip_grpc

        assert self.service is not None
        try:
            return loop.run_until_complete(oip_grpc.start(self.service, config.grpc_host, config.grpc_port))
        except Exception as error:
            self.service.event("grpc_failed", error=f"{type(error).__name__}: {error}"[:500])
            raise

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            # Granian calls this once its loop has stopped: run the gRPC server's stop on it, or its threads
            # keep the worker alive (in-flight calls get the grace period, as HTTP ones get Granian's)
            if self._grpc is not None:
                loop.run_until_complete(self._grpc.stop(GRPC_STOP_GRACE_S))
        finally:
            self._stopped()

    def _stopped(self) -> None:
        if self.service is not None:
            self.service.event("worker_stopped")
            self.service.flush()
            from driftloop.serve.metrics import mark_worker_dead

            mark_worker_dead(os.getpid())

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        service = self.service
        assert service is not None
        started = time.perf_counter()
        headers = scope.headers
        method = scope.method
        body = b""
        early: ClientError | None = None
        if method == "POST":
            try:
                limit = service.config.max_body_bytes
                body = _decoded(await _read_body(protocol, headers.get("content-length"), limit),
                                headers.get("content-encoding"), limit)
            except ClientError as error:
                early = error
        request = Request(method, scope.path, headers.get("content-type"), headers.get("authorization"), body,
                          headers.get("inference-header-content-length"))
        if early is None:
            handled = await service.handle(request)
        else:
            handled = Handled(route_of(scope.path), error_response(early, scope.path), 0)
        response = handled.response
        protocol.response_bytes(response.status, [("content-type", response.content_type), *response.headers],
                                response.body)
        service.completed(request, handled, started)


def _calm_garbage_collector() -> None:
    """Keep the cyclic GC off the request path.

    A 100-row body in the [N,1] tensor layout allocates ~1,000 small lists, enough to start a
    collection on every request; each one then walks every object the imports left behind
    (numpy, onnxruntime, mlflow): measured 180 µs → 70 µs to parse such a body once those
    are frozen. Request objects are acyclic and go by reference counting anyway.
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


async def _read_body(protocol: Any, declared: str | None, limit: int) -> bytes:
    """The whole body, or 413 as soon as it is known to be over `limit` (before reading it when declared)."""
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise ClientError(400, f"Content-Length {declared!r} is not a number") from None
        if length > limit:
            raise ClientError(413, f"body of {length} bytes is over the limit of {limit} bytes")
        return await protocol()
    chunks, size = [], 0
    async for chunk in protocol:
        size += len(chunk)
        if size > limit:
            raise ClientError(413, f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


# Content-Encoding → zlib's window bits: "deflate" is the zlib format (RFC 9110 §8.4.1.2), as tritonclient sends it
_INFLATE_WBITS = {"gzip": 31, "x-gzip": 31, "deflate": 15}


def _decoded(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The body as it was before its Content-Encoding: gzip or deflate, which Triton accepts and tritonclient sends
    (`request_compression_algorithm`); 415 for any other coding, 413 once it inflates past `limit` (a small body
    that inflates to gigabytes costs no more than `limit`), 400 for data that is not what the header says."""
    if not encoding:  # the usual request: nothing to do on the hot path
        return body
    coding = encoding.strip().lower()
    if coding in ("", "identity"):
        return body
    wbits = _INFLATE_WBITS.get(coding)
    if wbits is None:
        raise ClientError(415, f"Content-Encoding {encoding!r} is not supported; send gzip, deflate or none")
    import zlib

    inflater = zlib.decompressobj(wbits)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as e:
        raise ClientError(400, f"body is not valid {coding} data ({e})") from None
    if len(data) > limit:
        raise ClientError(413, f"body is over the limit of {limit} bytes once decompressed ({coding})")
    if not inflater.eof:
        raise ClientError(400, f"body is not valid {coding} data (it ends before the compressed stream does)")
    return data


app = RSGIApp()
