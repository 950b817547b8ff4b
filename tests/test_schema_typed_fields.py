"""profile.hardware and model.input_values are frozen dataclasses read by the schema's decoder,
with the JSON every old report and profile wrote: it loads, and it is written back unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchbox import cost, pricing, schema
from benchbox.errors import BadInput
from benchbox.schema import InputValues, ModelInfo, Profile, ProfileHardware, from_dict, to_dict
from benchbox.store import load_report

DATA = Path(__file__).resolve().parent / "data"


def test_every_builtin_profile_reads_as_typed_hardware_with_its_keys_unchanged():
    for profile in cost.list_profiles():
        assert isinstance(profile.hardware, ProfileHardware), profile.name
        back = cost.profile_to_dict(profile)["hardware"]
        assert set(back) == set(profile.hardware) and all(v is not None for v in back.values())
        again = cost.profile_from_dict(json.loads(json.dumps(cost.profile_to_dict(profile))))
        assert again.hardware == profile.hardware
        assert pricing.profile_hardware(again) == pricing.profile_hardware(profile)


def test_hardware_keeps_the_number_types_the_toml_wrote_and_leaves_out_unstated_keys():
    hw = from_dict(ProfileHardware, {"cpu": "Test CPU", "vcpus": 8, "memory_gb": 32}, "hw")
    assert hw.cpu == "Test CPU" and hw.gpus is None and hw.gpu_count is None
    assert json.dumps(to_dict(hw)) == '{"cpu": "Test CPU", "vcpus": 8, "memory_gb": 32}'
    assert to_dict(from_dict(ProfileHardware, {"memory_gb": 15.25}, "hw")) == {"memory_gb": 15.25}
    assert hw["vcpus"] == 8 and hw.get("gpus") is None and "gpus" not in hw
    with pytest.raises(KeyError):
        hw["gpus"]
    with pytest.raises(BadInput, match="vcpus"):
        from_dict(ProfileHardware, {"vcpus": "eight"}, "hw")


def test_a_profile_given_a_plain_table_holds_typed_hardware():
    power = schema.PowerSpec(idle_w=1.0, tdp_w=2.0)
    p = Profile("p", "", 0.1, "src", "2026-01-01", power, hardware={"cpu": "X", "gpu_count": 0})
    assert p.hardware == ProfileHardware(cpu="X", gpu_count=0)
    assert pricing.profile_hardware(p).gpu_count == 0
    assert cost.electricity_only(4).hardware.vcpus == 4


def test_input_values_are_written_as_the_object_name_value():
    values = InputValues.of({"sr": 16000.0, "state": [[0.0, 1.0]]})
    assert values == {"sr": 16000.0, "state": [[0.0, 1.0]]} and list(values) == ["sr", "state"]
    assert to_dict(values) == {"sr": 16000.0, "state": [[0.0, 1.0]]}
    info = ModelInfo("m.onnx", "ab", 17, (), input_values=values)
    data = json.loads(json.dumps(to_dict(info)))
    assert data["input_values"] == {"sr": 16000.0, "state": [[0.0, 1.0]]}
    assert from_dict(ModelInfo, data, "model").input_values == values
    assert (
        from_dict(ModelInfo, {**data, "input_values": {"sr": 8000}}, "m").input_values["sr"] == 8000
    )
    with pytest.raises(BadInput, match="input_values"):
        from_dict(ModelInfo, {**data, "input_values": [1, 2]}, "model")


def test_old_reports_load_and_are_written_back_with_the_same_profile_and_model():
    for path in sorted(DATA.glob("*.json")):
        raw = json.loads(path.read_text())
        report = load_report(path)
        written = json.loads(schema.report_to_json(report))
        if isinstance(raw.get("profile"), dict):
            assert written["profile"]["hardware"] == raw["profile"].get("hardware", {}), path.name
        assert written["model"].get("input_values", {}) == raw["model"].get("input_values", {})


def test_a_generator_node_whose_clock_runs_behind_loads_back_and_a_negative_count_does_not():
    """Measured figures are non-negative, but a clock offset is a difference: a node behind the
    driver has a negative one (seen on a real cluster: -6.5 ms), and the report must load."""
    from benchbox.schema import GeneratorNodeStats, GeneratorStats, Result

    node = GeneratorNodeStats("n1", -6.5, 0.9, 120, 0, 0.4, 0.1)
    gen = GeneratorStats(processes=1, busy_share=0.1, nodes=(node,))
    data = {"requests": 1, "inferences": 1, "duration_s": 1.0, "throughput_ips": 1.0,
            "requests_per_s": 1.0, "confidence": 0.95, "latency_ci_ms": None,
            "latency_ms": {"mean": 1.0, "std": 0.0, "min": 1.0, "p50": 1.0, "p90": 1.0,
                           "p95": 1.0, "p99": 1.0, "p99_9": 1.0, "max": 1.0},
            "generator": to_dict(gen)}  # fmt: skip
    back = from_dict(Result, json.loads(json.dumps(data)), "result")
    assert back.generator.nodes[0].clock_offset_ms == -6.5
    data["generator"]["nodes"][0]["requests"] = -1
    with pytest.raises(BadInput, match="requests: a measured figure cannot be negative"):
        from_dict(Result, data, "result")
