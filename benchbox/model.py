"""ONNX model inspection (inputs, symbolic dims, batch axis), input synthesis and file hashing.

Reading the file happens in `inspect_model`, `sha256_file` and `index_limits`; the rest is pure.

Symbolic dims other than the batch get a size from `--shape NAME=SIZE`, else a default chosen
by name (the names are split into words: `max_seq_len` -> max, seq, len):

- sequence-like words (seq, sequence, len, length, tokens, time, steps, positions): 128;
- image-like words (height, width, h, w, image, img, resolution), and unnamed dims in the spatial
  positions of a rank-4 image input (NCHW axes 2-3, NHWC axes 1-2, channels 1, 3 or 4): 224;
- anything else: 1.

The report lists the dims that got a default (`ModelInfo.dims_defaulted`).
"""

from __future__ import annotations

import hashlib
import math
import os
import pathlib
import re
from typing import TYPE_CHECKING

import numpy as np

from benchbox.errors import BadInput
from benchbox.files import require_regular_file
from benchbox.schema import InputValues, ModelInfo, TensorSpec

if TYPE_CHECKING:  # onnx is imported where a model is read: a worker process never needs it
    import onnx

SEQ_DEFAULT = 128
SPATIAL_DEFAULT = 224
OTHER_DEFAULT = 1
ID_VOCAB = 100  # int inputs are drawn from [0, ID_VOCAB), or below a smaller embedding table

_SEQ_WORDS = {"seq", "seqlen", "sequence", "len", "length", "tokens", "token", "time", "steps"}
_SEQ_WORDS |= {"positions", "ctx"}
_SPATIAL_WORDS = {"height", "width", "h", "w", "image", "img", "resolution"}

# onnx.TensorProto.DataType's values (onnx.proto), as numbers: reading this table needs no onnx.
_DTYPES: dict[int, str] = {
    1: "float32",
    10: "float16",
    11: "float64",
    16: "bfloat16",
    3: "int8",
    5: "int16",
    6: "int32",
    7: "int64",
    2: "uint8",
    4: "uint16",
    12: "uint32",
    13: "uint64",
    9: "bool",
    8: "string",
}
# The dtypes benchbox can synthesize (numpy has them and onnxruntime accepts them).
_NUMPY = {
    name: np.dtype(name)
    for name in ("float32", "float16", "float64", "int8", "int16", "int32", "int64")
    + ("uint8", "uint16", "uint32", "uint64", "bool")
}

# Embedding-table sizes found by `inspect_model`, keyed by the model's sha256, so that
# `synthesize_inputs` does not read the file again in the same process.
_LIMITS_BY_SHA: dict[str, dict[str, int]] = {}


# ---------------------------------------------------------------- reading the file


def sha256_file(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    require_regular_file(path, "model file")
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _load(path: pathlib.Path) -> onnx.ModelProto:
    """The model's protobuf without external weights; BadInput for anything that is not ONNX."""
    hint_zoo = "pass an .onnx file, or a built-in model name (see `benchbox models list`)"
    if not path.exists():
        raise BadInput(f"model file '{path}' does not exist", hint_zoo)
    if path.is_dir():
        raise BadInput(f"model path '{path}' is a directory, not an ONNX file", hint_zoo)
    require_regular_file(path, "model file", hint_zoo)
    import onnx

    try:
        model = onnx.load_model(str(path), format="protobuf", load_external_data=False)
    except PermissionError:
        raise BadInput(f"cannot read model file '{path}' (permission denied)") from None
    except Exception:  # protobuf DecodeError and friends: the bytes are not a ModelProto
        raise BadInput(
            f"'{path}' is not a valid ONNX model (it could not be parsed: "
            "truncated, corrupted, or another format)",
            "check that the file was copied completely; export it again if needed",
        ) from None
    if not model.HasField("graph") or not model.opset_import or model.ir_version <= 0:
        what = "is empty" if path.stat().st_size == 0 else "is not an ONNX model"
        raise BadInput(
            f"'{path}' {what} (no graph or opset in it)",
            "pass an .onnx file exported from your framework (e.g. torch.onnx.export)",
        )
    return model


def inspect_model(
    path: str | os.PathLike,
    shapes: dict[str, int | str] | None = None,
    values: dict[str, float | list] | None = None,
) -> ModelInfo:
    """Inputs, outputs, opset, batch axis and symbolic dim sizes of an ONNX file; `shapes` may
    tie a dim to the batch ("batch"), `values` set inputs' values (checked against the model)."""
    p = pathlib.Path(path)
    model = _load(p)
    graph = model.graph
    weights = {t.name for t in graph.initializer} | {
        t.values.name for t in graph.sparse_initializer
    }
    # Before IR 4, initializers were also listed as graph inputs; they are not inputs to feed.
    inputs = tuple(_spec(vi, "input") for vi in graph.input if vi.name not in weights)
    if not inputs:
        raise BadInput(
            f"model '{p}' has no inputs, so there is nothing to feed it",
            "benchbox measures models that take at least one input tensor",
        )
    outputs = tuple(_spec(vi, "output") for vi in graph.output)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    batch = _batch(inputs)
    shapes = shapes or {}
    tied = tuple(n for n, v in shapes.items() if v == "batch")
    sizes = {n: int(v) for n, v in shapes.items() if v != "batch"}
    dims, defaulted = _dims(inputs, batch, sizes, tied)
    sha = sha256_file(p)
    _LIMITS_BY_SHA[sha] = _index_limits(graph)
    info = ModelInfo(
        path=str(path),
        sha256=sha,
        opset=opset,
        inputs=inputs,
        outputs=outputs,
        batch=batch,
        dims=dims,
        dims_defaulted=defaulted,
        batch_dims=tied,
        input_values=InputValues.of(values or {}),
    )
    _check_values(info)
    return info


def _check_values(info: ModelInfo) -> None:
    """BadInput when `--input` names no input, or its value does not fit the input's shape."""
    names = [s.name for s in info.inputs]
    shapes = input_shapes(info, 1)
    for name, value in info.input_values.items():
        if name not in names:
            raise BadInput(
                f"--input {name}: the model has no input of that name",
                f"its inputs: {', '.join(names)}",
            )
        try:
            if np.broadcast_shapes(np.shape(value), shapes[name]) != shapes[name]:
                raise ValueError("the value is larger than the input")
        except ValueError:
            raise BadInput(
                f"--input {name}: a value of shape {list(np.shape(value))} does not fit the"
                f" input's shape {list(shapes[name])}",
                "give one number to fill it, or an array of its shape",
            ) from None


def info_from_specs(
    path: str,
    inputs: tuple[TensorSpec, ...],
    outputs: tuple[TensorSpec, ...] = (),
    shapes: dict[str, int] | None = None,
    sha256: str = "",
) -> ModelInfo:
    """A ModelInfo from input specs read elsewhere (a server's model metadata), dims resolved."""
    batch = _batch(inputs)
    dims, defaulted = _dims(inputs, batch, shapes or {})
    return ModelInfo(
        path=path,
        sha256=sha256,
        opset=None,
        inputs=inputs,
        outputs=outputs,
        batch=batch,
        dims=dims,
        dims_defaulted=defaulted,
    )


def index_limits(path: str | os.PathLike) -> dict[str, int]:
    """For int inputs that index an embedding table (Gather), the table's size along that axis."""
    return _index_limits(_load(pathlib.Path(path)).graph)


# ---------------------------------------------------------------- pure helpers


def _spec(vi: onnx.ValueInfoProto, what: str) -> TensorSpec:
    kind = vi.type.WhichOneof("value")
    if kind != "tensor_type":
        return TensorSpec(vi.name, kind or "unknown", ())
    tt = vi.type.tensor_type
    dtype = _DTYPES.get(tt.elem_type) or _dtype_name(tt.elem_type)
    if not tt.HasField("shape"):
        if what == "input":
            raise BadInput(
                f"model input '{vi.name}' has no shape, so benchbox cannot make inputs for it",
                "export the model with input shapes (symbolic dims are fine)",
            )
        return TensorSpec(vi.name, dtype, ())
    dims: list[int | str] = []
    for axis, d in enumerate(tt.shape.dim):
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param") and d.dim_param:
            dims.append(d.dim_param)
        else:  # unknown (or 0/-1 written by some exporters): give it a name users can pass
            dims.append(re.sub(r"[^A-Za-z0-9_./-]", "_", f"{vi.name}_dim{axis}"))
    return TensorSpec(vi.name, dtype, tuple(dims))


def _dtype_name(elem_type: int) -> str:
    """An ONNX element type benchbox has no numpy dtype for, by its ONNX name (e.g. 'complex64')."""
    import onnx

    return onnx.TensorProto.DataType.Name(elem_type).lower()


def _batch(inputs: tuple[TensorSpec, ...]) -> int | str | None:
    """'dynamic' if any input's first dim is symbolic, the common fixed first dim, or None."""
    firsts = [s.shape[0] for s in inputs if s.shape]
    if not firsts:
        return None
    if any(isinstance(d, str) for d in firsts):
        return "dynamic"
    return firsts[0] if len(set(firsts)) == 1 else None


def _batch_symbols(info_inputs: tuple[TensorSpec, ...], batch: int | str | None) -> set[str]:
    if batch != "dynamic":
        return set()
    return {s.shape[0] for s in info_inputs if s.shape and isinstance(s.shape[0], str)}


def _words(name: str) -> set[str]:
    snake = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()
    return {w for w in re.split(r"[^a-z0-9]+", snake) if w}


def default_dim(name: str, spec: TensorSpec | None = None, axis: int | None = None) -> int:
    """The size a symbolic dim gets when the user gives none (see the module docstring)."""
    words = _words(name)
    if words & _SEQ_WORDS:
        return SEQ_DEFAULT
    if words & _SPATIAL_WORDS:
        return SPATIAL_DEFAULT
    if spec is not None and axis is not None and len(spec.shape) == 4:
        c_first, c_last = spec.shape[1], spec.shape[3]
        if c_first in (1, 3, 4) and axis in (2, 3):
            return SPATIAL_DEFAULT
        if c_last in (1, 3, 4) and axis in (1, 2):
            return SPATIAL_DEFAULT
    return OTHER_DEFAULT


def _dims(
    inputs: tuple[TensorSpec, ...],
    batch: int | str | None,
    shapes: dict[str, int],
    tied: tuple[str, ...] = (),
) -> tuple[dict[str, int], tuple[str, ...]]:
    batch_syms = _batch_symbols(inputs, batch)
    symbols: dict[str, tuple[TensorSpec, int]] = {}
    for spec in inputs:
        for axis, d in enumerate(spec.shape):
            if isinstance(d, str) and d not in batch_syms and d not in symbols:
                symbols[d] = (spec, axis)
    unknown = [n for n in (*shapes, *tied) if n not in symbols]
    if unknown:
        batch_given = [n for n in unknown if n in batch_syms]
        if batch_given:
            raise BadInput(
                f"--shape {batch_given[0]}: that is the model's batch dimension",
                "set batch sizes with --batch instead",
            )
        known = ", ".join(symbols) if symbols else "none besides the batch"
        raise BadInput(
            f"--shape {', '.join(unknown)}: the model has no symbolic dim of that name",
            f"its symbolic dims: {known}",
        )
    dims: dict[str, int] = {}
    defaulted: list[str] = []
    if tied and batch != "dynamic":
        raise BadInput(
            f"--shape {tied[0]}=batch: the model has no dynamic batch dimension to follow",
            "give the dim a size instead, e.g. --shape " + f"{tied[0]}=1",
        )
    for name, (spec, axis) in symbols.items():
        if name in tied:
            continue
        if name in shapes:
            if int(shapes[name]) < 1:
                raise BadInput(f"--shape {name}={shapes[name]}: the size must be at least 1")
            dims[name] = int(shapes[name])
        else:
            dims[name] = default_dim(name, spec, axis)
            defaulted.append(name)
    return dims, tuple(defaulted)


_PASS_THROUGH = {"Cast", "Identity", "Reshape", "Unsqueeze", "Squeeze", "Flatten", "Expand"}


def _index_limits(graph: onnx.GraphProto) -> dict[str, int]:
    """Graph inputs that feed Gather indices (through casts/reshapes) -> the table's size."""
    tables = {t.name: tuple(t.dims) for t in graph.initializer}
    producer: dict[str, onnx.NodeProto] = {}
    for node in graph.node:
        for out in node.output:
            producer[out] = node
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value" and attr.HasField("t"):
                    tables[node.output[0]] = tuple(attr.t.dims)
    graph_inputs = {vi.name for vi in graph.input} - set(tables)

    def source(name: str) -> str | None:
        for _ in range(5):
            if name in graph_inputs:
                return name
            node = producer.get(name)
            if node is None or node.op_type not in _PASS_THROUGH or not node.input:
                return None
            name = node.input[0]
        return None

    limits: dict[str, int] = {}

    def note(indices: str, table: str, axis: int) -> None:
        src, dims = source(indices), tables.get(table)
        if src is None or not dims or not -len(dims) <= axis < len(dims):
            return
        size = int(dims[axis])
        if size > 0:
            limits[src] = min(size, limits.get(src, size))

    for node in graph.node:
        if node.op_type == "Gather" and len(node.input) >= 2:
            axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
            note(node.input[1], node.input[0], axis)
        elif node.op_type == "EmbedLayerNormalization" and len(node.input) >= 5:
            # com.microsoft fused embedding: ids, segment ids, word, position, segment tables
            note(node.input[0], node.input[2], 0)
            if node.input[1]:
                note(node.input[1], node.input[4], 0)
    return limits


# ---------------------------------------------------------------- batches and inputs


def batch_skip_reason(info: ModelInfo, batch_size: int) -> str | None:
    """Why a cell with this batch size cannot run on this model, or None when it can."""
    for spec in info.inputs:
        if spec.dtype not in _NUMPY:
            return f"{spec.dtype} inputs are not supported (input '{spec.name}')"
    if isinstance(info.batch, int) and batch_size != info.batch:
        return f"model has a fixed batch dimension of {info.batch}"
    if info.batch is None and batch_size != 1:
        return "model has no batch dimension"
    return None


def input_shapes(info: ModelInfo, batch_size: int) -> dict[str, tuple[int, ...]]:
    """The concrete shape of every input for a batch size (symbolic dims from `info.dims`)."""
    if batch_size < 1:
        raise BadInput(f"batch size {batch_size} must be at least 1")
    batch_syms = _batch_symbols(info.inputs, info.batch) | set(info.batch_dims)
    out: dict[str, tuple[int, ...]] = {}
    for spec in info.inputs:
        shape = []
        for axis, d in enumerate(spec.shape):
            if isinstance(d, int):
                shape.append(d)
            elif d in batch_syms:
                shape.append(batch_size)
            else:
                shape.append(info.dims.get(d) or default_dim(d, spec, axis))
        out[spec.name] = tuple(shape)
    return out


def input_bytes(info: ModelInfo, batch_size: int) -> int:
    """The bytes of one input set for a batch size (the inputs benchbox can synthesize)."""
    shapes = input_shapes(info, batch_size)
    return sum(
        math.prod(shapes[s.name]) * _NUMPY[s.dtype].itemsize
        for s in info.inputs
        if s.dtype in _NUMPY
    )


def synthesize_inputs(
    info: ModelInfo, batch_size: int, pool_size: int = 4, seed: int = 0
) -> list[dict[str, np.ndarray]]:
    """A pool of distinct, deterministic input sets for one batch size (cycled by the loads)."""
    reason = batch_skip_reason(info, batch_size)
    if reason and "not supported" in reason:
        raise BadInput(f"cannot make inputs: {reason}")
    shapes = input_shapes(info, batch_size)
    limits = _limits_for(info)
    rng = np.random.default_rng(seed)
    pool = []
    for _ in range(max(1, pool_size)):
        feed = {}
        for spec in info.inputs:
            if spec.name in info.input_values:  # the user's value, the same in every set
                value = np.asarray(info.input_values[spec.name], dtype=_NUMPY[spec.dtype])
                feed[spec.name] = np.array(np.broadcast_to(value, shapes[spec.name]))  # 0-d kept
                continue
            feed[spec.name] = _tensor(spec, shapes[spec.name], limits.get(spec.name), rng)
        pool.append(feed)
    return pool


def _limits_for(info: ModelInfo) -> dict[str, int]:
    if info.sha256 in _LIMITS_BY_SHA:
        return _LIMITS_BY_SHA[info.sha256]
    try:
        limits = index_limits(info.path)
    except (BadInput, OSError):
        limits = {}
    _LIMITS_BY_SHA[info.sha256] = limits
    return limits


def _tensor(
    spec: TensorSpec, shape: tuple[int, ...], limit: int | None, rng: np.random.Generator
) -> np.ndarray:
    dtype = _NUMPY[spec.dtype]
    name = spec.name.lower()
    if "mask" in name:
        return np.ones(shape, dtype)
    if dtype.kind == "b":
        return np.asarray(rng.random(shape) < 0.5)  # np.asarray: a 0-d compare gives a scalar
    if dtype.kind == "f":
        return rng.standard_normal(shape, dtype=np.float32).astype(dtype)
    # Integer inputs are token ids or indices: a small vocabulary, below any embedding table.
    if "token_type" in name or "segment" in name:
        return np.zeros(shape, dtype)
    high = min(ID_VOCAB, limit or ID_VOCAB, int(np.iinfo(dtype).max) + 1)
    return rng.integers(0, high, size=shape, dtype=dtype)
