"""GPU discovery, the device inventory and GPU probes through a small fake `pynvml` module.

This machine has no NVIDIA GPU, so NVML is faked at its boundary: the few functions benchbox
calls, with NVML's error classes. Cases: no library, no device, a device without the energy
counter, and a GPU that errors in the middle of a sweep.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from benchbox import devices
from benchbox.devices import gpu_probes, nvml_gpus
from benchbox.devices.inventory import device_inventory, expand_devices
from benchbox.errors import BadInput
from benchbox.measure.sampler import ResourceSampler

GIB = 2**30
WITH_CUDA = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


class FakeNvml:
    """The slice of pynvml benchbox uses; each GPU is a dict, `lost` GPUs raise GpuIsLost."""

    class NVMLError(Exception):
        pass

    class NVMLError_LibraryNotFound(NVMLError):
        pass

    class NVMLError_NotSupported(NVMLError):
        pass

    class NVMLError_GpuIsLost(NVMLError):
        pass

    def __init__(self, gpus: list[dict] | None = None, init_error: type | None = None) -> None:
        self.gpus = gpus or []
        self.init_error = init_error
        self.calls = 0

    def _gpu(self, handle: int) -> dict:
        self.calls += 1
        gpu = self.gpus[handle]
        if gpu.get("lost"):
            raise self.NVMLError_GpuIsLost("GPU is lost")
        return gpu

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise self.init_error("NVML Shared Library Not Found")

    def nvmlShutdown(self) -> None:
        pass

    def nvmlSystemGetDriverVersion(self) -> str:
        return "550.54"

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetName(self, h: int) -> bytes:
        return self._gpu(h)["name"].encode()

    def nvmlDeviceGetUUID(self, h: int) -> str:
        return f"GPU-{h:04d}"

    def nvmlDeviceGetMemoryInfo(self, h: int) -> SimpleNamespace:
        g = self._gpu(h)
        return SimpleNamespace(total=g["total_gb"] * GIB, used=g["used_mb"] * 2**20, free=0)

    def nvmlDeviceGetTotalEnergyConsumption(self, h: int) -> int:
        g = self._gpu(h)
        if g.get("energy_mj") is None:
            raise self.NVMLError_NotSupported("Not Supported")
        return g["energy_mj"]

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        return self._gpu(h)["power_mw"]

    def nvmlDeviceGetUtilizationRates(self, h: int) -> SimpleNamespace:
        return SimpleNamespace(gpu=self._gpu(h)["util"], memory=0)


def a100(**changes) -> dict:
    gpu = {
        "name": "NVIDIA A100-SXM4-80GB",
        "total_gb": 80,
        "used_mb": 1200,
        "energy_mj": 5_000_000,
        "power_mw": 250_000,
        "util": 87,
    }
    return gpu | changes


def rows_by_device(inv: dict) -> dict[str, dict]:
    return {r["device"]: r for r in inv["devices"]}


# ---------------------------------------------------------------- no library


def test_without_the_nvml_library_no_gpu_is_listed_and_cuda_says_why():
    nvml = FakeNvml(init_error=FakeNvml.NVMLError_LibraryNotFound)
    gpus, note = nvml_gpus(nvml)
    assert gpus == [] and "NVML library not found" in note
    inv = device_inventory(nvml=nvml, providers=WITH_CUDA)
    cuda = rows_by_device(inv)["cuda:0"]
    assert not cuda["usable"] and "NVML library not found" in cuda["why"]
    assert "NVIDIA GPU with its driver" in cuda["install"]
    nvml_source = next(p for p in inv["power_sources"] if p["name"] == "nvml")
    assert not nvml_source["available"]
    probes = gpu_probes("cuda:0", nvml=nvml)
    assert probes["gpu_mem_mb"]() is None and probes["gpu_util_pct"]() is None


# ---------------------------------------------------------------- no device


def test_nvml_without_a_gpu_makes_cuda_unusable_even_with_onnxruntime_gpu():
    nvml = FakeNvml(gpus=[])
    assert nvml_gpus(nvml) == ([], "NVML sees no NVIDIA GPU")
    with pytest.raises(BadInput) as err:
        expand_devices("cuda:0", providers=WITH_CUDA, nvml=nvml)
    assert "no NVIDIA GPU seen" in err.value.message
    assert not any(d.startswith(("cuda", "tensorrt")) for d in expand_devices(
        "all", providers=WITH_CUDA, nvml=nvml
    ))  # fmt: skip


# ---------------------------------------------------------------- two GPUs, one without counter


def test_each_gpu_is_listed_with_its_memory_and_power_source():
    nvml = FakeNvml(gpus=[a100(), a100(name="Tesla T4", total_gb=15, energy_mj=None)])
    inv = device_inventory(nvml=nvml, providers=WITH_CUDA)
    assert [(g["index"], g["name"], g["memory_gb"]) for g in inv["gpus"]] == [
        (0, "NVIDIA A100-SXM4-80GB", 80.0),
        (1, "Tesla T4", 15.0),
    ]
    assert inv["host"]["gpus"][1]["driver"] == "550.54"
    rows = rows_by_device(inv)
    assert rows["cuda:0"]["usable"] and rows["cuda:1"]["usable"]
    assert rows["cuda:0"]["memory_gb"] == 80.0 and rows["tensorrt:1"]["memory_gb"] == 15.0
    assert rows["cuda:0"]["power"] == "nvml: energy counter"
    assert rows["cuda:1"]["power"] == "nvml: sampled power (no energy counter)"
    assert "host<->device copies" in rows["cuda:0"]["note"]
    got = expand_devices("all", providers=WITH_CUDA, nvml=nvml)
    assert {"cuda:0", "cuda:1", "tensorrt:0", "tensorrt:1"} <= set(got)


def test_without_onnxruntime_gpu_a_present_gpu_says_what_to_install():
    nvml = FakeNvml(gpus=[a100()])
    rows = rows_by_device(device_inventory(nvml=nvml, providers=["CPUExecutionProvider"]))
    assert not rows["cuda:0"]["usable"] and rows["cuda:0"]["memory_gb"] == 80.0
    assert "CUDAExecutionProvider is not in this onnxruntime build" in rows["cuda:0"]["why"]
    assert "onnxruntime-gpu" in rows["cuda:0"]["install"]


def test_a_gpu_index_beyond_what_nvml_sees_is_refused():
    nvml = FakeNvml(gpus=[a100(), a100()])
    with pytest.raises(BadInput) as err:
        expand_devices("cuda:2", providers=WITH_CUDA, nvml=nvml)
    assert "no NVIDIA GPU 2 (NVML sees 2)" in err.value.message
    assert err.value.hint == "use cuda:0, cuda:1"


def test_probes_read_the_requested_gpu():
    nvml = FakeNvml(gpus=[a100(used_mb=100, util=5), a100(used_mb=3000, util=64)])
    probes = gpu_probes("cuda:1?cudnn_conv_algo_search=HEURISTIC", nvml=nvml)
    assert probes["gpu_mem_mb"]() == 3000.0 and probes["gpu_util_pct"]() == 64.0
    for device in ("cpu", "ov:CPU", "ov:GPU", "rocm:0", "openvino:GPU"):
        assert gpu_probes(device, nvml=nvml) == {}


# ---------------------------------------------------------------- errors in the middle


def test_a_gpu_lost_mid_sweep_turns_probes_to_unknown_and_keeps_the_peak():
    gpu = a100(used_mb=2048)
    nvml = FakeNvml(gpus=[gpu])
    sampler = ResourceSampler(interval_s=0.005, **gpu_probes("cuda:0", nvml=nvml))
    sampler.start()
    time.sleep(0.05)
    gpu["lost"] = True  # the GPU falls off the bus while the cell is measured
    calls = nvml.calls
    time.sleep(0.05)
    stats = sampler.stop()
    assert nvml.calls > calls  # the sampler kept asking, and got errors, not a crash
    assert stats.gpu_mem_mb == 2048.0
    assert stats.gpu_util_pct == 87.0


def test_a_gpu_that_errors_during_discovery_is_skipped_with_a_note():
    nvml = FakeNvml(gpus=[a100(lost=True), a100(name="NVIDIA H100")])
    gpus, note = nvml_gpus(nvml)
    assert [(g.index, g.name) for g in gpus] == [(1, "NVIDIA H100")]
    assert note == "GPU 0 skipped: GPU 0 is lost (fell off the bus); the driver needs a reset"
    rows = rows_by_device(device_inventory(nvml=nvml, providers=WITH_CUDA))
    assert rows["cuda:1"]["usable"] and "cuda:0" not in rows
    assert expand_devices("cuda:1", providers=WITH_CUDA, nvml=nvml) == ["cuda:1"]


def test_host_info_records_the_gpus_nvml_sees():
    host = devices.host_info(FakeNvml(gpus=[a100()]))
    assert [(g.name, g.memory_gb, g.uuid) for g in host.gpus] == [
        ("NVIDIA A100-SXM4-80GB", 80.0, "GPU-0000")
    ]
