"""A client error: an HTTP status and the one line that says what was wrong and where."""

from __future__ import annotations


class ClientError(Exception):
    """Answered with `status` and `{"error": message}`; never a 500, never fatal to the worker."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
