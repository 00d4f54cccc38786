"""An HTTP proxy in front of the session's real MLflow server that refuses chosen REST calls.

`refuse(path_suffix, when=predicate_on_the_json_body)` makes the next matching call answer 400
INVALID_PARAMETER_VALUE, as MLflow answers a write it will not take (a 400, so MLflow's client does not
retry it); everything else passes through to MLflow unchanged.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

Predicate = Callable[[dict[str, Any]], bool]


class MLflowFaults:
    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.refusals: list[tuple[str, Predicate]] = []
        self.refused: list[str] = []  # the paths refused so far
        faults = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet: the test reads what matters
                return

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                refusal = faults.take(self.path, body)
                if refusal is not None:
                    answer = json.dumps({"error_code": "INVALID_PARAMETER_VALUE", "message": refusal}).encode()
                    self.send_response(400)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                    return
                upstream = http.client.HTTPConnection(*faults.target, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                upstream.request(self.command, self.path, body=body or None, headers=headers)
                reply = upstream.getresponse()
                data = reply.read()
                self.send_response(reply.status)
                for key, value in reply.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward  # noqa: N815 (http.server names)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def refuse(self, path_suffix: str, when: Predicate = lambda _: True) -> None:
        """The next call to a path ending in `path_suffix` whose JSON body satisfies `when` is refused."""
        self.refusals.append((path_suffix, when))

    def take(self, path: str, body: bytes) -> str | None:
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            payload = {}
        route = path.split("?", 1)[0]
        for i, (suffix, when) in enumerate(self.refusals):
            if route.endswith(suffix) and isinstance(payload, dict) and when(payload):
                del self.refusals[i]
                self.refused.append(route)
                return f"injected refusal of {route}"
        return None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> MLflowFaults:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
