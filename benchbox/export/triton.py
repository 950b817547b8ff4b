"""Triton model repository for a measured cell: `<out>/<name>/config.pbtxt` + `<name>/1/model.onnx`.

The config follows Triton's ModelConfig protobuf (model_config.proto) and the onnxruntime
backend's README: `platform: "onnxruntime_onnx"`, dims without the batch dim when
`max_batch_size > 0`, thread counts as string parameters (`intra_op_thread_count`,
`inter_op_thread_count`, `execution_mode`), graph level (-1 basic, 1 extended, 2 disabled,
absent = all), and execution accelerators (`openvino` on CPU, `tensorrt` or `cuda` on GPU).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import onnx

from benchbox import schema
from benchbox.devices import DeviceSpec, parse_device
from benchbox.errors import BadInput
from benchbox.export.common import (
    batchable,
    model_tensors,
    prepare_out_dir,
    provenance,
    resolve_model_path,
)
from benchbox.store import atomic_write_text

# benchbox dtype names (benchbox.model) -> Triton DataType enum names.
TRITON_TYPES = {
    "bool": "TYPE_BOOL",
    "uint8": "TYPE_UINT8",
    "uint16": "TYPE_UINT16",
    "uint32": "TYPE_UINT32",
    "uint64": "TYPE_UINT64",
    "int8": "TYPE_INT8",
    "int16": "TYPE_INT16",
    "int32": "TYPE_INT32",
    "int64": "TYPE_INT64",
    "float16": "TYPE_FP16",
    "float32": "TYPE_FP32",
    "float64": "TYPE_FP64",
    "string": "TYPE_STRING",
    "bfloat16": "TYPE_BF16",
}
# ServingConfig.graph_optimization -> optimization.graph.level of the onnxruntime backend.
GRAPH_LEVELS = {"basic": -1, "extended": 1, "disable": 2}
# onnxruntime TensorRT EP options the Triton backend accepts under the same name.
_TRT_SAME_NAME = {
    "trt_max_partition_iterations",
    "trt_min_subgraph_size",
    "trt_dla_enable",
    "trt_dla_core",
    "trt_engine_cache_enable",
    "trt_engine_cache_path",
    "trt_engine_cache_prefix",
    "trt_dump_subgraphs",
    "trt_force_sequential_engine_build",
    "trt_context_memory_sharing_enable",
    "trt_layer_norm_fp32_fallback",
    "trt_timing_cache_enable",
    "trt_timing_cache_path",
    "trt_force_timing_cache",
    "trt_detailed_build_log",
    "trt_build_heuristics_enable",
    "trt_sparsity_enable",
    "trt_builder_optimization_level",
    "trt_auxiliary_streams",
    "trt_tactic_sources",
    "trt_extra_plugin_lib_paths",
    "trt_profile_min_shapes",
    "trt_profile_max_shapes",
    "trt_profile_opt_shapes",
    "trt_cuda_graph_enable",
}
_TRUE = {"1", "true", "True", "TRUE", "yes", "on"}


def export_triton(
    report: schema.Report,
    cell: schema.Cell,
    out_dir: str | Path,
    model_name: str | None = None,
    model_path: str | Path | None = None,
) -> list[Path]:
    """Write a Triton model repository entry for `cell`; returns config.pbtxt and model files."""
    source = resolve_model_path(report, model_path, cell)
    name = model_name or re.sub(r"[^A-Za-z0-9_.-]+", "_", source.stem).strip("._") or "model"
    if "/" in name or name in (".", ".."):
        raise BadInput(f"Triton model name {name!r} is not a folder name")
    text = triton_config(report, cell, name, model_path=source)
    folder = prepare_out_dir(out_dir) / name
    written = [atomic_write_text(folder / "config.pbtxt", text)]
    written += _copy_model(source, folder / "1")
    return written


def triton_config(
    report: schema.Report,
    cell: schema.Cell,
    name: str,
    model_path: str | Path | None = None,
) -> str:
    """The config.pbtxt text for `cell` (Triton's protobuf text format)."""
    cfg = cell.config
    spec = parse_device(cfg.device)
    kind, gpus = _instance_kind(spec)
    inputs, outputs = model_tensors(report, model_path)
    can_batch = batchable(inputs) and batchable(outputs)
    db = cfg.dynamic_batching
    if not can_batch:
        max_batch = 0
    elif db is not None:
        max_batch = db.max_batch
    else:
        max_batch = max(1, cfg.batch_size)

    lines = [f"# {k}: {v}" for k, v in provenance(report, cell).items() if v not in (None, "")]
    lines.insert(0, "# Written by benchbox from a measured cell.")
    lines += [
        f"name: {_q(name)}",
        'platform: "onnxruntime_onnx"',
        f"max_batch_size: {max_batch}",
        "input [",
        ",\n".join(_tensor(t, max_batch) for t in inputs),
        "]",
        "output [",
        ",\n".join(_tensor(t, max_batch) for t in outputs),
        "]",
        "instance_group [",
        "  {",
        f"    count: {cfg.instances}",
        f"    kind: {kind}",
    ]
    if gpus is not None:
        lines.append(f"    gpus: [ {gpus} ]")
    lines += ["  }", "]"]

    if max_batch > 0 and db is not None:
        preferred = [b for b in db.preferred if 0 < b <= max_batch]
        lines.append("dynamic_batching {")
        if preferred:
            lines.append(f"  preferred_batch_size: [ {', '.join(map(str, preferred))} ]")
        lines.append(f"  max_queue_delay_microseconds: {round(db.delay_ms * 1000)}")
        lines.append("}")
    elif max_batch > 1:
        # A batching cell: let the server form batches of the measured size, without waiting.
        lines += [
            "dynamic_batching {",
            f"  preferred_batch_size: [ {max_batch} ]",
            "  max_queue_delay_microseconds: 0",
            "}",
        ]

    # The measured sessions ran sequentially with one inter-op thread (benchbox.backends).
    for key, value in (
        ("intra_op_thread_count", cfg.intra_op_threads),
        ("inter_op_thread_count", 1),
        ("execution_mode", 0),
    ):
        lines.append(f"parameters {{ key: {_q(key)} value: {{ string_value: {_q(str(value))} }} }}")

    lines += _optimization(cfg, spec)
    return "\n".join(lines) + "\n"


def _instance_kind(spec: DeviceSpec) -> tuple[str, int | None]:
    if spec.kind == "cpu" or (spec.kind == "openvino" and (spec.target or "CPU") == "CPU"):
        return "KIND_CPU", None
    if spec.kind in ("cuda", "tensorrt"):
        return "KIND_GPU", spec.index or 0
    if spec.kind == "openvino":
        raise BadInput(
            f"Triton's onnxruntime backend runs OpenVINO on the CPU only, not {spec.name}",
            "export this cell with --export onnxruntime or kserve, or pick a CPU cell",
        )
    raise BadInput(
        f"Triton's onnxruntime backend has no {spec.kind} support (device {spec.name})",
        "it runs on cpu, cuda, tensorrt and openvino (CPU); try --export onnxruntime",
    )


def _tensor(t: schema.TensorSpec, max_batch: int) -> str:
    dtype = TRITON_TYPES.get(t.dtype)
    if dtype is None:
        raise BadInput(
            f"tensor {t.name!r} has type {t.dtype}, which Triton cannot serve",
            "Triton takes bool, (u)int8-64, float16/32/64, bfloat16 and string tensors",
        )
    shape = list(t.shape[1:] if max_batch > 0 else t.shape)
    dims = [d if isinstance(d, int) and d > 0 else -1 for d in shape]
    out = ["  {", f"    name: {_q(t.name)}", f"    data_type: {dtype}"]
    if not dims:  # a scalar per request: Triton wants dims [1] (reshaped away when batching)
        out.append("    dims: [ 1 ]")
        if max_batch > 0:
            out.append("    reshape: { shape: [ ] }")
    else:
        out.append(f"    dims: [ {', '.join(map(str, dims))} ]")
    out.append("  }")
    return "\n".join(out)


def _optimization(cfg: schema.ServingConfig, spec: DeviceSpec) -> list[str]:
    body: list[str] = []
    level = GRAPH_LEVELS.get(cfg.graph_optimization)
    if level is not None:
        body.append(f"  graph {{ level: {level} }}")
    accel = None
    if spec.kind == "openvino":
        accel = ("cpu_execution_accelerator", "openvino", {})
    elif spec.kind == "tensorrt":
        params = tensorrt_parameters(spec.options)
        if cfg.precision == "fp16":  # (precision) TensorRT builds its engine in fp16 too
            params.setdefault("precision_mode", "FP16")
        accel = ("gpu_execution_accelerator", "tensorrt", params)
    elif spec.kind == "cuda":
        options = {k: v for k, v in spec.options.items() if k != "device_id"}
        if options:
            accel = ("gpu_execution_accelerator", "cuda", options)
    if accel is not None:
        field, name, params = accel
        body += ["  execution_accelerators {", f"    {field} [", "      {"]
        body.append(f"        name: {_q(name)}")
        for key, value in params.items():
            body.append(f"        parameters {{ key: {_q(key)} value: {_q(str(value))} }}")
        body += ["      }", "    ]", "  }"]
    return ["optimization {", *body, "}"] if body else []


def tensorrt_parameters(options: dict[str, str]) -> dict[str, str]:
    """onnxruntime TensorRT EP options -> the Triton backend's accelerator parameters."""
    params: dict[str, str] = {}
    for flag, mode in (
        ("trt_int8_enable", "INT8"),
        ("trt_bf16_enable", "BF16"),
        ("trt_fp16_enable", "FP16"),
    ):
        if str(options.get(flag, "")) in _TRUE:
            params["precision_mode"] = mode
            break
    if "trt_max_workspace_size" in options:
        params["max_workspace_size_bytes"] = str(options["trt_max_workspace_size"])
    if "trt_int8_calibration_table_name" in options:
        params["int8_calibration_table_name"] = options["trt_int8_calibration_table_name"]
    if "trt_int8_use_native_calibration_table" in options:
        params["int8_use_native_calibration_table"] = options[
            "trt_int8_use_native_calibration_table"
        ]
    for key, value in sorted(options.items()):
        if key in _TRT_SAME_NAME:
            params[key] = str(value)
    return params


def _q(text: str) -> str:
    """A protobuf text-format string literal."""
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def _copy_model(source: Path, version_dir: Path) -> list[Path]:
    """Copy the model as `<version>/model.onnx`, or `<version>/model.onnx/` with external data."""
    external = external_data_files(source)
    if version_dir.exists():
        shutil.rmtree(version_dir)
    version_dir.mkdir(parents=True)
    if not external:
        target = version_dir / "model.onnx"
        shutil.copyfile(source, target)
        return [target]
    # The backend loads <version>/model.onnx/model.onnx when model.onnx is a folder, and
    # onnxruntime resolves external data relative to the model file.
    folder = version_dir / "model.onnx"
    folder.mkdir()
    written = [folder / "model.onnx"]
    shutil.copyfile(source, written[0])
    for rel in external:
        src = source.parent / rel
        if not src.is_file():
            raise BadInput(
                f"the model's external data file {src} does not exist",
                "keep the .onnx file next to its weight files",
            )
        dst = folder / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        written.append(dst)
    return written


def external_data_files(path: Path) -> list[str]:
    """Relative paths of the external weight files an ONNX model refers to (sorted, unique)."""
    model = onnx.load(str(path), load_external_data=False)
    found: set[str] = set()

    def tensors(graph: onnx.GraphProto):
        yield from graph.initializer
        for node in graph.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    yield attr.t
                yield from attr.tensors
                if attr.HasField("g"):
                    yield from tensors(attr.g)
                for g in attr.graphs:
                    yield from tensors(g)

    for t in tensors(model.graph):
        if t.data_location == onnx.TensorProto.EXTERNAL:
            for entry in t.external_data:
                if entry.key == "location":
                    rel = Path(entry.value)
                    if rel.is_absolute() or ".." in rel.parts:
                        raise BadInput(
                            f"the model refers to weights outside its folder ({entry.value})",
                            "save the model with its external data beside it",
                        )
                    found.add(entry.value)
    return sorted(found)
