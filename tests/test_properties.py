"""Property tests (hypothesis) of the pure decisions: the recommendation and the adaptive search.

Percentile, CI and histogram properties are in test_stats_properties.py; cost monotonicity in
test_cost.py.
"""

from __future__ import annotations

from fixtures_reports import price_profile
from hypothesis import given, settings
from hypothesis import strategies as st

from benchbox import schema
from benchbox.parse import LatencyTarget
from benchbox.recommend import recommend
from benchbox.sweep import search
from benchbox.sweep.plan import SweepSpec, grid

fast = settings(max_examples=80, deadline=None)
positive = st.floats(min_value=0.01, max_value=1e4, allow_nan=False)
METRIC = {"cost": "cost_usd_per_million", "throughput": "throughput_ips"}
METRIC["energy"] = "energy_j_per_inference"


def result(
    p_ms: dict[str, float],
    upper: dict[str, float | None],
    throughput: float,
    rss_mb: float | None,
    cost: float | None,
    energy: float | None,
) -> schema.Result:
    keys = schema.PERCENTILE_KEYS
    lat = schema.LatencyStats(1.0, 0.1, 0.5, *(p_ms[k] for k in keys), max(p_ms.values()) + 1)
    cis = {k: (None if upper[k] is None else [p_ms[k] * 0.9, upper[k]]) for k in keys}
    return schema.Result(
        requests=1000,
        inferences=1000,
        duration_s=1.0,
        throughput_ips=throughput,
        requests_per_s=throughput,
        latency_ms=lat,
        latency_ci_ms=cis,
        rss_mb=rss_mb,
        cost_usd_per_million=cost,
        energy_j_per_inference=energy,
    )


@st.composite
def cells(draw, n_max: int = 8) -> list[schema.Cell]:
    out = []
    for i in range(draw(st.integers(1, n_max))):
        config = schema.ServingConfig("cpu", 1, 1, i + 1)
        load = schema.Load("closed", 1)
        status = draw(st.sampled_from(["ok", "ok", "ok", "unstable", "failed", "skipped"]))
        res = None
        if status in ("ok", "unstable") or draw(st.booleans()):
            points = sorted(draw(st.lists(positive, min_size=5, max_size=5)))
            p_ms = dict(zip(schema.PERCENTILE_KEYS, points, strict=True))
            upper = {
                k: draw(st.one_of(st.none(), st.floats(v, v * 3, allow_nan=False)))
                for k, v in p_ms.items()
            }
            res = result(
                p_ms,
                upper,
                draw(positive),
                draw(st.one_of(st.none(), positive)),
                draw(st.one_of(st.none(), positive)),
                draw(st.one_of(st.none(), positive)),
            )
        out.append(schema.Cell(schema.cell_id(config, load), config, load, status, None, res))
    return out


def report_of(cs: list[schema.Cell], priced: bool) -> schema.Report:
    host = schema.HostInfo("h", "Linux", "cpu", 2, 1, 4.0, "3.11", "1.32")
    model = schema.ModelInfo("m.onnx", "ab" * 32, 17, (schema.TensorSpec("x", "float32", (1,)),))
    profile = price_profile("box", 1.0) if priced else None
    return schema.Report(host, model, tuple(cs), profile=profile)


def meets(cell: schema.Cell, target: LatencyTarget, min_tp, max_mem) -> bool:
    """An independent reading of the constraints: CI upper bound (else the point) <= target."""
    r = cell.result
    if cell.status != "ok" or r is None:
        return False
    ci = (r.latency_ci_ms or {}).get(target.percentile)
    held = ci[1] if ci is not None else getattr(r.latency_ms, target.percentile)
    if not held <= target.value_ms:
        return False
    if min_tp is not None and not r.throughput_ips >= min_tp:
        return False
    return max_mem is None or (r.rss_mb is not None and r.rss_mb <= max_mem)


@fast
@given(
    cells(),
    st.sampled_from(schema.PERCENTILE_KEYS),
    positive,
    st.sampled_from(["cost", "throughput", "energy"]),
    st.one_of(st.none(), positive),
    st.one_of(st.none(), positive),
    st.booleans(),
)
def test_the_recommendation_never_picks_a_cell_breaking_a_constraint(
    cs, percentile, target_ms, objective, min_tp, max_mem, priced
):
    target = LatencyTarget(percentile, target_ms)
    report = report_of(cs, priced)
    rec = recommend(report, target, objective, min_throughput_ips=min_tp, max_memory_mb=max_mem)
    by_id = {c.id: c for c in cs}
    metric = METRIC[rec.objective]
    passing = [
        c for c in cs if meets(c, target, min_tp, max_mem) and getattr(c.result, metric) is not None
    ]
    chosen = [rec.winner, *rec.runners_up] if rec.winner else list(rec.runners_up)
    for cid in chosen:
        assert meets(by_id[cid], target, min_tp, max_mem)
        assert cid not in rec.rejected
    # Nothing that meets every constraint is rejected, and a winner exists whenever one does.
    assert not {c.id for c in passing} & set(rec.rejected)
    assert (rec.winner is None) == (not passing)
    if rec.winner is not None:
        sign = -1.0 if rec.objective == "throughput" else 1.0
        best = min(sign * getattr(c.result, metric) for c in passing)
        assert sign * getattr(by_id[rec.winner].result, metric) == best


# ---------------------------------------------------------------- the adaptive search


@st.composite
def sweeps(draw):
    spec = SweepSpec(
        batch_sizes=tuple(sorted(draw(st.sets(st.sampled_from([1, 2, 4, 8]), min_size=1)))),
        concurrencies=tuple(sorted(draw(st.sets(st.integers(1, 16), min_size=1, max_size=5)))),
        threads=tuple(sorted(draw(st.sets(st.sampled_from([1, 2, 4]), min_size=1)))),
    )
    plan = grid(spec)
    outcome = {}
    for c in plan:
        fails = draw(st.integers(0, 9)) == 0
        tp = draw(st.floats(1.0, 1e4, allow_nan=False))
        p99 = draw(st.floats(0.1, 100.0, allow_nan=False))
        outcome[c.id] = (fails, tp, p99)
    target = LatencyTarget("p99", draw(st.floats(1.0, 100.0, allow_nan=False)))
    return plan, outcome, target


def measured(cell: schema.Cell, outcome) -> schema.Cell:
    fails, tp, p99 = outcome[cell.id]
    if fails:
        return schema.replace(cell, status="failed", reason="crashed")
    p_ms = dict.fromkeys(schema.PERCENTILE_KEYS, p99)
    res = result(p_ms, dict.fromkeys(p_ms, p99 * 1.1), tp, None, None, None)
    return schema.replace(cell, status="ok", result=res)


@fast
@given(sweeps())
def test_adaptive_search_reports_every_cell_once_and_only_measured_ones_as_measured(sweep):
    plan, outcome, target = sweep
    calls: list[str] = []

    def measure(cell):
        calls.append(cell.id)
        return measured(cell, outcome)

    out = search.adaptive(plan, measure, target)
    assert [c.id for c in out] == [c.id for c in plan]
    assert len(calls) == len(set(calls))  # no cell is measured twice
    for cell in out:
        if cell.id in calls:
            assert cell == measured(cell, outcome)  # as measured, never overwritten
        else:
            assert cell.status == "skipped" and cell.reason.startswith("adaptive search:")
            assert cell.result is None


@fast
@given(sweeps())
def test_rerunning_the_adaptive_search_with_its_measured_cells_as_done_measures_nothing(sweep):
    """What `--resume` relies on: the search is a function of the results it has seen."""
    plan, outcome, target = sweep
    first: dict[str, schema.Cell] = {}

    def measure(cell):
        first[cell.id] = measured(cell, outcome)
        return first[cell.id]

    out = search.adaptive(plan, measure, target)
    again: list[str] = []

    def resume_measure(cell):
        if cell.id in first:
            return first[cell.id]
        again.append(cell.id)
        return measured(cell, outcome)

    assert search.adaptive(plan, resume_measure, target) == out
    assert again == []
