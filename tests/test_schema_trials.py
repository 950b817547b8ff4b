"""Report schema 2: trials in the report, and 1.x reports loading as one trial each."""

from __future__ import annotations

import json

from fixtures_reports import make_report

from benchbox import schema
from benchbox.measure import trials
from benchbox.store import load_report, save_report


def _as_v1(report: schema.Report) -> dict:
    """The report as benchbox 0.1 wrote it: schema 1, no trial keys."""
    data = json.loads(schema.report_to_json(report))
    data["schema"] = "benchbox.report/1"
    for cell in data["cells"]:
        for key in ("trials", "per_trial", "ci_level", "within_trial_ci_ms", "throughput_ci_ips"):
            (cell.get("result") or {}).pop(key, None)
    data["recommendation"].pop("tied", None)
    return data


def test_a_v1_report_loads_and_says_it_holds_one_trial(tmp_path):
    report = make_report(devices=("cpu",), batches=(1,), concurrencies=(1, 2))
    path = tmp_path / "old.json"
    path.write_text(json.dumps(_as_v1(report)))
    loaded = load_report(path)
    assert loaded.schema == schema.SCHEMA_ID == "benchbox.report/2"
    measured = [c for c in loaded.cells if c.result is not None]
    assert measured
    for cell in measured:
        r = cell.result
        assert r.trials == 1 and r.ci_level == "within-trial"
        assert r.within_trial_ci_ms == r.latency_ci_ms
        (one,) = r.per_trial
        assert one.throughput_ips == r.throughput_ips and one.latency_ms == r.latency_ms
        assert one.status == cell.status
    failed = [c for c in loaded.cells if c.status == "failed"]
    assert failed and failed[0].result is None


def test_trials_round_trip_through_json(tmp_path):
    report = make_report(devices=("cpu",), batches=(1,), concurrencies=(1,), include_failed=False)
    runs = [
        make_report(devices=("cpu",), batches=(1,), concurrencies=(1,), seed=k) for k in range(3)
    ]
    combined = trials.combine(
        [r.cells[0].result for r in runs], statuses=["ok", "unstable", "ok"], orders=[0, 2, 4]
    )
    report = schema.replace(report, cells=(schema.replace(report.cells[0], result=combined),))
    path = save_report(report, tmp_path / "r.json")
    data = json.loads(path.read_text())
    r = data["cells"][0]["result"]
    assert data["schema"] == "benchbox.report/2"
    assert r["trials"] == 3 and r["ci_level"] == "between-trial"
    assert [t["order"] for t in r["per_trial"]] == [0, 2, 4]
    assert set(r["per_trial"][0]) == {
        "throughput_ips", "latency_ms", "requests", "duration_s", "status", "order"
    }  # fmt: skip
    assert load_report(path).cells[0].result == combined
