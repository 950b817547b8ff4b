"""The onnxruntime backend: sessions for every execution provider, checked for silent fallback.

A provider comes either built into the onnxruntime build (`providers=[...]`) or, since
onnxruntime 1.23, from a plugin library registered at run time and chosen through its EP device
(`SessionOptions.add_provider_for_devices`). Either way, after the session is built, the
providers it runs and (where onnxruntime can tell) the nodes each one was given are checked: a
session that quietly runs on the CPU fails the cell rather than report a CPU figure under a
GPU's name.

On a GPU, the plain runner feeds numpy arrays, so every request copies its inputs to the device
and its outputs back, inside the timed path. `io_binding` keeps inputs on the device (copied
once per pooled input) and leaves outputs there, which is what trtexec's GPU compute time means.
"""

from __future__ import annotations

import threading
from functools import partial
from typing import Any

import onnxruntime as ort

from benchbox.backends import CellFailure, Feeds, Instances, Runner
from benchbox.devices import (
    DeviceSpec,
    available_providers,
    parse_device,
    plugin_device,
    unavailable_reason,
)
from benchbox.schema import CellWarning, ServingConfig
from benchbox.warning_kinds import WarningKind

GRAPH_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
CPU_EP = "CPUExecutionProvider"
# Where io_binding puts tensors: OrtValue device type per device kind (CPU kinds use "cpu").
DEVICE_MEMORY = {"cuda": "cuda", "tensorrt": "cuda", "dml": "dml"}
# onnxruntime's own log lines (coloured, on stderr) say what its exceptions say: fatal only.
LOG_SEVERITY = 4
ort.set_default_logger_severity(LOG_SEVERITY)
RECORD_ASSIGNMENT = "session.record_ep_graph_assignment_info"  # onnxruntime 1.23+


def session_options(config: ServingConfig) -> ort.SessionOptions:
    """The SessionOptions a serving config stands for (the same ones a bare loop would use)."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = config.intra_op_threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = GRAPH_LEVELS.get(config.graph_optimization, GRAPH_LEVELS["all"])
    so.log_severity_level = LOG_SEVERITY
    return so


def provider_list(spec: DeviceSpec, providers: list[str] | None = None) -> list:
    """The providers argument of InferenceSession for a device (options included).

    TensorRT gets CUDA as its second provider when the build has it, so the nodes TensorRT
    cannot take run on the GPU rather than the CPU (as onnxruntime's documentation advises).
    """
    options = dict(spec.options)
    if spec.index is not None:
        options.setdefault("device_id", str(spec.index))
    if spec.kind == "openvino":
        options.setdefault("device_type", spec.target or "CPU")
    if spec.kind == "cpu":
        return [(CPU_EP, options)] if options else [CPU_EP]
    out: list = [(spec.provider, options)]
    if spec.kind == "tensorrt":
        providers = available_providers() if providers is None else providers
        if "CUDAExecutionProvider" in providers:
            out.append(("CUDAExecutionProvider", {"device_id": str(spec.index or 0)}))
    return [*out, CPU_EP]


# ---------------------------------------------------------------- silent fallback


def nodes_per_provider(session: ort.InferenceSession) -> dict[str, int] | None:
    """How many of the model's nodes each provider was given, or None when onnxruntime cannot
    tell (older than 1.23, or the session was built without recording it)."""
    try:
        subgraphs = session.get_provider_graph_assignment_info()
    except Exception:
        return None
    out: dict[str, int] = {}
    for sub in subgraphs:
        out[sub.ep_name] = out.get(sub.ep_name, 0) + len(sub.get_nodes())
    return out


def fallback_reason(
    requested: str, active: list[str], nodes: dict[str, int] | None = None
) -> str | None:
    """Why a session does not really run on the requested provider, or None when it does."""
    if not active or active[0] != requested:
        return (
            f"{requested} was requested but onnxruntime runs on {active[0] if active else 'none'}"
            " (silent fallback); not reporting a CPU figure under this device's name"
        )
    if nodes and requested != CPU_EP and nodes.get(requested, 0) == 0:
        total = sum(nodes.values())
        where = ", ".join(sorted(k for k, v in nodes.items() if v))
        return (
            f"{requested} accepted the session but was given none of the model's {total} nodes; "
            f"they all run on {where} (silent fallback)"
        )
    return None


def placement_note(requested: str, nodes: dict[str, int] | None) -> CellWarning | None:
    """A note when part of the model runs on another provider than the requested one."""
    if not nodes or requested == CPU_EP:
        return None
    total = sum(nodes.values())
    elsewhere = {k: v for k, v in nodes.items() if k != requested and v}
    if not elsewhere:
        return None
    parts = ", ".join(f"{v} on {k}" for k, v in sorted(elsewhere.items()))
    return CellWarning(
        WarningKind.PLACEMENT,
        f"{nodes.get(requested, 0)} of {total} nodes run on {requested}; {parts}",
    )


def check_session(session: ort.InferenceSession, requested: str) -> CellWarning | None:
    """CellFailure when the session fell back; otherwise a placement note (or None)."""
    nodes = nodes_per_provider(session)
    reason = fallback_reason(requested, list(session.get_providers()), nodes)
    if reason:
        raise CellFailure(reason)
    return placement_note(requested, nodes)


# ---------------------------------------------------------------- sessions


def with_assignment_recording(so: ort.SessionOptions) -> ort.SessionOptions:
    """The options, asking onnxruntime to record which provider got which node."""
    try:
        so.add_session_config_entry(RECORD_ASSIGNMENT, "1")
    except Exception:  # an onnxruntime that does not know the key: checks use providers only
        pass
    return so


def open_session(model_path: str, config: ServingConfig) -> ort.InferenceSession:
    """One InferenceSession on the config's device; CellFailure if it silently fell back."""
    session, _ = _open(model_path, config)
    return session


def open_session_on_ep_devices(
    model_path: str, config: ServingConfig, ep_devices: list, options: dict[str, str] | None = None
) -> ort.InferenceSession:
    """A session on onnxruntime EP devices (the plugin path), with the fallback check."""
    session = _session_on_devices(model_path, config, ep_devices, options)
    check_session(session, ep_devices[0].ep_name)
    return session


def _session_on_devices(
    model_path: str, config: ServingConfig, ep_devices: list, options: dict[str, str] | None
) -> ort.InferenceSession:
    so = with_assignment_recording(session_options(config))
    so.add_provider_for_devices(ep_devices, dict(options or {}))
    try:
        return ort.InferenceSession(model_path, sess_options=so)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise CellFailure(f"onnxruntime could not load the model: {_first_line(exc)}") from None


def _open(model_path: str, config: ServingConfig) -> tuple[ort.InferenceSession, list[CellWarning]]:
    spec = parse_device(config.device)
    reason = unavailable_reason(spec)
    if reason:
        raise CellFailure(reason)
    notes: list[CellWarning] = []
    builtin = spec.provider in available_providers()
    if not builtin:  # unavailable_reason found a plugin EP device for it
        device = plugin_device(spec)
        session = _session_on_devices(model_path, config, [device], spec.options)
        notes.append(
            CellWarning(
                WarningKind.PLUGIN_EP, f"{spec.provider} loaded as a plugin library (EP device)"
            )
        )
    else:
        try:
            session = ort.InferenceSession(
                model_path,
                sess_options=with_assignment_recording(session_options(config)),
                providers=provider_list(spec),
            )
        except Exception as exc:
            raise CellFailure(
                f"onnxruntime could not load the model on {spec.name}: {_first_line(exc)}"
            ) from None
    note = check_session(session, spec.provider)
    if note:
        notes.append(note)
    return session, notes


def _first_line(exc: BaseException) -> str:
    """The exception's whole text (the report keeps it whole; views show its informative line)."""
    return str(exc).strip() or type(exc).__name__


# ---------------------------------------------------------------- runners


def memory_device(spec: DeviceSpec) -> str | None:
    """The OrtValue device type io_binding keeps tensors on (`cuda`, `dml`, `cpu`), or None
    when io_binding is not supported for this device."""
    if spec.kind in DEVICE_MEMORY:
        return DEVICE_MEMORY[spec.kind]
    return None if spec.is_gpu else "cpu"


def io_binding_runner(session: ort.InferenceSession, device_type: str, device_id: int) -> Runner:
    """A runner that binds inputs already on the device and leaves outputs there.

    Each pooled input dict is copied to the device once, on first use (during warm-up), and
    reused; the pool lives as long as the cell, and the cache holds it so ids stay unique.
    """
    outputs = [o.name for o in session.get_outputs()]
    cache: dict[int, tuple[Feeds, list[tuple[str, Any]]]] = {}
    lock = threading.Lock()

    def bound_inputs(feeds: Feeds) -> list[tuple[str, Any]]:
        hit = cache.get(id(feeds))
        if hit is not None and hit[0] is feeds:
            return hit[1]
        values = [
            (name, ort.OrtValue.ortvalue_from_numpy(array, device_type, device_id))
            for name, array in feeds.items()
        ]
        with lock:
            if len(cache) > 256:  # a driver that makes fresh inputs per request: do not grow
                cache.clear()
            cache[id(feeds)] = (feeds, values)
        return values

    def run(feeds: Feeds) -> Any:
        binding = session.io_binding()
        for name, value in bound_inputs(feeds):
            binding.bind_ortvalue_input(name, value)
        for name in outputs:
            binding.bind_output(name, device_type, device_id)
        session.run_with_iobinding(binding)
        return binding

    return run


def copy_note(spec: DeviceSpec, io_binding: bool) -> CellWarning | None:
    """What the timed path holds on a device with its own memory (the label users see)."""
    if not spec.is_gpu:
        if io_binding:
            return CellWarning(
                WarningKind.IO_BINDING,
                "on a CPU device there are no host<->device copies to remove",
            )
        return None
    if io_binding:
        return CellWarning(
            WarningKind.IO_BINDING,
            f"inputs stay on {spec.name} (copied once per pooled input) and so do "
            "outputs; the timed path excludes host<->device copies (like trtexec's GPU time)",
        )
    return CellWarning(
        WarningKind.HOST_COPIES,
        f"the timed path includes host<->device copies (each request copies its "
        f"inputs to {spec.name} and its outputs back); io_binding keeps them on the device",
    )


def open_instances(model_path: str, config: ServingConfig) -> Instances:
    """`config.instances` independent sessions, each with its own runner."""
    spec = parse_device(config.device)
    device_type = memory_device(spec) if config.io_binding else None
    if config.io_binding and device_type is None:
        raise CellFailure(
            f"io_binding is not supported on {spec.name} by benchbox (cuda, tensorrt, dml, cpu)"
        )
    opened = [_open(model_path, config) for _ in range(config.instances)]
    sessions = [s for s, _ in opened]
    notes = list(opened[0][1])
    if config.io_binding:
        runners = [io_binding_runner(s, device_type, spec.index or 0) for s in sessions]
    else:
        runners = [partial(s.run, None) for s in sessions]
    note = copy_note(spec, config.io_binding)
    if note:
        notes.append(note)
    return Instances(
        runners=runners,
        runtime=f"onnxruntime {ort.__version__}",
        providers=list(sessions[0].get_providers()),
        close=sessions.clear,
        notes=notes,
    )
