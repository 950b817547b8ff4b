"""The dynamic batcher: Triton's release rules, and its behaviour with a runner of known cost.

The fake runner sleeps 1 ms + 0.2 ms x batch (sub-linear per request). No assertion reads the
wall clock against a figure: the real driver is checked for what holds at any speed (identities,
lower bounds the batcher enforces, batch limits), and the batcher's decisions are checked on a
virtual clock (`simulate`). What the wall clock adds (queue waits, batch mix, capacity ratios) is
measured by benchmarks/batcher.py and benchmarks/batcher_delay.py.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchbox import model as model_mod
from benchbox.load.batcher import (
    BATCH,
    QUEUE_NS,
    BatcherDriver,
    batch_feeds,
    decide,
    next_release_size,
    release_size,
)
from benchbox.measure.cell import MeasureSettings, drive, summarize
from benchbox.schema import Cell, DynamicBatching, Load, ServingConfig
from benchbox.sweep.runner import CellContext, InProcessWorker

MS = 1_000_000
POOL = [{"x": np.full((1, 4), float(i), dtype=np.float32)} for i in range(3)]
SERVICE_MS = (1.0, 0.2)  # fixed + per-request cost of one batch


def service(feeds: dict) -> None:
    """A batch of b takes 1 ms + 0.2 ms x b."""
    time.sleep((SERVICE_MS[0] + SERVICE_MS[1] * feeds["x"].shape[0]) / 1e3)


def run_driver(db: DynamicBatching, rate: float, instances: int, seconds: float, **kw):
    d = BatcherDriver(
        [service] * instances,
        batch_feeds(POOL, db.max_batch),
        rate,
        db,
        horizon_s=seconds + 2,
        **kw,
    )
    d.start()
    time.sleep(seconds)
    d.stop()
    assert not d.errors
    return d


def measure(db: DynamicBatching, rate: float, instances: int = 1, seconds: float = 1.0, **kw):
    d = BatcherDriver(
        [service] * instances, batch_feeds(POOL, db.max_batch), rate, db, seconds + 3, **kw
    )
    settings = MeasureSettings(warmup_s=0.2, duration_s=seconds)
    result, _ = summarize(drive(d, settings), settings)
    return result


# ---------------------------------------------------------------- the release rule


def test_release_rule_follows_triton():
    db = DynamicBatching(max_batch=8, delay_ms=2.0)
    assert release_size(0, 10 * MS, db) == 0  # nothing queued
    assert release_size(3, 1 * MS, db) == 0  # within the delay: wait for more
    assert release_size(3, 2 * MS, db) == 3  # the oldest waited `delay`: take all
    assert release_size(8, 0, db) == 8  # max_batch reached
    assert release_size(20, 0, db) == 8  # never more than max_batch
    pref = DynamicBatching(max_batch=16, delay_ms=2.0, preferred=(4, 8))
    assert release_size(3, 0, pref) == 0
    assert release_size(5, 0, pref) == 4  # the largest preferred size the queue fills
    assert release_size(11, 0, pref) == 8
    assert release_size(11, 2 * MS, pref) == 11  # delay expired: everything, up to max_batch
    no_delay = DynamicBatching(max_batch=8, delay_ms=0.0)
    assert release_size(3, 0, no_delay) == 3  # delay 0: whatever is queued, at once
    assert release_size(5, 0, DynamicBatching(8, 0.0, (4,))) == 4
    assert next_release_size(5, pref) == 8
    assert next_release_size(9, pref) == 16
    assert next_release_size(2, db) == 8


@given(
    queued=st.integers(0, 100),
    waited_ms=st.floats(0, 20),
    max_batch=st.integers(1, 32),
    delay_ms=st.sampled_from([0.0, 0.5, 1.0, 2.0, 5.0]),
    preferred=st.lists(st.integers(1, 32), max_size=3),
)
def test_release_never_exceeds_max_batch_and_never_holds_past_the_delay(
    queued, waited_ms, max_batch, delay_ms, preferred
):
    db = DynamicBatching(
        max_batch, delay_ms, tuple(sorted({p for p in preferred if p <= max_batch}))
    )
    size = release_size(queued, int(waited_ms * MS), db)
    assert 0 <= size <= min(queued, max_batch)
    if queued and waited_ms >= delay_ms:
        assert size > 0  # once the oldest has waited `delay`, a free instance takes a batch
    if queued and waited_ms >= delay_ms > 0:
        assert size == min(queued, max_batch)
    if size == 0 and queued:
        assert waited_ms < delay_ms and queued < max_batch


def test_batch_feeds_are_views_of_one_array():
    feeds = batch_feeds(POOL, 5)
    assert [f["x"].shape[0] for f in feeds] == [0, 1, 2, 3, 4, 5]
    assert np.shares_memory(feeds[2]["x"], feeds[5]["x"])
    assert feeds[5]["x"][:, 0].tolist() == [0.0, 1.0, 2.0, 0.0, 1.0]  # the pool, cycled
    assert all(f["x"].flags["C_CONTIGUOUS"] for f in feeds)


# ---------------------------------------------------------------- with a runner of known cost


def test_light_load_latency_is_delay_plus_batch_one_service():
    # 20 requests/s, evenly spaced: every request is alone in the queue for its whole delay.
    db = DynamicBatching(max_batch=8, delay_ms=5.0)
    r = measure(db, 20.0, seconds=1.0, distribution="constant")
    service_1 = SERVICE_MS[0] + SERVICE_MS[1]
    # Each request's latency is its queue wait plus its batch's compute time, exactly.
    assert r.latency_ms.mean == pytest.approx(r.queue_ms.mean + r.compute_ms.mean, abs=1e-3)
    assert 5.0 <= r.queue_ms.p50  # never released before the delay (how much later: a benchmark)
    assert r.compute_ms.p50 >= service_1
    assert r.latency_ms.p50 >= 5.0 + service_1
    # No batch is released before its oldest request has waited the delay (the queue never
    # reaches max_batch here). Records come batch by batch, oldest request first.
    d = run_driver(db, 20.0, instances=1, seconds=0.5, distribution="constant")
    rec = d.recorders[0]
    i, oldest = 0, []
    while i < len(rec.end_ns):
        oldest.append(rec.extra[QUEUE_NS][i])
        i += rec.extra[BATCH][i]
    assert oldest and min(oldest) >= 5 * MS
    # On the batcher's own clock every request is alone and waits the delay exactly.
    arrivals = [i * 50 * MS for i in range(40)]
    batches, waits = simulate(arrivals, db, 1, lambda b: round(service_1 * MS))
    assert len(batches) == len(arrivals) and set(waits) == {5 * MS}


def test_light_load_with_no_delay_runs_each_request_at_once():
    r = measure(
        DynamicBatching(max_batch=8, delay_ms=0.0), 20.0, seconds=1.0, distribution="constant"
    )
    assert r.queue_ms.p50 >= 0 and r.requests > 0
    # Nothing waits on purpose: on the batcher's own clock each request starts as it arrives.
    arrivals = [i * 50 * MS for i in range(40)]
    batches, waits = simulate(arrivals, DynamicBatching(8, 0.0), 1, lambda b: 2 * MS)
    assert len(batches) == len(arrivals) and set(waits) == {0}


def test_batch_is_never_larger_than_max_batch_under_overload():
    # 5000/s into one instance serving at most 4 / 1.8 ms (~2200/s): the queue always holds 4+.
    r = measure(DynamicBatching(max_batch=4, delay_ms=1.0), 5000.0, seconds=0.6)
    sizes = {int(b): n for b, n in r.batch_size_counts.items()}
    assert max(sizes) == 4
    assert sum(b * n for b, n in sizes.items()) == r.requests  # every request is in one batch
    # On the batcher's own clock, under that overload every batch after the first is full.
    arrivals = [i * 200_000 for i in range(400)]  # 5000/s
    batches, _ = simulate(arrivals, DynamicBatching(4, 1.0), 1, lambda b: (1 + 0.2 * b) * MS)
    assert {size for *_, size in batches[1:-1]} == {4}


def simulate(arrivals: list[int], db: DynamicBatching, instances: int, service_ns) -> tuple:
    """The batcher's own decisions (`decide`) on a virtual clock: batches (start, end, instance,
    size) and queue waits."""
    ready = [0] * instances  # when each instance next decides
    batches = []  # (start, end, instance)
    waits = [0] * len(arrivals)
    first = 0
    for _ in range(40 * len(arrivals) + 100):  # bounded: each step takes a batch or moves time
        if first >= len(arrivals):
            break
        k = min(range(instances), key=lambda j: ready[j])
        t = ready[k]
        size, wake = decide(arrivals, first, t, db)
        if size:
            end = t + service_ns(size)
            batches.append((t, end, k, size))
            for j in range(first, first + size):
                assert arrivals[j] <= t  # a batch only holds requests that have arrived
                waits[j] = t - arrivals[j]
            first += size
            ready[k] = end
        else:
            assert wake > t  # an instance that waits always waits for a later instant
            ready[k] = wake
    assert first == len(arrivals)
    return batches, waits


@settings(max_examples=60, deadline=None)
@given(
    gaps_us=st.lists(st.integers(0, 3000), min_size=1, max_size=120),
    max_batch=st.integers(1, 16),
    delay_us=st.integers(0, 4000),
    preferred=st.lists(st.integers(1, 16), max_size=3, unique=True),
    instances=st.integers(1, 3),
    fixed_us=st.integers(50, 3000),
    per_us=st.integers(0, 500),
)
def test_no_request_waits_past_the_delay_while_an_instance_is_idle(
    gaps_us, max_batch, delay_us, preferred, instances, fixed_us, per_us
):
    # The property holds at any speed: it is checked on the batcher's own decisions on a virtual
    # clock, not on a busy machine's wall clock (benchmarks/batcher_delay.py measures that).
    db = DynamicBatching(
        max_batch=max_batch,
        delay_ms=delay_us / 1e3,
        preferred=tuple(sorted(p for p in preferred if p <= max_batch)),
    )
    arrivals = list(np.cumsum([g * 1000 for g in gaps_us]).tolist())
    batches, waits = simulate(arrivals, db, instances, lambda b: (fixed_us + per_us * b) * 1000)
    delay_ns = delay_us * 1000

    def all_busy(t: int) -> bool:
        return len({k for s, e, k, _ in batches if s <= t < e}) == instances

    for arrival, wait in zip(arrivals, waits, strict=True):
        if wait > delay_ns + 1:
            assert all_busy(arrival + delay_ns), (arrival, wait)


def test_the_real_driver_serves_each_request_once_in_arrival_order_within_max_batch():
    db = DynamicBatching(max_batch=16, delay_ms=2.0)
    d = run_driver(db, 300.0, instances=2, seconds=1.5)
    served = sorted(t for rec in d.recorders for t in rec.intended_ns)
    assert served  # how many a busy machine serves in 1.5 s is not a property
    assert served == d.arrivals_ns[: len(served)]  # each once, none skipped
    for rec in d.recorders:
        assert all(q >= 0 for q in rec.extra[QUEUE_NS])  # never started before it arrived
        assert max(rec.extra[BATCH], default=0) <= 16


def test_capacity_grows_with_batching_when_service_is_sublinear():
    # Same overload (3000/s) on one instance: one at a time serves ~1/1.2 ms; batches of 8 take
    # 2.6 ms, so batching more than doubles the requests served per second.
    single = measure(DynamicBatching(max_batch=1, delay_ms=0.0), 3000.0, seconds=0.6)
    batched = measure(DynamicBatching(max_batch=8, delay_ms=0.0), 3000.0, seconds=0.6)
    assert single.batch_size_counts.keys() == {1}
    assert max(int(b) for b in batched.batch_size_counts) == 8
    # The capacity itself, on the batcher's own clock (the wall-clock ratio: benchmarks/batcher.py).
    assert virtual_capacity(1, 1) * 2.0 < virtual_capacity(8, 1)


def virtual_capacity(max_batch: int, instances: int) -> float:
    """Requests per virtual second served under a 3000/s overload of the fake runner's cost."""
    arrivals = [i * 333_333 for i in range(600)]
    batches, _ = simulate(
        arrivals, DynamicBatching(max_batch, 0.0), instances, lambda b: (1 + 0.2 * b) * MS
    )
    return len(arrivals) / (max(e for _, e, _, _ in batches) / 1e9)


def test_more_instances_take_batches_in_parallel():
    one = measure(DynamicBatching(max_batch=1, delay_ms=0.0), 3000.0, instances=1, seconds=0.6)
    two = measure(DynamicBatching(max_batch=1, delay_ms=0.0), 3000.0, instances=2, seconds=0.6)
    assert one.batch_size_counts.keys() == two.batch_size_counts.keys() == {1}
    assert not one.errors and not two.errors
    # Two instances take batches side by side on the batcher's own clock (wall clock: a benchmark).
    assert virtual_capacity(1, 2) > 1.9 * virtual_capacity(1, 1)


def test_runner_errors_stop_the_driver_and_surface():
    def broken(feeds):
        raise RuntimeError("model exploded")

    d = BatcherDriver([broken], batch_feeds(POOL, 2), 200.0, DynamicBatching(2, 0.0), 3.0)
    d.start()
    time.sleep(0.2)
    d.stop()
    assert d.errors and "model exploded" in str(d.errors[0])


# ---------------------------------------------------------------- real onnxruntime, via the runner


def test_sweep_runner_batches_a_real_model(mlp_path):
    info = model_mod.inspect_model(mlp_path)
    ctx = CellContext(
        model_path=str(mlp_path),
        model=info,
        settings=MeasureSettings(warmup_s=0.2, duration_s=0.8),
    )
    config = ServingConfig(instances=1, dynamic_batching=DynamicBatching(4, 1.0, (2,)))
    cell = Cell("db", config, Load("open", concurrency=1, rate_rps=2000.0))
    worker = InProcessWorker(ctx)
    try:
        done = worker.measure(cell)
    finally:
        worker.close()
    assert done.status in ("ok", "unstable"), done.reason
    r = done.result
    sizes = {int(b): n for b, n in r.batch_size_counts.items()}
    assert set(sizes) <= {1, 2, 3, 4} and max(sizes) >= 2  # which sizes: the machine's speed
    assert sum(b * n for b, n in sizes.items()) == r.requests
    assert r.queue_ms.p50 >= 0 and r.compute_ms.p50 > 0
    # Latency is queue + compute for every request, so the medians cannot exceed it by much.
    assert r.latency_ms.max >= r.compute_ms.max
