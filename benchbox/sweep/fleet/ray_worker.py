"""A remote sweep's cells measured by generators on a Ray cluster (`sweep --target URL --ray
ADDRESS --generators N`): the worker the sweep gets instead of `remote.RemoteWorker`.

The generators are placed once per sweep and hold one CPU of their node until it ends. A cell
is one fixed run (its warm-up, then --duration or else --max-duration; no windows, no early
stop): one open-loop schedule at the cell's rate, split over the nodes, and its figures read from
the nodes' latency histograms merged exactly.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from benchbox.load.issuer import schedule_offsets_ns
from benchbox.load.schedule import cell_schedule_ns
from benchbox.measure import stats
from benchbox.measure.cell import (
    LATE_SEND_MS,
    LATE_SHARE,
    Aborted,
    MeasureSettings,
    behind_warning,
)
from benchbox.measure.histogram import LatencyHistogram
from benchbox.remote import session as remote
from benchbox.schema import (
    MEASURED,
    Cell,
    CellWarning,
    GeneratorStats,
    LatencyStats,
    Report,
    Result,
    Spread,
    replace,
)
from benchbox.sweep.fleet.cluster import connected
from benchbox.sweep.fleet.generators import (
    MERGED,
    Generator,
    RayLoad,
    close_generators,
    place_generators,
    run_schedule,
)
from benchbox.sweep.job import RayGenerators, RemoteTarget, SweepRequest
from benchbox.sweep.progress import Progress
from benchbox.sweep.run import connect_target, run_sweep
from benchbox.warning_kinds import WarningKind

ANSWER_GRACE_S = 10.0  # past the schedule and a request's timeout, a node that has not answered


def run_ray_sweep(
    req: SweepRequest, progress: Progress | None = None, abort: threading.Event | None = None
) -> tuple[Report, Path]:
    """`run_sweep` of a remote request whose generators run on a Ray cluster (`req.target.ray`):
    placed once, before the first cell, and closed after the last."""
    assert req.target is not None and req.target.ray is not None
    session = connect_target(req)  # exit 2 before placing when the server is not there
    with ray_generators(session, req.target) as make_worker:
        return run_sweep(req, progress, abort, make_worker=make_worker, session=session)


@contextlib.contextmanager
def ray_generators(
    session: remote.Session, target: RemoteTarget
) -> Iterator[Callable[[Any, threading.Event | None], Any]]:
    """Inside, a worker factory whose workers measure on generators placed on the cluster (the
    connection and the generators last as long as the block)."""
    ray = target.ray
    assert ray is not None
    with connected(ray.address):
        gens = place_generators(
            target.generators, ray.group, ray.group_label, ray.placement_timeout_s
        )
        try:
            yield lambda ctx, abort: RayWorker(session, gens, ray, ctx.settings, abort, ctx.data)
        finally:
            close_generators(gens)


class RayWorker:
    """The sweep's worker for generators on Ray (`measure(cell) -> Cell`, `close()`)."""

    def __init__(
        self,
        session: remote.Session,
        gens: list[Generator],
        ray: RayGenerators,
        settings: MeasureSettings,
        abort: threading.Event | None = None,
        data: Any = None,
    ) -> None:
        self.session, self.gens, self.ray = session, gens, ray
        self.settings, self.abort, self.data = settings, abort, data

    def measure(self, cell: Cell) -> Cell:
        """The cell measured from the generator nodes, or failed with the reason."""
        if self.abort is not None and self.abort.is_set():
            raise Aborted()
        try:
            return measure_on_ray(
                self.session, self.gens, self.ray, cell, self.settings, self.data, self.abort
            )
        except (Aborted, KeyboardInterrupt):
            raise
        except Exception as exc:  # a lost node, a generator's failure: this cell's, not the sweep's
            text = " ".join(str(exc).split())[:300] or type(exc).__name__
            return replace(cell, status="failed", result=None, reason=text)

    def close(self) -> None:
        pass


def measure_on_ray(
    session: remote.Session,
    gens: list[Generator],
    ray: RayGenerators,
    cell: Cell,
    settings: MeasureSettings,
    data: Any = None,
    abort: threading.Event | None = None,
) -> Cell:
    """One cell: its schedule sent from the generator nodes, its figures from their merged
    histograms."""
    reason = remote.skip_reason(session, cell)
    if reason:
        return replace(cell, status="skipped", reason=reason, result=None)
    load = cell.load
    if load.kind != "open" or not load.rate_rps:
        reason = "generators on Ray send an open-loop schedule: give --load open --rate R"
        return replace(cell, status="failed", result=None, reason=reason)
    prepared = remote.prepare(session, remote.request_feeds(session, cell, settings, data))
    first = remote.first_request(prepared)
    if first is not None:
        why = f"the first request failed: {first}"
        return replace(cell, status="failed", result=None, reason=why)
    warmup_s = settings.warmup_s if settings.warmup_s is not None else 2 * settings.window_s
    duration_s = settings.duration_s or settings.max_duration_s
    profiled = cell_schedule_ns(load, warmup_s, settings.seed)  # a --rate profile's schedule
    offsets = (
        profiled[0]
        if profiled is not None
        else schedule_offsets_ns(
            load.rate_rps, int(load.rate_rps * (warmup_s + duration_s)) + 1,
            load.distribution or "poisson", settings.seed,
        )
    )  # fmt: skip
    pool = load.concurrency or remote.OPEN_POOL_DEFAULT
    bound_s = warmup_s + duration_s + session.timeout_s + ANSWER_GRACE_S
    got = run_schedule(
        gens, prepared, offsets, pool, int(warmup_s * 1e9), bound_s, ray.partial, abort=abort
    )
    if got.requests == 0:
        why = f"; first error: {got.first_error}" if got.first_error else ""
        return replace(cell, status="failed", result=None, reason=f"no request succeeded{why}")
    result = ray_result(got, cell, settings, ray.group)
    warnings = remote.remote_warnings(session, result, cell, got.first_error)
    warnings += ray_load_warnings(got)
    if got.partial:
        lost = "; ".join(n.lost for n in got.nodes if n.lost)
        warnings.append(CellWarning(WarningKind.GENERATOR_LOST, f"{lost}; the others finished"))
    status, reason = "ok", None
    if result.error_rate and result.error_rate > remote.ERROR_SHARE_LIMIT:
        status = "failed"
        reason = f"{got.errors} requests failed; first error: {got.first_error}"
    assert status in MEASURED or status == "failed"
    return replace(cell, status=status, reason=reason, result=result, warnings=tuple(warnings))


def _latency_stats(h: LatencyHistogram) -> LatencyStats:
    """Percentiles read from the merged histogram; mean and std from its bucket midpoints."""
    sparse = h.to_histogram()
    mids = stats.histogram_values(sparse)
    pct = {k: stats.histogram_quantile(sparse, q) for k, q in stats.PERCENTILES.items()}
    std = float(np.std(mids, ddof=1)) if mids.size > 1 else 0.0
    return LatencyStats(
        mean=float(mids.mean()), std=std, min=sparse.min_ms, max=sparse.max_ms, **pct
    )


def _spread(h: LatencyHistogram) -> Spread | None:
    if h.count == 0:
        return None
    s = _latency_stats(h)
    return Spread(p50=s.p50, p99=s.p99, max=s.max, mean=s.mean, p90=s.p90)


def ray_load_warnings(got: RayLoad) -> list[CellWarning]:
    """The in-process open loop's load warnings, from what the nodes shipped: sends over
    LATE_SEND_MS late (the merged issue-delay histogram) and, per node, pool waits (a pool-wait
    p99 over LATE_SEND_MS means over 1% of that node's requests waited longer)."""
    out = [behind_warning(got.issue_delay.share_above_ms(LATE_SEND_MS), " nodes")]
    waited = [n for n in got.nodes if (n.pool_wait_p99_ms or 0.0) > LATE_SEND_MS]
    if waited:
        names = ", ".join(n.node_id[:12] for n in waited)
        worst = max(n.pool_wait_p99_ms or 0.0 for n in waited)
        text = (
            f"over {LATE_SHARE:.0%} of the requests of node(s) {names} waited over "
            f"{LATE_SEND_MS:g} ms for a free slot (pool-wait p99 {worst:.2f} ms); that wait "
            "counts in their latency — raise --concurrency"
        )
        out.append(CellWarning(WarningKind.POOL_EXHAUSTED, text))
    return [w for w in out if w is not None]


def ray_result(got: RayLoad, cell: Cell, settings: MeasureSettings, group: str) -> Result:
    """The report's Result of a cell measured on generator nodes."""
    duration = max(got.span_s, 1e-9)
    total = got.requests + got.errors
    sparse = got.latency.to_histogram()
    alive = sum(1 for n in got.nodes if n.lost is None)
    return Result(
        requests=got.requests,
        inferences=got.requests * cell.config.batch_size,
        duration_s=duration,
        throughput_ips=got.requests * cell.config.batch_size / duration,
        requests_per_s=got.requests / duration,
        latency_ms=_latency_stats(got.latency),
        latency_ci_ms=stats.histogram_latency_cis(sparse, settings.confidence)
        if settings.within_cis
        else None,
        confidence=settings.confidence,
        issue_delay_ms=_spread(got.issue_delay),
        achieved_rate_rps=got.requests / duration,
        histogram=sparse,
        errors=got.errors,
        error_rate=got.errors / total if total else 0.0,
        generator=GeneratorStats(
            processes=alive,
            busy_share=got.busy_share,
            nodes=got.nodes,
            ray_group=group,
            percentiles_from=MERGED,
            partial=got.partial,
        ),
    )
