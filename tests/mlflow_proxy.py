"""A TCP proxy in front of the session's real MLflow server that can be made slow or hung mid-run.

Tests point a run (or a pod) at `proxy.uri` and read what landed past it, at the server itself.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from urllib.parse import urlsplit


class MLflowProxy:
    """Passes HTTP/1.1 requests to MLflow and its answers back. `hanging` holds both (an MLflow that stops
    answering); `delay_s` makes each request reach MLflow that many seconds late (an overloaded MLflow:
    the write lands late, or never, if the proxy is closed first).

    Each request gets a connection of its own to MLflow, opened once it is passed on, while the client keeps
    its one: MLflow would otherwise close a connection idle while a request was held (uvicorn's keep-alive
    is 5 s), which a busy server never does.
    """

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.hanging = threading.Event()
        self.delay_s = 0.0  # read as each request starts, so it can be set mid-run
        self.closed = False
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.uri = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._requests, args=(client,), daemon=True).start()

    def _requests(self, client: socket.socket) -> None:
        """The client's bytes to MLflow; the first after an answer start a new request (HTTP/1.1, no pipelining).

        Each request has an `answered` of its own: an answer in two reads set a shared one again after its last read
        was passed on, when the client may have sent the next request's head already, so that request's body went
        to MLflow as a request of its own (400 "Invalid HTTP request received").
        """
        answered: threading.Event | None = None
        upstream: socket.socket | None = None
        try:
            with contextlib.suppress(OSError):  # a closed end: the pump is over
                while data := client.recv(65536):
                    if answered is None or answered.is_set():
                        answered = threading.Event()
                        if not self._wait(self.delay_s):
                            return
                        if upstream is not None:
                            upstream.close()  # its answer is all back: the client sent the next request
                        upstream = socket.create_connection(self.target)
                        threading.Thread(target=self._answers, args=(upstream, client, answered), daemon=True).start()
                    if not self._held():
                        return
                    assert upstream is not None
                    upstream.sendall(data)
        finally:
            for end in (client, upstream) if upstream is not None else (client,):
                with contextlib.suppress(OSError):
                    end.close()

    def _answers(self, upstream: socket.socket, client: socket.socket, answered: threading.Event) -> None:
        """One request's answer back to the client; its end ends only this request's connection."""
        try:
            with contextlib.suppress(OSError):
                while data := upstream.recv(65536):
                    if not self._held():
                        client.close()
                        return
                    client.sendall(data)
                    answered.set()
        finally:
            with contextlib.suppress(OSError):
                upstream.close()

    def _held(self) -> bool:
        """Hold what passes while `hanging`; False once the proxy is closed: what was held is dropped, never
        to land later."""
        while self.hanging.is_set():
            if not self._wait(0.05):
                return False
        return not self.closed

    def _wait(self, seconds: float) -> bool:
        """Sleep `seconds`; False if the proxy was closed meanwhile."""
        until = time.monotonic() + seconds
        while not self.closed and time.monotonic() < until:
            time.sleep(min(0.05, max(until - time.monotonic(), 0)))
        return not self.closed

    def close(self) -> None:
        self.closed = True
        self.server.close()
