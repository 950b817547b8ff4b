"""Measuring one cell: warm up, measure in windows until stable (or for a fixed time), summarize.

The controller only reads the drivers' records between windows; the timed path is the workers'.
A window's figures come from the requests that completed in it (perf_analyzer's rule); the cell
stops once the last three windows agree within the stability tolerance on throughput and p99.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Protocol

import numpy as np

from benchbox.format import fmt_ms_given, fmt_ms_text
from benchbox.load import Driver
from benchbox.measure import stats
from benchbox.measure.sampler import ResourceStats
from benchbox.schema import CellWarning, MeasureSettings, Result, Spread
from benchbox.warning_kinds import WarningKind

MIN_WINDOW_REQUESTS = 50
# A fixed --duration that holds fewer requests than this is measured on until it holds them (up to
# the longer of --duration and --max-duration): a figure from a handful of requests means nothing.
MIN_MEASURED_REQUESTS = 30
RELATIVE_EXTRA = ("taken",)
LATE_SEND_MS = 1.0
LATE_SHARE = 0.01


class Aborted(Exception):
    """The measurement was stopped from outside (Ctrl-C, SIGTERM)."""


@dataclass
class Measurement:
    """The raw outcome of driving one load: per-request arrays for the measured interval."""

    latency_ns: np.ndarray
    issue_delay_ns: np.ndarray | None
    requests: int
    inferences: int
    duration_s: float
    windows: list[stats.WindowStat]
    stable: bool | None  # None: fixed duration, no stability rule applied
    warmup_s: float
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    probes: dict[str, object] = field(default_factory=dict)
    # (percentile, bound_ms, lower CI bound) when measuring stopped early above the target
    stopped_above: tuple[float, float, float] | None = None
    extended: bool = False  # a fixed duration ran on to reach MIN_MEASURED_REQUESTS


class Probe(Protocol):
    """Something measured alongside the load, outside the timed path (resources, power)."""

    def start(self) -> None: ...

    def stop(self) -> object: ...


class _Collector:
    """Reads what the workers recorded since the last read (records are append-only)."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.cursors = [0] * len(driver.recorders)

    def take(self) -> dict[str, np.ndarray]:
        """The new records; a worker's failure is raised here, at the window it happened in,
        rather than after the whole (up to max_duration_s) measurement."""
        errors = getattr(self.driver, "errors", None)
        if errors:
            raise errors[0]
        cols: dict[str, list[np.ndarray]] = {"intended": [], "end": [], "sent": []}
        extra_cols: dict[str, list[np.ndarray]] = {}
        for k, rec in enumerate(self.driver.recorders):
            n = len(rec.end_ns)
            lo = self.cursors[k]
            self.cursors[k] = n
            if n == lo:
                continue
            intended, end = rec.rows(lo, n)
            cols["intended"].append(intended)
            cols["end"].append(end)
            if rec.sent_ns:
                cols["sent"].append(np.asarray(rec.sent_ns[lo:n], dtype=np.int64))
            for key, values in rec.extra.items():
                extra_cols.setdefault(key, []).append(np.asarray(values[lo:n], dtype=np.int64))
            if rec.first_item is not None:  # a cycling driver: the pool items, by position
                items = np.arange(lo, n, dtype=np.int64) + rec.first_item
                extra_cols.setdefault("item", []).append(items)
        out = {k: _cat(v) for k, v in cols.items()}
        out.update({k: _cat(v) for k, v in extra_cols.items()})
        return out


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def _window_stat(chunk: dict[str, np.ndarray], seconds: float, items: int) -> stats.WindowStat:
    lat_ms = (chunk["end"] - chunk["intended"]) / 1e6
    n = len(lat_ms)
    p99 = stats.percentile(np.sort(lat_ms), 99.0) if n else float("nan")
    return stats.WindowStat(throughput_ips=n * items / seconds, p99_ms=p99, count=n)


def _wait(until_ns: int, abort: threading.Event | None) -> None:
    delay = (until_ns - perf_counter_ns()) / 1e9
    if delay <= 0:
        return
    if abort is None:
        time.sleep(delay)
    elif abort.wait(delay):
        raise Aborted()


def drive(
    driver: Driver,
    settings: MeasureSettings,
    abort: threading.Event | None = None,
    probes: dict[str, Probe] | None = None,
    on_window: object = None,
) -> Measurement:
    """Start the driver, warm up, measure in windows, stop; return the raw measurement.

    Probes (resource sampler, power meter) run over the measured interval only.
    """
    probes = probes or {}
    probe_results: dict[str, object] = {}
    collector = _Collector(driver)
    # Enough requests for a p99 confidence bound, unless the maximum duration comes first.
    # (Computed before the load starts: its first call imports scipy, which holds the GIL.)
    min_samples = (
        stats.min_samples_for_ci(99.0, settings.confidence)
        if settings.min_requests is None
        else settings.min_requests
    )
    driver.start()
    try:
        t_begin = perf_counter_ns()
        warm = _warm_up(collector, settings, abort, t_begin)
        for probe in probes.values():
            probe.start()
        t_measure = perf_counter_ns()
        warmup_s = (t_measure - t_begin) / 1e9
        window_ns = _window_ns(warm[-1], warmup_s, settings)
        run = _measure_windows(
            collector, settings, abort, t_measure, window_ns, min_samples, on_window
        )
        for name, probe in probes.items():
            probe_results[name] = probe.stop()
    finally:
        driver.stop()
    errors = getattr(driver, "errors", None)
    if errors:
        raise errors[0]
    return _measurement(run, driver.items_per_request, t_measure, warmup_s, probe_results)


def _warm_up(
    collector: _Collector, settings: MeasureSettings, abort: threading.Event | None, t_begin: int
) -> list[stats.WindowStat]:
    """Warm up for `warmup_s`, or (None) until two consecutive windows agree; the windows."""
    items = collector.driver.items_per_request
    if settings.warmup_s is not None:
        _wait(t_begin + int(settings.warmup_s * 1e9), abort)
        chunk = collector.take()
        seconds = max((perf_counter_ns() - t_begin) / 1e9, 1e-9)
        return [_window_stat(chunk, seconds, items)]
    window_ns = int(settings.window_s * 1e9)
    warm: list[stats.WindowStat] = []
    t = t_begin
    while True:
        _wait(t + window_ns, abort)
        now = perf_counter_ns()
        warm.append(_window_stat(collector.take(), (now - t) / 1e9, items))
        t = now
        if len(warm) >= 2 and stats.windows_stable(warm, settings.stability, last=2):
            return warm
        if (now - t_begin) / 1e9 >= settings.warmup_max_s:
            return warm


def _window_ns(last_warm: stats.WindowStat, warmup_s: float, settings: MeasureSettings) -> int:
    """The measuring window: stretched for slow models so each one holds enough requests."""
    window_ns = int(settings.window_s * 1e9)
    seconds = warmup_s if settings.warmup_s is not None else settings.window_s
    rate = last_warm.count / max(seconds, 1e-9)
    if rate > 0 and settings.duration_s is None:
        needed_s = MIN_WINDOW_REQUESTS / rate
        window_ns = int(max(settings.window_s, min(needed_s, settings.max_duration_s / 3)) * 1e9)
    return window_ns


@dataclass
class _Windows:
    """The measured windows, and how measuring ended."""

    chunks: list[dict[str, np.ndarray]]
    windows: list[stats.WindowStat]
    stable: bool | None
    stopped_above: tuple[float, float, float] | None
    t_end: int
    extended: bool = False


def _measure_windows(
    collector: _Collector,
    settings: MeasureSettings,
    abort: threading.Event | None,
    t_measure: int,
    window_ns: int,
    min_samples: int,
    on_window: object = None,
) -> _Windows:
    """Measure window by window until stable, the fixed duration, an early stop or the maximum."""
    items = collector.driver.items_per_request
    run = _Windows([], [], None, None, t_measure)
    t = t_measure
    while True:
        until = t + window_ns
        if settings.duration_s is not None and not run.extended:
            until = min(until, t_measure + int(settings.duration_s * 1e9))
        _wait(until, abort)
        now = perf_counter_ns()
        chunk = collector.take()
        run.chunks.append(chunk)
        run.windows.append(_window_stat(chunk, (now - t) / 1e9, items))
        t = run.t_end = now
        elapsed = (now - t_measure) / 1e9
        if callable(on_window):
            on_window(elapsed, run.windows[-1])
        if settings.duration_s is not None:
            if elapsed >= settings.duration_s - 1e-6:
                enough = sum(w.count for w in run.windows) >= MIN_MEASURED_REQUESTS
                if enough or elapsed >= max(settings.duration_s, settings.max_duration_s):
                    return run
                run.extended = True  # too few requests yet: measure on, window by window
            continue
        if settings.stop_above is not None and len(run.windows) >= 2:
            run.stopped_above = _above_target(run.chunks, settings)
            if run.stopped_above is not None:
                return run
        enough = sum(w.count for w in run.windows) >= min_samples
        if (
            elapsed >= settings.min_duration_s
            and enough
            and stats.windows_stable(run.windows, settings.stability)
        ):
            run.stable = True
            return run
        if elapsed >= settings.max_duration_s:
            run.stable = False
            return run


def _above_target(
    chunks: list[dict[str, np.ndarray]], settings: MeasureSettings
) -> tuple[float, float, float] | None:
    """(q, bound_ms, lower CI bound) when the percentile is above `stop_above` with confidence."""
    q, bound_ms = settings.stop_above
    lat_ms = np.sort(np.concatenate([c["end"] - c["intended"] for c in chunks]) / 1e6)
    ci = stats.quantile_ci(lat_ms, q, settings.confidence)
    if ci is not None and ci[0] > bound_ms:
        return (q, bound_ms, ci[0])
    return None


def _measurement(
    run: _Windows, items: int, t_measure: int, warmup_s: float, probes: dict[str, object]
) -> Measurement:
    """Merge the windows' records into one Measurement."""
    chunks = run.chunks
    merged = {k: _cat([c[k] for c in chunks if k in c]) for k in chunks[0]} if chunks else {}
    chunks.clear()  # the per-window copies are merged: free them before summarizing
    end = merged.get("end", np.empty(0, dtype=np.int64))
    # Only the requests that completed inside the measured interval count (a read can catch
    # requests that completed just before the interval began, or after it ended).
    inside = (end >= t_measure) & (end <= run.t_end)
    if not inside.all():
        merged = {k: v[inside] if len(v) == len(end) else v for k, v in merged.items()}
        end = merged["end"]
    intended = merged.get("intended", np.empty(0, dtype=np.int64))
    sent = merged.get("sent")
    n = len(end)
    # Per-request extra times are kept relative to the intended time.
    extra = {
        k: (v - intended if k in RELATIVE_EXTRA else v)
        for k, v in merged.items()
        if k not in ("intended", "end", "sent")
    }
    return Measurement(
        latency_ns=end - intended,
        issue_delay_ns=(sent - intended) if sent is not None and len(sent) == n else None,
        requests=n,
        inferences=n * items,
        duration_s=(run.t_end - t_measure) / 1e9,
        windows=run.windows,
        stable=run.stable,
        warmup_s=warmup_s,
        extra=extra,
        probes=probes,
        stopped_above=run.stopped_above,
        extended=run.extended,
    )


def pool_wait_ns(m: Measurement) -> np.ndarray | None:
    """How long each open-loop request waited for a free worker after its intended time."""
    taken = m.extra.get("taken")
    if taken is None or m.issue_delay_ns is None or len(taken) != len(m.issue_delay_ns):
        return None
    return np.maximum(taken, 0)


def generator_delay_ns(m: Measurement) -> np.ndarray:
    """How late the load generator itself sent each request (pool waits excluded)."""
    wait = pool_wait_ns(m)
    if wait is None:
        return m.issue_delay_ns
    return np.maximum(m.issue_delay_ns - wait, 0)


def pool_wait_share(m: Measurement) -> float:
    """The share of requests that waited more than LATE_SEND_MS for a free worker."""
    wait = pool_wait_ns(m)
    return float(np.mean(wait / 1e6 > LATE_SEND_MS)) if wait is not None and len(wait) else 0.0


def spread_ms(values_ns: np.ndarray | None) -> Spread | None:
    """Mean, p50, p90, p99 and max in ms of a per-request duration column (None when absent)."""
    if values_ns is None or not len(values_ns):
        return None
    a = np.sort(np.asarray(values_ns, dtype=np.float64) / 1e6)
    return Spread(
        p50=stats.percentile(a, 50.0),
        p99=stats.percentile(a, 99.0),
        max=float(a[-1]),
        mean=float(np.mean(a)),
        p90=stats.percentile(a, 90.0),
    )


def batch_counts(sizes: np.ndarray | None) -> dict[int, int] | None:
    """Batches formed per size, from each request's batch size (a batch of b holds b requests)."""
    if sizes is None or not len(sizes):
        return None
    values, requests = np.unique(np.asarray(sizes, dtype=np.int64), return_counts=True)
    return {int(b): int(round(n / b)) for b, n in zip(values, requests, strict=True) if b > 0}


def _issue_delay_ms(m: Measurement, warnings: list[CellWarning]) -> Spread | None:
    """The generator's own lateness (open loop), warning when it or the worker pool lagged."""
    if m.issue_delay_ns is None or not len(m.issue_delay_ns):
        return None
    delay_ns = generator_delay_ns(m)
    d_ms = delay_ns / 1e6
    late = float(np.mean(d_ms > LATE_SEND_MS))
    for w in (behind_warning(late), pool_warning(pool_wait_share(m))):
        if w is not None:
            warnings.append(w)
    return spread_ms(delay_ns)


def behind_warning(late_share: float, where: str = "") -> CellWarning | None:
    """GENERATOR_BEHIND when over LATE_SHARE of the sends left over LATE_SEND_MS late (`where`:
    which generators, when several)."""
    if late_share <= LATE_SHARE:
        return None
    return CellWarning(
        WarningKind.GENERATOR_BEHIND,
        f"{late_share:.1%} of requests were sent over {fmt_ms_given(LATE_SEND_MS)} late "
        f"by the load generator{where} (the machine is too busy to keep the schedule); their "
        "latency includes the delay — lower --rate or quiet the machine",
    )


def pool_warning(waited_share: float, where: str = "") -> CellWarning | None:
    """POOL_EXHAUSTED when over LATE_SHARE of the requests waited over LATE_SEND_MS for a slot."""
    if waited_share <= LATE_SHARE:
        return None
    return CellWarning(
        WarningKind.POOL_EXHAUSTED,
        f"{waited_share:.1%} of requests{where} waited over {fmt_ms_given(LATE_SEND_MS)} for a "
        "free worker; that wait counts in their latency — raise --concurrency if the "
        "server you model accepts more requests in flight",
    )


def _window_warnings(windows: list[stats.WindowStat]) -> list[CellWarning]:
    """Warnings the windows deserve: throughput that varied, a slow first window."""
    if len(windows) < 3:
        return []
    out = []
    cv = stats.coefficient_of_variation(np.array([w.throughput_ips for w in windows]))
    if cv > 0.10:
        out.append(
            CellWarning(
                WarningKind.HIGH_VARIATION,
                f"throughput varied by {cv:.0%} (CV) across windows; run on a quiet"
                " machine, or measure longer",
            )
        )
    first, rest = windows[0].p99_ms, np.median([w.p99_ms for w in windows[1:]])
    if rest > 0 and first > 1.5 * rest:
        out.append(
            CellWarning(
                WarningKind.SLOW_FIRST_WINDOW,
                f"the first window's p99 was {first / rest:.1f}x the others; "
                "warm up longer (--warmup 3s or --warmup auto)",
            )
        )
    return out


def summarize(
    m: Measurement,
    settings: MeasureSettings,
    resources: ResourceStats | None = None,
    rate_rps: float | None = None,
) -> tuple[Result, list[CellWarning]]:
    """The report's Result for a measurement, and the warnings it deserves."""
    if m.requests == 0:
        raise ValueError("no request completed while measuring")
    lat_ms = np.sort(m.latency_ns / 1e6)
    warnings: list[CellWarning] = []
    issue = _issue_delay_ms(m, warnings)
    achieved = m.requests / m.duration_s if issue is not None else None
    cis = stats.latency_cis(lat_ms, settings.confidence) if settings.within_cis else None
    if cis is not None and cis.get("p99") is None:
        need = stats.min_samples_for_ci(99.0, settings.confidence)
        warnings.append(
            CellWarning(
                WarningKind.TOO_FEW_SAMPLES,
                f"{m.requests} requests are too few for a p99 confidence bound "
                f"(needs {need}); measure longer (--min-duration or --duration)",
            )
        )
    warnings += _window_warnings(m.windows)
    if m.extended:
        warnings.append(
            CellWarning(
                WarningKind.DURATION_EXTENDED,
                f"--duration {settings.duration_s:g}s held too few requests, so measuring ran on"
                f" to {m.requests} requests in {m.duration_s:.3g}s"
                f" (at least {MIN_MEASURED_REQUESTS} are needed)",
            )
        )
    if m.stopped_above is not None:
        q, bound_ms, lo = m.stopped_above
        warnings.append(
            CellWarning(
                WarningKind.EARLY_STOP,
                f"p{q:g} was above {fmt_ms_given(bound_ms)} with confidence (lower bound "
                f"{fmt_ms_text(lo)}) after {m.duration_s:.1f}s, so measuring stopped early; use "
                "--search grid to measure every cell in full",
            )
        )
    if m.stable is False:
        warnings.append(
            CellWarning(
                WarningKind.UNSTABLE,
                f"the last windows never agreed within {settings.stability:.0%} in "
                f"{m.duration_s:.1f}s; the figures cover the whole interval — raise "
                "--max-duration, loosen --stability, or quiet the machine",
            )
        )
    result = Result(
        requests=m.requests,
        inferences=m.inferences,
        duration_s=m.duration_s,
        throughput_ips=m.inferences / m.duration_s,
        requests_per_s=m.requests / m.duration_s,
        latency_ms=stats.summarize(lat_ms),
        latency_ci_ms=cis,
        confidence=settings.confidence,
        issue_delay_ms=issue,
        achieved_rate_rps=achieved,
        cpu_util_pct=resources.cpu_util_pct if resources else None,
        rss_mb=resources.rss_mb if resources else None,
        gpu_mem_mb=resources.gpu_mem_mb if resources else None,
        gpu_util_pct=resources.gpu_util_pct if resources else None,
        histogram=stats.histogram_from_samples(lat_ms),
        windows=len(m.windows),
        queue_ms=spread_ms(m.extra.get("queue_ns")),
        compute_ms=spread_ms(m.extra.get("compute_ns")),
        batch_size_counts=batch_counts(m.extra.get("batch")),
        samples_ms=[round(float(x), 6) for x in m.latency_ns / 1e6]
        if settings.save_samples
        else None,
    )
    return result, warnings
