"""The built-in models, generated deterministically with onnx.helper and cached on disk.

Every model is opset 17 with seeded float32 weights. The same name and parameters always give
byte-identical serialized models, so a cached file is named by its recipe (name, parameters,
generator version) and carries a short hash of its content.
"""

from __future__ import annotations

import hashlib
import math
import os
import pathlib
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from benchbox.errors import BadInput
from benchbox.files import os_reason

OPSET = 17
IR_VERSION = 8  # the IR version that goes with opset 17
DEMO_MODEL = "resnet18"
# Bump when a generator changes its output, so cached files of the old recipe are not reused.
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class ZooEntry:
    """One built-in model: its name, what it is, its parameters with their defaults, its inputs."""

    name: str
    description: str
    params: dict
    inputs: str = ""


# ---------------------------------------------------------------- a tiny graph builder


# The most float32 weights a zoo model may hold: protobuf, and so one ONNX file, stops at 2 GiB.
MAX_WEIGHTS = (2**31 - 2**24) // 4


class TooLarge(Exception):
    """A zoo model's parameters ask for more weights than one ONNX file can hold."""


class _Graph:
    """Collects nodes and initializers with unique names, so generators read like the model."""

    def __init__(self, seed_key: str) -> None:
        self.rng = np.random.default_rng(zlib.crc32(seed_key.encode()))
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names: set[str] = set()
        self.weights = 0  # float32 weights so far

    def _unique(self, name: str) -> str:
        out, i = name, 1
        while out in self._names:
            out, i = f"{name}_{i}", i + 1
        self._names.add(out)
        return out

    def const(self, name: str, array: np.ndarray) -> str:
        """Add an initializer and return its name."""
        name = self._unique(name)
        self.initializers.append(numpy_helper.from_array(np.array(array, order="C"), name))
        return name

    def normal(self, name: str, shape: tuple[int, ...], std: float) -> str:
        """Add a float32 initializer drawn from normal(0, std)."""
        self.weights += math.prod(shape)
        if self.weights > MAX_WEIGHTS:  # checked before allocating: an ONNX file holds 2 GiB
            raise TooLarge(self.weights)
        return self.const(name, self.rng.standard_normal(shape, dtype=np.float32) * np.float32(std))

    def op(self, op_type: str, inputs: list[str], name: str, **attrs: object) -> str:
        """Add a node with one output, named `name`, and return the output's name."""
        out = self._unique(name)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def model(
        self,
        name: str,
        inputs: list[onnx.ValueInfoProto],
        outputs: list[onnx.ValueInfoProto],
        doc: str,
    ) -> onnx.ModelProto:
        """The finished model, opset 17, checked."""
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.initializers)
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            ir_version=IR_VERSION,
            producer_name="benchbox.zoo",
            doc_string=doc,
        )
        onnx.checker.check_model(model)
        return model


def _vi(name: str, elem_type: int, shape: list[int | str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem_type, shape)


# ---------------------------------------------------------------- mlp


def _mlp(hidden: int, batch: int | str = "batch", name: str = "mlp") -> onnx.ModelProto:
    g = _Graph("mlp")
    sizes = [64, hidden, hidden, 10]
    x = "x"
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        w = g.normal(f"fc{i + 1}.weight", (n_out, n_in), np.sqrt(2.0 / n_in))
        b = g.normal(f"fc{i + 1}.bias", (n_out,), 0.01)
        last = i == len(sizes) - 2
        x = g.op("Gemm", [x, w, b], "logits" if last else f"fc{i + 1}", transB=1)
        if not last:
            x = g.op("Relu", [x], f"relu{i + 1}")
    return g.model(
        name,
        [_vi("x", TensorProto.FLOAT, [batch, 64])],
        [_vi("logits", TensorProto.FLOAT, [batch, 10])],
        f"benchbox zoo: {name} 64->{hidden}->{hidden}->10",
    )


def _build_mlp(hidden: int) -> onnx.ModelProto:
    return _mlp(hidden)


def _build_mlp_fixed(batch: int, hidden: int) -> onnx.ModelProto:
    return _mlp(hidden, batch=batch, name="mlp_fixed")


# ---------------------------------------------------------------- resnet18


def _conv_bn(
    g: _Graph, x: str, name: str, c_in: int, c_out: int, k: int, stride: int, gain: float = 1.0
) -> str:
    """Conv with a batch-norm folded into its weight and bias (He-init weight, random BN stats)."""
    rng = g.rng
    w = rng.standard_normal((c_out, c_in, k, k), dtype=np.float32)
    w *= np.float32(np.sqrt(2.0 / (c_in * k * k)))
    gamma = (1.0 + 0.1 * rng.standard_normal(c_out)) * gain
    beta = 0.05 * rng.standard_normal(c_out)
    mean = 0.05 * rng.standard_normal(c_out)
    var = 1.0 + 0.1 * np.abs(rng.standard_normal(c_out))
    scale = gamma / np.sqrt(var + 1e-5)
    w_folded = (w * scale[:, None, None, None]).astype(np.float32)
    b_folded = (beta - mean * scale).astype(np.float32)
    pad = k // 2
    return g.op(
        "Conv",
        [x, g.const(f"{name}.weight", w_folded), g.const(f"{name}.bias", b_folded)],
        name,
        kernel_shape=[k, k],
        strides=[stride, stride],
        pads=[pad, pad, pad, pad],
    )


def _basic_block(g: _Graph, x: str, name: str, c_in: int, c_out: int, stride: int) -> str:
    y = _conv_bn(g, x, f"{name}.conv1", c_in, c_out, 3, stride)
    y = g.op("Relu", [y], f"{name}.relu1")
    # A small last gain keeps the residual stream's variance from doubling at every block.
    y = _conv_bn(g, y, f"{name}.conv2", c_out, c_out, 3, 1, gain=0.5)
    shortcut = x
    if stride != 1 or c_in != c_out:
        shortcut = _conv_bn(g, x, f"{name}.downsample", c_in, c_out, 1, stride)
    y = g.op("Add", [y, shortcut], f"{name}.add")
    return g.op("Relu", [y], f"{name}.relu2")


def _build_resnet18(resolution: int) -> onnx.ModelProto:
    if not 32 <= resolution <= 1024:
        raise BadInput(
            f"resnet18: resolution {resolution} is out of range",
            "use a resolution between 32 and 1024 (224 is the classic model)",
        )
    g = _Graph("resnet18")
    x = _conv_bn(g, "input", "conv1", 3, 64, 7, 2)
    x = g.op("Relu", [x], "relu")
    x = g.op("MaxPool", [x], "maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    c_in = 64
    for stage, c_out in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            stride = 2 if stage > 1 and block == 0 else 1
            x = _basic_block(g, x, f"layer{stage}.{block}", c_in, c_out, stride)
            c_in = c_out
    x = g.op("GlobalAveragePool", [x], "avgpool")
    x = g.op("Flatten", [x], "flatten", axis=1)
    w = g.normal("fc.weight", (1000, 512), 1.0 / np.sqrt(512))
    b = g.normal("fc.bias", (1000,), 0.01)
    g.op("Gemm", [x, w, b], "logits", transB=1)
    return g.model(
        "resnet18",
        [_vi("input", TensorProto.FLOAT, ["batch", 3, resolution, resolution])],
        [_vi("logits", TensorProto.FLOAT, ["batch", 1000])],
        f"benchbox zoo: ResNet-18 at {resolution}x{resolution}, batch-norm folded, random weights",
    )


# ---------------------------------------------------------------- bert


class _Bert:
    """The pieces of the zoo's encoder, added to one graph in the order they are called (the
    random weights come from the graph's one generator, so the order fixes the model)."""

    STD = 0.02
    MAX_POSITIONS = 512

    def __init__(self, g: _Graph, hidden: int, heads: int) -> None:
        self.g, self.hidden, self.heads = g, hidden, heads

    def layer_norm(self, x: str, name: str) -> str:
        g = self.g
        scale = g.const(f"{name}.weight", np.ones(self.hidden, np.float32))
        bias = g.const(f"{name}.bias", np.zeros(self.hidden, np.float32))
        return g.op("LayerNormalization", [x, scale, bias], name, axis=-1, epsilon=1e-12)

    def linear(self, x: str, name: str, n_in: int, n_out: int) -> str:
        g = self.g
        y = g.op(
            "MatMul", [x, g.normal(f"{name}.weight", (n_in, n_out), self.STD)], f"{name}.matmul"
        )
        return g.op("Add", [y, g.normal(f"{name}.bias", (n_out,), self.STD)], name)

    def embeddings(self, vocab: int) -> str:
        """Words + positions (0..seq-1), then LayerNorm."""
        g, hidden, std = self.g, self.hidden, self.STD
        words = g.op(
            "Gather", [g.normal("embeddings.word", (vocab, hidden), std), "input_ids"], "word_emb"
        )
        seq_1d = g.op("Shape", ["input_ids"], "seq_len_1d", start=1, end=2)
        seq = g.op("Squeeze", [seq_1d, g.const("axes0", np.array([0], np.int64))], "seq_len")
        zero = g.const("zero_i64", np.array(0, np.int64))
        one = g.const("one_i64", np.array(1, np.int64))
        positions = g.op("Range", [zero, seq, one], "position_ids")
        table = g.normal("embeddings.position", (self.MAX_POSITIONS, hidden), std)
        pos = g.op("Gather", [table, positions], "pos")
        return self.layer_norm(g.op("Add", [words, pos], "embeddings.sum"), "embeddings.layer_norm")

    def mask(self) -> str:
        """Additive attention mask: 0 where attended, -10000 where masked, [batch, 1, 1, seq]."""
        g = self.g
        mask_f = g.op("Cast", ["attention_mask"], "mask_float", to=TensorProto.FLOAT)
        one = g.const("one_f", np.array(1.0, np.float32))
        inverted = g.op("Sub", [one, mask_f], "mask_inverted")
        additive = g.op(
            "Mul", [inverted, g.const("neg_big", np.array(-1e4, np.float32))], "mask_add"
        )
        return g.op(
            "Unsqueeze", [additive, g.const("axes12", np.array([1, 2], np.int64))], "mask4d"
        )

    def constants(self) -> dict[str, str]:
        g, hidden, heads = self.g, self.hidden, self.heads
        head_dim = hidden // heads
        return {
            "split": g.const("split_heads", np.array([0, 0, heads, head_dim], np.int64)),
            "merge": g.const("merge_heads", np.array([0, 0, hidden], np.int64)),
            "inv_sqrt_d": g.const(
                "inv_sqrt_head_dim", np.array(1.0 / np.sqrt(head_dim), np.float32)
            ),
            "sqrt_half": g.const("inv_sqrt2", np.array(1.0 / np.sqrt(2.0), np.float32)),
            "half": g.const("half", np.array(0.5, np.float32)),
            "one": g.const("one_f_gelu", np.array(1.0, np.float32)),
        }

    def attention(self, x: str, mask: str, c: dict[str, str], p: str) -> str:
        g, hidden = self.g, self.hidden
        q, k, v = (self.linear(x, f"{p}.attention.{n}", hidden, hidden) for n in "qkv")
        q = g.op("Reshape", [q, c["split"]], f"{p}.q_heads")
        k = g.op("Reshape", [k, c["split"]], f"{p}.k_heads")
        v = g.op("Reshape", [v, c["split"]], f"{p}.v_heads")
        q = g.op("Transpose", [q], f"{p}.q_t", perm=[0, 2, 1, 3])  # [b, h, s, d]
        k = g.op("Transpose", [k], f"{p}.k_t", perm=[0, 2, 3, 1])  # [b, h, d, s]
        v = g.op("Transpose", [v], f"{p}.v_t", perm=[0, 2, 1, 3])  # [b, h, s, d]
        scores = g.op("MatMul", [q, k], f"{p}.scores")
        scores = g.op("Mul", [scores, c["inv_sqrt_d"]], f"{p}.scores_scaled")
        scores = g.op("Add", [scores, mask], f"{p}.scores_masked")
        probs = g.op("Softmax", [scores], f"{p}.probs", axis=-1)
        ctx = g.op("MatMul", [probs, v], f"{p}.context")
        ctx = g.op("Transpose", [ctx], f"{p}.context_t", perm=[0, 2, 1, 3])
        ctx = g.op("Reshape", [ctx, c["merge"]], f"{p}.context_merged")
        attn = self.linear(ctx, f"{p}.attention.out", hidden, hidden)
        return self.layer_norm(
            g.op("Add", [attn, x], f"{p}.attention.residual"), f"{p}.attention.norm"
        )

    def ffn(self, x: str, c: dict[str, str], p: str) -> str:
        """FFN with the exact (Erf) GELU: 0.5 * h * (1 + erf(h / sqrt(2)))."""
        g, hidden = self.g, self.hidden
        h = self.linear(x, f"{p}.ffn.in", hidden, 4 * hidden)
        erf = g.op("Erf", [g.op("Mul", [h, c["sqrt_half"]], f"{p}.gelu.scaled")], f"{p}.gelu.erf")
        add = g.op("Add", [erf, c["one"]], f"{p}.gelu.add")
        gate = g.op("Mul", [add, c["half"]], f"{p}.gelu.gate")
        h = g.op("Mul", [h, gate], f"{p}.gelu")
        h = self.linear(h, f"{p}.ffn.out", 4 * hidden, hidden)
        return self.layer_norm(g.op("Add", [h, x], f"{p}.ffn.residual"), f"{p}.ffn.norm")

    def outputs(self, x: str) -> None:
        """last_hidden_state, and the pooler's tanh over the first token."""
        g, hidden = self.g, self.hidden
        g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output"))
        first = g.op("Gather", [x, g.const("index0", np.array(0, np.int64))], "cls_token", axis=1)
        w = g.normal("pooler.weight", (hidden, hidden), self.STD)
        b = g.normal("pooler.bias", (hidden,), self.STD)
        pooled = g.op("Gemm", [first, w, b], "pooler.dense")
        g.nodes.append(helper.make_node("Tanh", [pooled], ["pooler_output"], name="pooler"))


def _build_bert(layers: int, hidden: int, heads: int, vocab: int) -> onnx.ModelProto:
    if layers < 1 or hidden < 1 or heads < 1 or hidden % heads:
        raise BadInput(
            f"bert: layers={layers}, hidden={hidden}, heads={heads} is not a valid encoder",
            "layers and heads must be at least 1 and hidden a multiple of heads",
        )
    if vocab < 2:
        raise BadInput(f"bert: vocab={vocab} is too small", "use a vocabulary of at least 2")
    g = _Graph("bert")
    bert = _Bert(g, hidden, heads)
    x = bert.embeddings(vocab)
    mask = bert.mask()
    constants = bert.constants()
    for i in range(layers):
        x = bert.attention(x, mask, constants, f"layer{i}")
        x = bert.ffn(x, constants, f"layer{i}")
    bert.outputs(x)
    return g.model(
        "bert",
        [
            _vi("input_ids", TensorProto.INT64, ["batch", "seq"]),
            _vi("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [
            _vi("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", hidden]),
            _vi("pooler_output", TensorProto.FLOAT, ["batch", hidden]),
        ],
        f"benchbox zoo: BERT-style encoder, {layers} layers, hidden {hidden}, {heads} heads, "
        f"vocab {vocab}, random weights",
    )


# ---------------------------------------------------------------- mixed


def _build_mixed() -> onnx.ModelProto:
    g = _Graph("mixed")
    half = g.op("Cast", ["dense_half"], "dense_half_f32", to=TensorProto.FLOAT)
    dense = g.op("Add", ["dense", half], "dense_sum")
    a = g.op("MatMul", [dense, g.normal("dense.weight", (16, 8), 0.25)], "dense_out")
    # A 50-row table: token ids must stay below 50, which exercises the id-range detection.
    emb = g.op("Gather", [g.normal("embedding", (50, 8), 1.0), "token_ids"], "token_emb")
    b = g.op("ReduceMean", [emb], "token_mean", axes=[1], keepdims=0)
    c = g.op("Cast", ["flags"], "flags_f32", to=TensorProto.FLOAT)
    y = g.op("Add", [g.op("Add", [a, b], "ab"), c], "y")
    g.nodes.append(helper.make_node("Cast", [y], ["y_half"], name="y_half", to=TensorProto.FLOAT16))
    return g.model(
        "mixed",
        [
            _vi("dense", TensorProto.FLOAT, ["batch", 16]),
            _vi("dense_half", TensorProto.FLOAT16, ["batch", 16]),
            _vi("token_ids", TensorProto.INT32, ["batch", 8]),
            _vi("flags", TensorProto.BOOL, ["batch", 8]),
        ],
        [
            _vi("y", TensorProto.FLOAT, ["batch", 8]),
            _vi("y_half", TensorProto.FLOAT16, ["batch", 8]),
        ],
        "benchbox zoo: inputs of every common dtype (float32, float16, int32, bool)",
    )


# ---------------------------------------------------------------- the catalogue

_MODELS: dict[str, tuple[ZooEntry, Callable[..., onnx.ModelProto]]] = {
    e.name: (e, fn)
    for e, fn in [
        (
            ZooEntry(
                "mlp",
                "tiny MLP 64->128->128->10 (Gemm/Relu); microseconds per inference",
                {"hidden": 128},
                "x float32 [batch, 64]",
            ),
            _build_mlp,
        ),
        (
            ZooEntry(
                "mlp_fixed",
                "the MLP with a fixed batch dimension (other batch sizes are skipped)",
                {"batch": 1, "hidden": 128},
                "x float32 [batch, 64] with the batch fixed (default 1)",
            ),
            _build_mlp_fixed,
        ),
        (
            ZooEntry(
                "resnet18",
                "ResNet-18 (batch-norm folded, random weights); the demo model",
                {"resolution": 64},
                "input float32 [batch, 3, resolution, resolution]",
            ),
            _build_resnet18,
        ),
        (
            ZooEntry(
                "bert",
                "BERT-style encoder: embeddings, self-attention with mask, GELU FFN",
                {"layers": 2, "hidden": 128, "heads": 4, "vocab": 1000},
                "input_ids int64 [batch, seq], attention_mask int64 [batch, seq]",
            ),
            _build_bert,
        ),
        (
            ZooEntry(
                "mixed",
                "inputs of every common dtype: float32, float16, int32 ids, bool",
                {},
                "dense float32, dense_half float16 [batch, 16]; token_ids int32, "
                "flags bool [batch, 8]",
            ),
            _build_mixed,
        ),
    ]
}


def list_models() -> list[ZooEntry]:
    """The built-in models, in catalogue order."""
    return [entry for entry, _ in _MODELS.values()]


def resolve_params(name: str, **params: object) -> dict[str, int]:
    """The full parameter set of a zoo model: defaults overridden by `params` (strings coerced)."""
    entry = _entry(name)
    out = dict(entry.params)
    for key, value in params.items():
        if key not in entry.params:
            known = ", ".join(entry.params) or "none"
            raise BadInput(
                f"zoo model {name!r} has no parameter {key!r}",
                f"its parameters: {known}",
            )
        try:
            number = int(str(value).strip()) if not isinstance(value, int) else value
        except ValueError:
            raise BadInput(
                f"zoo model {name!r}: parameter {key}={value!r} is not an integer"
            ) from None
        if isinstance(number, bool) or number < 1:
            raise BadInput(f"zoo model {name!r}: parameter {key}={value!r} must be at least 1")
        out[key] = number
    return out


def build(name: str, **params: object) -> onnx.ModelProto:
    """Generate a zoo model; the same name and params give byte-identical serialized models."""
    full = resolve_params(name, **params)
    try:
        return _MODELS[name][1](**full)
    except (TooLarge, MemoryError, ValueError, OverflowError):  # numpy's "array is too big" too
        shown = ", ".join(f"{k}={v}" for k, v in full.items())
        raise BadInput(
            f"zoo model {name!r} with {shown} is too large to build: an ONNX file holds at"
            f" most {MAX_WEIGHTS:,} float32 weights (2 GiB)",
            "choose smaller parameters (see `benchbox models list` for the defaults)",
        ) from None


def cache_dir() -> pathlib.Path:
    """Where built zoo models are kept: `$BENCHBOX_CACHE/zoo`, default `~/.cache/benchbox/zoo`."""
    root = os.environ.get("BENCHBOX_CACHE")
    base = pathlib.Path(root) if root else pathlib.Path.home() / ".cache" / "benchbox"
    return base / "zoo"


def path_for(name: str, cache: pathlib.Path | None = None, **params: object) -> pathlib.Path:
    """The cached file of a zoo model, built on first use (atomic write)."""
    full = resolve_params(name, **params)
    folder = cache or cache_dir()
    stem = name + "".join(f"-{k}{v}" for k, v in sorted(full.items())) + f"-g{GENERATOR_VERSION}"
    for existing in sorted(folder.glob(f"{stem}-*.onnx")):
        if existing.stat().st_size > 0:
            return existing
    data = _serialize(build(name, **full), name)
    digest = hashlib.sha256(data).hexdigest()[:12]
    target = folder / f"{stem}-{digest}.onnx"
    try:
        _write_atomic(target, data)
    except OSError as exc:
        raise BadInput(
            f"cannot write the zoo model cache at {folder} ({exc.strerror or exc})",
            "set BENCHBOX_CACHE to a writable folder",
        ) from None
    return target


def save(name: str, out: pathlib.Path, **params: object) -> str:
    """Write a zoo model to `out` (atomically) and return its sha256."""
    data = _serialize(build(name, **params), name)
    try:
        _write_atomic(pathlib.Path(out), data)
    except OSError as exc:
        raise BadInput(f"cannot write {out} ({os_reason(exc)})") from None
    return hashlib.sha256(data).hexdigest()


def resolve(spec: str) -> pathlib.Path:
    """A model argument as a file: an existing path, or a zoo name (`bert`, `bert:layers=4`)."""
    path = pathlib.Path(spec)
    if path.exists():
        return path
    name, _, rest = spec.partition(":")
    if name not in _MODELS:
        return path  # not ours: inspect_model reports the missing file
    return path_for(name, **parse_params([rest] if rest else [], name))


def parse_params(items: list[str], name: str = "") -> dict[str, str]:
    """['layers=4', 'hidden=256,heads=8'] -> {'layers': '4', 'hidden': '256', 'heads': '8'}."""
    out: dict[str, str] = {}
    for item in items:
        for part in filter(None, (s.strip() for s in str(item).split(","))):
            key, sep, value = part.partition("=")
            if not sep or not key.strip() or not value.strip():
                example = _example(name) if name in _MODELS else "layers=4"
                raise BadInput(f"parameter {part!r} is not KEY=VALUE", f"e.g. {example}")
            out[key.strip()] = value.strip()
    return out


def _example(name: str) -> str:
    params = _MODELS[name][0].params
    return ",".join(f"{k}={v}" for k, v in params.items()) or "(this model has no parameters)"


def _entry(name: str) -> ZooEntry:
    if name not in _MODELS:
        raise BadInput(f"unknown zoo model {name!r}", f"built-in models: {', '.join(_MODELS)}")
    return _MODELS[name][0]


def _serialize(model: onnx.ModelProto, name: str) -> bytes:
    """The model's bytes; BadInput past protobuf's 2 GiB limit (or out of memory)."""
    try:
        return model.SerializeToString()
    except (MemoryError, ValueError) as exc:
        raise BadInput(
            f"zoo model {name!r} is too large to write as one ONNX file ({exc})",
            "choose smaller parameters: an ONNX file holds at most 2 GiB",
        ) from None


def _write_atomic(target: pathlib.Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a model file is not a secret
        os.replace(tmp, target)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
