"""Probes that let the resource sampler read a device's GPU memory and utilisation."""

from __future__ import annotations

from typing import Any

from benchbox.devices.nvml import gpu_memory_mb, gpu_util_pct
from benchbox.devices.spec import NVIDIA_KINDS, parse_device


def gpu_probes(device: str, nvml: Any = None) -> dict:
    """ResourceSampler keyword arguments that read this device's GPU memory and utilisation."""
    spec = parse_device(device)
    if spec.kind not in NVIDIA_KINDS:
        return {}
    index = spec.index or 0
    return {
        "gpu_mem_mb": lambda: gpu_memory_mb(index, nvml),
        "gpu_util_pct": lambda: gpu_util_pct(index, nvml),
    }
