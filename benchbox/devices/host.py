"""What a report records about the machine it ran on: CPU, memory, runtimes, NVIDIA GPUs."""

from __future__ import annotations

import os
import platform
import socket
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import psutil

from benchbox.devices.nvml import nvml_scan
from benchbox.devices.plugins import available_providers
from benchbox.schema import GpuInfo, HostInfo

# Arm Ltd. (implementer 0x41) core designs by /proc/cpuinfo "CPU part" (Arm's TRMs): the
# Graviton2, 3 and 4 run Neoverse N1, V1 and V2 cores; Linux on Arm reports no model name.
ARM_PARTS = {"0xd0c": "Neoverse-N1", "0xd40": "Neoverse-V1", "0xd4f": "Neoverse-V2"}


def cpu_model() -> str:
    """The CPU's marketing name, from /proc/cpuinfo where there is one (Arm: the core design)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key == "model name":
                    return value.strip()
                fields.setdefault(key, value.strip())
    except OSError:
        pass
    if fields.get("cpu implementer") == "0x41" and fields.get("cpu part") in ARM_PARTS:
        return f"ARM {ARM_PARTS[fields['cpu part']]}"
    return platform.processor() or platform.machine()


def host_info(nvml: Any = None) -> HostInfo:
    """What the report records about the machine it ran on."""
    return host_facts(nvml_scan(nvml).gpus)


def host_facts(gpus: tuple[GpuInfo, ...]) -> HostInfo:
    """HostInfo for this machine with the given GPUs (one NVML scan serves several callers)."""
    import onnxruntime as ort

    return HostInfo(
        hostname=socket.gethostname(),
        os=f"{platform.system()} {platform.release()}",
        cpu_model=cpu_model(),
        cpu_cores_logical=psutil.cpu_count(logical=True) or os.cpu_count() or 1,
        cpu_cores_physical=psutil.cpu_count(logical=False),
        memory_gb=round(psutil.virtual_memory().total / 2**30, 2),
        python=platform.python_version(),
        onnxruntime=ort.__version__,
        providers=tuple(available_providers()),
        gpus=tuple(gpus),
        runtimes=installed_runtimes(),
    )


def installed_runtimes() -> dict[str, str]:
    """Versions of the inference runtimes installed here (read from package metadata)."""
    out = {}
    for name, dist in (("onnxruntime", "onnxruntime"), ("openvino", "openvino")):
        try:
            out[name] = version(dist)
        except PackageNotFoundError:
            continue
    if "onnxruntime" not in out:  # a GPU or vendor build under another distribution name
        import onnxruntime as ort

        out["onnxruntime"] = ort.__version__
    return out
