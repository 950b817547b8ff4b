"""The inventory `benchbox devices` shows, and `--device` text (`all` included) -> device keys.

It sits above devices/power_sources (it names each device's power source), so the package's
`__init__` does not import it; import it as `benchbox.devices.inventory`.
"""

from __future__ import annotations

from typing import Any

import psutil

from benchbox import parse
from benchbox.devices.host import cpu_model, host_facts
from benchbox.devices.nvml import NvmlScan, nvml_scan
from benchbox.devices.openvino_runtime import openvino_core, openvino_devices, openvino_version
from benchbox.devices.plugins import (
    PluginEp,
    available_providers,
    ep_device_target,
    ep_devices,
    plugin_eps,
    plugin_for,
)
from benchbox.devices.power_sources import detect_power_sources, rapl_status
from benchbox.devices.problems import device_problem
from benchbox.devices.spec import (
    NVIDIA_KINDS,
    OV_KIND,
    PROVIDERS,
    DeviceSpec,
    device_key,
    parse_device,
)
from benchbox.errors import BadInput
from benchbox.schema import to_dict


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
    plugin = plugin_for(PROVIDERS["openvino"][0])
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
    scan = nvml_scan(nvml)
    host = host_facts(scan.gpus)
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
    return [
        {"name": s.name, "available": s.available, "why": s.why}
        for s in detect_power_sources(nvml=nvml)
    ]
