"""The peak-rate search (exponential growth, then bisection), its sweep, and its CLI parsing.

Most tests drive the search with a model of a queue whose p99 is known at every rate, so the
right peak is known exactly; one runs a real sweep on the tiny MLP.
"""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from benchbox import model as model_mod
from benchbox.cost import load_profile, usd_per_million
from benchbox.errors import BadInput
from benchbox.measure.cell import MeasureSettings
from benchbox.parse import LatencyTarget, parse_dynamic_batching, parse_target
from benchbox.schema import (
    Cell,
    DynamicBatching,
    LatencyStats,
    Load,
    Result,
    ServingConfig,
    Spread,
)
from benchbox.sweep import SweepRequest, peak, run_sweep
from benchbox.sweep.plan import SweepSpec

TARGET = LatencyTarget("p99", 10.0)


def result(rate: float, p99: float, p50: float, kept: bool = True, seconds: float = 2.0):
    n = int(rate * seconds) if kept else int(rate * seconds * 0.5)
    lat = LatencyStats(p50, 0.0, p50 / 2, p50, p99, p99, p99, p99, p99)
    return Result(
        requests=n,
        inferences=n,
        duration_s=seconds,
        throughput_ips=n / seconds,
        requests_per_s=n / seconds,
        latency_ms=lat,
        latency_ci_ms={"p50": [p50, p50], "p99": [p99 * 0.95, p99 * 1.02]},
    )


class Queue:
    """A config of capacity `capacity` req/s whose p99 is base / (1 - load) below capacity."""

    def __init__(self, capacity: float, base_ms: float = 1.0) -> None:
        self.capacity, self.base_ms, self.rates = capacity, base_ms, []

    def __call__(self, cell: Cell) -> Cell:
        rate = cell.load.rate_rps
        self.rates.append(rate)
        if rate >= self.capacity:
            res = result(rate, 1000.0, 500.0, kept=False)
        else:
            p99 = self.base_ms / (1.0 - rate / self.capacity)
            res = result(rate, p99, self.base_ms)
        return Cell(cell.id, cell.config, cell.load, status="ok", result=res)


def true_peak(q: Queue, target_ms: float = TARGET.value_ms) -> float:
    """The rate at which the upper bound (p99 x 1.02) reaches the target."""
    return q.capacity * (1.0 - 1.02 * q.base_ms / target_ms)


def seed(config: ServingConfig | None = None) -> Cell:
    config = config or ServingConfig()
    return Cell(peak.peak_cell_id(config, 1), config, Load("open", concurrency=1))


# ---------------------------------------------------------------- one config


@pytest.mark.parametrize("start", [10.0, 100.0, 5000.0, 40_000.0])
def test_peak_is_found_within_the_precision_from_any_start(start):
    q = Queue(capacity=1000.0, base_ms=2.0)
    done = peak.find_peak(seed(), q, TARGET, start_rps=start)
    best = true_peak(q)
    assert best / 1.1 <= done.result.peak_rate_rps <= best
    assert done.load.rate_rps == done.result.peak_rate_rps  # the cell is the one at the peak
    assert done.result.throughput_ips == pytest.approx(done.result.peak_rate_rps, rel=0.01)
    assert done.id == seed().id
    assert len(q.rates) <= peak.PeakSettings().max_probes
    assert any(str(w).startswith("peak-search:") for w in done.warnings)


def test_search_grows_exponentially_then_bisects():
    q = Queue(capacity=1000.0, base_ms=2.0)
    s = peak.PeakSettings(start_rps=50.0)
    peak.find_peak(seed(), q, TARGET, s)
    # A miss without backlog is measured twice (see the retry test); count each rate once.
    rates = [r for i, r in enumerate(q.rates) if i == 0 or r != q.rates[i - 1]]
    # Up: each probe at least doubles until the first miss; after it, every probe lies
    # strictly between the best pass and the lowest miss so far.
    first_miss = next(i for i, r in enumerate(rates) if r >= true_peak(q))
    ups = rates[: first_miss + 1]
    assert all(b >= 2 * a * 0.99 for a, b in zip(ups, ups[1:], strict=False))
    lo, hi = max(r for r in ups if r < true_peak(q)), rates[first_miss]
    for r in rates[first_miss + 1 :]:
        assert lo < r < hi
        lo, hi = (r, hi) if r < true_peak(q) else (lo, r)


def test_a_miss_without_backlog_is_measured_again_before_it_bounds_the_search():
    q = Queue(capacity=1000.0, base_ms=2.0)
    stalled = []

    def one_stall(cell: Cell) -> Cell:
        done = q(cell)
        if not stalled:  # the first probe meets one long stall: its p99 misses, rate kept up
            stalled.append(cell.load.rate_rps)
            res = result(cell.load.rate_rps, 60.0, 2.0)
            return Cell(cell.id, cell.config, cell.load, status="ok", result=res)
        return done

    done = peak.find_peak(seed(), one_stall, TARGET, start_rps=100.0)
    assert q.rates[:2] == [100.0, 100.0]  # the miss at 100/s was measured again
    assert done.result.peak_rate_rps >= true_peak(q) / 1.1  # and did not cap the search
    assert "100/s missed (p99<=61.2ms), 100/s ok (p99<=2.27ms) on retry" in str(done.warnings[-1])
    # A miss that repeats is believed; a backlog is believed at once.
    saturated = Queue(capacity=50.0, base_ms=2.0)
    peak.find_peak(seed(), saturated, TARGET, start_rps=100.0)
    assert saturated.rates[:2] == [100.0, 50.0]


def test_config_that_misses_the_target_at_any_rate_stops_at_once():
    q = Queue(capacity=1000.0, base_ms=20.0)  # even an idle config takes 20 ms > 10 ms
    done = peak.find_peak(seed(), q, TARGET, start_rps=100.0)
    assert q.rates == [100.0]
    assert done.result.peak_rate_rps is None
    assert "no rate met p99=10ms" in str(done.warnings[-1])


def test_a_failed_probe_ends_the_search_with_its_reason():
    calls = []

    def broken(cell: Cell) -> Cell:
        calls.append(cell)
        return Cell(cell.id, cell.config, cell.load, status="failed", reason="model exploded")

    done = peak.find_peak(seed(), broken, TARGET)
    assert len(calls) == 1
    assert done.status == "failed" and done.reason == "model exploded"


def test_a_rate_passes_only_with_its_upper_bound_within_target_and_no_backlog():
    base = Cell("c", ServingConfig(), Load("open", concurrency=1, rate_rps=100.0), status="ok")
    ok = Cell(**{**base.__dict__, "result": result(100.0, 9.0, 2.0)})
    assert peak.sustains(ok, TARGET)
    over = Cell(**{**base.__dict__, "result": result(100.0, 9.9, 2.0)})  # bound 10.1 > 10
    assert not peak.sustains(over, TARGET)
    behind = Cell(**{**base.__dict__, "result": result(100.0, 5.0, 2.0, kept=False)})
    assert not peak.kept_up(behind) and not peak.sustains(behind, TARGET)
    unmeasured = Cell(**{**base.__dict__, "status": "failed"})
    assert not peak.sustains(unmeasured, TARGET)


def test_capacity_estimate_counts_instances_and_batch_sizes():
    config = ServingConfig(instances=2, dynamic_batching=DynamicBatching(8, 1.0))
    r = result(100.0, 5.0, 3.0)
    r = Result(
        **{**r.__dict__, "compute_ms": Spread(2.0, 2.0, 2.0), "batch_size_counts": {1: 10, 3: 10}}
    )
    cell = Cell("c", config, Load("open", concurrency=1, rate_rps=100.0), "ok", result=r)
    # 2 instances x 2 requests per batch on average / 2 ms per batch
    assert peak.capacity_estimate_rps(cell) == pytest.approx(2000.0)


# ---------------------------------------------------------------- the sweep


def db_configs(batches: dict[int, tuple[float, ...]], instances: int = 1) -> list[Cell]:
    cells = []
    for mb, delays in batches.items():
        for d in delays:
            cfg = ServingConfig(instances=instances, dynamic_batching=DynamicBatching(mb, d))
            cells.append(seed(cfg))
    return cells


class Family:
    """Capacity grows with max_batch (up to 4) and instances; a delay adds to the base latency."""

    def __init__(self) -> None:
        self.measured: set[str] = set()

    def __call__(self, cell: Cell) -> Cell:
        self.measured.add(cell.id)
        cfg = cell.config
        db = cfg.dynamic_batching
        capacity = 500.0 * min(db.max_batch, 4) ** 0.7 * cfg.instances
        return Queue(capacity, base_ms=1.0 + db.delay_ms)(cell)


def test_adaptive_sweep_skips_dominated_delays_and_saturated_batches():
    cells = db_configs({1: (0.0,), 2: (0.0, 1.0, 5.0), 4: (0.0,), 8: (0.0,), 16: (0.0,)})
    cells += db_configs({2: (0.0, 12.0, 15.0)}, instances=2)
    fam = Family()
    out = {c.id: c for c in peak.search(cells, fam, TARGET, adaptive=True)}
    by = {(c.config.instances, c.config.dynamic_batching): c for c in out.values()}

    def get(inst, mb, d):
        return by[(inst, DynamicBatching(mb, d))]

    assert get(1, 2, 0.0).result.peak_rate_rps > get(1, 1, 0.0).result.peak_rate_rps
    # A 1 ms delay lowers the peak here (more latency, same capacity): longer delays are skipped.
    assert get(1, 2, 5.0).status == "skipped" and "delay saturated" in get(1, 2, 5.0).reason
    # max_batch 8 adds nothing over 4, so 16 is not measured.
    assert get(1, 8, 0.0).status == "ok"
    assert get(1, 16, 0.0).status == "skipped" and "batch saturated" in get(1, 16, 0.0).reason
    # A 12 ms delay cannot meet 10 ms at any rate; a longer one is dominated.
    assert get(2, 2, 12.0).result.peak_rate_rps is None
    assert get(2, 2, 15.0).status == "skipped" and "dominated" in get(2, 2, 15.0).reason
    assert get(2, 2, 0.0).result.peak_rate_rps > 1.5 * get(1, 2, 0.0).result.peak_rate_rps
    assert all(c.id in fam.measured or c.status == "skipped" for c in out.values())


def test_grid_sweep_measures_every_config_and_starts_from_the_last_peak():
    cells = db_configs({1: (0.0,), 2: (0.0, 1.0, 5.0), 16: (0.0,)})
    fam = Family()
    starts = []

    def measure(cell: Cell) -> Cell:
        if cell.id not in fam.measured:
            starts.append(cell.load.rate_rps)
        return fam(cell)

    out = peak.search(cells, measure, TARGET, adaptive=False)
    assert all(c.status == "ok" and c.result.peak_rate_rps for c in out)
    assert starts[0] == peak.PeakSettings().start_rps
    assert starts[1] == out[0].result.peak_rate_rps  # the next config starts at the last peak


def test_peak_search_needs_a_latency_target():
    with pytest.raises(BadInput, match="latency target"):
        peak.search([seed()], Queue(100.0), None)


def test_plan_has_one_peak_cell_per_config():
    spec = SweepSpec(
        load_kind="open",
        instances=(1, 2),
        dynamic_batching=(DynamicBatching(1, 0.0), DynamicBatching(8, 2.0)),
    )
    assert peak.wanted(spec) and not peak.wanted(SweepSpec(load_kind="open", rates_rps=(10.0,)))
    cells = peak.plan_cells(spec)
    assert [c.id for c in cells] == [
        "cpu/t1/i1/db1-0ms/open-peak-c1",
        "cpu/t1/i1/db8-2ms/open-peak-c1",
        "cpu/t1/i2/db1-0ms/open-peak-c1",
        "cpu/t1/i2/db8-2ms/open-peak-c1",
    ]
    assert all(peak.is_peak_cell(c) and c.load.rate_rps is None for c in cells)


def test_sweep_finds_each_config_peak_and_prices_the_capacity(mlp_path, tmp_path):
    spec = SweepSpec(
        load_kind="open",
        dynamic_batching=(DynamicBatching(1, 0.0), DynamicBatching(8, 1.0)),
    )
    req = SweepRequest(
        model_path=str(mlp_path),
        spec=spec,
        settings=MeasureSettings(warmup_s=0.1, duration_s=0.3),
        out_dir=str(tmp_path),
        latency_target=parse_target("p99=50ms"),
        profile="aws-c7i-2xlarge",
        isolate=False,
    )
    report, _ = run_sweep(req)
    profile = load_profile("aws-c7i-2xlarge")
    assert len(report.cells) == 2
    for cell in report.cells:
        r = cell.result
        assert r.peak_rate_rps and cell.load.rate_rps == r.peak_rate_rps
        assert r.cost_usd_per_million == pytest.approx(
            usd_per_million(profile, r.throughput_ips, r.power_w)
        )
    batched = report.cells[1].result
    assert max(int(b) for b in batched.batch_size_counts) <= 8
    assert report.recommendation.winner in {c.id for c in report.cells}


# ---------------------------------------------------------------- --dynamic-batching


def test_dynamic_batching_settings_parse():
    assert parse_dynamic_batching("max_batch=16,delay=2ms,preferred=8|4") == [
        DynamicBatching(16, 2.0, (4, 8))
    ]
    assert parse_dynamic_batching("max_batch=4;max_batch=8,delay=500us") == [
        DynamicBatching(4, 0.0),
        DynamicBatching(8, 0.5),
    ]


@pytest.mark.parametrize(
    "text",
    ["max_batch=0", "delay=2ms", "max_batch=4,preferred=8", "max_batch=4,delay=soon", "x=1", ""],
)
def test_bad_dynamic_batching_settings_are_refused(text):
    with pytest.raises(BadInput):
        parse_dynamic_batching(text)


def test_auto_grid_is_powers_of_two_with_delays_below_the_target():
    grid = parse_dynamic_batching("auto", auto_max_batch=8, target_ms=2.0)
    assert grid[0] == DynamicBatching(1, 0.0)
    assert {d.max_batch for d in grid} == {1, 2, 4, 8}
    assert {d.delay_ms for d in grid} == {0.0, 0.5, 1.0}  # 2 and 5 ms are not below 2 ms
    assert len(grid) == 1 + 3 * 3
    assert all(math.isfinite(d.delay_ms) for d in grid)


def test_dynamic_batching_needs_a_dynamic_batch_axis(fixed_batch_path, mlp_path):
    with pytest.raises(BadInput, match="fixed batch dimension"):
        peak.batching_grid("auto", model_mod.inspect_model(fixed_batch_path), TARGET)
    grid = peak.batching_grid("auto", model_mod.inspect_model(mlp_path), TARGET)
    assert max(d.max_batch for d in grid) == peak.AUTO_MAX_BATCH


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--dynamic-batching", "max_batch=8,delay=1ms"], "open-loop schedule"),
        (
            [
                "--load",
                "open",
                "--latency-target",
                "p99=9ms",
                "--dynamic-batching",
                "max_batch=8,preferred=16",
            ],
            "above max_batch",
        ),
    ],
)
def test_sweep_cli_refuses_bad_dynamic_batching_in_one_line(mlp_path, tmp_path, args, needle):
    p = subprocess.run(
        [sys.executable, "-m", "benchbox", "sweep", str(mlp_path), "--out", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2
    assert needle in p.stderr and "Traceback" not in p.stderr
