"""Device specs, `--device all`, and what `benchbox devices` says about each device on this host."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from benchbox import devices
from benchbox.devices import (
    device_key,
    device_problem,
    parse_device,
    unavailable_reason,
)
from benchbox.devices.inventory import device_inventory, expand_devices
from benchbox.errors import BadInput


def has_openvino() -> bool:
    return devices.openvino_version() is not None


@pytest.mark.parametrize(
    "text, name, runtime, is_gpu",
    [
        ("cpu", "cpu", "onnxruntime", False),
        ("cuda", "cuda:0", "onnxruntime", True),
        ("CUDA:1", "cuda:1", "onnxruntime", True),
        ("tensorrt:0", "tensorrt:0", "onnxruntime", True),
        ("rocm:2", "rocm:2", "onnxruntime", True),
        ("migraphx:0", "migraphx:0", "onnxruntime", True),
        ("dml:0", "dml:0", "onnxruntime", True),
        ("coreml", "coreml", "onnxruntime", False),
        ("openvino", "openvino:CPU", "onnxruntime", False),
        ("openvino:gpu", "openvino:GPU", "onnxruntime", True),
        ("ov", "ov:CPU", "openvino", False),
        ("ov:GPU.1", "ov:GPU.1", "openvino", True),
        ("ov:npu", "ov:NPU", "openvino", False),
    ],
)
def test_every_device_spelling_parses_to_its_canonical_name(text, name, runtime, is_gpu):
    spec = parse_device(text)
    assert (spec.name, spec.runtime, spec.is_gpu) == (name, runtime, is_gpu)


def test_options_after_the_question_mark_are_kept_and_sorted_in_the_key():
    spec = parse_device("cuda:0?cudnn_conv_algo_search=HEURISTIC&arena_extend_strategy=kSame")
    assert spec.index == 0 and spec.provider == "CUDAExecutionProvider"
    assert spec.options == {"cudnn_conv_algo_search": "HEURISTIC", "arena_extend_strategy": "kSame"}
    assert device_key(spec) == (
        "cuda:0?arena_extend_strategy=kSame&cudnn_conv_algo_search=HEURISTIC"
    )
    ov = parse_device("ov:CPU?INFERENCE_PRECISION_HINT=f32")
    assert ov.options == {"INFERENCE_PRECISION_HINT": "f32"} and ov.provider == "OpenVINO"


@pytest.mark.parametrize(
    "text, needle",
    [
        ("tpu", "unknown device"),
        ("gpu", "unknown device"),
        ("cuda:x", "not a device number"),
        ("cuda:-1", "0 or more"),
        ("coreml:1", "takes no ':' part"),
        ("ov:C PU", "not an OpenVINO device name"),
        ("cuda:0?novalue", "not NAME=VALUE"),
    ],
)
def test_malformed_device_specs_are_bad_input(text, needle):
    with pytest.raises(BadInput) as err:
        parse_device(text)
    assert needle in err.value.message


def test_gpu_is_answered_with_the_runtimes_that_run_gpus():
    with pytest.raises(BadInput) as err:
        parse_device("gpu")
    assert "cuda:0" in err.value.hint and "ov:GPU" in err.value.hint


def test_device_all_is_every_usable_device_here():
    expected = ["cpu"] + (["ov:CPU"] if has_openvino() else [])
    # On this kind of host (no GPU, no Intel CPU for the OpenVINO plugin) nothing else runs;
    # elsewhere `all` holds at least these.
    got = expand_devices("all")
    assert got[: len(expected)] == expected or set(expected) <= set(got)
    assert all(unavailable_reason(parse_device(d)) is None for d in got)


def test_device_list_drops_duplicates_and_keeps_order():
    assert expand_devices("cpu?a=1, cpu, cpu") == ["cpu?a=1", "cpu"]


def test_a_named_device_that_cannot_run_here_is_bad_input_with_what_to_install():
    with pytest.raises(BadInput) as err:
        expand_devices("cpu,rocm:0")
    assert "rocm:0" in err.value.message and "ROCMExecutionProvider" in err.value.message
    assert "ROCm" in err.value.hint


def test_openvino_runtime_missing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    why, fix = device_problem(parse_device("ov:CPU"))
    assert why == "the OpenVINO runtime is not installed"
    assert "benchbox[openvino]" in fix


@pytest.mark.skipif(not has_openvino(), reason="the openvino extra is not installed")
def test_openvino_runtime_device_it_does_not_see_is_refused():
    why, fix = device_problem(parse_device("ov:NPU"))
    assert "OpenVINO sees no NPU device" in why and "CPU" in why
    assert "driver" in fix


def _openvino_plugin_without_devices() -> bool:
    plugin = devices.plugin_for("OpenVINOExecutionProvider")
    return (
        plugin is not None
        and plugin.error is None
        and not devices.ep_devices("OpenVINOExecutionProvider")
        and "OpenVINOExecutionProvider" not in devices.available_providers()
    )


@pytest.mark.skipif(
    not _openvino_plugin_without_devices(),
    reason="needs onnxruntime-ep-openvino installed on a host where it lists no device",
)
def test_openvino_plugin_without_a_device_says_so_plainly():
    reason = unavailable_reason(parse_device("openvino"))
    assert "onnxruntime-ep-openvino is installed but offers no CPU device on this host" in reason
    assert "Intel" in reason and "--device ov:CPU" in reason
    with pytest.raises(BadInput) as err:
        expand_devices("openvino")
    assert "offers no CPU device" in err.value.message and "ov:CPU" in err.value.hint
    plugin = next(p for p in device_inventory()["plugins"] if "openvino" in p["package"])
    assert plugin["devices"] == [] and "offers no device on this host" in plugin["status"]


def test_plugin_libraries_register_once_per_process():
    first = devices.plugin_eps()
    devices.plugin_eps.cache_clear()  # registering the same library again must not fail
    again = devices.plugin_eps()
    assert [p.package for p in first] == [p.package for p in again]
    assert all(p.error is None for p in again if p.library)


def cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="400")
    return subprocess.run(
        [sys.executable, "-m", "benchbox", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_devices_json_gives_each_device_usability_memory_power_and_a_fix():
    p = cli("devices", "--json")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    rows = {r["device"]: r for r in data["devices"]}
    assert rows["cpu"]["usable"] and rows["cpu"]["memory_gb"] == data["host"]["memory_gb"]
    assert rows["cpu"]["power"] in ("rapl", "estimate (needs --profile)")
    for kind in ("cuda:0", "tensorrt:0", "rocm:0", "migraphx:0", "dml:0", "coreml"):
        assert kind in rows
    for r in data["devices"]:
        assert set(r) >= {"device", "runtime", "usable", "why", "install", "memory_gb", "power"}
        if not r["usable"]:
            assert r["why"] and r["install"], r
    assert data["all"] == [r["device"] for r in data["devices"] if r["usable"]]
    ov_rows = [r for r in data["devices"] if r["device"].startswith("ov:")]
    assert ov_rows and ov_rows[0]["device"] == "ov:CPU"
    assert ov_rows[0]["usable"] == has_openvino()
    if has_openvino():
        assert ov_rows[0]["memory_gb"] == data["host"]["memory_gb"]


def test_devices_table_shows_install_hints_verbatim():
    p = cli("devices")
    assert p.returncode == 0, p.stderr
    assert "--device all = cpu" in p.stdout
    # Rich markup must not eat the brackets of the extra's name.
    if _openvino_plugin_without_devices() or not has_openvino():
        assert "pip install 'benchbox[openvino]'" in p.stdout
    assert "onnxruntime-gpu" in p.stdout
