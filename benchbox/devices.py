"""Devices: parsing specs (`cpu`, `cuda:0?opt=v`, `openvino:GPU`) and discovering the host."""

from __future__ import annotations

import os
import platform
import socket
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import psutil

from benchbox.errors import BadInput
from benchbox.schema import GpuInfo, HostInfo

# kind -> (onnxruntime provider, takes a device index, what to install when missing)
PROVIDERS: dict[str, tuple[str, bool, str]] = {
    "cpu": ("CPUExecutionProvider", False, "onnxruntime"),
    "cuda": ("CUDAExecutionProvider", True, "pip install onnxruntime-gpu (and an NVIDIA driver)"),
    "tensorrt": (
        "TensorrtExecutionProvider",
        True,
        "pip install onnxruntime-gpu tensorrt (and an NVIDIA driver)",
    ),
    "rocm": ("ROCMExecutionProvider", True, "an onnxruntime build with ROCm (and AMD drivers)"),
    "migraphx": ("MIGraphXExecutionProvider", True, "an onnxruntime build with MIGraphX"),
    "dml": ("DmlExecutionProvider", True, "pip install onnxruntime-directml (Windows)"),
    "coreml": ("CoreMLExecutionProvider", False, "onnxruntime on macOS"),
    "openvino": (
        "OpenVINOExecutionProvider",
        False,
        "pip install onnxruntime-openvino, or the plugin onnxruntime-ep-openvino, "
        "or 'benchbox[openvino]' for the OpenVINO runtime",
    ),
}
GPU_KINDS = {"cuda", "tensorrt", "rocm", "migraphx", "dml"}


@dataclass(frozen=True)
class DeviceSpec:
    """A parsed device: kind, index (GPU ordinal) or target (`GPU` for openvino), options."""

    kind: str
    index: int | None = None
    target: str | None = None
    options: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """Canonical text: `cuda:0`, `openvino:GPU`, `cpu` (options not included)."""
        if self.index is not None:
            return f"{self.kind}:{self.index}"
        if self.target:
            return f"{self.kind}:{self.target}"
        return self.kind

    @property
    def provider(self) -> str:
        return PROVIDERS[self.kind][0]

    @property
    def is_gpu(self) -> bool:
        return self.kind in GPU_KINDS or (self.kind == "openvino" and self.target == "GPU")


def parse_device(text: str) -> DeviceSpec:
    """`cuda:0?cudnn_conv_algo_search=HEURISTIC` -> DeviceSpec('cuda', 0, options=...)."""
    raw = str(text).strip()
    head, _, query = raw.partition("?")
    kind, _, arg = head.partition(":")
    kind = kind.strip().lower()
    if kind not in PROVIDERS:
        raise BadInput(
            f"unknown device {raw!r}",
            "devices are written cpu, cuda:0, tensorrt:0, rocm:0, migraphx:0, dml:0, coreml, "
            "openvino or openvino:GPU; see `benchbox devices`",
        )
    options = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
    takes_index = PROVIDERS[kind][1]
    if takes_index:
        try:
            index = int(arg) if arg else 0
        except ValueError:
            raise BadInput(
                f"device {raw!r}: {arg!r} is not a device number", "e.g. cuda:0"
            ) from None
        if index < 0:
            raise BadInput(f"device {raw!r}: the device number must be 0 or more")
        return DeviceSpec(kind, index=index, options=options)
    if kind == "openvino":
        return DeviceSpec(kind, target=(arg.upper() or "CPU"), options=options)
    if arg:
        raise BadInput(f"device {raw!r}: {kind} takes no ':' part")
    return DeviceSpec(kind, options=options)


def device_key(spec: DeviceSpec) -> str:
    """The device as written in reports: canonical name plus sorted options."""
    if not spec.options:
        return spec.name
    return spec.name + "?" + "&".join(f"{k}={v}" for k, v in sorted(spec.options.items()))


def available_providers() -> list[str]:
    """Execution providers this onnxruntime build offers."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


def unavailable_reason(spec: DeviceSpec, providers: list[str] | None = None) -> str | None:
    """Why this device cannot run here (with what to install), or None when it can."""
    providers = available_providers() if providers is None else providers
    if spec.provider not in providers:
        return (
            f"{spec.provider} is not in this onnxruntime build; install: {PROVIDERS[spec.kind][2]}"
        )
    return None


# ---------------------------------------------------------------- the host


def cpu_model() -> str:
    """The CPU's marketing name, from /proc/cpuinfo where there is one."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def nvml_gpus(nvml=None) -> tuple[list[GpuInfo], str | None]:
    """GPUs seen through NVML, and why none were when the list is empty."""
    try:
        if nvml is None:
            import pynvml as nvml
        nvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return [], f"NVML not available ({_nvml_msg(exc)})"
    try:
        driver = _text(nvml.nvmlSystemGetDriverVersion())
        gpus = []
        for i in range(nvml.nvmlDeviceGetCount()):
            h = nvml.nvmlDeviceGetHandleByIndex(i)
            mem = nvml.nvmlDeviceGetMemoryInfo(h)
            uuid = None
            try:
                uuid = _text(nvml.nvmlDeviceGetUUID(h))
            except Exception:
                pass
            gpus.append(
                GpuInfo(
                    name=_text(nvml.nvmlDeviceGetName(h)),
                    memory_gb=round(mem.total / 2**30, 2),
                    driver=driver,
                    index=i,
                    uuid=uuid,
                )
            )
        return gpus, (None if gpus else "NVML found no GPU")
    except Exception as exc:
        return [], f"NVML error: {_nvml_msg(exc)}"
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:
            pass


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _nvml_msg(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def host_info(nvml=None) -> HostInfo:
    """What the report records about the machine it ran on."""
    import onnxruntime as ort

    gpus, _ = nvml_gpus(nvml)
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
    )


def device_inventory(nvml=None) -> dict:
    """Everything `benchbox devices` shows, as plain data (also its --json output)."""
    from benchbox.schema import to_dict

    host = host_info(nvml)
    gpus, gpu_note = nvml_gpus(nvml)
    providers = list(host.providers)
    power = _power_sources(nvml)
    cpu_power = next((p["name"] for p in power if p["available"] and p["name"] != "nvml"), None)
    devices = [
        {
            "device": "cpu",
            "usable": True,
            "memory_gb": host.memory_gb,
            "power": cpu_power or "estimate (with a --profile)",
            "why": None,
        }
    ]
    for kind, (provider, takes_index, install) in PROVIDERS.items():
        if kind == "cpu":
            continue
        usable = provider in providers
        if takes_index and gpus and kind in ("cuda", "tensorrt"):
            for g in gpus:
                devices.append(
                    {
                        "device": f"{kind}:{g.index}",
                        "usable": usable,
                        "memory_gb": g.memory_gb,
                        "power": "nvml",
                        "why": None if usable else f"install: {install}",
                    }
                )
            continue
        name = f"{kind}:0" if takes_index else kind
        devices.append(
            {
                "device": name,
                "usable": usable,
                "memory_gb": None,
                "power": None,
                "why": None if usable else f"{provider} not available; install: {install}",
            }
        )
    return {
        "host": to_dict(host),
        "gpus": [to_dict(g) for g in gpus],
        "gpu_note": gpu_note,
        "devices": devices,
        "power_sources": power,
    }


def _power_sources(nvml=None) -> list[dict]:
    try:
        from benchbox.measure.power import detect_power_sources
    except ImportError:
        return []
    return [
        {"name": s.name, "available": s.available, "why": s.why}
        for s in detect_power_sources(nvml=nvml)
    ]


def gpu_probes(device: str) -> dict:
    """ResourceSampler keyword arguments that read this device's GPU memory and utilisation."""
    spec = parse_device(device)
    if spec.kind not in ("cuda", "tensorrt"):
        return {}
    from benchbox.measure.power import gpu_memory_mb, gpu_util_pct

    index = spec.index or 0
    return {"gpu_mem_mb": lambda: gpu_memory_mb(index), "gpu_util_pct": lambda: gpu_util_pct(index)}
