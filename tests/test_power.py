"""Power meters: NVML through a small fake `pynvml`, RAPL through a temporary sysfs tree.

This machine has neither an NVIDIA GPU nor readable RAPL counters, so both are faked at the
hardware boundary only: the fake NVML module answers the handful of calls the meter makes, and
the sysfs tree is real files in a temporary folder.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from benchbox.cost import PowerSpec, Profile
from benchbox.devices import nvml as nvml_reads
from benchbox.devices import power_sources
from benchbox.errors import BadInput
from benchbox.measure import power

# ---------------------------------------------------------------- a fake pynvml


class NVMLError(Exception):
    pass


class NVMLError_NotSupported(NVMLError):  # noqa: N801 - pynvml's own spelling
    pass


class NVMLError_LibraryNotFound(NVMLError):  # noqa: N801
    pass


class NVMLError_GpuIsLost(NVMLError):  # noqa: N801
    pass


class FakeNvml:
    """Just enough of pynvml: energy counters in mJ, power in mW, scripted failures."""

    NVMLError = NVMLError
    NVMLError_NotSupported = NVMLError_NotSupported
    NVMLError_LibraryNotFound = NVMLError_LibraryNotFound
    NVMLError_GpuIsLost = NVMLError_GpuIsLost

    def __init__(self, count=1, energy_mj=None, power_mw=None, init_error=None):
        self.count = count
        self.energy_mj = list(energy_mj) if energy_mj is not None else None
        self.power_mw = power_mw  # int, or a list consumed one per call (an exception = raise)
        self.init_error = init_error
        self.inits = 0
        self.shutdowns = 0
        self.power_calls = 0

    def nvmlInit(self):  # noqa: N802
        if self.init_error:
            raise self.init_error
        self.inits += 1

    def nvmlShutdown(self):  # noqa: N802
        self.shutdowns += 1

    def nvmlDeviceGetCount(self):  # noqa: N802
        return self.count

    def nvmlDeviceGetHandleByIndex(self, index):  # noqa: N802
        return ("gpu", index)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):  # noqa: N802
        if self.energy_mj is None:
            raise NVMLError_NotSupported("Not Supported")
        value = self.energy_mj.pop(0)
        if isinstance(value, Exception):
            raise value
        return value

    def nvmlDeviceGetPowerUsage(self, handle):  # noqa: N802
        self.power_calls += 1
        value = self.power_mw
        if isinstance(value, list):
            value = value.pop(0) if len(value) > 1 else value[0]
        if isinstance(value, Exception):
            raise value
        return value

    def nvmlDeviceGetMemoryInfo(self, handle):  # noqa: N802
        return SimpleNamespace(total=24 * 2**30, used=512 * 2**20, free=0)

    def nvmlDeviceGetUtilizationRates(self, handle):  # noqa: N802
        return SimpleNamespace(gpu=37, memory=5)


def _profile() -> Profile:
    return Profile(
        name="t",
        description="",
        price_per_hour_usd=1.0,
        price_source="test",
        price_date="2026-11-28",
        power=PowerSpec(idle_w=100.0, tdp_w=300.0),
    )


# ---------------------------------------------------------------- NVML


def test_nvml_energy_counter_gives_energy_and_average_power():
    nvml = FakeNvml(energy_mj=[1_000_000, 1_150_000])
    meter = power.NvmlMeter(0, nvml=nvml)
    meter.start()
    time.sleep(0.02)
    r = meter.stop()
    assert r.source == "nvml" and r.detail == "energy counter"
    assert r.energy_j == pytest.approx(150.0)
    assert r.power_w == pytest.approx(150.0 / r.duration_s)
    assert nvml.inits == nvml.shutdowns == 1


def test_nvml_without_energy_counter_falls_back_to_sampled_power():
    nvml = FakeNvml(energy_mj=None, power_mw=200_000)
    meter = power.NvmlMeter(0, nvml=nvml, interval_s=0.005)
    meter.start()
    time.sleep(0.06)
    r = meter.stop()
    assert r.source == "nvml" and "sampled" in r.detail
    assert r.power_w == pytest.approx(200.0)
    assert r.energy_j == pytest.approx(200.0 * r.duration_s)
    assert nvml.power_calls >= 3  # start, at least one in the window, end


def test_sampled_power_is_time_weighted():
    # 100 W for 1 s rising to 200 W, then 200 W for 2 s: (150 + 400) / 3.
    samples = [(0.0, 100.0), (1.0, 200.0), (3.0, 200.0)]
    assert power.average_power_w(samples) == pytest.approx(550.0 / 3.0)
    assert power.average_power_w([(5.0, 42.0)]) == 42.0
    assert power.average_power_w([]) is None


def test_nvml_library_missing_is_a_reading_with_a_reason_not_a_traceback():
    nvml = FakeNvml(init_error=NVMLError_LibraryNotFound("NVML Shared Library Not Found"))
    meter = power.NvmlMeter(0, nvml=nvml)
    meter.start()
    r = meter.stop()
    assert r.source is None and r.power_w is None and r.energy_j is None
    assert "NVML library not found" in r.detail
    status = power_sources.nvml_status(nvml)
    assert not status.available and "NVML library not found" in status.why


def test_nvml_without_a_device_says_so():
    meter = power.NvmlMeter(0, nvml=FakeNvml(count=0))
    meter.start()
    assert meter.stop().detail == "NVML sees no NVIDIA GPU"
    meter = power.NvmlMeter(3, nvml=FakeNvml(count=2, energy_mj=[0, 0]))
    meter.start()
    assert meter.stop().detail == "no NVIDIA GPU with index 3 (NVML sees 2)"
    assert not power_sources.nvml_status(FakeNvml(count=0)).available


def test_nvml_error_mid_window_on_the_energy_counter():
    nvml = FakeNvml(count=2, energy_mj=[5_000, NVMLError_GpuIsLost("GPU is lost")])
    meter = power.NvmlMeter(1, nvml=nvml)
    meter.start()
    r = meter.stop()
    assert r.source is None and r.power_w is None
    assert r.detail.startswith("mid-window:") and "GPU 1 is lost" in r.detail
    assert nvml.shutdowns == 1


def test_nvml_error_mid_window_while_sampling():
    nvml = FakeNvml(power_mw=[150_000, NVMLError("Unknown Error")])
    meter = power.NvmlMeter(0, nvml=nvml, interval_s=0.005)
    meter.start()
    time.sleep(0.03)
    r = meter.stop()
    assert r.source is None and r.power_w is None
    assert r.detail == "mid-window: NVML error on GPU 0: Unknown Error"


def test_nvml_status_reports_counter_or_sampling():
    assert (
        power_sources.nvml_status(FakeNvml(count=2, energy_mj=[1])).why
        == "2 GPU(s); energy counter"
    )
    sampling = power_sources.nvml_status(FakeNvml(count=1, energy_mj=None))
    assert sampling.available and "sampled power" in sampling.why


def test_gpu_memory_and_utilisation_helpers():
    nvml = FakeNvml()
    assert nvml_reads.gpu_memory_mb(0, nvml=nvml) == pytest.approx(512.0)
    assert nvml_reads.gpu_util_pct(0, nvml=nvml) == 37.0
    broken = FakeNvml(init_error=NVMLError_LibraryNotFound("missing"))
    assert nvml_reads.gpu_memory_mb(0, nvml=broken) is None
    assert nvml_reads.gpu_util_pct(0, nvml=broken) is None


# ---------------------------------------------------------------- RAPL


def _zone(root: Path, name: str, label: str, energy: int, max_range: int = 10_000_000) -> Path:
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "name").write_text(label + "\n")
    (d / "energy_uj").write_text(f"{energy}\n")
    (d / "max_energy_range_uj").write_text(f"{max_range}\n")
    return d


def _set(zone: Path, energy: int) -> None:
    (zone / "energy_uj").write_text(f"{energy}\n")


@pytest.fixture
def sysfs(tmp_path) -> dict[str, Path]:
    root = tmp_path / "powercap"
    return {
        "root": root,
        "pkg0": _zone(root, "intel-rapl:0", "package-0", 1_000_000),
        "pkg1": _zone(root, "intel-rapl:1", "package-1", 9_000_000),
        "core": _zone(root, "intel-rapl:0:0", "core", 100),  # inside package-0: never summed
        "dram": _zone(root, "intel-rapl:0:1", "dram", 100),
        "mmio": _zone(root, "intel-rapl-mmio:0", "package-0", 100),  # package-0 again via MMIO
        "psys": _zone(root, "intel-rapl:2", "psys", 100),  # whole platform: contains packages
    }


def test_rapl_sums_packages_only_and_handles_a_wrap(sysfs):
    meter = power.RaplMeter(str(sysfs["root"]), poll_s=None)
    meter.start()
    _set(sysfs["pkg0"], 4_000_000)  # +3 J
    _set(sysfs["pkg1"], 500_000)  # wrapped at 10 J: 10 - 9 + 0.5 = +1.5 J
    for noisy in ("core", "dram", "mmio", "psys"):
        _set(sysfs[noisy], 9_999_999)
    r = meter.stop()
    assert r.source == "rapl" and r.detail == "package-0, package-1"
    assert r.energy_j == pytest.approx(4.5)
    assert r.power_w == pytest.approx(4.5 / r.duration_s)


def test_rapl_long_window_counts_every_wrap_the_poll_sees(sysfs):
    meter = power.RaplMeter(str(sysfs["root"]), poll_s=None)
    meter.start()
    for value in (6_000_000, 2_000_000, 7_000_000):  # pkg0 wraps once between polls
        _set(sysfs["pkg0"], value)
        meter._accumulate()  # what the background poll does every poll_s seconds
    r = meter.stop()
    # 1 -> 6 (+5), 6 -> wrap -> 2 (+6), 2 -> 7 (+5): 16 J on package-0, nothing on package-1.
    assert r.energy_j == pytest.approx(16.0)


def test_rapl_background_poll_runs_and_stops(sysfs):
    meter = power.RaplMeter(str(sysfs["root"]), poll_s=0.01)
    meter.start()
    _set(sysfs["pkg0"], 2_000_000)
    time.sleep(0.05)
    r = meter.stop()
    assert r.energy_j == pytest.approx(1.0)
    assert meter._thread is None


def test_rapl_energy_delta_wraps_at_the_max_range():
    assert power.energy_delta_uj(100, 250, 1000) == 150
    assert power.energy_delta_uj(900, 50, 1000) == 150
    assert power.energy_delta_uj(900, 50, 0) == 0  # unknown range: never negative


def test_rapl_root_only_counters_name_the_fix(sysfs):
    # Tests run as root, where chmod 000 does not stop reads, so the refusal is injected.
    def read(path: Path) -> str:
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return path.read_text()

    with pytest.raises(BadInput) as exc:
        power.RaplMeter(str(sysfs["root"]), read=read, poll_s=None).start()
    assert "readable only by root" in exc.value.message
    assert "sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj" in exc.value.hint
    status = power_sources.rapl_status(str(sysfs["root"]), read=read)
    assert not status.available and "chmod o+r" in status.why and "udev" in status.why


def test_rapl_read_error_mid_window_is_a_reading_with_a_reason(sysfs):
    fail = {"on": False}

    def read(path: Path) -> str:
        if fail["on"] and path.name == "energy_uj":
            raise OSError(5, "Input/output error")
        return path.read_text()

    meter = power.RaplMeter(str(sysfs["root"]), read=read, poll_s=None)
    meter.start()
    fail["on"] = True
    r = meter.stop()
    assert r.source is None and r.power_w is None and r.detail.startswith("mid-window:")


def test_rapl_uses_psys_only_when_there_is_no_package(tmp_path):
    root = tmp_path / "pc"
    _zone(root, "intel-rapl:0", "psys", 0)
    assert [z.name for z in power_sources.rapl_zones(str(root))] == ["psys"]


def test_rapl_status_explains_what_is_missing(tmp_path, sysfs):
    missing = power_sources.rapl_status(str(tmp_path / "absent"))
    assert not missing.available and missing.why.startswith("no ")
    (tmp_path / "empty").mkdir()
    empty = power_sources.rapl_status(str(tmp_path / "empty"))
    assert not empty.available and "no RAPL package domains" in empty.why
    ok = power_sources.rapl_status(str(sysfs["root"]))
    assert ok.available and ok.why == "2 domain(s): package-0, package-1"
    with pytest.raises(BadInput, match="no RAPL package domains"):
        power.RaplMeter(str(tmp_path / "empty"), poll_s=None).start()


# ---------------------------------------------------------------- estimate, selection, idle


def test_estimate_meter_uses_the_profile_watts():
    meter = power.EstimateMeter(PowerSpec(idle_w=100.0, tdp_w=300.0), lambda: 50.0)
    meter.start()
    r = meter.stop()
    assert r.source == "estimate" and r.power_w == pytest.approx(200.0)
    assert r.energy_j == pytest.approx(200.0 * r.duration_s)


def test_estimate_meter_without_utilisation_is_still_labelled_estimate():
    meter = power.EstimateMeter(PowerSpec(idle_w=100.0, tdp_w=300.0), lambda: None)
    meter.start()
    r = meter.stop()
    assert (r.power_w, r.source, r.detail) == (None, "estimate", "CPU utilisation unknown")


def test_estimate_meter_can_measure_its_own_process():
    meter = power.EstimateMeter(PowerSpec(idle_w=100.0, tdp_w=300.0), None)
    meter.start()
    end = time.perf_counter() + 0.05
    while time.perf_counter() < end:  # keep one core busy
        pass
    r = meter.stop()
    assert 100.0 < r.power_w <= 300.0


def test_select_meter_picks_by_device(sysfs, tmp_path):
    nvml = FakeNvml()
    gpu = power.select_meter("cuda:1", None, nvml=nvml)
    assert isinstance(gpu, power.NvmlMeter) and gpu.index == 1
    assert isinstance(power.select_meter("tensorrt:0", None), power.NvmlMeter)
    root = str(sysfs["root"])
    assert isinstance(power.select_meter("cpu", None, sysfs_root=root), power.RaplMeter)
    assert isinstance(power.select_meter("openvino", None, sysfs_root=root), power.RaplMeter)
    nowhere = str(tmp_path / "no-powercap")
    estimate = power.select_meter("cpu", _profile(), sysfs_root=nowhere)
    assert isinstance(estimate, power.EstimateMeter) and estimate.spec.tdp_w == 300.0
    assert power.select_meter("cpu", None, sysfs_root=nowhere) is None
    assert power.select_meter("rocm:0", _profile(), sysfs_root=root) is None
    with pytest.raises(BadInput):
        power.select_meter("abacus", None)


def test_detect_power_sources_says_why_each_is_missing(tmp_path):
    nvml = FakeNvml(init_error=NVMLError_LibraryNotFound("missing"))
    statuses = power_sources.detect_power_sources(sysfs_root=str(tmp_path / "nope"), nvml=nvml)
    by_name = {s.name: s for s in statuses}
    assert list(by_name) == ["nvml", "rapl", "estimate"]
    assert not by_name["nvml"].available and "NVML library not found" in by_name["nvml"].why
    assert not by_name["rapl"].available and "nope" in by_name["rapl"].why
    assert by_name["estimate"].available


def test_measure_idle_w_reads_the_meter_over_the_window():
    meter = power.EstimateMeter(PowerSpec(idle_w=80.0, tdp_w=300.0), lambda: 0.0)
    r = power.measure_idle_w(meter, 0.02)
    assert r.power_w == pytest.approx(80.0) and r.duration_s >= 0.02
    with pytest.raises(BadInput):
        power.measure_idle_w(meter, 0.0)
