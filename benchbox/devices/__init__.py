"""Devices: the device-spec grammar and what this host offers (providers, plugins, OpenVINO, GPUs).

Rooms, bottom first:

- `spec`: the `--device` grammar (`cpu`, `cuda:0?opt=v`, `openvino:GPU`, `ov:CPU`) -> DeviceSpec;
- `nvml`: every NVML call (GPU list, memory, utilisation, error names), shared with measure/power;
- `plugins`: onnxruntime's providers and plugin EP libraries;
- `openvino_runtime`: the OpenVINO runtime's Core and the devices it sees;
- `host`: the HostInfo a report records;
- `problems`: whether a device can run here, and what to install when not;
- `probes`: GPU memory/utilisation probes for the resource sampler;
- `power_sources`: whether NVML, RAPL and the estimate work here, and why not;
- `inventory`: `benchbox devices` and `--device all`. It names power sources, so it sits above
  devices/power_sources and is not imported here: import `benchbox.devices.inventory`.

This module re-exports the public names of the rooms below the inventory.
"""

from __future__ import annotations

from benchbox.devices.host import cpu_model, host_facts, host_info, installed_runtimes
from benchbox.devices.nvml import NvmlScan, describe_nvml_error, nvml_gpus, nvml_scan
from benchbox.devices.openvino_runtime import openvino_core, openvino_devices, openvino_version
from benchbox.devices.plugins import (
    PluginEp,
    available_providers,
    ep_device_target,
    ep_devices,
    plugin_device,
    plugin_eps,
    plugin_for,
    plugin_packages,
)
from benchbox.devices.probes import gpu_probes
from benchbox.devices.problems import device_problem, unavailable_reason
from benchbox.devices.spec import (
    DEVICE_SPELLING,
    GPU_KINDS,
    KINDS,
    NVIDIA_KINDS,
    OV_KIND,
    PROVIDERS,
    DeviceSpec,
    device_key,
    parse_device,
)

__all__ = [
    "DEVICE_SPELLING",
    "GPU_KINDS",
    "KINDS",
    "NVIDIA_KINDS",
    "OV_KIND",
    "PROVIDERS",
    "DeviceSpec",
    "NvmlScan",
    "PluginEp",
    "available_providers",
    "cpu_model",
    "describe_nvml_error",
    "device_key",
    "device_problem",
    "ep_device_target",
    "ep_devices",
    "gpu_probes",
    "host_facts",
    "host_info",
    "installed_runtimes",
    "nvml_gpus",
    "nvml_scan",
    "openvino_core",
    "openvino_devices",
    "openvino_version",
    "parse_device",
    "plugin_device",
    "plugin_eps",
    "plugin_for",
    "plugin_packages",
    "unavailable_reason",
]
