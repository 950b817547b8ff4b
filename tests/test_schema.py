"""The report schema's typed values and its one decoder: 1.0 reports still load, typed, and a bad
value anywhere is BadInput naming the path to it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from fixtures_reports import make_report

from benchbox import schema
from benchbox.errors import BadInput
from benchbox.parse import LatencyTarget
from benchbox.schema import (
    CellWarning,
    Histogram,
    IdlePower,
    MeasureSettings,
    Profile,
    Spread,
    SweepSettings,
    SweepSpec,
    report_from_json,
    report_to_json,
)

# Written by `benchbox sweep mlp --load open --rate 300 --concurrency 2 --duration 1s
# --warmup 0.2s --profile aws-c7i-2xlarge --latency-target p99=50ms --json` at commit 314d6ab
# (schema benchbox.report/1); only the model and profile paths were shortened.
REPORT_1_0 = Path(__file__).parent / "data" / "report-1.0.json"


def old_data() -> dict[str, Any]:
    return json.loads(REPORT_1_0.read_text())


def test_a_1_0_report_loads_with_typed_settings_profile_and_warnings():
    data = old_data()
    assert data["schema"] == "benchbox.report/1"
    report = report_from_json(REPORT_1_0.read_text())
    cell = report.cells[0]
    old_texts = data["cells"][0]["warnings"]
    assert [str(w) for w in cell.warnings] == old_texts  # nothing lost in the split
    assert [w.kind for w in cell.warnings] == [
        "generator-behind",
        "pool-exhausted",
        "too-few-samples",
    ]
    assert all(isinstance(w, CellWarning) for w in cell.warnings)
    assert cell.warnings[2].text.startswith("266 requests are too few for a p99")

    s = report.settings
    assert isinstance(s, SweepSettings) and s.model == "mlp" and s.search == "adaptive"
    assert isinstance(s.spec, SweepSpec) and s.spec.rates_rps == (300.0,)
    assert s.spec.load_kind == "open" and s.spec.concurrencies == (2,)
    assert isinstance(s.measure, MeasureSettings)
    assert (s.measure.duration_s, s.measure.warmup_s) == (1.0, 0.2)
    assert isinstance(s.latency_target, LatencyTarget)  # the 1.0 text, typed on loading
    assert s.latency_target.text == "p99=50ms" and s.profile == "aws-c7i-2xlarge"
    assert isinstance(s.idle_power, IdlePower) and s.idle_power.source == "estimate"

    p = report.profile
    assert isinstance(p, Profile) and p.name == "aws-c7i-2xlarge"
    assert p.price_per_hour_usd == 0.357 and p.power.tdp_w == 25.0 and p.hardware["vcpus"] == 8

    r = cell.result
    assert isinstance(r.histogram, Histogram) and r.histogram.count == r.requests
    old_delay = data["cells"][0]["result"]["issue_delay_ms"]
    assert r.issue_delay_ms == Spread(old_delay["p50"], old_delay["p99"], old_delay["max"])
    assert r.issue_delay_ms.mean is None and r.issue_delay_ms.p90 is None  # 1.0 had neither


def test_a_1_0_report_is_written_back_as_the_current_version_with_every_old_key():
    data = old_data()
    new = json.loads(report_to_json(report_from_json(REPORT_1_0.read_text())))
    assert new["schema"] == "benchbox.report/2"  # 2.0 (trials) came after 1.1
    assert new["cells"][0]["warnings"][0] == {
        "kind": "generator-behind",
        "text": data["cells"][0]["warnings"][0].split(": ", 1)[1],
    }

    def keys_kept(old: Any, now: Any, where: str) -> None:
        if isinstance(old, dict):
            assert isinstance(now, dict), where
            assert set(old) <= set(now), f"{where}: lost {set(old) - set(now)}"
            for k in old:
                keys_kept(old[k], now[k], f"{where}.{k}")
        elif isinstance(old, list) and not where.endswith(".warnings"):
            assert isinstance(now, list) and len(now) == len(old), where
            for i, (a, b) in enumerate(zip(old, now, strict=True)):
                keys_kept(a, b, f"{where}[{i}]")

    keys_kept(data, new, "report")
    # settings, profile and histogram are written exactly as 1.0 wrote them
    assert new["settings"] == data["settings"] and new["profile"] == data["profile"]
    old_result, new_result = data["cells"][0]["result"], new["cells"][0]["result"]
    assert new_result["histogram"] == old_result["histogram"]
    # what is read back from 1.1 is what was read from 1.0
    again = report_from_json(json.dumps(new))
    assert again == report_from_json(REPORT_1_0.read_text())


def test_a_new_report_round_trips_through_json_unchanged():
    report = make_report(target_ms=20.0)
    back = report_from_json(report_to_json(report))
    assert back == report
    assert isinstance(back.cells[0].result.histogram, Histogram)


def test_batch_size_counts_are_int_keyed_in_memory_and_strings_on_disk():
    data = old_data()
    data["cells"][0]["result"]["batch_size_counts"] = {"1": 10, "4": 3}
    report = report_from_json(json.dumps(data))
    assert report.cells[0].result.batch_size_counts == {1: 10, 4: 3}
    written = json.loads(report_to_json(report))
    assert written["cells"][0]["result"]["batch_size_counts"] == {"1": 10, "4": 3}


def test_settings_that_are_not_a_sweeps_load_as_none():
    data = old_data()
    data["settings"] = {"duration": "5s", "search": "grid"}  # 1.0 allowed any object here
    assert report_from_json(json.dumps(data)).settings is None
    data["settings"] = {}
    assert report_from_json(json.dumps(data)).settings is None


def test_legacy_warning_without_a_colon_keeps_its_text():
    assert schema.legacy_warning("odd") == CellWarning("odd", "")
    assert str(CellWarning("odd", "")) == "odd"
    assert schema.legacy_warning("a: b: c") == CellWarning("a", "b: c")


def _set(data: dict, path: tuple, value: Any) -> None:
    *head, last = path
    for key in head:
        data = data[key]
    if value is _DELETE:
        del data[last]
    else:
        data[last] = value


_DELETE = object()
R = ("cells", 0, "result")

BAD_VALUES = [
    (("settings", "measure", "duration_s"), "long", "report.settings.measure.duration_s: expected"),
    (("settings", "measure", "stop_above"), [99.0], "report.settings.measure.stop_above: expected"),
    (
        ("settings", "spec", "batch_sizes"),
        [1, "x"],
        "settings.spec.batch_sizes[1]: expected",
    ),
    (("settings", "spec", "dynamic_batching"), [{"max_batch": 4}], "dynamic_batching[0]: missing"),
    (("settings", "shapes"), {"seq": "long"}, "report.settings.shapes.seq: expected an integer"),
    (("settings", "idle_power", "power_w"), "hot", "report.settings.idle_power.power_w: expected"),
    (("settings", "search"), 3, "report.settings.search: expected str"),
    (("profile", "price_per_hour_usd"), "cheap", "report.profile.price_per_hour_usd: expected"),
    (("profile", "power", "tdp_w"), None, "report.profile.power.tdp_w: expected a number"),
    (("profile", "power"), _DELETE, "report.profile: missing key 'power'"),
    ((*R, "histogram", "count"), "many", "report.cells[0].result.histogram.count: expected an int"),
    (
        (*R, "histogram", "buckets"),
        [[1, 2, 3]],
        "histogram.buckets[0]: expected a list of 2",
    ),
    ((*R, "histogram", "buckets"), [[1, 2]], "report.cells[0].result.histogram: bucket counts sum"),
    ((*R, "histogram", "unit"), "s", "report.cells[0].result.histogram.unit: expected 'ms'"),
    ((*R, "issue_delay_ms", "p99"), "x", "report.cells[0].result.issue_delay_ms.p99: expected"),
    ((*R, "issue_delay_ms", "p50"), _DELETE, "result.issue_delay_ms: missing key 'p50'"),
    ((*R, "queue_ms"), [1, 2], "report.cells[0].result.queue_ms: expected an object"),
    ((*R, "compute_ms"), {"p50": 1, "p99": 2, "max": "3"}, "result.compute_ms.max: expected"),
    ((*R, "batch_size_counts"), {"four": 3}, 'result.batch_size_counts: key "four" is not an int'),
    ((*R, "batch_size_counts"), {"4": 1.5}, "report.cells[0].result.batch_size_counts.4: expected"),
    (("cells", 0, "warnings", 0), 7, "report.cells[0].warnings[0]: expected an object"),
    (("cells", 0, "warnings", 0), {"kind": "x"}, "report.cells[0].warnings[0]: missing key 'text'"),
    (("cells", 0, "warnings", 0), {"kind": 1, "text": "t"}, "warnings[0].kind: expected str"),
]


@pytest.mark.parametrize(("path", "value", "message"), BAD_VALUES)
def test_a_bad_value_in_a_typed_field_names_its_path(path, value, message):
    data = copy.deepcopy(old_data())
    _set(data, path, value)
    with pytest.raises(BadInput) as err:
        report_from_json(json.dumps(data))
    assert message in err.value.message


def test_idle_power_writes_the_keys_1_0_wrote():
    read = IdlePower(power_w=7.5, source="rapl", seconds=1.0)
    failed = IdlePower(power_w=None, source=None, detail="permission denied")
    assert schema.to_dict(read) == {"power_w": 7.5, "source": "rapl", "seconds": 1.0}
    assert schema.to_dict(failed) == {
        "power_w": None,
        "source": None,
        "detail": "permission denied",
    }
    assert schema.from_dict(IdlePower, schema.to_dict(failed)) == failed


def test_an_old_report_s_latency_target_text_loads_as_a_target_and_is_written_canonically():
    data = json.loads(REPORT_1_0.read_text())
    data["settings"]["latency_target"] = "P99.9 = 0.05s"  # the text as an earlier sweep kept it
    settings = report_from_json(json.dumps(data)).settings
    assert settings.latency_target == LatencyTarget("p99_9", 50.0)
    again = report_from_json(report_to_json(report_from_json(json.dumps(data))))
    assert json.loads(report_to_json(again))["settings"]["latency_target"] == "p99.9=50ms"
    assert again.settings.latency_target == settings.latency_target


def test_a_report_s_bad_latency_target_is_a_one_line_error_naming_the_key():
    data = json.loads(REPORT_1_0.read_text())
    data["settings"]["latency_target"] = "p98=1ms"
    with pytest.raises(BadInput, match=r"settings\.latency_target: latency target 'p98=1ms'"):
        report_from_json(json.dumps(data))
    data["settings"]["latency_target"] = {"p99": 50}
    with pytest.raises(BadInput, match=r"settings\.latency_target"):
        report_from_json(json.dumps(data))
