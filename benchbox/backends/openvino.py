"""The OpenVINO runtime backend (`ov:CPU`, `ov:GPU`): ONNX files compiled by OpenVINO itself.

benchbox's axes map onto OpenVINO's knobs:

- instances -> `NUM_STREAMS` (one compiled model with that many streams; OpenVINO's own way of
  running independent inferences side by side), with `PERFORMANCE_HINT` LATENCY for one stream
  and THROUGHPUT for more;
- threads -> `INFERENCE_NUM_THREADS` = threads x instances on CPU (OpenVINO counts threads for
  the whole compiled model, onnxruntime per session), so each stream gets `threads` threads;
- concurrency -> infer requests: each load worker thread gets its own infer request, so N
  requests in flight are N infer requests (what benchmark_app's `-nireq` counts). A runner runs
  one batch synchronously on the calling thread's request.

- precision -> `INFERENCE_PRECISION_HINT` (fp16: f16 on the fp32 model; int8: the quantized
  model; see PRECISION_HINTS).

Device options (`ov:CPU?INFERENCE_PRECISION_HINT=f32`) are OpenVINO properties and win over
the mapped ones. The model is reshaped to static input shapes for the cell's batch size (as
benchmark_app's `-shape` does); inputs of another shape get their own compiled copy on first use.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from benchbox.backends import CellFailure, Feeds, Instances, Runner
from benchbox.devices import DeviceSpec, openvino_core, parse_device, unavailable_reason
from benchbox.schema import CellWarning, ServingConfig
from benchbox.warning_kinds import WarningKind

MULTI_DEVICE = ("AUTO", "MULTI", "HETERO", "BATCH")
# benchbox's precision -> OpenVINO's INFERENCE_PRECISION_HINT. fp32 leaves OpenVINO's default
# (f32, or bf16 on CPUs with AMX/AVX-512 BF16: the `precision` note and the accuracy check's
# fp32 flag say so; `?INFERENCE_PRECISION_HINT=f32` forces f32). The int8 precisions run the
# quantized ONNX variant, OpenVINO's default for its non-quantized parts.
PRECISION_HINTS = {"fp16": "f16"}


def ov_properties(config: ServingConfig, spec: DeviceSpec) -> dict[str, str]:
    """The OpenVINO properties a serving config stands for (device options override them)."""
    props = {
        "PERFORMANCE_HINT": "LATENCY" if config.instances == 1 else "THROUGHPUT",
        "NUM_STREAMS": str(config.instances),
    }
    if (spec.target or "CPU").split(".")[0] == "CPU":
        props["INFERENCE_NUM_THREADS"] = str(config.intra_op_threads * config.instances)
    hint = PRECISION_HINTS.get(config.precision)
    if hint:
        props["INFERENCE_PRECISION_HINT"] = hint
    props.update(spec.options)
    return props


def supported_properties(core: Any, target: str, props: dict[str, str]) -> dict[str, str]:
    """The properties the device accepts (GPUs have no INFERENCE_NUM_THREADS, for instance)."""
    try:
        names = set(core.get_property(target, "SUPPORTED_PROPERTIES"))
    except Exception:  # a virtual device (AUTO, HETERO) passes everything through
        return dict(props)
    return {k: v for k, v in props.items() if k in names}


def static_shapes(model_path: str, batch_size: int) -> dict[str, tuple[int, ...]] | None:
    """Input shapes for a batch size (other symbolic dims at benchbox's defaults), or None."""
    from benchbox import model as model_mod

    try:
        info = model_mod.inspect_model(model_path)
        if model_mod.batch_skip_reason(info, batch_size):
            return None
        return model_mod.input_shapes(info, batch_size)
    except Exception:  # the runner compiles for whatever shapes it is given
        return None


class CompiledModels:
    """One OpenVINO model compiled per input-shape signature, and one infer request per thread."""

    def __init__(self, core: Any, model: Any, target: str, props: dict[str, str]) -> None:
        self.core, self.model, self.target, self.props = core, model, target, props
        self.by_shapes: dict[tuple, Any] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    def compile(self, shapes: dict[str, tuple[int, ...]] | None) -> Any:
        """The compiled model for these input shapes (None: as the model declares them)."""
        key = _key(shapes)
        with self._lock:
            if key in self.by_shapes:
                return self.by_shapes[key]
            model = self.model
            if shapes:
                model = self.model.clone()
                model.reshape({name: list(shape) for name, shape in shapes.items()})
            compiled = self.core.compile_model(model, self.target, self.props)
            self.by_shapes[key] = compiled
            return compiled

    def request(self, feeds: Feeds) -> Any:
        """This thread's infer request for `feeds`, with those inputs set on it.

        Each pooled input dict is wrapped once per thread in OpenVINO tensors that share its
        memory; setting prepared tensors costs less than `infer(dict)`, which wraps them anew
        on every call (several percent of a ResNet-18 inference on a small CPU).
        """
        local = self._local
        bound = getattr(local, "bound", None)
        if bound is None:
            bound = local.bound = {}
        hit = bound.get(id(feeds))
        if hit is None or hit[0] is not feeds:
            hit = bound[id(feeds)] = (feeds, self._request_for(feeds), _tensors(feeds))
            if len(bound) > 256:  # a driver that makes fresh inputs per request: do not grow
                bound.clear()
                bound[id(feeds)] = hit
        _, req, tensors = hit
        for name, tensor, _ in tensors:
            req.set_tensor(name, tensor)
        return req

    def _request_for(self, feeds: Feeds) -> Any:
        key = _key(_shapes_of(feeds))
        requests = getattr(self._local, "requests", None)
        if requests is None:
            requests = self._local.requests = {}
        req = requests.get(key)
        if req is None:
            compiled = self.by_shapes.get(key)
            if compiled is None:
                compiled = self.compile(_shapes_of(feeds))
            req = requests[key] = compiled.create_infer_request()
        return req

    def close(self) -> None:
        """Drop the compiled models and requests."""
        self.by_shapes.clear()
        self._local = threading.local()


def _tensors(feeds: Feeds) -> list[tuple[str, Any, np.ndarray]]:
    import openvino as ov

    out = []
    for name, array in feeds.items():
        array = np.ascontiguousarray(array)  # the tensor shares this memory; the cache keeps it
        out.append((name, ov.Tensor(array, shared_memory=True), array))
    return out


def _shapes_of(feeds: Feeds) -> dict[str, tuple[int, ...]]:
    return {name: tuple(array.shape) for name, array in feeds.items()}


def _key(shapes: dict[str, tuple[int, ...]] | None) -> tuple:
    return tuple(sorted((shapes or {}).items()))


def make_runner(models: CompiledModels) -> Runner:
    """A runner: one batch, synchronously, on the calling thread's own infer request."""

    def run(feeds: Feeds) -> Any:
        return models.request(feeds).infer(share_outputs=True)

    return run


def execution_check(spec: DeviceSpec, execution_devices: list[str]) -> str | None:
    """Why a compiled model does not run on the requested device, or None when it does."""
    target = spec.target or "CPU"
    if target.split(":")[0] in MULTI_DEVICE:
        return None
    base = target.split(".")[0]
    if any(str(d).split(".")[0] == base for d in execution_devices):
        return None
    return (
        f"OpenVINO was asked for {target} but runs on {', '.join(map(str, execution_devices))} "
        "(silent fallback); not reporting it under this device's name"
    )


def _precision(compiled: Any) -> str | None:
    try:
        value = compiled.get_property("INFERENCE_PRECISION_HINT")
    except Exception:
        return None
    return value.get_type_name() if hasattr(value, "get_type_name") else str(value)


def open_instances(model_path: str, config: ServingConfig) -> Instances:
    """One compiled model with `config.instances` streams; a runner per instance."""
    spec = parse_device(config.device)
    reason = unavailable_reason(spec)
    if reason:
        raise CellFailure(reason)
    if config.io_binding and spec.is_gpu:
        raise CellFailure("io_binding is an onnxruntime option; the OpenVINO backend lacks it")
    import openvino as ov

    core = openvino_core()
    target = spec.target or "CPU"
    props = supported_properties(core, target, ov_properties(config, spec))
    try:
        model = core.read_model(model_path)
        models = CompiledModels(core, model, target, props)
        compiled = models.compile(static_shapes(model_path, config.batch_size))
    except Exception as exc:  # OpenVINO raises RuntimeError with a long multi-line text
        text = str(exc).strip() or type(exc).__name__  # whole: the cause follows the location
        raise CellFailure(f"OpenVINO could not compile the model for {target}: {text}") from None
    try:
        executing = [str(d) for d in compiled.get_property("EXECUTION_DEVICES")]
    except Exception:
        executing = [target]
    fallback = execution_check(spec, executing)
    if fallback:
        raise CellFailure(fallback)
    notes = [_settings_note(compiled, target, props)]
    precision = _precision(compiled)
    if precision and precision not in ("f32", "float32") and target.startswith("CPU"):
        notes.append(
            CellWarning(
                WarningKind.PRECISION,
                f"OpenVINO computes in {precision} on this CPU (its default here); add "
                "?INFERENCE_PRECISION_HINT=f32 to the device for float32 like onnxruntime",
            )
        )
    if config.graph_optimization != "all":
        notes.append(
            CellWarning(
                WarningKind.GRAPH_OPTIMIZATION,
                "applies to onnxruntime; OpenVINO uses its own passes",
            )
        )
    if spec.is_gpu:
        notes.append(
            CellWarning(
                WarningKind.HOST_COPIES,
                f"the timed path includes host<->device copies (each request copies "
                f"its inputs to {spec.name} and its outputs back)",
            )
        )
    elif config.io_binding:
        notes.append(
            CellWarning(
                WarningKind.IO_BINDING,
                "on a CPU device there are no host<->device copies to remove",
            )
        )
    return Instances(
        runners=[make_runner(models) for _ in range(config.instances)],
        runtime=f"openvino {ov.__version__.split('-')[0]}",
        providers=[f"OpenVINO {'/'.join(executing)}"],
        close=models.close,
        notes=notes,
    )


def _settings_note(compiled: Any, target: str, props: dict[str, str]) -> CellWarning:
    shown = []
    for name in ("PERFORMANCE_HINT", "NUM_STREAMS", "INFERENCE_NUM_THREADS"):
        try:
            value = compiled.get_property(name)
        except Exception:
            value = props.get(name)
        if value is not None:
            shown.append(f"{name}={getattr(value, 'name', value)}")
    text = f"{target} with {', '.join(shown)}; one infer request per request in flight"
    return CellWarning(WarningKind.OPENVINO, text)
