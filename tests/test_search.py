"""The adaptive search, driven by a synthetic measure function with a known performance model."""

from __future__ import annotations

from benchbox import verdict
from benchbox.parse import parse_target
from benchbox.schema import LatencyStats, Result, replace
from benchbox.sweep import search
from benchbox.sweep.plan import SweepSpec, grid


def model_perf(threads: int, batch: int, concurrency: int, cores: int = 2) -> tuple[float, float]:
    """(throughput, p99_ms) of an imaginary machine with `cores` cores.

    Service time of a batch: (2 + 0.5 * batch) ms / min(threads, 2) ** 0.5; throughput saturates
    at `cores` concurrent requests; latency grows linearly with queueing beyond that.
    """
    service_ms = (2.0 + 0.5 * batch) / min(threads, 2) ** 0.5
    busy = min(concurrency, cores)
    tp = busy * batch * 1000.0 / service_ms
    p99 = service_ms * max(1.0, concurrency / cores) * 1.2
    return tp, p99


def make_measure(log: list[str], cores: int = 2):
    def measure(cell):
        log.append(cell.id)
        c = cell.config
        tp, p99 = model_perf(c.intra_op_threads, c.batch_size, cell.load.concurrency, cores)
        lat = LatencyStats(p99 / 2, 0.1, p99 / 4, p99 / 2, p99 * 0.8, p99 * 0.9, p99, p99, p99)
        result = Result(
            requests=1000,
            inferences=1000 * c.batch_size,
            duration_s=1000 * c.batch_size / tp,
            throughput_ips=tp,
            requests_per_s=tp / c.batch_size,
            latency_ms=lat,
            latency_ci_ms={"p99": [p99 * 0.97, p99 * 1.03]},
        )
        return replace(cell, status="ok", result=result)

    return measure


SPEC = SweepSpec(
    batch_sizes=(1, 2, 4, 8, 16),
    concurrencies=(1, 2, 4, 8, 16, 32),
    threads=(1, 2, 4),
)


def best_meeting(cells, target):
    ok = [c for c in cells if c.status == "ok" and verdict.meets_target(c, target)]
    ok = [c for c in ok if c.result.latency_ci_ms["p99"][1] <= target.value_ms]
    return max(ok, key=lambda c: c.result.throughput_ips)


def test_ladder_steps_are_exponential_in_the_index():
    assert search.ladder_indices([1]) == [0]
    assert search.ladder_indices([1, 2, 4, 8]) == [0, 1, 2, 3]
    assert search.ladder_indices(list(range(1, 17))) == [0, 1, 3, 7, 15]
    assert search.ladder_indices([1, 2, 3, 5, 6]) == [0, 1, 3, 4]


def test_adaptive_measures_far_fewer_cells_and_finds_the_grid_winner():
    target = parse_target("p99=20ms")
    cells = grid(SPEC)
    full_log, adaptive_log = [], []
    full = search.grid(cells, make_measure(full_log))
    adaptive = search.adaptive(cells, make_measure(adaptive_log), target)
    assert len(full_log) == len(cells) == 90
    # 6 concurrency levels saturate at the 3rd; the 3rd thread count is probed once, then skipped
    assert len(adaptive_log) <= 0.4 * len(cells)
    assert best_meeting(adaptive, target).id == best_meeting(full, target).id
    # every cell comes back, measured or skipped with a reason
    assert [c.id for c in adaptive] == [c.id for c in cells]
    skipped = [c for c in adaptive if c.id not in adaptive_log]
    assert skipped and all(c.status == "skipped" and "adaptive search" in c.reason for c in skipped)


def test_concurrency_stops_when_throughput_saturates():
    cells = grid(SweepSpec(concurrencies=(1, 2, 4, 8, 16)))
    log = []
    out = search.adaptive(cells, make_measure(log), None)
    # throughput doubles 1 -> 2, then flat at 4: stop there
    assert [c.split("/")[-1] for c in log] == ["closed-c1", "closed-c2", "closed-c4"]
    reasons = {c.id.split("/")[-1]: c.reason for c in out if c.status == "skipped"}
    assert "saturated" in reasons["closed-c8"]


def test_target_break_is_bisected():
    # throughput grows with every load, p99 = 3 ms x concurrency: p99=40ms breaks at c=14
    spec = SweepSpec(batch_sizes=(1,), concurrencies=tuple(range(1, 33)), threads=(1,))
    target = parse_target("p99=40ms")
    log = []

    def measure(cell):
        log.append(cell.id)
        c = cell.load.concurrency
        p99 = 3.0 * c
        lat = LatencyStats(p99, 0.1, p99, p99, p99, p99, p99, p99, p99)
        r = Result(1000, 1000, 1.0, 100.0 * c, 100.0 * c, lat, {"p99": [p99 * 0.99, p99 * 1.01]})
        return replace(cell, status="ok", result=r)

    out = search.adaptive(grid(spec), measure, target)
    levels = [int(c.split("closed-c")[1]) for c in log]
    assert levels[:5] == [1, 2, 4, 8, 16]  # doubling until the target breaks at 16
    assert len(log) <= 9  # then bisection between 8 and 16, not a walk
    # the last good and the first bad load are both measured
    good = [c for c in out if c.status == "ok" and not verdict.breaks_target(c, target)]
    bad = [c for c in out if c.status == "ok" and verdict.breaks_target(c, target)]
    assert max(c.load.concurrency for c in good) + 1 == min(c.load.concurrency for c in bad)


def test_batches_that_break_the_target_at_the_lightest_load_are_dominated():
    spec = SweepSpec(batch_sizes=(1, 8, 16, 32), concurrencies=(1, 2), threads=(1,))
    target = parse_target("p99=8ms")  # batch 8: 6 ms service, p99 7.2 ms; batch 16: 12 ms
    log = []
    out = search.adaptive(grid(spec), make_measure(log), target)
    by_id = {c.id: c for c in out}
    assert "cpu/t1/i1/b16/closed-c1" in log
    assert by_id["cpu/t1/i1/b32/closed-c1"].status == "skipped"
    assert "dominated" in by_id["cpu/t1/i1/b32/closed-c1"].reason


def test_a_bigger_batch_starts_at_the_previous_batchs_best_load():
    spec = SweepSpec(batch_sizes=(1, 2), concurrencies=(1, 2, 4, 8), threads=(1,))
    log = []
    out = search.adaptive(grid(spec), make_measure(log), None)
    by_id = {c.id: c for c in out}
    # batch 1 saturates at c=2 (c=4 gains nothing); batch 2 starts at c=2, so c=1 is dominated
    assert "cpu/t1/i1/b2/closed-c1" not in log
    assert "dominated" in by_id["cpu/t1/i1/b2/closed-c1"].reason
    assert "cpu/t1/i1/b2/closed-c2" in log


def test_a_start_load_whose_bound_straddles_the_target_walks_down():
    # p99 = 3 ms x c with a wide CI: at c=8 the bound straddles 25 ms (24 +- 4), so lighter loads
    # are measured until one meets the target by its upper bound.
    spec = SweepSpec(batch_sizes=(1,), concurrencies=(1, 2, 4, 8, 16), threads=(1,))
    target = parse_target("p99=25ms")
    log = []

    def measure(cell):
        log.append(cell.load.concurrency)
        c = cell.load.concurrency
        p99 = 3.0 * c
        lat = LatencyStats(p99, 0.1, p99, p99, p99, p99, p99, p99, p99)
        r = Result(1000, 1000, 1.0, 100.0 * c, 100.0 * c, lat, {"p99": [p99 - 4, p99 + 4]})
        return replace(cell, status="ok", result=r)

    cells = grid(spec)
    outcome = search.run_ladder(cells, measure, target, 0.05, start=3)
    assert log[0] == 8 and 4 in log  # started at c=8, which does not meet 25 ms by its bound
    assert outcome.best_level == 4.0


def test_an_unstable_cell_still_brackets_the_target():
    # start at c=8 (breaks); c=2 comes back unstable but well under the target: the bisection
    # must go on up to c=4 rather than turn down to c=1 at the unstable cell.
    spec = SweepSpec(batch_sizes=(1,), concurrencies=(1, 2, 4, 8), threads=(1,))
    target = parse_target("p99=20ms")
    log = []

    def measure(cell):
        c = cell.load.concurrency
        log.append(c)
        p99 = 4.0 * c
        lat = LatencyStats(p99, 0.1, p99, p99, p99, p99, p99, p99, p99)
        r = Result(1000, 1000, 1.0, 100.0 * c, 100.0 * c, lat, {"p99": [p99 * 0.9, p99 * 1.1]})
        return replace(cell, status="unstable" if c == 2 else "ok", result=r)

    outcome = search.run_ladder(grid(spec), measure, target, 0.05, start=3)
    assert log == [8, 2, 4]  # 8 breaks; bisect: 2 (unstable) is under, 4 meets (17.6 <= 20)
    assert outcome.best_level == 4.0
