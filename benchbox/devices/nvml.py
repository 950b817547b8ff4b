"""NVML, the one door to NVIDIA GPUs: loading it, naming its errors, listing GPUs, reading them.

Discovery (`benchbox devices`, host info), the resource sampler and the NVML power meter all
read NVIDIA GPUs through this module. `nvml` arguments are a pynvml-like module (tests pass a
small fake) or None for pynvml itself.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from benchbox.schema import GpuInfo


def import_nvml(nvml: Any) -> Any:
    """The given pynvml-like module, or pynvml itself (ImportError when it is missing)."""
    if nvml is not None:
        return nvml
    import pynvml  # nvidia-ml-py; a dependency, but the shared library may still be missing

    return pynvml


def nvml_error_is(exc: BaseException, nvml: Any, name: str) -> bool:
    """Whether `exc` is the NVML error class `name` of this pynvml-like module."""
    cls = getattr(nvml, name, None)
    return isinstance(cls, type) and isinstance(exc, cls)


def nvml_errors(nvml: Any) -> tuple[type[BaseException], ...]:
    """The exception types NVML calls raise (NVMLError, or Exception for an odd module)."""
    base = getattr(nvml, "NVMLError", None)
    return (base,) if isinstance(base, type) else (Exception,)


def describe_nvml_error(exc: BaseException, nvml: Any, index: int | None = None) -> str:
    """One line for an NVML failure, naming the likely cause."""
    gpu = f"GPU {index}" if index is not None else "the GPU"
    if nvml_error_is(exc, nvml, "NVMLError_LibraryNotFound"):
        return "NVML library not found (libnvidia-ml.so: is the NVIDIA driver installed?)"
    if nvml_error_is(exc, nvml, "NVMLError_DriverNotLoaded"):
        return "NVIDIA driver not loaded"
    if nvml_error_is(exc, nvml, "NVMLError_InvalidArgument") or nvml_error_is(
        exc, nvml, "NVMLError_NotFound"
    ):
        return f"no NVIDIA GPU with index {index}" if index is not None else "no such NVIDIA GPU"
    if nvml_error_is(exc, nvml, "NVMLError_NoPermission"):
        return f"NVML refused access to {gpu} (insufficient permissions)"
    if nvml_error_is(exc, nvml, "NVMLError_GpuIsLost"):
        return f"{gpu} is lost (fell off the bus); the driver needs a reset"
    if nvml_error_is(exc, nvml, "NVMLError_NotSupported"):
        return f"{gpu} does not support this NVML query"
    text = str(exc).strip() or type(exc).__name__
    return f"NVML error on {gpu}: {text}"


@dataclass(frozen=True)
class NvmlScan:
    """One pass over NVML: the GPUs, why none (or some) were missed, each GPU's power reading."""

    gpus: tuple[GpuInfo, ...]
    note: str | None
    power: dict[int, str] = field(default_factory=dict)  # index -> "energy counter" | "sampled..."


def nvml_scan(nvml: Any = None) -> NvmlScan:
    """The NVIDIA GPUs NVML sees; a GPU that errors is left out with a note, never a traceback.

    `nvml` is a pynvml-like module (tests pass a fake), None for pynvml, or an earlier scan.
    """
    if isinstance(nvml, NvmlScan):
        return nvml
    try:
        if nvml is None:
            nvml = import_nvml(None)
    except ImportError:
        return NvmlScan((), "pynvml not installed (pip install nvidia-ml-py)")
    try:
        nvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return NvmlScan((), describe_nvml_error(exc, nvml))
    try:
        try:
            driver = _text(nvml.nvmlSystemGetDriverVersion())
            count = nvml.nvmlDeviceGetCount()
        except Exception as exc:
            return NvmlScan((), f"NVML error: {describe_nvml_error(exc, nvml)}")
        gpus, notes, power = [], [], {}
        for i in range(count):
            try:
                h = nvml.nvmlDeviceGetHandleByIndex(i)
                name = _text(nvml.nvmlDeviceGetName(h))
                total = nvml.nvmlDeviceGetMemoryInfo(h).total
            except Exception as exc:
                notes.append(f"GPU {i} skipped: {describe_nvml_error(exc, nvml, i)}")
                continue
            uuid = None
            try:
                uuid = _text(nvml.nvmlDeviceGetUUID(h))
            except Exception:
                pass
            power[i] = _nvml_power_mode(nvml, h, i)
            gpus.append(
                GpuInfo(
                    name=name, memory_gb=round(total / 2**30, 2), driver=driver, index=i, uuid=uuid
                )
            )
        if not count:
            notes.append("NVML sees no NVIDIA GPU")
        return NvmlScan(tuple(gpus), "; ".join(notes) or None, power)
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:
            pass


def _nvml_power_mode(nvml: Any, handle: Any, index: int) -> str:
    try:
        nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        return "energy counter"
    except Exception:
        pass
    try:
        nvml.nvmlDeviceGetPowerUsage(handle)
        return "sampled power (no energy counter)"
    except Exception as exc:
        return f"none: {describe_nvml_error(exc, nvml, index)}"


def nvml_gpus(nvml: Any = None) -> tuple[list[GpuInfo], str | None]:
    """GPUs seen through NVML, and why none (or not all) were seen."""
    scan = nvml_scan(nvml)
    return list(scan.gpus), scan.note


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_SESSIONS: set[int] = set()
_SESSION_LOCK = threading.Lock()


def _nvml_handle(index: int, nvml: Any) -> tuple[Any, Any]:
    """NVML initialised once per module for the cheap helpers below (never shut down)."""
    nvml = import_nvml(nvml)
    with _SESSION_LOCK:
        if id(nvml) not in _SESSIONS:
            nvml.nvmlInit()
            _SESSIONS.add(id(nvml))
    return nvml, nvml.nvmlDeviceGetHandleByIndex(index)


def gpu_memory_mb(index: int, nvml: Any = None) -> float | None:
    """Memory in use on an NVIDIA GPU in MiB, or None when NVML cannot tell."""
    try:
        nvml, handle = _nvml_handle(index, nvml)
        return nvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20
    except Exception:  # ImportError, NVMLError: the samplers treat None as "unknown"
        return None


def gpu_util_pct(index: int, nvml: Any = None) -> float | None:
    """An NVIDIA GPU's utilisation (0-100) over NVML's last sample period, or None."""
    try:
        nvml, handle = _nvml_handle(index, nvml)
        return float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
    except Exception:
        return None
