"""The request and response records every route and the server adapter share, and each protocol's error body.

Each protocol answers errors in its reference server's shape, because client code reads
those keys: MLflow's scoring server `{"error_code": "BAD_REQUEST", "message": ...}`
(`MlflowException.serialize_as_json`), KServe V1 and the Open Inference Protocol (V2)
`{"error": ...}` (`kserve/errors.py`, which tritonclient's `_get_error` reads too).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from driftloop.serve.errors import ClientError

JSON = "application/json"
_DUMPS = orjson.OPT_SERIALIZE_NUMPY

# protocol labels, on metrics too
MLFLOW, KSERVE_V1, OIP_V2, OTHER = "mlflow", "v1", "v2", "other"

# MLflow's own mapping (mlflow.exceptions.HTTP_STATUS_TO_ERROR_CODE); a status it has no code for is a bad request
_MLFLOW_CODES = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "ENDPOINT_NOT_FOUND",
                 409: "RESOURCE_CONFLICT", 429: "REQUEST_LIMIT_EXCEEDED", 500: "INTERNAL_ERROR",
                 501: "NOT_IMPLEMENTED", 503: "TEMPORARILY_UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


class Request(NamedTuple):
    method: str
    path: str
    content_type: str | None
    authorization: str | None
    body: bytes
    header_length: str | None = None  # OIP binary extension: Inference-Header-Content-Length


class Response(NamedTuple):
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def json_response(status: int, payload: Any) -> Response:
    return Response(status, JSON, orjson.dumps(payload, option=_DUMPS))


def protocol_of(path: str) -> str:
    """Which protocol a path belongs to: it decides the error body and labels the request metrics."""
    if path.startswith("/v2"):
        return OIP_V2
    if path.startswith("/v1/") or path in ("/", "/v1/models"):
        return KSERVE_V1
    if path in ("/invocations", "/ping", "/health", "/version"):
        return MLFLOW
    return OTHER


def error_body(protocol: str, status: int, message: str) -> Response:
    if protocol == MLFLOW:
        return json_response(status, {"error_code": _MLFLOW_CODES.get(status, "BAD_REQUEST" if status < 500
                                                                      else "INTERNAL_ERROR"), "message": message})
    return json_response(status, {"error": message})


def parse_json(body: bytes) -> Any:
    if not body:
        raise ClientError(400, "empty body; expected JSON")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        # Python's json writes NaN/Infinity for non-finite floats; accept them here so the
        # validator can name the column instead of calling the whole body malformed.
        import json

        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise ClientError(400, f"body is not valid JSON: {error}") from None
