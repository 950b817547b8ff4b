"""The target rule: one latency bound, meets and breaks, and search agreeing with recommend."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchbox import schema, verdict
from benchbox.parse import LatencyTarget
from benchbox.recommend import recommend
from benchbox.sweep import search
from benchbox.sweep.plan import SweepSpec, grid

P99_20 = LatencyTarget("p99", 20.0)


def result(p99: float, ci: object, throughput: float = 100.0) -> schema.Result:
    lat = schema.LatencyStats(p99 / 2, 0.1, p99 / 4, p99 / 2, p99, p99, p99, p99, p99)
    cis = None if ci == "absent" else {"p99": ci}
    return schema.Result(1000, 1000, 10.0, throughput, throughput, lat, cis)


def cell(p99: float, ci: object, status: str = "ok") -> schema.Cell:
    config = schema.ServingConfig(device="cpu", intra_op_threads=1, batch_size=1)
    load = schema.Load("closed", concurrency=1)
    return schema.Cell(schema.cell_id(config, load), config, load, status, result=result(p99, ci))


@pytest.mark.parametrize(
    "ci, bound, point",
    [
        ([9.0, 12.0], 12.0, False),
        (None, 10.0, True),  # too few samples for a bound
        ("absent", 10.0, True),  # no CIs at all
        ([9.0, math.inf], 10.0, True),  # no finite upper bound
        ([9.0, None], 10.0, True),  # an infinite bound comes back from JSON as null
        ([math.nan, math.nan], 10.0, True),
        ([9.0], 10.0, True),  # malformed: not a pair
    ],
)
def test_latency_bound_is_the_finite_upper_bound_else_the_flagged_point(ci, bound, point):
    got = verdict.latency_bound(result(10.0, ci), "p99")
    assert got == verdict.Bound(bound, point)


def test_a_cell_breaks_on_its_lower_bound_and_never_both_meets_and_breaks():
    assert verdict.breaks_target(cell(30.0, [21.0, 40.0]), P99_20)
    assert not verdict.breaks_target(cell(30.0, [19.0, 40.0]), P99_20)  # straddles: neither
    assert not verdict.meets_target(cell(30.0, [19.0, 40.0]), P99_20)
    assert verdict.breaks_target(cell(30.0, [None, None]), P99_20)  # the point decides
    assert verdict.breaks_target(cell(30.0, [-math.inf, 40.0]), P99_20)
    assert not verdict.breaks_target(cell(30.0, [21.0, 40.0], status="failed"), P99_20)
    assert verdict.meets_target(cell(30.0, [21.0, 40.0]), None)
    # an unstable cell meets only when unstable cells are admitted
    unstable = cell(10.0, [9.0, 11.0], status="unstable")
    assert not verdict.meets_target(unstable, P99_20)
    assert verdict.meets_target(unstable, P99_20, schema.MEASURED)


bound = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.floats(0.0, 50.0))


@settings(max_examples=200, deadline=None)
@given(st.floats(0.0, 50.0), bound, bound)
def test_meets_and_breaks_exclude_each_other(p99, lo, hi):
    c = cell(p99, [lo, hi])
    assert not (verdict.meets_target(c, P99_20) and verdict.breaks_target(c, P99_20))
    # the recommendation takes exactly the ok cells that meet the target
    rec = recommend(schema.Report(_host(), _model(), (c,)), P99_20, objective="throughput")
    assert (rec.winner == c.id) == verdict.meets_target(c, P99_20)


def _host() -> schema.HostInfo:
    return schema.HostInfo("h", "Linux", "cpu", 2, 1, 4.0, "3.11", "1.32")


def _model() -> schema.ModelInfo:
    return schema.ModelInfo("m.onnx", "ab" * 32, 17, (schema.TensorSpec("x", "float32", ("b", 4)),))


# The upper bound of each batch size's p99 CI: batch 2 and 4 have too few samples in the tail for a
# finite one (infinite in memory, null after a JSON round trip), so the point value is held.
_UPPER = {1: 5.5, 2: math.inf, 4: None}


def _measure(c: schema.Cell) -> schema.Cell:
    b = c.config.batch_size
    p99 = 4.0 + b
    r = result(p99, [p99 - 0.5, _UPPER[b]], throughput=100.0 * b)
    return schema.replace(c, status="ok", result=r)


def test_search_never_prunes_a_cell_the_recommendation_would_take():
    cells = grid(SweepSpec(batch_sizes=(1, 2, 4), concurrencies=(1,), threads=(1,)))
    full = search.grid(cells, _measure)
    adaptive = search.adaptive(cells, _measure, P99_20)

    def winner(found: list[schema.Cell]) -> str | None:
        report = schema.Report(_host(), _model(), tuple(found))
        return recommend(report, P99_20, objective="throughput").winner

    assert winner(full) == "cpu/t1/i1/b4/closed-c1"
    assert winner(adaptive) == winner(full)
    assert all(c.status == "ok" for c in adaptive)  # batch 4 was measured, not skipped
