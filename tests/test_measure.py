"""The load drivers and the measuring controller, on real onnxruntime sessions and plain runners."""

from __future__ import annotations

import threading
import time

import numpy as np
import onnx
import pytest

from benchbox import model as model_mod
from benchbox import zoo
from benchbox.backends import open_instances
from benchbox.load import column
from benchbox.load.closed import ClosedDriver
from benchbox.load.open import OpenDriver, schedule_offsets_ns
from benchbox.measure.cell import Aborted, MeasureSettings, drive, summarize
from benchbox.schema import ServingConfig

FAST = MeasureSettings(warmup_s=0.1, duration_s=0.4, window_s=0.1)


@pytest.fixture(scope="module")
def mlp(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("zoo") / "mlp.onnx"
    onnx.save(zoo.build("mlp"), path)
    return str(path)


def test_closed_loop_counts_inferences_as_batch_times_requests(mlp):
    info = model_mod.inspect_model(mlp)
    inst = open_instances(mlp, ServingConfig("cpu", 1, 1, 4))
    pool = model_mod.synthesize_inputs(info, 4)
    m = drive(ClosedDriver(inst.runners, pool, 2, items_per_request=4), FAST)
    assert m.requests > 10
    assert m.inferences == 4 * m.requests
    assert m.duration_s >= FAST.duration_s  # measured at least as long as asked, at any speed
    assert len(m.windows) >= 3
    result, _ = summarize(m, FAST)
    assert result.throughput_ips == pytest.approx(m.inferences / m.duration_s)
    assert result.latency_ms.min <= result.latency_ms.p50 <= result.latency_ms.p99
    assert result.latency_ms.p99 <= result.latency_ms.max


def test_workers_are_spread_over_instances():
    calls = [0, 0]

    threads: list[set[int]] = [set(), set()]

    def runner(k):
        def run(feeds):
            calls[k] += 1
            threads[k].add(threading.get_ident())
            time.sleep(0.001)

        return run

    driver = ClosedDriver([runner(0), runner(1)], [{}], concurrency=4, items_per_request=1)
    drive(driver, FAST)
    assert calls[0] > 0 and calls[1] > 0
    # 4 workers over 2 instances: each instance serves 2 workers of its own, whatever the speed
    assert len(threads[0]) == len(threads[1]) == 2 and not threads[0] & threads[1]


def test_fixed_duration_measures_that_long_without_early_stop():
    driver = ClosedDriver([lambda f: time.sleep(0.0005)], [{}], 1, 1)
    s = MeasureSettings(warmup_s=0.05, duration_s=0.5, window_s=0.1)
    m = drive(driver, s)
    assert m.stable is None
    assert m.duration_s >= s.duration_s  # no early stop: the whole duration, at any speed


def test_stable_load_stops_once_three_windows_agree():
    driver = ClosedDriver([lambda f: time.sleep(0.001)], [{}], 1, 1)
    s = MeasureSettings(
        warmup_s=0.1, window_s=0.1, min_duration_s=0.3, max_duration_s=5.0, stability=0.5
    )
    m = drive(driver, s)
    assert m.stable is True
    assert m.duration_s < 5.0


def test_a_load_that_never_settles_is_unstable():
    """Each call sleeps 15% longer than the one before, so every window is slower than the
    last, at any speed (a wall-clock pattern of slow and fast stretches could be straddled by
    windows that then agree)."""
    state = {"n": 0}

    def erratic(feeds):
        state["n"] += 1
        time.sleep(min(0.2, 0.001 * 1.15 ** state["n"]))

    driver = ClosedDriver([erratic], [{}], 1, 1)
    s = MeasureSettings(
        warmup_s=0.05, window_s=0.1, min_duration_s=0.3, max_duration_s=0.8, stability=0.05
    )
    m = drive(driver, s)
    assert m.stable is False
    result, warnings = summarize(m, s)
    assert any(str(w).startswith("unstable") for w in warnings)


def test_poisson_schedule_has_the_requested_mean_rate():
    offsets = schedule_offsets_ns(1000.0, 20000, "poisson", seed=1)
    gaps = np.diff(offsets) / 1e9
    assert np.mean(gaps) == pytest.approx(1 / 1000.0, rel=0.03)
    assert np.std(gaps) == pytest.approx(1 / 1000.0, rel=0.05)  # exponential: std == mean
    const = np.diff(schedule_offsets_ns(200.0, 100, "constant")) / 1e9
    assert np.allclose(const, 1 / 200.0)


def _stalling_runner(service_s: float, stall_s: float, after: int, stall: list[int]):
    """A runner that sleeps `service_s` a call and, on call number `after`, stalls `stall_s`
    first; `stall` gets the stall's begin and end (perf_counter_ns)."""
    calls = [0]

    def run(feeds):
        calls[0] += 1
        if calls[0] == after:
            stall.append(time.perf_counter_ns())
            time.sleep(stall_s)
            stall.append(time.perf_counter_ns())
        time.sleep(service_s)

    return run


def _records(driver) -> dict[str, np.ndarray]:
    """Every request the driver's recorders hold (warmup included), as absolute ns columns."""
    parts: dict[str, list[np.ndarray]] = {"intended": [], "end": [], "sent": [], "taken": []}
    for rec in driver.recorders:
        n = len(rec.end_ns)
        intended, end = rec.rows(0, n)
        parts["intended"].append(intended)
        parts["end"].append(end)
        parts["sent"].append(np.asarray(rec.sent_ns[:n], dtype=np.int64))
        parts["taken"].append(np.asarray(rec.extra.get("taken", column())[:n], dtype=np.int64))
    return {k: np.concatenate(v) for k, v in parts.items()}


def test_open_loop_charges_stalls_to_latency():
    """One 200 ms stall of the only worker: the open loop charges it to every request due during
    it; the closed loop to the one request that held it. Properties of the records, at any speed."""
    s = MeasureSettings(warmup_s=0.1, duration_s=1.5, window_s=0.25)
    stall: list[int] = []
    open_driver = OpenDriver(
        [_stalling_runner(0.002, 0.2, 50, stall)], [{}], rate_rps=100.0, concurrency=1,
        items_per_request=1, horizon_s=3.0, distribution="constant",
    )  # fmt: skip
    m_open = drive(open_driver, s)
    r_open, warnings = summarize(m_open, s)
    begin, stall_end = stall
    rec = _records(open_driver)
    during = (rec["intended"] >= begin) & (rec["intended"] < stall_end)
    # Due every 10 ms across a 200 ms stall, request 50 of a 1.6 s run: about 20 of them.
    assert during.sum() >= 10
    # Each waited for the worker until the stall was over, and that wait is its latency.
    assert (rec["end"][during] >= stall_end).all()
    assert (rec["end"] - rec["intended"])[during].min() >= 0
    # A pool wait, not generator lateness: each was sent the moment a worker took it.
    assert (rec["taken"][during] >= rec["intended"][during]).all()
    assert (rec["sent"][during] == rec["taken"][during]).all()
    # About 10 of them waited over 100 ms, of about 150 measured (the schedule's 1.5 s): > 1%.
    assert r_open.latency_ms.p99 > 100
    assert any(str(w).startswith("pool-exhausted") for w in warnings)

    closed_stall: list[int] = []
    closed = ClosedDriver([_stalling_runner(0.002, 0.2, 50, closed_stall)], [{}], 1, 1)
    r_closed, _ = summarize(drive(closed, s), s)
    begin, stall_end = closed_stall
    rec = _records(closed)
    # Chained: exactly one request was running through the stall; none other overlaps it.
    overlaps = (rec["intended"] < stall_end) & (rec["end"] > begin)
    assert overlaps.sum() == 1
    assert r_closed.latency_ms.max >= 200


def test_open_loop_latency_is_measured_from_the_intended_time():
    s = MeasureSettings(warmup_s=0.05, duration_s=0.5, window_s=0.1)
    driver = OpenDriver([lambda f: time.sleep(0.002)], [{}], 50.0, 2, 1, 2.0, "constant")
    m = drive(driver, s)
    r, _ = summarize(m, s)
    rec = _records(driver)
    # Latency runs from the intended time: never sent before it, so never shorter than the
    # send-to-answer time, which holds each request's 2 ms sleep.
    assert (rec["sent"] >= rec["intended"]).all()
    assert (rec["end"] - rec["sent"] >= 2_000_000).all()
    assert r.latency_ms.p50 >= 2.0
    assert (m.latency_ns >= m.issue_delay_ns).all()


def test_abort_stops_the_measurement_at_its_next_wait():
    """Aborted after the second window: no third window is measured (of the 300 asked for)."""
    abort = threading.Event()
    seen: list = []

    def on_window(elapsed_s, window):
        seen.append(window)
        if len(seen) == 2:
            abort.set()

    driver = ClosedDriver([lambda f: time.sleep(0.001)], [{}], 1, 1)
    settings = MeasureSettings(warmup_s=0.05, duration_s=30.0, window_s=0.1)
    with pytest.raises(Aborted):
        drive(driver, settings, abort=abort, on_window=on_window)
    assert len(seen) == 2


def test_a_runner_error_surfaces_from_the_measurement():
    def broken(feeds):
        raise RuntimeError("kernel exploded")

    # The error surfaces at the first read of the records, not after max_duration_s (15 s by
    # default) of a load that completes nothing: no window is measured.
    seen: list = []
    with pytest.raises(RuntimeError, match="kernel exploded"):
        drive(ClosedDriver([broken], [{}], 1, 1), FAST, on_window=lambda *w: seen.append(w))
    assert seen == []


def test_a_cell_above_the_bound_with_confidence_stops_early():
    driver = ClosedDriver([lambda f: time.sleep(0.004)], [{}], 1, 1)
    s = MeasureSettings(
        warmup_s=0.05, window_s=0.1, min_duration_s=0.3, max_duration_s=10.0,
        stop_above=(99.0, 1.0),
    )  # fmt: skip
    m = drive(driver, s)
    assert m.stopped_above is not None and m.stopped_above[2] > 1.0
    assert m.duration_s < 10.0
    _, warnings = summarize(m, s)
    assert any(str(w).startswith("early-stop") for w in warnings)
