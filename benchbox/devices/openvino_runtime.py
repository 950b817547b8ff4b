"""The OpenVINO runtime as a device source: its Core, version and the devices it sees."""

from __future__ import annotations

import functools
from typing import Any


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


def ov_target_seen(target: str, seen: list[str]) -> bool:
    """Whether an OpenVINO target (`GPU`, `GPU.1`, `AUTO:...`) is among the devices seen."""
    if target.split(":")[0] in ("AUTO", "MULTI", "HETERO", "BATCH"):
        return bool(seen)
    base = target.split(".")[0]
    return target in seen or (target == base and any(s.split(".")[0] == base for s in seen))
