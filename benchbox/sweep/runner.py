"""Running cells: open the sessions of each serving config once, drive each load, build the Cell.

`InProcessWorker` measures the cells of one device group (same device and session options), one
cell at a time, in this process; the sweep decides where groups run (`worker.ProcessWorker`).
"""

from __future__ import annotations

import ctypes
import sys
import threading
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from benchbox import model as model_mod
from benchbox.backends import CellFailure, Instances, open_instances
from benchbox.data.trace import cell_trace_offsets, from_data
from benchbox.devices import gpu_probes, parse_device
from benchbox.load.batcher import BatcherDriver, batch_feeds
from benchbox.load.closed import ClosedDriver
from benchbox.load.open import OpenDriver
from benchbox.load.schedule import cell_schedule_ns
from benchbox.measure.buckets import bucket_stats
from benchbox.measure.cell import Aborted, MeasureSettings, drive, summarize
from benchbox.measure.sampler import PeakRss, ResourceSampler
from benchbox.schema import (
    Accuracy,
    Cell,
    CellWarning,
    Load,
    ModelInfo,
    Profile,
    RepeatCheck,
    Result,
    ServingConfig,
    VariantInfo,
    replace,
)
from benchbox.warning_kinds import WarningKind

if TYPE_CHECKING:
    from benchbox.data.pool import RequestPool
    from benchbox.data.samples import SampleSet

POOL_SIZE = 4


@dataclass(frozen=True)
class CellContext:
    """What every cell of a sweep shares: the model, how to measure, the profile for power."""

    model_path: str
    model: ModelInfo
    settings: MeasureSettings
    cores: int = 1
    profile: Profile | None = None
    idle_power_w: float | None = None
    # (precision) The variants built for the sweep's precisions, the accuracy samples (None:
    # accuracy not measured) and the sweep's folder where a key's accuracy is kept for its
    # other cells and trials.
    variants: tuple[VariantInfo, ...] = ()
    accuracy_samples: int | None = None
    accuracy_dir: str | None = None
    data: SampleSet | None = None  # --data: requests from these samples, not synthetic ones


def variant_path(ctx: CellContext, config: ServingConfig) -> str:
    """The model file a config runs: the variant of its precision (CellFailure when that
    variant could not be built); OpenVINO takes fp16 as a hint on the fp32 model."""
    if config.precision == "fp32":
        return ctx.model_path
    if config.precision == "fp16" and parse_device(config.device).runtime == "openvino":
        return ctx.model_path
    for v in ctx.variants:
        if v.precision == config.precision:
            if v.error or not v.path:
                raise CellFailure(v.error or f"no {config.precision} variant was built")
            return v.path
    raise CellFailure(f"no {config.precision} variant was built for this sweep")


def with_accuracy(ctx: CellContext, instances: Instances, cell: Cell) -> Cell:
    """The measured cell with its outputs compared with the fp32 CPU reference (after the timed
    path, on its own first session); a comparison that cannot run is recorded, not raised."""
    if ctx.accuracy_samples is None or cell.status not in ("ok", "unstable"):
        return cell
    from pathlib import Path

    from benchbox.precision.accuracy import measure_cell_accuracy

    samples, source, labels = None, "synthetic", None
    try:
        if ctx.data is not None:  # the data's own samples, one request of one each
            from benchbox.data.pool import one_each

            samples, source = one_each(ctx.data, ctx.model), ctx.data.info.source
            if ctx.data.labels is not None:  # request i is sample i: its label is label i
                labels = [np.asarray([x]) for x in ctx.data.labels[: ctx.accuracy_samples]]
        acc = measure_cell_accuracy(
            instances.runners[0],
            cell.config,
            cell.id,
            ctx.model_path,
            ctx.model,
            ctx.accuracy_samples,
            Path(ctx.accuracy_dir) if ctx.accuracy_dir else None,
            samples=samples,
            labels=labels,
            source=source,
            threads=ctx.cores,
        )
    except Exception as exc:  # a comparison that cannot run must not cost the measurement
        acc = Accuracy(samples=0, source="synthetic", error=failure_reason(exc))
    warnings = cell.warnings
    if acc.flag:
        warnings = (*warnings, CellWarning(WarningKind.ACCURACY, acc.flag))
    return replace(cell, accuracy=acc, warnings=warnings)


def skip_reason(ctx: CellContext, cell: Cell) -> str | None:
    """Why a cell cannot run at all (fixed batch size, string inputs), else None."""
    if ctx.data is not None and cell.config.dynamic_batching is not None:
        return "the batcher does not pad requests of --data to one shape yet"
    return model_mod.batch_skip_reason(ctx.model, cell.config.batch_size)


def request_pool(ctx: CellContext, batch_size: int) -> tuple[list, RequestPool | None]:
    """The feeds a cell cycles through: from --data (with each feed's bucket) or synthetic."""
    if ctx.data is not None:
        from benchbox.data.pool import build_pool

        pool = build_pool(ctx.data, ctx.model, batch_size)
        return pool.feeds, pool
    feeds = model_mod.synthesize_inputs(
        ctx.model, batch_size, pool_size=POOL_SIZE, seed=ctx.settings.seed
    )
    return feeds, None


def make_driver(
    instances: Instances,
    pool: list,
    cell: Cell,
    settings: MeasureSettings,
    record_items: bool = False,
    trace_offsets_s: np.ndarray | None = None,
):
    """The load generator for a cell's load kind (a trace's times given as `trace_offsets_s`)."""
    load, batch = cell.load, cell.config.batch_size
    workers = load.concurrency or len(instances.runners)
    if load.kind in ("open", "trace"):
        warmup_s = settings.warmup_s if settings.warmup_s is not None else settings.warmup_max_s
        horizon = warmup_s + (settings.duration_s or settings.max_duration_s)
        schedule = cell_schedule_ns(load, warmup_s, settings.seed, trace_offsets_s)
        offsets, index = schedule if schedule is not None else (None, None)
        order = index if from_data(load.trace) else None  # request i sends sample i
        db = cell.config.dynamic_batching
        if db is not None:
            return BatcherDriver(
                instances.runners,
                batch_feeds(pool, db.max_batch),
                rate_rps=float(load.rate_rps or 1.0),
                batching=db,
                horizon_s=horizon + 2.0,
                distribution=load.distribution or "poisson",
                seed=settings.seed,
                offsets_ns=offsets,
            )
        return OpenDriver(
            instances.runners,
            pool,
            rate_rps=float(load.rate_rps or 1.0),
            concurrency=workers,
            items_per_request=batch,
            horizon_s=horizon + 2.0,
            distribution=load.distribution or "poisson",
            seed=settings.seed,
            record_items=record_items,
            offsets_ns=offsets,
            order=order,
        )
    return ClosedDriver(instances.runners, pool, workers, batch)


def contention_warning(config: ServingConfig, load: Load, cores: int) -> CellWarning | None:
    """A warning when the cell asks for more busy threads than the machine has cores."""
    workers = min(load.concurrency or config.instances, config.instances) * config.intra_op_threads
    if workers > cores:
        return CellWarning(
            WarningKind.OVERSUBSCRIBED,
            f"{min(load.concurrency or 1, config.instances)} busy session(s) x "
            f"{config.intra_op_threads} intra-op threads exceed the {cores} cores; figures include "
            "contention between them",
        )
    return None


def measure_one(
    ctx: CellContext,
    instances: Instances,
    pool: list,
    cell: Cell,
    abort: threading.Event | None = None,
    buckets: RequestPool | None = None,
) -> Cell:
    """Measure one cell on already-open instances (`buckets`: per-bucket latency on --data)."""
    offsets = cell_trace_offsets(cell.load, ctx.data)
    driver = make_driver(
        instances,
        pool,
        cell,
        ctx.settings,
        record_items=buckets is not None,
        trace_offsets_s=offsets,
    )
    probes: dict = {"resources": ResourceSampler(**gpu_probes(cell.config.device))}
    meter = power_meter(ctx, cell.config.device)
    if meter is not None:
        probes["power"] = meter
    m = drive(driver, ctx.settings, abort=abort, probes=probes)
    if m.requests == 0:
        return replace(cell, status="failed", reason="no request completed while measuring")
    result, warnings = summarize(
        m, ctx.settings, m.probes.get("resources"), rate_rps=cell.load.rate_rps
    )
    if buckets is not None and "item" in m.extra:
        found = bucket_stats(m.latency_ns, m.extra["item"], buckets.buckets, buckets.dim)
        result = replace(result, buckets=found)
    reading = m.probes.get("power")
    if reading is not None:
        result, note = with_power(result, reading, ctx.idle_power_w)
        if note:
            warnings.append(note)
    extra = contention_warning(cell.config, cell.load, ctx.cores)
    if extra:
        warnings.append(extra)
    status = "unstable" if m.stable is False else "ok"
    # The backend's labels (host copies, io binding, precision, settings) come first.
    notes = [*instances.notes, *warnings]
    return replace(cell, status=status, reason=None, result=result, warnings=tuple(notes))


def power_meter(ctx: CellContext, device: str):
    """The power meter for a device (NVML, RAPL, or the profile's estimate), or None."""
    from benchbox.measure.power import select_meter

    try:
        return select_meter(device, ctx.profile)
    except Exception:  # a broken meter must not cost the measurement
        return None


def with_power(
    result: Result, reading, idle_power_w: float | None
) -> tuple[Result, CellWarning | None]:
    """The result with power, energy per inference and the source filled from a meter reading."""
    if reading.power_w is None:
        return result, CellWarning(WarningKind.NO_POWER, reading.detail) if reading.detail else None
    energy = reading.power_w / result.throughput_ips if result.throughput_ips > 0 else None
    above = reading.power_w - idle_power_w if idle_power_w is not None else None
    return (
        replace(
            result,
            power_w=reading.power_w,
            power_above_idle_w=above,
            energy_j_per_inference=energy,
            power_source=reading.source,
        ),
        None,
    )


_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


def _libc():
    if sys.platform != "linux":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 - musl and other libcs have none
        return libc
    except (OSError, AttributeError):
        return None


def configure_malloc() -> None:
    """Keep large blocks (per-request arrays) in their own mappings, returned to the OS when
    freed: glibc's default raises that threshold after each free, so a long sweep's heap would
    fragment and its RSS would creep up cell by cell."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, 256 * 1024)


def release_memory() -> None:
    """Hand the freed memory of the last cell back to the OS."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


class InProcessWorker:
    """Measures the cells of one device group in this process.

    The sessions of the last serving config stay open, so the loads of one config share them.
    """

    def __init__(self, ctx: CellContext, abort: threading.Event | None = None) -> None:
        configure_malloc()
        self.ctx = ctx
        self.abort = abort
        self._config: ServingConfig | None = None
        self._instances: Instances | None = None
        self._pool: list = []
        self._buckets: RequestPool | None = None
        self._open_error: str | None = None
        self._session_rss_mb: float | None = None  # peak RSS while the sessions were created
        self._repeat_checked = False  # --data: one repeat check per worker, before its first cell

    def _open(self, config: ServingConfig) -> None:
        self.close()
        self._config = config
        try:
            with PeakRss() as peak:
                self._instances = open_instances(variant_path(self.ctx, config), config)
            self._session_rss_mb = peak.mb
        except CellFailure as exc:
            self._open_error = str(exc)
            return
        self._pool, self._buckets = request_pool(self.ctx, config.batch_size)

    def measure(self, cell: Cell) -> Cell:
        """The cell measured (ok/unstable), or skipped/failed with the reason."""
        reason = skip_reason(self.ctx, cell)
        if reason:
            return replace(cell, status="skipped", reason=reason, result=None)
        if cell.config != self._config:
            self._open(cell.config)
        if self._instances is None:
            return replace(cell, status="failed", reason=self._open_error, result=None)
        try:
            check = self._repeat_check()
            done = measure_one(
                self.ctx, self._instances, self._pool, cell, self.abort, self._buckets
            )
            done = with_repeat_check(done, check, len(self._pool))
            if done.result is not None:
                done = replace(
                    done, result=replace(done.result, session_rss_mb=self._session_rss_mb)
                )
            return with_accuracy(self.ctx, self._instances, done)
        except (Aborted, KeyboardInterrupt):
            raise
        except Exception as exc:  # an onnxruntime error while running is the cell's
            return replace(cell, status="failed", reason=failure_reason(exc), result=None)
        finally:
            release_memory()

    def _repeat_check(self) -> RepeatCheck | None:
        """The worker's one repeat check on --data (None after the first, or without data)."""
        if self._repeat_checked or self._buckets is None or self._instances is None:
            return None
        self._repeat_checked = True
        from benchbox.measure.repeat import repeat_check

        pool = self._buckets
        return repeat_check(self._instances.runners[0], pool.feeds, pool.lengths)

    def close(self) -> None:
        if self._instances is not None:
            self._instances.close()
        self._instances, self._config, self._open_error, self._pool = None, None, None, []
        self._session_rss_mb = None
        self._buckets = None


def with_repeat_check(cell: Cell, check: RepeatCheck | None, pool_size: int) -> Cell:
    """The cell carrying its repeat check, and the warning when one repeated request was
    flattered (`measure.repeat`)."""
    if check is None or cell.result is None:
        return cell
    from benchbox.measure.repeat import flattered

    warnings = cell.warnings
    if flattered(check):
        text = (
            f"one request repeated ran {check.ratio:.2f}x faster (p50 "
            f"{check.repeated_p50_ms:.3g} ms) than {check.distinct} distinct ones of length "
            f"{check.length} ({check.distinct_p50_ms:.3g} ms): a small or synthetic pool would "
            f"flatter this model; this cell cycled {pool_size} distinct requests"
        )
        warnings = (*warnings, CellWarning(WarningKind.REPEAT_FASTER, text))
    return replace(cell, result=replace(cell.result, repeat_check=check), warnings=warnings)


def failure_reason(exc: BaseException) -> str:
    """An exception as a cell reason: type, its whole text, where it was raised (views show the
    informative line, `benchbox.format.reason_line`)."""
    text = str(exc).strip() or type(exc).__name__
    where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    return f"{type(exc).__name__}: {text}" + (f" (at {where[0].name})" if where else "")
