"""Which power sources work on this host, and why not: NVML, Linux powercap RAPL, the estimate.

These are facts about the machine's devices, so they sit under devices/: the inventory names
each device's power source, and the meters in measure/power read the same counters.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchbox.devices.nvml import describe_nvml_error, import_nvml, nvml_error_is, nvml_errors

POWERCAP_ROOT = "/sys/class/powercap"
_PACKAGE_ZONE = re.compile(r"^intel-rapl:(\d+)$")  # AMD Zen packages use the same driver/names
RAPL_FIX = (
    "run `sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj` (until reboot), or add a "
    'udev rule: SUBSYSTEM=="powercap", ACTION=="add", RUN+="/bin/chmod o+r /sys%p/energy_uj"'
)


@dataclass(frozen=True)
class PowerSourceStatus:
    """Whether a power source works on this host, and why not when it does not."""

    name: str
    available: bool
    why: str


def _read_text(path: Path) -> str:
    return path.read_text()


@dataclass(frozen=True)
class RaplZone:
    """A top-level powercap zone (a CPU package, or the platform `psys`)."""

    path: Path
    name: str
    max_range_uj: int


def rapl_zones(
    root: str = POWERCAP_ROOT, read: Callable[[Path], str] = _read_text
) -> list[RaplZone]:
    """The zones to sum: every package (`intel-rapl:N` named package-*), never their sub-zones.

    `psys` (whole platform, which already contains the packages) is used only when no package
    zone exists; `intel-rapl-mmio:*` duplicates a package through MMIO and is skipped.
    """
    base = Path(root)
    zones: list[RaplZone] = []
    for entry in sorted(base.iterdir(), key=lambda p: p.name) if base.is_dir() else []:
        if not _PACKAGE_ZONE.match(entry.name):
            continue
        try:
            name = read(entry / "name").strip()
        except OSError:
            name = entry.name
        try:
            max_range = int(read(entry / "max_energy_range_uj").strip())
        except (OSError, ValueError):
            max_range = 0
        zones.append(RaplZone(entry, name, max_range))
    packages = [z for z in zones if z.name.startswith("package")]
    if packages:
        return packages
    return [z for z in zones if z.name == "psys"] or zones


def rapl_status(
    root: str = POWERCAP_ROOT, read: Callable[[Path], str] | None = None
) -> PowerSourceStatus:
    """Whether RAPL package counters exist and can be read here, and why not."""
    read = read or _read_text
    if not Path(root).is_dir():
        return PowerSourceStatus("rapl", False, f"no {root} (not Linux, or powercap not loaded)")
    zones = rapl_zones(root, read)
    if not zones:
        return PowerSourceStatus(
            "rapl", False, f"no RAPL package domains in {root} (common in cloud VMs)"
        )
    try:
        for zone in zones:
            int(read(zone.path / "energy_uj").strip())
    except PermissionError:
        return PowerSourceStatus("rapl", False, f"energy_uj is readable only by root; {RAPL_FIX}")
    except (OSError, ValueError) as exc:
        return PowerSourceStatus("rapl", False, f"cannot read energy_uj ({exc})")
    names = ", ".join(z.name for z in zones)
    return PowerSourceStatus("rapl", True, f"{len(zones)} domain(s): {names}")


def detect_power_sources(
    sysfs_root: str = POWERCAP_ROOT, nvml: Any = None
) -> list[PowerSourceStatus]:
    """nvml, rapl and estimate, each with whether it works here and why not."""
    return [nvml_status(nvml), rapl_status(sysfs_root), _estimate_status()]


def nvml_status(nvml: Any = None) -> PowerSourceStatus:
    """Whether NVML can report GPU power here, and which way (energy counter or sampling)."""
    try:
        nvml = import_nvml(nvml)
    except ImportError:
        return PowerSourceStatus("nvml", False, "pynvml not installed (pip install nvidia-ml-py)")
    errors = nvml_errors(nvml)
    try:
        nvml.nvmlInit()
    except errors as exc:
        return PowerSourceStatus("nvml", False, describe_nvml_error(exc, nvml))
    try:
        count = nvml.nvmlDeviceGetCount()
        if count == 0:
            return PowerSourceStatus("nvml", False, "NVML sees no NVIDIA GPU")
        handle = nvml.nvmlDeviceGetHandleByIndex(0)
        try:
            nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            how = "energy counter"
        except errors as exc:
            if not nvml_error_is(exc, nvml, "NVMLError_NotSupported"):
                raise
            how = "sampled power (no energy counter)"
        return PowerSourceStatus("nvml", True, f"{count} GPU(s); {how}")
    except errors as exc:
        return PowerSourceStatus("nvml", False, describe_nvml_error(exc, nvml))
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:
            pass


def _estimate_status() -> PowerSourceStatus:
    return PowerSourceStatus(
        "estimate", True, "from CPU utilisation and a profile's idle/TDP watts (needs --profile)"
    )
