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
from benchbox.remote.wire import TO_DATATYPE, Expected, Prepared, ServerInfo, itemsize, server_info

PROBE_TIMEOUT_S = 10.0
INFER_METHOD = "/inference.GRPCInferenceService/ModelInfer"
MAX_MESSAGE = 256 * 1024 * 1024
OPTIONS = [("grpc.max_send_message_length", MAX_MESSAGE), ("grpc.max_receive_message_length", -1)]


def _metadata(headers: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    return tuple((k.lower(), v) for k, v in headers)


def _as_dict(message: Any) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def credentials(ca_cert: str | None) -> grpc.ChannelCredentials:
    """TLS credentials trusting the system's CAs, or the CAs of the --ca-cert PEM file."""
    if not ca_cert:
        return grpc.ssl_channel_credentials()
    try:
        with open(ca_cert, "rb") as f:
            return grpc.ssl_channel_credentials(root_certificates=f.read())
    except OSError as exc:
        raise BadInput(f"--ca-cert {ca_cert}: {exc.strerror}") from None


def _channel(target: Target) -> grpc.Channel:
    if target.tls:
        return grpc.secure_channel(target.authority, credentials(target.ca_cert), OPTIONS)
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


def check_answer(data: bytes, expected: Expected) -> str | None:
    """What is wrong with a serialized ModelInferResponse, or None: shapes and the byte sizes."""
    resp = service_pb2.ModelInferResponse()
    try:
        resp.ParseFromString(data)
    except Exception as exc:  # protobuf's DecodeError has no stable import path across runtimes
        return f"malformed answer: not a ModelInferResponse ({type(exc).__name__})"
    if expected and not resp.outputs:
        return "malformed answer: no outputs"
    want = dict(expected)
    raws = resp.raw_output_contents
    if raws and len(raws) != len(resp.outputs):
        return f"malformed answer: {len(resp.outputs)} outputs but {len(raws)} raw contents"
    for k, out in enumerate(resp.outputs):
        dims = tuple(out.shape)
        w = want.get(out.name)
        if w is not None and (
            len(w) != len(dims)
            or any(a is not None and a != b for a, b in zip(w, dims, strict=True))
        ):
            shown = ", ".join("?" if a is None else str(a) for a in w)
            return (
                f"malformed answer: output {out.name!r} has shape {list(dims)}, expected [{shown}]"
            )
        per = itemsize(out.datatype)
        if raws and per is not None:
            need = per * int(np.prod(dims, dtype=np.int64))
            if len(raws[k]) != need:
                return (
                    f"malformed answer: output {out.name!r} holds {len(raws[k])} bytes, "
                    f"its shape {list(dims)} needs {need}"
                )
    return None


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
                self.prepared.address, credentials(self.prepared.ca_cert), OPTIONS
            )
        else:
            self.channel = grpc.aio.insecure_channel(self.prepared.address, OPTIONS)
        # No serializers: bytes go out and come back as they are.
        self.call = self.channel.unary_unary(INFER_METHOD)

    async def send(self, i: int) -> tuple[str | None, Any]:
        """Send request i: (None, the answer's bytes) when it succeeded, else (its one line,
        None). The answer is checked by `check`, after its time is taken."""
        body = self.prepared.bodies[i % len(self.prepared.bodies)]
        try:
            answer = await self.call(body, timeout=self.prepared.timeout_s, metadata=self.metadata)
            return None, answer
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                return f"timed out after {self.prepared.timeout_s:g}s", None
            return f"gRPC {exc.code().name}: {' '.join(str(exc.details()).split())[:300]}", None

    def check(self, i: int, answer: Any) -> str | None:
        """What is wrong with request i's answer ('malformed answer: ...'), or None."""
        return check_answer(answer, self.prepared.expected)

    async def close(self) -> None:
        if self.channel is not None:
            await self.channel.close()
