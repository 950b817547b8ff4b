"""onnxruntime's execution providers: the built-in ones and plugin EP libraries (1.23+)."""

from __future__ import annotations

import functools
import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any

from benchbox.devices.spec import DeviceSpec


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


def plugin_for(provider: str) -> PluginEp | None:
    return next((p for p in plugin_eps() if provider in p.ep_names), None)
