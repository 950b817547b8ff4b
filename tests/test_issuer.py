"""The open-loop issuer: never early, each request once, its lateness apart from pool waits."""

from __future__ import annotations

import sys
import threading
import time
from time import perf_counter_ns

import numpy as np
import pytest

from benchbox.load.batcher import BatcherDriver, batch_feeds
from benchbox.load.closed import ClosedDriver
from benchbox.load.issuer import (
    SWITCH_INTERVAL_S,
    Issuer,
    lower_switch_interval,
    restore_switch_interval,
    schedule_offsets_ns,
    wait_until,
)
from benchbox.load.open import OpenDriver
from benchbox.measure.cell import MeasureSettings, drive, generator_delay_ns, summarize
from benchbox.schema import DynamicBatching


def _run_issuer(issuer: Issuer, threads: int, send) -> None:
    issuer.start(perf_counter_ns() + 1_000_000)
    workers = [threading.Thread(target=issuer.run, args=(send,)) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=60)
        assert not t.is_alive()


@pytest.mark.parametrize("distribution", ["poisson", "constant"])
def test_the_issuer_never_sends_before_the_intended_time(distribution):
    offsets = schedule_offsets_ns(4000.0, 400, distribution, seed=3)
    issuer = Issuer(offsets)
    seen: list[tuple[int, int, int, int, int]] = []
    lock = threading.Lock()

    def send(i: int, intended: int, taken: int, sent: int) -> None:
        now = perf_counter_ns()
        with lock:
            seen.append((i, intended, taken, sent, now))
        time.sleep(0.0002)  # a slow target: some requests are taken late, some early

    _run_issuer(issuer, 3, send)
    rows = np.array(sorted(seen), dtype=np.int64)
    # every request once, in the issuer's time base
    assert rows[:, 0].tolist() == list(range(400))
    assert (rows[:, 1] == issuer.t0_ns + offsets).all()
    intended, taken, sent, called = rows[:, 1], rows[:, 2], rows[:, 3], rows[:, 4]
    assert (sent >= intended).all()
    assert (called >= intended).all()
    assert (sent >= taken).all() and (called >= sent).all()


def test_wait_until_returns_a_reading_at_or_after_the_due_time_and_zero_when_stopped():
    for ahead_ns in (0, 10_000, 300_000, 2_000_000):
        due = perf_counter_ns() + ahead_ns
        got = wait_until(due, [False])
        assert got >= due and perf_counter_ns() >= due
    assert wait_until(perf_counter_ns() + 3_600 * 10**9, [True]) == 0


def test_a_stopped_issuer_sends_nothing_more():
    issuer = Issuer([10**12, 2 * 10**12])  # far in the future
    sent: list[int] = []
    issuer.start(perf_counter_ns())
    t = threading.Thread(target=issuer.run, args=(lambda i, *_: sent.append(i),))
    t.start()
    issuer.stop()
    t.join(timeout=30)
    assert not t.is_alive()
    assert sent == []


def _gate_runner(stall_s: float, after: int, gate: list[int]):
    """A runner that blocks every caller for `stall_s` once `after` requests have run; `gate`
    gets the time the gate closed and the time it opened (perf_counter_ns)."""
    state = {"n": 0}
    release = threading.Event()
    lock = threading.Lock()

    def open_gate() -> None:
        gate.append(perf_counter_ns())
        release.set()

    def run(feeds):
        with lock:
            state["n"] += 1
            n = state["n"]
        if n == after:
            gate.append(perf_counter_ns())
            threading.Timer(stall_s, open_gate).start()
        if n >= after and not release.is_set():
            release.wait(stall_s + 5.0)
        time.sleep(0.001)

    return run


def test_a_stalled_worker_pool_shows_in_latency_and_not_as_issue_delay():
    """Both workers block 300 ms: the requests due meanwhile wait for the pool, and that wait is
    latency; the generator's own delay for every request taken late is exactly nothing.
    Properties of the records, true at any speed."""
    s = MeasureSettings(warmup_s=0.1, duration_s=1.2, window_s=0.3)
    gate: list[int] = []
    driver = OpenDriver(
        [_gate_runner(0.3, after=60, gate=gate)], [{}], rate_rps=150.0, concurrency=2,
        items_per_request=1, horizon_s=3.0, distribution="constant",
    )  # fmt: skip
    m = drive(driver, s)
    result, warnings = summarize(m, s)
    closed, opened = gate
    intended = np.concatenate([np.asarray(r.intended_ns, dtype=np.int64) for r in driver.recorders])
    end = np.concatenate([np.asarray(r.end_ns, dtype=np.int64) for r in driver.recorders])
    taken = np.concatenate([np.asarray(r.extra["taken"], dtype=np.int64) for r in driver.recorders])
    due = (intended >= closed) & (intended < opened)
    assert due.sum() >= 20  # the schedule's, not lateness: one every 6.7 ms across 300 ms
    assert (end[due] >= opened).all()
    # Each was taken late by a worker the gate had freed; only a worker free before it closed
    # could take one early (and then ran into the gate).
    late_or_before = (taken[due] >= intended[due]) | (taken[due] < closed)
    assert late_or_before.all() and (taken[due] < closed).sum() <= 2
    waited = m.extra["taken"] > 0  # taken after the intended time: a pool wait
    lat_ms = m.latency_ns / 1e6
    assert (lat_ms[waited] >= m.extra["taken"][waited] / 1e6).all()
    assert (generator_delay_ns(m)[waited] == 0).all()
    # Half of those due waited over 150 ms, of about 180 measured (the schedule's 1.2 s): > 1%.
    assert result.latency_ms.p99 > 100
    assert any(w.kind == "pool-exhausted" for w in warnings)


def test_closed_loop_requests_start_when_the_one_before_ended():
    driver = ClosedDriver([lambda f: time.sleep(0.001)], [{}], 2, 1)
    m = drive(driver, MeasureSettings(warmup_s=0.05, duration_s=0.3, window_s=0.1))
    assert m.requests > 20
    assert (m.latency_ns >= 1_000_000).all()  # every request holds its 1 ms sleep
    for rec in driver.recorders:
        assert len(rec.intended_ns) == 0  # one clock reading a request: ends only
        intended, end = rec.rows(0, len(rec.end_ns))
        assert intended[0] == rec.chained_from_ns
        assert (intended[1:] == end[:-1]).all()
        lo = len(rec.end_ns) // 2
        assert rec.rows(lo, len(rec.end_ns))[0][0] == rec.end_ns[lo - 1]


def test_open_loops_lower_the_switch_interval_while_measuring_and_restore_it():
    class Reading:
        def start(self):
            self.during = sys.getswitchinterval()

        def stop(self):
            return self.during

    before = sys.getswitchinterval()
    s = MeasureSettings(warmup_s=0.05, duration_s=0.2, window_s=0.1)
    open_driver = OpenDriver([lambda f: None], [{}], 200.0, 1, 1, 1.0)
    m = drive(open_driver, s, probes={"si": Reading()})
    assert m.probes["si"] == pytest.approx(min(SWITCH_INTERVAL_S, before))
    assert sys.getswitchinterval() == before
    batcher = BatcherDriver(
        [lambda f: None], batch_feeds([{"x": np.zeros((1, 1))}], 2), 200.0,
        DynamicBatching(2, 0.0), 1.0,
    )  # fmt: skip
    m = drive(batcher, s, probes={"si": Reading()})
    assert m.probes["si"] == pytest.approx(min(SWITCH_INTERVAL_S, before))
    assert sys.getswitchinterval() == before

    def broken(feeds):
        raise RuntimeError("kernel exploded")

    # The error surfaces at the first read of the records, before any window is measured.
    seen: list = []
    with pytest.raises(RuntimeError, match="kernel exploded"):
        drive(OpenDriver([broken], [{}], 200.0, 1, 1, 1.0), s, on_window=lambda *w: seen.append(w))
    assert seen == []
    assert sys.getswitchinterval() == before
    previous = lower_switch_interval(0.001)
    assert previous == before
    assert sys.getswitchinterval() == pytest.approx(min(0.001, before))
    restore_switch_interval(previous)
    assert sys.getswitchinterval() == before
