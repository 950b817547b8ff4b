"""The onnxruntime backend: sessions for every execution provider, checked for silent fallback."""

from __future__ import annotations

from functools import partial

import onnxruntime as ort

from benchbox.backends import CellFailure, Instances
from benchbox.devices import DeviceSpec, parse_device, unavailable_reason
from benchbox.schema import ServingConfig

GRAPH_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def session_options(config: ServingConfig) -> ort.SessionOptions:
    """The SessionOptions a serving config stands for (the same ones a bare loop would use)."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = config.intra_op_threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = GRAPH_LEVELS.get(config.graph_optimization, GRAPH_LEVELS["all"])
    so.log_severity_level = 3
    return so


def provider_list(spec: DeviceSpec) -> list:
    """The providers argument of InferenceSession for a device (options included)."""
    options = dict(spec.options)
    if spec.index is not None:
        options.setdefault("device_id", str(spec.index))
    if spec.kind == "openvino":
        options.setdefault("device_type", spec.target or "CPU")
    if spec.kind == "cpu":
        return [("CPUExecutionProvider", options)] if options else ["CPUExecutionProvider"]
    return [(spec.provider, options), "CPUExecutionProvider"]


def open_session(model_path: str, config: ServingConfig) -> ort.InferenceSession:
    """One InferenceSession on the config's device; CellFailure if it silently fell back."""
    spec = parse_device(config.device)
    reason = unavailable_reason(spec)
    if reason:
        raise CellFailure(reason)
    try:
        session = ort.InferenceSession(
            model_path, sess_options=session_options(config), providers=provider_list(spec)
        )
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise CellFailure(f"onnxruntime could not load the model on {spec.name}: {exc}") from None
    active = session.get_providers()
    if not active or active[0] != spec.provider:
        raise CellFailure(
            f"{spec.provider} was requested but onnxruntime runs on {active[0] if active else 'none'}"
            " (silent fallback); not reporting a CPU figure under this device's name"
        )
    return session


def open_instances(model_path: str, config: ServingConfig) -> Instances:
    """`config.instances` independent sessions, each with its own runner."""
    sessions = [open_session(model_path, config) for _ in range(config.instances)]
    return Instances(
        runners=[partial(s.run, None) for s in sessions],
        runtime=f"onnxruntime {ort.__version__}",
        providers=list(sessions[0].get_providers()),
        close=sessions.clear,
    )
