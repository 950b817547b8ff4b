"""Whether a device can run on this host, and if not, why and what to install."""

from __future__ import annotations

from typing import Any

from benchbox.devices.host import cpu_model
from benchbox.devices.nvml import nvml_gpus
from benchbox.devices.openvino_runtime import openvino_devices, openvino_version, ov_target_seen
from benchbox.devices.plugins import available_providers, plugin_device, plugin_for
from benchbox.devices.spec import NVIDIA_KINDS, OV_EXTRA, OV_INSTALL, PROVIDERS, DeviceSpec


def device_problem(
    spec: DeviceSpec, providers: list[str] | None = None, nvml: Any = None
) -> tuple[str, str] | None:
    """(why this device cannot run here, what to install or do), or None when it can run."""
    if spec.runtime == "openvino":
        if openvino_version() is None:
            return "the OpenVINO runtime is not installed", f"install it: {OV_INSTALL}"
        seen = openvino_devices()
        if not ov_target_seen(spec.target or "CPU", seen):
            return (
                f"OpenVINO sees no {spec.target} device here (it sees {', '.join(seen) or 'none'})",
                "install the device's driver (Intel GPU: the compute runtime; NPU: the NPU driver)",
            )
        return None
    providers = available_providers() if providers is None else providers
    if spec.kind in NVIDIA_KINDS:
        gpus, why_none = nvml_gpus(nvml)
        if not gpus:
            fix = PROVIDERS[spec.kind][2]
            return (
                f"no NVIDIA GPU seen: {why_none}",
                f"needs an NVIDIA GPU with its driver, then {fix}",
            )
        seen = [g.index for g in gpus]
        if spec.index not in seen:
            names = ", ".join(f"{spec.kind}:{i}" for i in seen)
            return f"no NVIDIA GPU {spec.index} (NVML sees {len(gpus)})", f"use {names}"
    if spec.provider in providers:
        return None
    if plugin_device(spec) is not None:
        return None
    plugin = plugin_for(spec.provider)
    if plugin is not None:
        if plugin.error:
            return (
                f"{plugin.pip_name} is installed but {plugin.error}",
                "pip install -U onnxruntime",
            )
        what = f"{spec.target} " if spec.target else ("GPU " if spec.index is not None else "")
        why = (
            f"{plugin.pip_name} is installed but offers no {what}device on this host "
            f"({cpu_model()})"
        )
        if spec.kind == "openvino":
            why += "; the OpenVINO plugin serves Intel CPUs, GPUs and NPUs only"
            return why, f"on this CPU use the OpenVINO runtime: {OV_EXTRA} and --device ov:CPU"
        return why, "see the plugin's documentation for the hardware it supports"
    return (
        f"{spec.provider} is not in this onnxruntime build",
        f"install: {PROVIDERS[spec.kind][2]}",
    )


def unavailable_reason(
    spec: DeviceSpec, providers: list[str] | None = None, nvml: Any = None
) -> str | None:
    """Why this device cannot run here (with what to install), or None when it can."""
    problem = device_problem(spec, providers, nvml)
    return None if problem is None else f"{problem[0]}; {problem[1]}"
