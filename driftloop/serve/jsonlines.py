"""Buffered JSON Lines output for the access log and the prediction log.

Several worker processes append to the same file. Each flush is one `os.write` of whole
lines on an O_APPEND descriptor, so lines from different workers never interleave; the
buffer is flushed when it grows past `flush_bytes`, by a once-a-second timer and at exit.
"""

from __future__ import annotations

import os
from typing import Any

import orjson


class JsonLinesSink:
    def __init__(self, fd: int, *, flush_bytes: int = 64 * 1024) -> None:
        self.fd = fd
        self.flush_bytes = flush_bytes
        self._buffer: list[bytes] = []
        self._size = 0

    @classmethod
    def append_to(cls, path: str) -> JsonLinesSink:
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        return cls(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))

    def write(self, record: dict[str, Any]) -> None:
        line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY)
        self._buffer.append(line)
        self._size += len(line)
        if self._size >= self.flush_bytes:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        data = b"".join(self._buffer)
        self._buffer.clear()
        self._size = 0
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
