"""Resource sampling outside the timed path: process CPU %, peak RSS, GPU memory/utilisation."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class ResourceStats:
    """Resource use over one measuring window."""

    cpu_util_pct: float  # this process, as a share of the whole machine (0-100)
    rss_mb: float  # peak resident set size
    gpu_mem_mb: float | None = None
    gpu_util_pct: float | None = None


class ResourceSampler:
    """Samples RSS (and GPU figures when given probes) on a background thread every `interval_s`."""

    def __init__(
        self,
        interval_s: float = 0.2,
        gpu_mem_mb: Callable[[], float | None] | None = None,
        gpu_util_pct: Callable[[], float | None] | None = None,
    ) -> None:
        self.interval_s = interval_s
        self._proc = psutil.Process()
        self._gpu_mem = gpu_mem_mb
        self._gpu_util = gpu_util_pct
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rss_peak = 0
        self._gpu_mem_peak: float | None = None
        self._gpu_util_values: list[float] = []
        self._t0 = 0.0
        self._cpu0 = 0.0

    def _cpu_s(self) -> float:
        t = self._proc.cpu_times()
        return t.user + t.system

    def _sample(self) -> None:
        self._rss_peak = max(self._rss_peak, self._proc.memory_info().rss)
        if self._gpu_mem is not None:
            value = self._gpu_mem()
            if value is not None:
                self._gpu_mem_peak = max(self._gpu_mem_peak or 0.0, value)
        if self._gpu_util is not None:
            value = self._gpu_util()
            if value is not None:
                self._gpu_util_values.append(value)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._cpu0 = self._cpu_s()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="benchbox-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> ResourceStats:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        wall = max(time.perf_counter() - self._t0, 1e-9)
        cores = psutil.cpu_count(logical=True) or 1
        util = 100.0 * (self._cpu_s() - self._cpu0) / wall / cores
        vals = self._gpu_util_values
        gpu_util = sum(vals) / len(vals) if vals else None
        return ResourceStats(
            cpu_util_pct=round(min(max(util, 0.0), 100.0), 2),
            rss_mb=round(self._rss_peak / 2**20, 1),
            gpu_mem_mb=self._gpu_mem_peak,
            gpu_util_pct=gpu_util,
        )


_STATUS, _CLEAR_REFS = "/proc/self/status", "/proc/self/clear_refs"


def _high_water_bytes() -> int | None:
    """This process's peak RSS since the last reset (Linux VmHWM), or None where unknown."""
    try:
        with open(_STATUS) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _reset_high_water() -> bool:
    """Reset VmHWM to the current RSS (Linux: '5' into clear_refs); False where that fails."""
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakRss:
    """The peak RSS over a stretch of work (`with PeakRss() as p: ...; p.mb`), such as creating
    sessions: the kernel's high-water mark, reset on entry, where Linux keeps one; else RSS
    sampled every `interval_s` on a thread (which can miss a peak shorter than that)."""

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = interval_s
        self.mb: float | None = None
        self._proc = psutil.Process()
        self._kernel = False
        self._peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _poll(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._peak = max(self._peak, self._proc.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._peak = self._proc.memory_info().rss
        self._kernel = _reset_high_water() and _high_water_bytes() is not None
        if not self._kernel:
            self._thread = threading.Thread(target=self._poll, name="peak-rss", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._kernel:
            self._peak = max(self._peak, _high_water_bytes() or 0)
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
        self._peak = max(self._peak, self._proc.memory_info().rss)
        self.mb = round(self._peak / 2**20, 1)
