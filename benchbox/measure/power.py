"""Power meters behind one small interface: `start()`, then `stop() -> PowerReading`.

Sources, best first: NVML (the GPU's energy counter, or its sampled power draw, read through
benchbox.devices.nvml), Linux powercap RAPL (CPU package energy counters), and an estimate from
CPU utilisation and a profile's idle and TDP watts. Meters run alongside a measurement, never
inside its timed path; their failures become a reading with `source=None` and a `detail` saying
why, never a traceback.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from benchbox.cost import PowerSpec, Profile, estimate_power_w
from benchbox.devices.nvml import describe_nvml_error, import_nvml, nvml_error_is, nvml_errors
from benchbox.devices.power_sources import (
    POWERCAP_ROOT,
    RAPL_FIX,
    RaplZone,
    _read_text,
    rapl_status,
    rapl_zones,
)
from benchbox.devices.spec import NVIDIA_KINDS, parse_device
from benchbox.errors import BadInput


@dataclass(frozen=True)
class PowerReading:
    """Average power and energy over one window; `source` None means nothing was measured."""

    power_w: float | None
    energy_j: float | None
    duration_s: float
    source: str | None
    detail: str | None = None


class PowerMeter(Protocol):
    """Anything that measures power over a window."""

    def start(self) -> None: ...

    def stop(self) -> PowerReading: ...


# ---------------------------------------------------------------- NVML


class NvmlMeter:
    """GPU power through NVML: the energy counter (Volta and newer) or sampled power draw."""

    def __init__(self, index: int, nvml: Any = None, interval_s: float = 0.025) -> None:
        self.index = int(index)
        self.interval_s = interval_s
        self._nvml_arg = nvml
        self._nvml: Any = None
        self._handle: Any = None
        self._t0 = 0.0
        self._error: str | None = None
        self._mode: str | None = None  # "counter" | "sampling"
        self._e0_mj = 0
        self._samples: list[tuple[float, float]] = []
        self._sample_error: str | None = None
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._initialised = False

    def start(self) -> None:
        """Open NVML and take the first reading; failures are reported by `stop()`."""
        self._t0 = time.perf_counter()
        self._error, self._mode, self._sample_error = None, None, None
        self._samples = []
        try:
            nvml = self._nvml = import_nvml(self._nvml_arg)
        except ImportError:
            self._error = "pynvml is not installed (pip install nvidia-ml-py)"
            return
        errors = nvml_errors(nvml)
        try:
            nvml.nvmlInit()
            self._initialised = True
            count = nvml.nvmlDeviceGetCount()
            if count == 0:
                self._error = "NVML sees no NVIDIA GPU"
                return
            if not 0 <= self.index < count:
                self._error = f"no NVIDIA GPU with index {self.index} (NVML sees {count})"
                return
            self._handle = nvml.nvmlDeviceGetHandleByIndex(self.index)
        except errors as exc:
            self._error = describe_nvml_error(exc, nvml, self.index)
            return
        try:
            self._e0_mj = nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
            self._mode = "counter"
        except errors as exc:
            if not nvml_error_is(exc, nvml, "NVMLError_NotSupported"):
                self._error = describe_nvml_error(exc, nvml, self.index)
                return
            self._start_sampling()
        self._t0 = time.perf_counter()

    def _start_sampling(self) -> None:
        self._mode = "sampling"
        self._stop_event.clear()
        self._sample()  # one reading at the start of the window
        self._thread = threading.Thread(target=self._loop, name="benchbox-nvml-power", daemon=True)
        self._thread.start()

    def _sample(self) -> bool:
        try:
            milliwatts = self._nvml.nvmlDeviceGetPowerUsage(self._handle)
        except nvml_errors(self._nvml) as exc:
            self._sample_error = describe_nvml_error(exc, self._nvml, self.index)
            return False
        self._samples.append((time.perf_counter(), milliwatts / 1000.0))
        return True

    def _loop(self) -> None:
        while not self._stop_event.wait(self.interval_s):
            if not self._sample():
                return

    def stop(self) -> PowerReading:
        """Average power and energy since `start()`."""
        duration = time.perf_counter() - self._t0
        try:
            if self._error is not None:
                return PowerReading(None, None, duration, None, detail=self._error)
            if self._mode == "counter":
                return self._stop_counter(duration)
            return self._stop_sampling(duration)
        finally:
            self._close()

    def _stop_counter(self, duration: float) -> PowerReading:
        try:
            e1_mj = self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        except nvml_errors(self._nvml) as exc:
            why = describe_nvml_error(exc, self._nvml, self.index)
            return PowerReading(None, None, duration, None, detail=f"mid-window: {why}")
        energy_j = max(0, e1_mj - self._e0_mj) / 1000.0
        power = energy_j / duration if duration > 0 else None
        return PowerReading(power, energy_j, duration, "nvml", detail="energy counter")

    def _stop_sampling(self, duration: float) -> PowerReading:
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        if self._sample_error is None:
            self._sample()  # one reading at the end of the window
        if self._sample_error is not None:
            return PowerReading(
                None, None, duration, None, detail=f"mid-window: {self._sample_error}"
            )
        power = average_power_w(self._samples)
        energy = None if power is None else power * duration
        detail = f"sampled power ({len(self._samples)} samples; no energy counter)"
        return PowerReading(power, energy, duration, "nvml", detail=detail)

    def _close(self) -> None:
        if self._initialised:
            self._initialised = False
            try:
                self._nvml.nvmlShutdown()
            except Exception:  # shutting down must never hide the reading
                pass


def average_power_w(samples: list[tuple[float, float]]) -> float | None:
    """Time-weighted mean of (time_s, watts) samples (trapezoid rule); one sample is its value."""
    if not samples:
        return None
    if len(samples) == 1:
        return samples[0][1]
    area = 0.0
    for (t0, p0), (t1, p1) in itertools.pairwise(samples):
        area += (t1 - t0) * (p0 + p1) / 2.0
    span = samples[-1][0] - samples[0][0]
    return area / span if span > 0 else sum(p for _, p in samples) / len(samples)


# ---------------------------------------------------------------- RAPL


def energy_delta_uj(before: int, after: int, max_range_uj: int) -> int:
    """Energy between two counter readings, across at most one wrap at max_energy_range_uj."""
    if after >= before:
        return after - before
    if max_range_uj <= 0:
        return 0  # a wrap we cannot size: count nothing rather than a negative
    return max_range_uj - before + after


class RaplMeter:
    """CPU package energy from Linux powercap (RAPL), summed over packages, wrap-aware.

    A background poll (every `poll_s` seconds) keeps long windows correct when a counter wraps
    more than once; `read` is injectable so tests can simulate unreadable files.
    """

    def __init__(
        self,
        root: str = POWERCAP_ROOT,
        read: Callable[[Path], str] | None = None,
        poll_s: float | None = 10.0,
    ) -> None:
        self.root = root
        self._read = read or _read_text
        self.poll_s = poll_s
        self._zones: list[RaplZone] = []
        self._last: list[int] = []
        self._total_uj = 0
        self._t0 = 0.0
        self._error: str | None = None
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    def _counters(self) -> list[int]:
        return [int(self._read(z.path / "energy_uj").strip()) for z in self._zones]

    def start(self) -> None:
        """Read every package counter; BadInput when RAPL is missing or readable only by root."""
        self._zones = rapl_zones(self.root, self._read)
        if not self._zones:
            raise BadInput(
                f"no RAPL package domains under {self.root}",
                "RAPL needs Linux on bare metal (most cloud VMs hide it); use --profile for an "
                "estimate instead",
            )
        try:
            self._last = self._counters()
        except PermissionError:
            raise BadInput(
                f"RAPL energy counters under {self.root} are readable only by root", RAPL_FIX
            ) from None
        except (OSError, ValueError) as exc:
            raise BadInput(f"cannot read RAPL energy counters under {self.root}: {exc}") from None
        self._total_uj = 0
        self._error = None
        self._t0 = time.perf_counter()
        if self.poll_s:
            self._stop_event.clear()
            self._thread = threading.Thread(target=self._loop, name="benchbox-rapl", daemon=True)
            self._thread.start()

    def _accumulate(self) -> None:
        with self._lock:
            if self._error is not None:
                return
            try:
                now = self._counters()
            except (OSError, ValueError) as exc:
                self._error = f"mid-window: cannot read RAPL counters ({exc})"
                return
            for zone, before, after in zip(self._zones, self._last, now, strict=True):
                self._total_uj += energy_delta_uj(before, after, zone.max_range_uj)
            self._last = now

    def _loop(self) -> None:
        while not self._stop_event.wait(self.poll_s or 10.0):
            self._accumulate()

    def stop(self) -> PowerReading:
        """Average package power and energy since `start()`."""
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        self._accumulate()
        duration = time.perf_counter() - self._t0
        if self._error is not None:
            return PowerReading(None, None, duration, None, detail=self._error)
        energy_j = self._total_uj / 1e6
        power = energy_j / duration if duration > 0 else None
        names = ", ".join(z.name for z in self._zones)
        return PowerReading(power, energy_j, duration, "rapl", detail=names)


# ---------------------------------------------------------------- estimate


def _process_cpu_util() -> Callable[[], Callable[[], float]]:
    """A factory: call once at the start of a window, then call the result at its end."""

    def begin() -> Callable[[], float]:
        t0 = time.perf_counter()
        c0 = time.process_time()

        def end() -> float:
            wall = time.perf_counter() - t0
            cpus = os.cpu_count() or 1
            return 100.0 * (time.process_time() - c0) / (wall * cpus) if wall > 0 else 0.0

        return end

    return begin


class EstimateMeter:
    """Power estimated from CPU utilisation and a profile's idle/TDP watts (always `estimate`).

    `cpu_util_pct_fn` returns the utilisation (0-100, share of the machine) over the window when
    called at `stop()`; None measures this process's own CPU share.
    """

    def __init__(
        self, profile_power: PowerSpec, cpu_util_pct_fn: Callable[[], float | None] | None = None
    ) -> None:
        self.spec = profile_power
        self._fn = cpu_util_pct_fn
        self._end: Callable[[], float] | None = None
        self._t0 = 0.0

    def start(self) -> None:
        """Mark the start of the window."""
        self._t0 = time.perf_counter()
        self._end = _process_cpu_util()() if self._fn is None else None

    def stop(self) -> PowerReading:
        """The estimated average power and energy over the window."""
        duration = time.perf_counter() - self._t0
        util = self._fn() if self._fn is not None else (self._end() if self._end else None)
        if util is None:
            return PowerReading(None, None, duration, "estimate", detail="CPU utilisation unknown")
        power = estimate_power_w(util, self.spec.idle_w, self.spec.tdp_w)
        detail = f"{min(max(util, 0.0), 100.0):.1f}% CPU between {self.spec.idle_w:g} W idle "
        detail += f"and {self.spec.tdp_w:g} W TDP"
        return PowerReading(power, power * duration, duration, "estimate", detail=detail)


# ---------------------------------------------------------------- choosing a meter


def select_meter(
    device: str,
    profile: Profile | None,
    sysfs_root: str = POWERCAP_ROOT,
    nvml: Any = None,
    cpu_util_pct_fn: Callable[[], float | None] | None = None,
) -> PowerMeter | None:
    """The best meter for a device: NVML for NVIDIA GPUs; RAPL for CPUs when readable, else an
    estimate when a profile is given; None when nothing can measure or estimate it.

    Non-NVIDIA GPUs (rocm, dml, openvino:GPU) get None: a CPU-based estimate would be wrong.
    """
    spec = parse_device(device)
    if spec.kind in NVIDIA_KINDS:
        return NvmlMeter(spec.index or 0, nvml)
    if spec.is_gpu:
        return None
    if rapl_status(sysfs_root).available:
        return RaplMeter(sysfs_root)
    if profile is not None:
        return EstimateMeter(profile.power, cpu_util_pct_fn)
    return None


def measure_idle_w(meter: PowerMeter, seconds: float) -> PowerReading:
    """The idle baseline: the meter's reading over `seconds` of doing nothing."""
    if not seconds > 0:
        raise BadInput(f"the idle window must be positive, got {seconds:g} s")
    meter.start()
    time.sleep(seconds)
    return meter.stop()
