"""The HTTP floor for bench/serve.py: a Granian RSGI app that reads the body and answers fixed bytes.

It does what every server under test must do at the least (parse HTTP, read the request,
write a JSON answer of the same size) and nothing else, on the same workers, so its req/s
is this machine's HTTP ceiling in that run and the measure driftloop serve is held to.

    FLOOR_BODY='{"predictions":[0]}' python -m granian --interface rsgi floor_server:app  (from bench/)
"""

from __future__ import annotations

import os
from typing import Any

HEADERS = [("content-type", "application/json")]


class FloorApp:
    def __init__(self) -> None:
        self.body = os.environ.get("FLOOR_BODY", "{}").encode()

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        if scope.method == "POST":
            await protocol()  # read the request body, as a real server must
        protocol.response_bytes(200, HEADERS, self.body)


app = FloorApp()
