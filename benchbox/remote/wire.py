"""The Open Inference Protocol's data, without any I/O: datatypes, metadata, REST bodies.

REST bodies follow the KServe v2 protocol: JSON (`"data"` as a flat row-major list), or, when
the server lists the `binary_tensor_data` extension, Triton's binary tensor extension: a JSON
header whose inputs carry `parameters.binary_data_size`, followed by the raw tensor bytes; the
header's length travels in the `Inference-Header-Content-Length` HTTP header.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchbox.errors import BadInput
from benchbox.schema import TensorSpec

# KServe v2 datatype <-> the dtype names of benchbox.model (numpy's names).
DATATYPES = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BF16": "bfloat16",
    "BYTES": "string",
}
TO_DATATYPE = {v: k for k, v in DATATYPES.items()}
BINARY_EXTENSION = "binary_tensor_data"
STATISTICS_EXTENSION = "statistics"
HEADER_LENGTH = "Inference-Header-Content-Length"


@dataclass(frozen=True)
class ServerInfo:
    """What the server says of itself (`GET /v2`) and of the model (`GET /v2/models/NAME`)."""

    name: str
    version: str
    extensions: tuple[str, ...]
    model_name: str
    model_versions: tuple[str, ...]
    platform: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def binary(self) -> bool:
        """Whether REST requests may use the binary tensor extension."""
        return BINARY_EXTENSION in self.extensions


def tensor_specs(items: Any, what: str) -> tuple[TensorSpec, ...]:
    """Model-metadata tensors as TensorSpecs; -1 dims become symbolic: `batch` first, else dimN.

    A `dimN` name is shared by every input with a free dim at axis N, so `--shape dim1=128`
    gives input_ids and attention_mask the same sequence length.
    """
    if not isinstance(items, list):
        raise BadInput(f"the server's model metadata has no {what} list")
    out = []
    for item in items:
        try:
            name, datatype, shape = str(item["name"]), str(item["datatype"]), item["shape"]
            dims = [int(d) for d in shape]
        except (KeyError, TypeError, ValueError):
            raise BadInput(f"malformed {what} in the server's model metadata: {item!r}") from None
        dtype = DATATYPES.get(datatype.upper(), datatype.lower())
        named: tuple[int | str, ...] = tuple(
            d if d >= 0 else ("batch" if axis == 0 else f"dim{axis}") for axis, d in enumerate(dims)
        )
        out.append(TensorSpec(name, dtype, named))
    return tuple(out)


def server_info(server: dict, model: dict) -> ServerInfo:
    """ServerInfo from the JSON of the server- and model-metadata answers."""
    return ServerInfo(
        name=str(server.get("name", "")),
        version=str(server.get("version", "")),
        extensions=tuple(str(x) for x in server.get("extensions") or ()),
        model_name=str(model.get("name", "")),
        model_versions=tuple(str(x) for x in model.get("versions") or ()),
        platform=str(model.get("platform", "")),
        inputs=tensor_specs(model.get("inputs"), "input"),
        outputs=tensor_specs(model.get("outputs") or [], "output"),
    )


def _datatype(arr: np.ndarray) -> str:
    name = TO_DATATYPE.get(arr.dtype.name)
    if name is None:
        raise BadInput(f"cannot send a {arr.dtype.name} tensor over the Open Inference Protocol")
    return name


def json_body(feeds: dict[str, np.ndarray]) -> bytes:
    """A REST inference request with every tensor as JSON data."""
    inputs = [
        {
            "name": name,
            "shape": list(arr.shape),
            "datatype": _datatype(arr),
            "data": arr.ravel().tolist(),
        }
        for name, arr in feeds.items()
    ]
    return json.dumps({"inputs": inputs}, separators=(",", ":")).encode()


def binary_body(feeds: dict[str, np.ndarray]) -> tuple[bytes, int]:
    """A REST inference request with raw tensor bytes after the JSON header; (body, header len).

    Outputs are asked for in binary too, so the answer's size does not grow with JSON's text.
    """
    raws = [np.ascontiguousarray(arr).tobytes() for arr in feeds.values()]
    inputs = [
        {
            "name": name,
            "shape": list(arr.shape),
            "datatype": _datatype(arr),
            "parameters": {"binary_data_size": len(raw)},
        }
        for (name, arr), raw in zip(feeds.items(), raws, strict=True)
    ]
    header = json.dumps(
        {"inputs": inputs, "parameters": {"binary_data_output": True}}, separators=(",", ":")
    ).encode()
    return header + b"".join(raws), len(header)


def error_text(status: int, body: bytes) -> str:
    """One line for a failed answer: the status and the server's `error` text when it sent one."""
    text = body[:2000].decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
        if isinstance(data, dict) and data.get("error"):
            text = str(data["error"])
        elif isinstance(data, dict) and data.get("detail"):
            text = str(data["detail"])
    except ValueError:
        pass
    text = " ".join(text.split())[:300]
    return f"HTTP {status}: {text}" if text else f"HTTP {status}"


@dataclass(frozen=True)
class Prepared:
    """A pool of encoded inference requests and where to send them; picklable, so generator
    processes receive it whole. Request k of a run sends body k % len(bodies)."""

    protocol: str  # "http" | "grpc"
    address: str  # the REST infer URL, or the gRPC authority HOST:PORT
    bodies: tuple[bytes, ...]
    headers: tuple[tuple[str, str], ...] = ()
    header_lengths: tuple[int | None, ...] = ()  # Inference-Header-Content-Length per body
    timeout_s: float = 30.0
    tls: bool = False
    # The outputs an answer must hold: (name, dims); a None dim is not checked. Empty: any.
    expected: tuple[tuple[str, tuple[int | None, ...]], ...] = ()
    ca_cert: str | None = None  # a PEM file of the CA to trust, besides the system's
    insecure: bool = False  # TLS without verifying the server's certificate


Expected = tuple[tuple[str, tuple[int | None, ...]], ...]


def expected_outputs(
    outputs: tuple[TensorSpec, ...], batch_names: frozenset[str], batch_size: int
) -> Expected:
    """The output dims an answer to a batch of `batch_size` must have (None: not checked)."""
    out = []
    for spec in outputs:
        dims = tuple(
            d if isinstance(d, int) else (batch_size if d in batch_names else None)
            for d in spec.shape
        )
        out.append((spec.name, dims))
    return tuple(out)


def _count(data: Any) -> int:
    """How many scalars a (possibly nested) JSON list holds."""
    if isinstance(data, list):
        return sum(_count(x) for x in data) if data and isinstance(data[0], list) else len(data)
    return 1


def _shape_error(name: str, shape: Any, expected: dict[str, tuple[int | None, ...]]) -> str | None:
    try:
        dims = [int(d) for d in shape]
    except (TypeError, ValueError):
        return f"output {name!r} has no valid shape ({shape!r})"
    want = expected.get(name)
    if want is None:
        return None
    if len(dims) != len(want) or any(
        w is not None and w != d for w, d in zip(want, dims, strict=True)
    ):
        shown = ", ".join("?" if w is None else str(w) for w in want)
        return f"output {name!r} has shape {dims}, expected [{shown}]"
    return None


def _outputs(header: Any, expected: Expected) -> tuple[list[dict], str | None]:
    if not isinstance(header, dict) or not isinstance(header.get("outputs"), list):
        return [], "no outputs list"
    outs = header["outputs"]
    if not all(isinstance(o, dict) for o in outs):
        return [], "a malformed outputs list"
    if expected and not outs:
        return [], "an empty outputs list"
    names = {str(o.get("name")) for o in outs}
    missing = [n for n, _ in expected if n not in names]
    if expected and len(missing) == len(expected):
        return [], f"none of the model's outputs ({', '.join(missing)})"
    return outs, None


def check_json_answer(body: bytes, expected: Expected) -> str | None:
    """What is wrong with a JSON inference answer (one line, 'malformed answer: ...'), or None."""
    try:
        header = json.loads(body)
    except ValueError as exc:
        return f"malformed answer: not JSON ({len(body)} bytes; {exc})"
    outs, why = _outputs(header, expected)
    if why:
        return f"malformed answer: {why}"
    want = dict(expected)
    for o in outs:
        name = str(o.get("name"))
        why = _shape_error(name, o.get("shape"), want)
        if why is None and "data" in o:
            n, size = _count(o["data"]), _product(o.get("shape"))
            if n != size:
                why = f"output {name!r} holds {n} values, its shape {o.get('shape')} needs {size}"
        if why:
            return f"malformed answer: {why}"
    return None


def _product(shape: Any) -> int:
    n = 1
    for d in shape or ():
        n *= int(d)
    return n


def itemsize(datatype: str) -> int | None:
    """Bytes per element of an OIP datatype; None for BYTES (variable) or unknown."""
    name = DATATYPES.get(str(datatype).upper())
    if name in (None, "string"):
        return None
    return 2 if name == "bfloat16" else int(np.dtype(name).itemsize)


def check_binary_answer(body: bytes, header_length: str | None, expected: Expected) -> str | None:
    """What is wrong with a binary-extension answer (the sizes its header declares), or None."""
    if header_length is None:
        return check_json_answer(body, expected)
    try:
        n = int(header_length)
    except ValueError:
        return f"malformed answer: {HEADER_LENGTH} is {header_length!r}"
    if not 0 < n <= len(body):
        return f"malformed answer: a {n}-byte header declared in a {len(body)}-byte body"
    try:
        header = json.loads(body[:n])
    except ValueError as exc:
        return f"malformed answer: the header is not JSON ({exc})"
    outs, why = _outputs(header, expected)
    if why:
        return f"malformed answer: {why}"
    want, declared = dict(expected), 0
    for o in outs:
        name = str(o.get("name"))
        why = _shape_error(name, o.get("shape"), want)
        size = (o.get("parameters") or {}).get("binary_data_size")
        if why is None and size is not None:
            per = itemsize(str(o.get("datatype", "")))
            if per is not None and int(size) != per * _product(o.get("shape")):
                need = per * _product(o.get("shape"))
                why = f"output {name!r} declares {size} bytes, its shape needs {need}"
            declared += int(size)
        if why:
            return f"malformed answer: {why}"
    if declared != len(body) - n:
        came = len(body) - n
        return f"malformed answer: the header declares {declared} tensor bytes, {came} came"
    return None
