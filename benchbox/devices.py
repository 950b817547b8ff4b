"""Devices: parsing specs (`cpu`, `cuda:0?opt=v`, `openvino:GPU`, `ov:CPU`), discovering the host.

A device belongs to one runtime:

- onnxruntime, through an execution provider: `cpu`, `cuda:N`, `tensorrt:N`, `rocm:N`,
  `migraphx:N`, `dml:N`, `coreml`, and `openvino[:CPU|GPU|NPU]` (the OpenVINO *execution
  provider*, built into onnxruntime-openvino or loaded as the onnxruntime 1.23+ plugin library
  of `onnxruntime-ep-openvino`). Options after `?` are provider options.
- the OpenVINO runtime itself (`pip install 'benchbox[openvino]'`): `ov[:CPU|GPU|GPU.1|NPU|AUTO]`.
  It runs ONNX files directly, including on non-Intel x86 CPUs where the onnxruntime plugin
  offers no device. Options after `?` are OpenVINO properties, e.g.
  `ov:CPU?INFERENCE_PRECISION_HINT=f32`.
"""

from __future__ import annotations

import functools
import importlib
import os
import pkgutil
import platform
import re
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import psutil

from benchbox import parse
from benchbox.errors import BadInput
from benchbox.schema import GpuInfo, HostInfo

ORT_GPU = "pip install onnxruntime-gpu (in place of onnxruntime)"
OV_EXTRA = "pip install 'benchbox[openvino]'"
# kind -> (onnxruntime provider, takes a device index, what to install when missing)
PROVIDERS: dict[str, tuple[str, bool, str]] = {
    "cpu": ("CPUExecutionProvider", False, "onnxruntime"),
    "cuda": ("CUDAExecutionProvider", True, ORT_GPU),
    "tensorrt": (
        "TensorrtExecutionProvider",
        True,
        "pip install onnxruntime-gpu tensorrt (in place of onnxruntime)",
    ),
    "rocm": ("ROCMExecutionProvider", True, "an onnxruntime build with ROCm (and AMD drivers)"),
    "migraphx": ("MIGraphXExecutionProvider", True, "an onnxruntime build with MIGraphX"),
    "dml": ("DmlExecutionProvider", True, "pip install onnxruntime-directml (Windows)"),
    "coreml": ("CoreMLExecutionProvider", False, "onnxruntime on macOS"),
    "openvino": (
        "OpenVINOExecutionProvider",
        False,
        "pip install onnxruntime-ep-openvino (the onnxruntime>=1.23 plugin, Intel CPUs/GPUs/NPUs) "
        f"or onnxruntime-openvino; on other CPUs use the OpenVINO runtime: {OV_EXTRA} and "
        "--device ov:CPU",
    ),
}
# The OpenVINO runtime is a second runtime, not an onnxruntime provider.
OV_KIND = "ov"
OV_INSTALL = f"{OV_EXTRA} (or pip install openvino)"
KINDS = (*PROVIDERS, OV_KIND)
GPU_KINDS = {"cuda", "tensorrt", "rocm", "migraphx", "dml"}
NVIDIA_KINDS = ("cuda", "tensorrt")
_TARGET = re.compile(r"^[A-Z][A-Z0-9_]*(\.[0-9]+)?$")
DEVICE_SPELLING = (
    "devices are written cpu, cuda:0, tensorrt:0, rocm:0, migraphx:0, dml:0, coreml, openvino, "
    "openvino:GPU (onnxruntime) or ov:CPU, ov:GPU (the OpenVINO runtime), or all; "
    "see `benchbox devices`"
)


@dataclass(frozen=True)
class DeviceSpec:
    """A parsed device: kind, index (GPU ordinal) or target (`GPU` for openvino/ov), options."""

    kind: str
    index: int | None = None
    target: str | None = None
    options: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """Canonical text: `cuda:0`, `openvino:GPU`, `ov:CPU`, `cpu` (options not included)."""
        if self.index is not None:
            return f"{self.kind}:{self.index}"
        if self.target:
            return f"{self.kind}:{self.target}"
        return self.kind

    @property
    def runtime(self) -> str:
        """`onnxruntime` or `openvino`: which backend runs this device."""
        return "openvino" if self.kind == OV_KIND else "onnxruntime"

    @property
    def provider(self) -> str:
        """The onnxruntime execution provider (`OpenVINO` for the OpenVINO runtime)."""
        return "OpenVINO" if self.kind == OV_KIND else PROVIDERS[self.kind][0]

    @property
    def is_gpu(self) -> bool:
        """Whether the model runs on a GPU (its memory and power are not the host's)."""
        if self.kind in GPU_KINDS:
            return True
        return self.kind in ("openvino", OV_KIND) and (self.target or "").startswith("GPU")


def parse_device(text: str) -> DeviceSpec:
    """`cuda:0?cudnn_conv_algo_search=HEURISTIC` -> DeviceSpec('cuda', 0, options=...)."""
    raw = str(text).strip()
    head, _, query = raw.partition("?")
    kind, _, arg = head.partition(":")
    kind, arg = kind.strip().lower(), arg.strip()
    if kind not in KINDS:
        hint = DEVICE_SPELLING
        if kind == "gpu":
            hint = "name the GPU's runtime: cuda:0 (NVIDIA), rocm:0 (AMD), dml:0 (Windows), ov:GPU"
        raise BadInput(f"unknown device {raw!r}", hint)
    try:
        options = (
            dict(parse_qsl(query, keep_blank_values=True, strict_parsing=True)) if query else {}
        )
    except ValueError:
        raise BadInput(
            f"device {raw!r}: options {query!r} are not NAME=VALUE pairs",
            "write options like cuda:0?cudnn_conv_algo_search=HEURISTIC&arena_extend_strategy="
            "kSameAsRequested",
        ) from None
    if kind in PROVIDERS and PROVIDERS[kind][1]:
        try:
            index = int(arg) if arg else 0
        except ValueError:
            raise BadInput(
                f"device {raw!r}: {arg!r} is not a device number", f"e.g. {kind}:0"
            ) from None
        if index < 0:
            raise BadInput(f"device {raw!r}: the device number must be 0 or more")
        return DeviceSpec(kind, index=index, options=options)
    if kind in ("openvino", OV_KIND):
        target = arg.upper() or "CPU"
        if not _TARGET.match(target):
            raise BadInput(
                f"device {raw!r}: {arg!r} is not an OpenVINO device name",
                f"e.g. {kind}:CPU, {kind}:GPU, {kind}:GPU.1 or {kind}:NPU",
            )
        return DeviceSpec(kind, target=target, options=options)
    if arg:
        raise BadInput(f"device {raw!r}: {kind} takes no ':' part", f"write it as {kind}")
    return DeviceSpec(kind, options=options)


def device_key(spec: DeviceSpec) -> str:
    """The device as written in reports: canonical name plus sorted options."""
    if not spec.options:
        return spec.name
    return spec.name + "?" + "&".join(f"{k}={v}" for k, v in sorted(spec.options.items()))


def expand_devices(text: str, *, providers: list[str] | None = None, nvml: Any = None) -> list[str]:
    """`--device` text -> device keys; `all` is every device usable here; BadInput (with what to
    install) for an unknown device or one this machine cannot run."""
    out: list[str] = []
    for item in parse.parse_str_list(text, "device"):
        if item.strip().lower() == "all":
            out += usable_devices(providers=providers, nvml=nvml)
            continue
        spec = parse_device(item)
        problem = device_problem(spec, providers=providers, nvml=nvml)
        if problem is not None:
            why, fix = problem
            raise BadInput(f"device {spec.name} cannot run here: {why}", fix)
        out.append(device_key(spec))
    return list(dict.fromkeys(out))


def usable_devices(*, providers: list[str] | None = None, nvml: Any = None) -> list[str]:
    """Every device that can run here, as `--device all` means it."""
    rows = inventory_rows(providers=providers, nvml=nvml)
    return [r["device"] for r in rows if r["usable"]]


# ---------------------------------------------------------------- onnxruntime and its plugins


def available_providers() -> list[str]:
    """Execution providers this onnxruntime build offers (built in, not plugin libraries)."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


@dataclass(frozen=True)
class PluginEp:
    """An execution-provider plugin library (onnxruntime 1.23+) found in an installed package."""

    package: str  # the Python module that ships it, e.g. onnxruntime_ep_openvino
    library: str | None
    ep_names: tuple[str, ...]
    error: str | None = None  # why it could not be registered

    @property
    def pip_name(self) -> str:
        """The distribution name users install (`onnxruntime-ep-openvino`)."""
        return self.package.replace("_", "-")


def plugin_packages() -> list[str]:
    """Installed modules that ship an onnxruntime EP plugin (named `onnxruntime_ep_*`)."""
    return sorted(m.name for m in pkgutil.iter_modules() if m.name.startswith("onnxruntime_ep_"))


@functools.lru_cache(maxsize=1)
def plugin_eps() -> tuple[PluginEp, ...]:
    """Register every installed EP plugin library with onnxruntime once per process."""
    import onnxruntime as ort

    out = []
    for package in plugin_packages():
        try:
            mod = importlib.import_module(package)
            library = str(mod.get_library_path())
            names = tuple(mod.get_ep_names()) if hasattr(mod, "get_ep_names") else ()
            names = names or (str(mod.get_ep_name()),)
        except Exception as exc:  # a broken package must not break discovery
            out.append(PluginEp(package, None, (), f"cannot load {package}: {exc}"))
            continue
        if not hasattr(ort, "register_execution_provider_library"):
            why = f"onnxruntime {ort.__version__} cannot load plugin EPs (needs 1.23 or newer)"
            out.append(PluginEp(package, library, names, why))
            continue
        try:
            ort.register_execution_provider_library(package, library)
        except Exception as exc:
            if "already registered" not in str(exc):
                out.append(PluginEp(package, library, names, f"registration failed: {exc}"))
                continue
        out.append(PluginEp(package, library, names))
    return tuple(out)


def ep_devices(ep_name: str) -> list:
    """onnxruntime's EP devices (`OrtEpDevice`) for one provider, plugins registered first."""
    import onnxruntime as ort

    if not hasattr(ort, "get_ep_devices"):
        return []
    plugin_eps()
    return [d for d in ort.get_ep_devices() if d.ep_name == ep_name]


def ep_device_target(ep_device: Any) -> str:
    """`CPU`, `GPU` or `NPU`: the hardware type of an onnxruntime EP device."""
    return str(getattr(ep_device.device.type, "name", ep_device.device.type)).upper()


def plugin_device(spec: DeviceSpec) -> Any:
    """The plugin EP device that runs this spec, or None when no plugin offers one."""
    if spec.runtime != "onnxruntime" or spec.kind == "cpu":
        return None
    devices = [d for d in ep_devices(spec.provider) if _from_plugin(d)]
    if spec.target:  # openvino:GPU -> the first GPU-type device of the OpenVINO plugin
        base = spec.target.split(".")[0]
        nth = int(spec.target.split(".")[1]) if "." in spec.target else 0
        matching = [d for d in devices if ep_device_target(d) == base]
        return matching[nth] if nth < len(matching) else None
    if spec.index is not None:
        gpus = [d for d in devices if ep_device_target(d) == "GPU"]
        return gpus[spec.index] if spec.index < len(gpus) else None
    return devices[0] if devices else None


def _from_plugin(ep_device: Any) -> bool:
    names = {n for p in plugin_eps() if p.error is None for n in p.ep_names}
    return ep_device.ep_name in names


def _plugin_for(provider: str) -> PluginEp | None:
    return next((p for p in plugin_eps() if provider in p.ep_names), None)


# ---------------------------------------------------------------- the OpenVINO runtime


@functools.lru_cache(maxsize=1)
def openvino_core() -> Any:
    """One `openvino.Core` per process; ImportError when the openvino extra is not installed."""
    import openvino as ov

    return ov.Core()


def openvino_version() -> str | None:
    """The installed OpenVINO runtime's version, or None."""
    try:
        import openvino as ov
    except ImportError:
        return None
    return str(ov.__version__).split("-")[0]


def openvino_devices() -> list[str]:
    """Devices the OpenVINO runtime sees (`CPU`, `GPU.0`, `NPU`); [] when it is not installed."""
    try:
        return list(openvino_core().available_devices)
    except Exception:  # ImportError, or a broken install
        return []


def _ov_target_seen(target: str, seen: list[str]) -> bool:
    if target.split(":")[0] in ("AUTO", "MULTI", "HETERO", "BATCH"):
        return bool(seen)
    base = target.split(".")[0]
    return target in seen or (target == base and any(s.split(".")[0] == base for s in seen))


# ---------------------------------------------------------------- usable or not, and why


def device_problem(
    spec: DeviceSpec, providers: list[str] | None = None, nvml: Any = None
) -> tuple[str, str] | None:
    """(why this device cannot run here, what to install or do), or None when it can run."""
    if spec.runtime == "openvino":
        if openvino_version() is None:
            return "the OpenVINO runtime is not installed", f"install it: {OV_INSTALL}"
        seen = openvino_devices()
        if not _ov_target_seen(spec.target or "CPU", seen):
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
    plugin = _plugin_for(spec.provider)
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
    from benchbox.measure.power import describe_nvml_error

    if isinstance(nvml, NvmlScan):
        return nvml
    try:
        if nvml is None:
            import pynvml as nvml
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
    from benchbox.measure.power import describe_nvml_error

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


def host_info(nvml: Any = None) -> HostInfo:
    """What the report records about the machine it ran on."""
    return _host(nvml_scan(nvml).gpus)


def _host(gpus: tuple[GpuInfo, ...]) -> HostInfo:
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
    from importlib.metadata import PackageNotFoundError, version

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


# ---------------------------------------------------------------- the inventory


def _row(device: str, runtime: str, problem: tuple[str, str] | None, **extra: Any) -> dict:
    row = {
        "device": device,
        "runtime": runtime,
        "usable": problem is None,
        "why": problem[0] if problem else None,
        "install": problem[1] if problem else None,
        "memory_gb": None,
        "power": None,
        "note": None,
    }
    row.update(extra)
    return row


def inventory_rows(
    *, providers: list[str] | None = None, nvml: Any = None, scan: NvmlScan | None = None
) -> list[dict]:
    """One row per device benchbox knows: usable or not (why, what to install), memory, power."""
    from benchbox.measure.power import rapl_status

    providers = available_providers() if providers is None else providers
    scan = nvml_scan(nvml) if scan is None else scan
    host_gb = round(psutil.virtual_memory().total / 2**30, 2)
    cpu_power = "rapl" if rapl_status().available else "estimate (needs --profile)"
    copies = "timed path includes host<->device copies unless io_binding"

    def problem(spec: DeviceSpec) -> tuple[str, str] | None:
        return device_problem(spec, providers, scan)

    rows = [_row("cpu", "onnxruntime", None, memory_gb=host_gb, power=cpu_power)]
    for kind in NVIDIA_KINDS:
        for g in scan.gpus or (None,):
            spec = DeviceSpec(kind, index=g.index if g else 0)
            power = f"nvml: {scan.power.get(spec.index, 'unknown')}" if g else None
            rows.append(
                _row(
                    spec.name,
                    "onnxruntime",
                    problem(spec),
                    memory_gb=g.memory_gb if g else None,
                    power=power,
                    note=f"{g.name}; {copies}" if g else None,
                )
            )
    for kind in ("rocm", "migraphx", "dml", "coreml"):
        spec = parse_device(kind)
        power = "none (no meter for this GPU)" if spec.is_gpu else cpu_power
        rows.append(_row(spec.name, "onnxruntime", problem(spec), power=power))
    rows += _openvino_ep_rows(problem, host_gb, cpu_power)
    rows += _openvino_runtime_rows(host_gb, cpu_power)
    return rows


def _openvino_ep_rows(problem, host_gb: float, cpu_power: str) -> list[dict]:
    targets = ["CPU"]
    plugin = _plugin_for(PROVIDERS["openvino"][0])
    for d in ep_devices(PROVIDERS["openvino"][0]):
        t = ep_device_target(d)
        if t not in targets:
            targets.append(t)
    rows = []
    for target in targets:
        spec = DeviceSpec("openvino", target=target)
        note = f"plugin {plugin.pip_name}" if plugin is not None and plugin.error is None else None
        gpu = spec.is_gpu
        rows.append(
            _row(
                spec.name,
                "onnxruntime",
                problem(spec),
                memory_gb=None if gpu else host_gb,
                power="none (no meter for this GPU)" if gpu else cpu_power,
                note=note,
            )
        )
    return rows


def _openvino_runtime_rows(host_gb: float, cpu_power: str) -> list[dict]:
    version = openvino_version()
    if version is None:
        spec = DeviceSpec(OV_KIND, target="CPU")
        return [_row(spec.name, "openvino", device_problem(spec), power=cpu_power)]
    rows = []
    seen = openvino_devices()
    for target in ["CPU"] + [d for d in seen if d != "CPU"]:
        spec = DeviceSpec(OV_KIND, target=target)
        memory, note = (host_gb, None) if not spec.is_gpu else (_ov_gpu_memory_gb(target), None)
        try:
            note = str(openvino_core().get_property(target, "FULL_DEVICE_NAME"))
        except Exception:
            pass
        rows.append(
            _row(
                spec.name,
                f"openvino {version}",
                device_problem(spec),
                memory_gb=memory,
                power="none (no meter for this GPU)" if spec.is_gpu else cpu_power,
                note=note,
            )
        )
    return rows


def _ov_gpu_memory_gb(target: str) -> float | None:
    try:
        return round(
            int(openvino_core().get_property(target, "GPU_DEVICE_TOTAL_MEM_SIZE")) / 2**30, 2
        )
    except Exception:
        return None


def device_inventory(nvml: Any = None, providers: list[str] | None = None) -> dict:
    """Everything `benchbox devices` shows, as plain data (also its --json output)."""
    from benchbox.schema import to_dict

    scan = nvml_scan(nvml)
    host = _host(scan.gpus)
    providers = list(host.providers) if providers is None else providers
    rows = inventory_rows(providers=providers, scan=scan)
    return {
        "host": to_dict(host),
        "openvino": openvino_version(),
        "gpus": [to_dict(g) for g in scan.gpus],
        "gpu_note": scan.note,
        "devices": rows,
        "all": [r["device"] for r in rows if r["usable"]],
        "plugins": [_plugin_dict(p) for p in plugin_eps()],
        "power_sources": _power_sources(nvml),
    }


def _plugin_dict(p: PluginEp) -> dict:
    devices = [] if p.error else [ep_device_target(d) for n in p.ep_names for d in ep_devices(n)]
    if p.error:
        status = p.error
    elif devices:
        status = f"offers {', '.join(devices)}"
    else:
        status = f"offers no device on this host ({cpu_model()})"
        if "OpenVINOExecutionProvider" in p.ep_names:
            status += (
                ": the OpenVINO plugin serves Intel CPUs, GPUs and NPUs only; "
                "use the OpenVINO runtime here (--device ov:CPU)"
            )
    return {
        "package": p.pip_name,
        "library": p.library,
        "ep_names": list(p.ep_names),
        "devices": devices,
        "status": status,
    }


def _power_sources(nvml: Any = None) -> list[dict]:
    from benchbox.measure.power import detect_power_sources

    return [
        {"name": s.name, "available": s.available, "why": s.why}
        for s in detect_power_sources(nvml=nvml)
    ]


def gpu_probes(device: str, nvml: Any = None) -> dict:
    """ResourceSampler keyword arguments that read this device's GPU memory and utilisation."""
    spec = parse_device(device)
    if spec.kind not in NVIDIA_KINDS:
        return {}
    from benchbox.measure.power import gpu_memory_mb, gpu_util_pct

    index = spec.index or 0
    return {
        "gpu_mem_mb": lambda: gpu_memory_mb(index, nvml),
        "gpu_util_pct": lambda: gpu_util_pct(index, nvml),
    }
