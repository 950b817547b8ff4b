"""gRPC `inference.GRPCInferenceService`: metadata and statistics calls, and the async sender.

The message types come from tritonclient's generated protos (the same service every Open
Inference Protocol server implements). The sender uses grpcio's asyncio API with the request
pre-serialized: the method is called with bytes in and bytes out, so no protobuf work sits in
the timed path.
"""

from __future__ import annotations

from typing import Any

import grpc
import numpy as np
from google.protobuf import json_format
from tritonclient.grpc import service_pb2, service_pb2_grpc

from benchbox.errors import BadInput
from benchbox.remote.target import Target
from benchbox.remote.wire import TO_DATATYPE, Prepared, ServerInfo, server_info

PROBE_TIMEOUT_S = 10.0
INFER_METHOD = "/inference.GRPCInferenceService/ModelInfer"
MAX_MESSAGE = 256 * 1024 * 1024
OPTIONS = [("grpc.max_send_message_length", MAX_MESSAGE), ("grpc.max_receive_message_length", -1)]


def _metadata(headers: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    return tuple((k.lower(), v) for k, v in headers)


def _as_dict(message: Any) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _channel(target: Target) -> grpc.Channel:
    if target.tls:
        return grpc.secure_channel(target.authority, grpc.ssl_channel_credentials(), OPTIONS)
    return grpc.insecure_channel(target.authority, OPTIONS)


def probe(target: Target, headers: tuple[tuple[str, str], ...]) -> ServerInfo:
    """Server and model metadata; BadInput (before any load) when either cannot be read."""
    meta = _metadata(headers)
    with _channel(target) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        try:
            server = stub.ServerMetadata(
                service_pb2.ServerMetadataRequest(), timeout=PROBE_TIMEOUT_S, metadata=meta
            )
        except grpc.RpcError as exc:
            raise BadInput(
                f"cannot reach the gRPC server at {target.authority}: "
                f"{exc.code().name} ({_details(exc)})",
                "check that it is running and that HOST:PORT is its gRPC port",
            ) from None
        try:
            model = stub.ModelMetadata(
                service_pb2.ModelMetadataRequest(name=target.model, version=target.version),
                timeout=PROBE_TIMEOUT_S,
                metadata=meta,
            )
        except grpc.RpcError as exc:
            raise BadInput(
                f"the gRPC server at {target.authority} has no model '{target.model}'"
                + (f" version {target.version}" if target.version else "")
                + f" ({exc.code().name}: {_details(exc)})",
                "check the model name in the URL (the server's model repository lists them)",
            ) from None
    return server_info(_as_dict(server), _as_dict(model))


def _details(exc: grpc.RpcError) -> str:
    text = exc.details() if hasattr(exc, "details") else str(exc)
    return " ".join(str(text).split())[:300]


def statistics(target: Target, headers: tuple[tuple[str, str], ...]) -> tuple[Any, str | None]:
    """The model's statistics (ModelStatistics) as JSON-like data, or (None, why not)."""
    with _channel(target) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        try:
            answer = stub.ModelStatistics(
                service_pb2.ModelStatisticsRequest(name=target.model, version=target.version),
                timeout=PROBE_TIMEOUT_S,
                metadata=_metadata(headers),
            )
        except grpc.RpcError as exc:
            return None, f"ModelStatistics answered {exc.code().name}: {_details(exc)}"
    return _as_dict(answer), None


def request_bytes(target: Target, feeds: dict[str, np.ndarray]) -> bytes:
    """A serialized ModelInferRequest carrying the tensors in `raw_input_contents`."""
    req = service_pb2.ModelInferRequest(model_name=target.model, model_version=target.version)
    for name, arr in feeds.items():
        tensor = req.inputs.add()
        tensor.name = name
        tensor.datatype = TO_DATATYPE[arr.dtype.name]
        tensor.shape.extend(arr.shape)
        req.raw_input_contents.append(np.ascontiguousarray(arr).tobytes())
    return req.SerializeToString()


class Sender:
    """Sends the prepared ModelInfer requests over one HTTP/2 channel (asyncio)."""

    def __init__(self, prepared: Prepared, connections: int) -> None:
        self.prepared = prepared
        self.metadata = _metadata(prepared.headers)
        self.channel: grpc.aio.Channel | None = None
        self.call = None

    async def open(self) -> None:
        if self.prepared.tls:
            self.channel = grpc.aio.secure_channel(
                self.prepared.address, grpc.ssl_channel_credentials(), OPTIONS
            )
        else:
            self.channel = grpc.aio.insecure_channel(self.prepared.address, OPTIONS)
        # No serializers: bytes go out and come back as they are.
        self.call = self.channel.unary_unary(INFER_METHOD)

    async def send(self, i: int) -> str | None:
        """Send request i; None when it succeeded, else the error's one line."""
        body = self.prepared.bodies[i % len(self.prepared.bodies)]
        try:
            await self.call(body, timeout=self.prepared.timeout_s, metadata=self.metadata)
            return None
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                return f"timed out after {self.prepared.timeout_s:g}s"
            return f"gRPC {exc.code().name}: {' '.join(str(exc.details()).split())[:300]}"

    async def close(self) -> None:
        if self.channel is not None:
            await self.channel.close()
