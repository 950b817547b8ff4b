"""Which cell `benchbox verify` checks, against which target, and how it renders (no server)."""

from __future__ import annotations

import pytest
from fixtures_reports import make_report

from benchbox import schema
from benchbox.errors import BadInput
from benchbox.parse import LatencyTarget
from benchbox.remote import session as remote
from benchbox.report import verify_view
from benchbox.verify import Verification, choose, figure, remote_cell


def test_the_recommended_cell_and_its_target_by_default():
    report = make_report()
    cell, target = choose(report, None, None)
    assert cell.id == report.recommendation.winner
    assert target == LatencyTarget("p99", report.recommendation.target_ms)


def test_a_given_target_holds_the_recommended_cell_to_it():
    report = make_report()
    cell, target = choose(report, LatencyTarget("p95", 3.0), None)
    assert cell.id == report.recommendation.winner and target.percentile == "p95"


def test_a_report_without_recommendation_needs_a_target_then_recommends():
    report = make_report(target_ms=None)
    assert report.recommendation is None
    with pytest.raises(BadInput, match="no recommendation"):
        choose(report, None, None)
    cell, _ = choose(report, LatencyTarget("p99", 1e6), None)
    assert cell.status == "ok"
    with pytest.raises(BadInput, match="recommended for"):
        choose(report, LatencyTarget("p99", 1e-6), None)


def test_unknown_or_unmeasured_cells_are_refused():
    report = make_report()
    with pytest.raises(BadInput, match="has no cell"):
        choose(report, None, "nope")
    failed = next(c for c in report.cells if c.status == "failed")
    with pytest.raises(BadInput, match="was not measured"):
        choose(report, None, failed.id)


def test_the_server_cell_keeps_load_and_batch_and_drops_server_side_settings():
    load = schema.Load("open", concurrency=8, rate_rps=120.0, distribution="poisson")
    batching = schema.DynamicBatching(max_batch=8, delay_ms=2.0)
    local = schema.Cell("x", schema.ServingConfig("cpu", 2, 3, 1, batching), load)
    served = remote_cell(local)
    assert served.config == schema.ServingConfig(device="remote", batch_size=1)
    # the rate is kept; the in-process worker count is not a limit the server has
    assert served.load == schema.replace(load, concurrency=remote.OPEN_POOL_DEFAULT)
    assert served.id.startswith("remote/")
    batched = schema.Cell("y", schema.ServingConfig("cpu", 1, 1, 8), schema.Load("closed", 4))
    assert remote_cell(batched).config.batch_size == 8
    assert remote_cell(batched).load == schema.Load("closed", 4)


def test_verdict_line_shows_both_figures_with_cis_and_the_gap():
    report = make_report()
    cell, target = choose(report, LatencyTarget("p99", 50.0), None)
    measured_result = schema.replace(
        cell.result,
        latency_ms=schema.replace(cell.result.latency_ms, p99=cell.result.latency_ms.p99 + 1.8),
    )
    measured = schema.replace(remote_cell(cell), status="ok", result=measured_result)
    v = Verification(
        cell_id=cell.id,
        target=target,
        predicted=figure(cell.result, "p99"),
        measured=figure(measured_result, "p99"),
        meets_target=True,
        measured_cell=measured,
        server="triton 2.51.0",
        url="http://h:1/v2/models/m",
    )
    text = "\n".join(verify_view.lines(v, "the server does not implement the statistics extension"))
    assert f"predicted p99 ≤ {cell.result.latency_ci_ms['p99'][1]:.3g} ms (CI " in text
    assert "on triton 2.51.0" in text and "meets the target (p99 ≤ 50 ms" in text
    assert "server-side split unavailable: the server does not implement" in text
    doc = verify_view.as_json(v)
    assert doc["meets_target"] is True
    assert doc["gap_ms"] == pytest.approx(v.measured.value_ms - v.predicted.bound_ms)
    assert set(doc) >= {"predicted", "measured", "meets_target"}
