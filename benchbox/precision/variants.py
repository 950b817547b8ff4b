"""Model variants: the source model converted to a precision, built once and cached.

The cache (`$BENCHBOX_CACHE/variants`, default `~/.cache/benchbox/variants`) is keyed by the
source's sha256, the method, the converter's version and (int8-static) the calibration samples'
key. A built variant is checked by opening it in an onnxruntime CPU session, so a variant with
an op that has no kernel at that precision fails here, with the converter's or runtime's reason
in one line, and not in every cell. A failed variant is a `VariantInfo` with `error` set: its
cells fail with that reason and the sweep goes on.

Methods:
- fp32: the model as given.
- fp16: onnxruntime's `convert_float_to_float16`, inputs and outputs kept fp32, the ops in
  `FP16_OP_BLOCK_LIST` kept fp32 (onnxruntime's default list plus normalisations, whose
  variance overflows or loses too much in fp16).
- int8-dynamic: `quantize_dynamic`, int8 weights of MatMul/Gemm/Attention/LSTM/Gather;
  convolutions stay fp32 (a dynamically quantized Conv is ConvInteger, which onnxruntime's CPU
  EP runs only with uint8 weights, slowly: int8-static is the CNN method).
- int8-static: `quantize_static` in QDQ form, int8 activations and per-channel int8 weights,
  MinMax calibration on `calibration.calibration_samples`.
Both int8 methods upgrade models older than opset 13 first, and use 7-bit weights on x86 CPUs
without VNNI (`reduce_range`), where full 8-bit weights saturate (the cache key says which).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pathlib
import tempfile
from collections.abc import Callable
from typing import Any

from benchbox import model as model_mod
from benchbox.precision import calibration
from benchbox.schema import ModelInfo, VariantInfo

MAX_PROTO_BYTES = 2**31 - 1  # protobuf's limit on one serialized ONNX file
LAYOUT_VERSION = 1  # bump when a method's settings change, so old cache entries are not reused
DYNAMIC_OPS = ["MatMul", "Gemm", "Attention", "LSTM", "Gather", "EmbedLayerNormalization"]
_NORMS = ["LayerNormalization", "SkipLayerNormalization", "SimplifiedLayerNormalization"]
METHODS = {
    "fp32": "the model as given",
    "fp16": "onnxruntime.transformers.float16.convert_float_to_float16 (keep_io_types)",
    "int8-dynamic": "onnxruntime.quantization.quantize_dynamic (int8 weights)",
    "int8-static": "onnxruntime.quantization.quantize_static (QDQ, MinMax calibration)",
}


def fp16_op_block_list() -> list[str]:
    """The ops an fp16 variant keeps in fp32."""
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST

    return sorted(set(DEFAULT_OP_BLOCK_LIST) | set(_NORMS))


def cache_dir() -> pathlib.Path:
    """`$BENCHBOX_CACHE/variants`, default `~/.cache/benchbox/variants`."""
    root = os.environ.get("BENCHBOX_CACHE")
    base = pathlib.Path(root) if root else pathlib.Path.home() / ".cache" / "benchbox"
    return base / "variants"


def reduce_range() -> bool:
    """True on x86 CPUs without VNNI: their u8s8 int8 kernels (vpmaddubsw) saturate int16 sums,
    which with full 8-bit weights gave a 20% relative error on a single Conv (onnxruntime's
    quantization docs advise 7-bit weights, `reduce_range`, there)."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
        return False
    try:
        flags = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        return True
    return "avx512_vnni" not in flags and "avx_vnni" not in flags


def converter_version() -> str:
    """The converters' version: onnxruntime's (both converters ship with it)."""
    import onnxruntime

    return f"onnxruntime {onnxruntime.__version__}"


def samples_key(samples: list[dict[str, Any]]) -> str:
    """A short digest of calibration input sets (names, dtypes, shapes and bytes)."""
    digest = hashlib.sha256()
    for feed in samples:
        for name in sorted(feed):
            array = feed[name]
            digest.update(f"{name}:{array.dtype}:{array.shape}".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()[:12]


def build_variant(
    source: str,
    info: ModelInfo,
    precision: str,
    samples: list[dict[str, Any]] | None = None,
    source_name: str | None = None,
    cache: pathlib.Path | None = None,
) -> VariantInfo:
    """The variant of `source` at `precision`, from the cache or built now; `error` set when it
    cannot be built or loaded. `samples`: real calibration inputs (int8-static), from a data
    source named `source_name`; None: synthetic ones (BadInput when the model needs data)."""
    sha = info.sha256 or model_mod.sha256_file(source)
    if precision == "fp32":
        return VariantInfo(
            "fp32",
            METHODS["fp32"],
            source,
            sha,
            pathlib.Path(source).stat().st_size,
            None,
            None,
        )
    version = converter_version()
    calib, calib_text = None, None
    if precision == "int8-static":
        calib, calib_text = calibration.calibration_samples(info, samples, source_name)
    tag = version.replace(" ", "-") + f"-l{LAYOUT_VERSION}" + ("-rr" if reduce_range() else "")
    key = f"{sha[:16]}-{precision}-{tag}" + (f"-c{samples_key(calib)}" if calib else "")
    folder = cache or cache_dir()
    target = folder / f"{key}.onnx"
    meta = folder / f"{key}.json"
    base = VariantInfo(
        precision, METHODS[precision], converter=precision, converter_version=version
    )
    base = _with(base, calibration=calib_text)
    if target.exists() and meta.exists():
        return _from_meta(base, target, meta)
    error = _build(source, target, precision, calib)
    if error is None:
        error = load_check(target)
    if error is not None:
        target.unlink(missing_ok=True)
        return _with(base, error=error)
    digest = model_mod.sha256_file(target)
    meta_text = json.dumps({"sha256": digest, "size_bytes": target.stat().st_size})
    _write_text(meta, meta_text)
    return _with(base, path=str(target), sha256=digest, size_bytes=target.stat().st_size)


def _with(v: VariantInfo, **changes: Any) -> VariantInfo:
    from dataclasses import replace

    return replace(v, **changes)


def _from_meta(base: VariantInfo, target: pathlib.Path, meta: pathlib.Path) -> VariantInfo:
    data = json.loads(meta.read_text())
    return _with(base, path=str(target), sha256=data["sha256"], size_bytes=data["size_bytes"])


def _build(source: str, target: pathlib.Path, precision: str, calib: list | None) -> str | None:
    """Convert `source` into `target` (atomically); the converter's reason in one line, or None."""
    target.parent.mkdir(parents=True, exist_ok=True)
    source = str(pathlib.Path(source).resolve())  # quantize_static cannot open a relative path
    size = pathlib.Path(source).stat().st_size
    if size > MAX_PROTO_BYTES:
        return f"the model is {size / 2**30:.1f} GiB; {precision} conversion needs one file < 2 GiB"
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".onnx", dir=target.parent)
    os.close(fd)
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # the converters log advice on the root logger
    try:
        _CONVERTERS[precision](source, tmp, calib)
        if pathlib.Path(tmp).stat().st_size > MAX_PROTO_BYTES:
            return f"the {precision} model is over 2 GiB, the limit of one ONNX file"
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
        return None
    except Exception as exc:  # the converters raise anything from ValueError to RuntimeError
        return f"{precision} conversion failed: {one_line(exc)}"
    finally:
        logging.disable(previous)
        pathlib.Path(tmp).unlink(missing_ok=True)


def _fp16(source: str, out: str, _calib: list | None) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(source)
    converted = convert_float_to_float16(
        model, keep_io_types=True, op_block_list=fp16_op_block_list()
    )
    onnx.save(converted, out)


QDQ_OPSET = 13  # per-channel int8 QuantizeLinear/DequantizeLinear need opset 13


def _upgraded(source: str, work: str) -> str:
    """The source, converted to opset 13 first when it is older (a copy in `work`)."""
    import onnx

    model = onnx.load(source)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset >= QDQ_OPSET:
        return source
    from onnx import version_converter

    upgraded = version_converter.convert_version(model, QDQ_OPSET)
    path = os.path.join(work, "upgraded.onnx")
    onnx.save(upgraded, path)
    return path


def _dynamic(source: str, out: str, _calib: list | None) -> None:

    with tempfile.TemporaryDirectory(prefix="benchbox-quant-") as work:
        _dynamic_in(_upgraded(source, work), out)


def _dynamic_in(source: str, out: str) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        source,
        out,
        op_types_to_quantize=DYNAMIC_OPS,
        weight_type=QuantType.QInt8,
        reduce_range=reduce_range(),
    )


def _static(source: str, out: str, calib: list | None) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    with tempfile.TemporaryDirectory(prefix="benchbox-calib-") as work:
        # quantize_static writes its augmented model beside the working directory's files
        cwd = os.getcwd()
        source = _upgraded(source, work)
        os.chdir(work)
        try:
            quantize_static(
                source,
                out,
                calibration.data_reader(calib or []),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                reduce_range=reduce_range(),
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
            )
        finally:
            os.chdir(cwd)


_CONVERTERS: dict[str, Callable[[str, str, list | None], None]] = {
    "fp16": _fp16,
    "int8-dynamic": _dynamic,
    "int8-static": _static,
}


def load_check(path: pathlib.Path) -> str | None:
    """Why onnxruntime's CPU EP cannot open the variant (a kernel missing), or None."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 4
    so.intra_op_num_threads = 1
    try:
        ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    except Exception as exc:
        return f"onnxruntime cannot run the variant on the CPU: {one_line(exc)}"
    return None


def one_line(exc: BaseException) -> str:
    """An exception's informative text on one line (onnxruntime prefixes a location)."""
    text = " ".join((str(exc).strip() or type(exc).__name__).split())
    return text[:400]


def _write_text(path: pathlib.Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def build_variants(
    source: str,
    info: ModelInfo,
    precisions: tuple[str, ...],
    samples: list[dict[str, Any]] | None = None,
    source_name: str | None = None,
) -> tuple[VariantInfo, ...]:
    """Every precision's variant, in order (built or from the cache)."""
    return tuple(build_variant(source, info, p, samples, source_name) for p in precisions)
