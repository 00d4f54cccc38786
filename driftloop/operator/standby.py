"""A standby's health endpoint: the liveness URL answers 200 while kopf (which serves it when leading) waits."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit


class _Healthy(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = b'{"standby": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:  # probes every few seconds: not worth a log line
        pass


@contextmanager
def standby_health(url: str | None) -> Iterator[None]:
    """Serve 200 at `url`'s host and port until the block ends (then the port is free for kopf's probe)."""
    if not url:
        yield
        return
    where = urlsplit(url)
    http.server.ThreadingHTTPServer.allow_reuse_address = True
    server = http.server.ThreadingHTTPServer((where.hostname or "0.0.0.0", where.port or 80), _Healthy)
    thread = threading.Thread(target=server.serve_forever, name="standby-health", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
