"""The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`), beside the HTTP routes.

`driftloop serve --grpc-port P` starts one `grpc.aio` server in each worker, on the worker's own
event loop, all bound to P with SO_REUSEPORT (the kernel spreads connections over the workers as
it does for HTTP). The messages are the ones `tritonclient[grpc]` ships (Triton's service, a
superset of KServe's `grpc_predict_v2.proto`; the RPCs driftloop does not serve answer
UNIMPLEMENTED). Served: ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata, ModelInfer;
and on the same port gRPC's standard health service (`grpc.health.v1.Health`: Check, Watch).

A ModelInfer request is read into the same tensor records the REST route parses, so both
transports share one validation and one 400 text: `raw_input_contents` (what tritonclient sends)
as the binary tensor extension, typed `contents` as JSON `data`. It then runs as every protocol
does (`Service._run`: micro-batching, metrics, prediction log). Outputs go back as
`raw_output_contents`, as Triton answers. Errors are gRPC status codes with the REST message.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, NamedTuple

from driftloop.serve import v2
from driftloop.serve.errors import ClientError

if TYPE_CHECKING:
    import grpc

    from driftloop.serve.app import Service
    from driftloop.serve.model import ServedModel

PROTOCOL = "v2-grpc"  # the `protocol` label of its request metrics
SERVICE = "inference.GRPCInferenceService"  # the service's full name: its health check's name too
_METHOD = f"/{SERVICE}/"  # an RPC's path, as gRPC names it on the wire

# the REST status a ClientError carries → the gRPC code for it (the metrics keep the REST number)
# 413 (too many rows): INVALID_ARGUMENT, as Triton answers a batch over its limit; RESOURCE_EXHAUSTED is one
# that retry policies retry, and the same request would be refused again
_CODES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND", 405: "UNIMPLEMENTED",
          413: "INVALID_ARGUMENT", 501: "UNIMPLEMENTED", 503: "UNAVAILABLE"}

# the typed field of `InferTensorContents` each datatype's values travel in
_CONTENTS = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
             "INT64": "int64_contents", "UINT8": "uint_contents", "UINT16": "uint_contents",
             "UINT32": "uint_contents", "UINT64": "uint64_contents", "FP32": "fp32_contents",
             "FP64": "fp64_contents", "BYTES": "bytes_contents"}


class GrpcServer(NamedTuple):
    """A worker's gRPC server and its health service, which `stop` turns NOT_SERVING before the server goes."""

    server: grpc.aio.Server
    health: Any  # grpc_health.v1.health.aio.HealthServicer

    async def stop(self, grace_s: float) -> None:
        # Watchers (gRPC clients' health checking, meshes) hear NOT_SERVING before the calls drain
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)


async def start(service: Service, host: str, port: int) -> GrpcServer:
    """Serve the protocol on host:port from this worker (its siblings bind the same port)."""
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc
    from tritonclient.grpc import service_pb2_grpc

    limit = service.config.max_body_bytes  # the REST body limit, for the same requests
    server = grpc.aio.server(options=[("grpc.so_reuseport", 1), ("grpc.max_receive_message_length", limit)])
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(_servicer(service), server)
    # gRPC's standard health service (grpc.health.v1.Health), which Kubernetes' `grpc` probes, grpc_health_probe,
    # Envoy and client-side health checking ask: SERVING for the server ("") and the inference service by name.
    # A worker serves once its model is loaded, so SERVING from the start; NOT_SERVING as it stops.
    checks = health.aio.HealthServicer()
    await checks.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    server.add_insecure_port(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    await server.start()
    return GrpcServer(server, checks)


def _servicer(service: Service) -> Any:
    """The servicer, a subclass of the generated base (its unserved RPCs answer UNIMPLEMENTED)."""
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    pb = service_pb2

    class InferenceServicer(service_pb2_grpc.GRPCInferenceServiceServicer):
        async def ServerLive(self, request: Any, context: Any) -> Any:  # noqa: N802 (the RPC's name)
            return await _answer(service, context, "ServerLive", "health", lambda: pb.ServerLiveResponse(live=True))

        async def ServerReady(self, request: Any, context: Any) -> Any:  # noqa: N802
            return await _answer(service, context, "ServerReady", "ready", lambda: pb.ServerReadyResponse(ready=True))

        async def ModelReady(self, request: Any, context: Any) -> Any:  # noqa: N802
            # a model not served here is not ready, and no error: tritonclient's is_model_ready then
            # returns False, as it does over REST (where the 404 is what says so), and as Triton answers
            ready = v2.is_served(service.holder.current, request.name, request.version or None)
            return await _answer(service, context, "ModelReady", "ready", lambda: pb.ModelReadyResponse(ready=ready))

        async def ServerMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
            metadata = v2.server_metadata(service.version_text.decode())
            return await _answer(service, context, "ServerMetadata", "metadata",
                                 lambda: pb.ServerMetadataResponse(**metadata))

        async def ModelMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
            def metadata() -> Any:
                found = v2.model_metadata(_served(service, request.name, request.version))
                tensor = pb.ModelMetadataResponse.TensorMetadata
                return pb.ModelMetadataResponse(
                    name=found["name"], versions=found["versions"], platform=found["platform"],
                    inputs=[tensor(**t) for t in found["inputs"]], outputs=[tensor(**t) for t in found["outputs"]])
            return await _answer(service, context, "ModelMetadata", "metadata", metadata)

        async def ModelInfer(self, request: Any, context: Any) -> Any:  # noqa: N802
            started = time.perf_counter()
            try:
                model = _served(service, request.model_name, request.model_version)
                infer = _infer_request(request, model)
                predictions, probabilities = await service._run(model, infer.columns, infer.n)
                response = _infer_response(pb, model, infer, predictions, probabilities)
            except Exception as error:  # noqa: BLE001 (every error is answered, as the REST route answers it)
                await _abort(service, context, "ModelInfer", "infer", started, error)
                raise  # not reached: `abort` raises
            _record(service, "ModelInfer", "infer", 200, started, infer.n)
            return response

    return InferenceServicer()


async def _answer(service: Service, context: Any, rpc: str, route: str, build: Any) -> Any:
    started = time.perf_counter()
    try:
        response = build()
    except Exception as error:  # noqa: BLE001
        await _abort(service, context, rpc, route, started, error)
        raise  # not reached: `abort` raises
    _record(service, rpc, route, 200, started, 0)
    return response


async def _abort(service: Service, context: Any, rpc: str, route: str, started: float, error: Exception) -> None:
    """Answer `error` with its gRPC code and the REST route's message; count it under the REST status."""
    import grpc

    if isinstance(error, ClientError):
        status, message = error.status, error.message
    else:  # a bug must cost one request, not the worker
        service.event("internal_error", path=_METHOD + rpc, error=f"{type(error).__name__}: {error}"[:500])
        status, message = 500, f"internal error: {type(error).__name__}"
    _record(service, rpc, route, status, started, 0)
    await context.abort(getattr(grpc.StatusCode, _CODES.get(status, "INTERNAL")), message)


def _record(service: Service, rpc: str, route: str, status: int, started: float, rows: int) -> None:
    """Metrics and the access line as for HTTP: method `GRPC`, the RPC's full name as the path."""
    service.record(PROTOCOL, route, "GRPC", _METHOD + rpc, status, time.perf_counter() - started, rows)


def _served(service: Service, name: str, version: str) -> ServedModel:
    """The current model when `name` (and `version`, if given: protobuf's "" is none) is the one served."""
    model = service.holder.current
    v2.require_served(model, name, version or None)
    return model


def _infer_request(request: Any, model: ServedModel) -> v2.InferRequest:
    """The inputs as the REST route's tensor records: raw contents as binary data, typed contents as `data`."""
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise ClientError(400, f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs; "
                               "send one per input, or none and typed contents")
    tensors: list[dict[str, Any]] = []
    for i, tensor in enumerate(request.inputs):
        record: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": list(tensor.shape)}
        if raw:
            record["parameters"] = {"binary_data_size": len(raw[i])}
        else:
            record["data"] = _typed_contents(tensor)
        tensors.append(record)
    if not tensors:
        raise ClientError(400, "the request has no inputs: send one tensor per column")
    columns, n = v2.tensor_columns(tensors, model.schema, b"".join(raw))
    asked = {"outputs": [{"name": output.name, "parameters": {key: _parameter(value) for key, value
                                                              in output.parameters.items()}}
                         for output in request.outputs]} if request.outputs else {}
    return v2.InferRequest(request.id or None, columns, n, v2.requested_outputs(asked, model))


def _parameter(value: Any) -> Any:
    """An `InferParameter`'s value, whichever of its fields is set."""
    field = value.WhichOneof("parameter_choice")
    return getattr(value, field) if field else None


def _typed_contents(tensor: Any) -> list[Any]:
    field = _CONTENTS.get(tensor.datatype)
    if field is None:  # the REST parser names the datatype the model expects
        return []
    values = list(getattr(tensor.contents, field))
    if field != "bytes_contents":
        return values
    try:
        return [value.decode("utf-8") for value in values]
    except UnicodeDecodeError:
        row = next(row for row, value in enumerate(values) if not v2.is_utf8(value))
        raise ClientError(400, f"input {tensor.name!r}: row {row} is not UTF-8 text") from None


def _infer_response(pb: Any, model: ServedModel, request: v2.InferRequest, predictions: Any,
                    probabilities: Any) -> Any:
    tensors = {"predictions": predictions, "probabilities": probabilities}
    outputs, raw = [], []
    for name, _ in request.outputs:
        array = tensors[name]
        datatype = v2.output_datatype(model, name, array)
        outputs.append(pb.ModelInferResponse.InferOutputTensor(name=name, datatype=datatype, shape=array.shape))
        raw.append(v2.encode(array, datatype))
    return pb.ModelInferResponse(model_name=model.name, model_version=model.version, id=request.id or "",
                                 outputs=outputs, raw_output_contents=raw)
