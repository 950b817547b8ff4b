"""Running cells: open the sessions of each serving config once, drive each load, build the Cell.

`run_group` measures the cells of one device group (same device and session options) and hands
each finished cell to `emit` as soon as it is measured; the sweep decides where groups run.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from benchbox import model as model_mod
from benchbox.backends import CellFailure, Instances, open_instances
from benchbox.load.closed import ClosedDriver
from benchbox.load.open import OpenDriver
from benchbox.measure.cell import Aborted, MeasureSettings, drive, summarize
from benchbox.measure.sampler import ResourceSampler
from benchbox.schema import Cell, Load, ModelInfo, ServingConfig, replace

POOL_SIZE = 4
Emit = Callable[[Cell], None]


@dataclass(frozen=True)
class CellContext:
    """What every cell of a sweep shares: the model and how to measure."""

    model_path: str
    model: ModelInfo
    settings: MeasureSettings
    cores: int = 1


def skip_reason(ctx: CellContext, cell: Cell) -> str | None:
    """Why a cell cannot run at all (fixed batch size, string inputs), else None."""
    return model_mod.batch_skip_reason(ctx.model, cell.config.batch_size)


def make_driver(instances: Instances, pool: list, cell: Cell, settings: MeasureSettings):
    """The load generator for a cell's load kind."""
    load, batch = cell.load, cell.config.batch_size
    workers = load.concurrency or len(instances.runners)
    if load.kind == "open":
        horizon = (settings.warmup_s or settings.warmup_max_s) + (
            settings.duration_s or settings.max_duration_s
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
        )
    return ClosedDriver(instances.runners, pool, workers, batch)


def contention_warning(config: ServingConfig, load: Load, cores: int) -> str | None:
    """A warning when the cell asks for more busy threads than the machine has cores."""
    workers = min(load.concurrency or config.instances, config.instances) * config.intra_op_threads
    if workers > cores:
        return (
            f"oversubscribed: {min(load.concurrency or 1, config.instances)} busy session(s) x "
            f"{config.intra_op_threads} intra-op threads exceed the {cores} cores; figures include "
            "contention between them"
        )
    return None


def measure_one(
    ctx: CellContext,
    instances: Instances,
    pool: list,
    cell: Cell,
    abort: threading.Event | None = None,
) -> Cell:
    """Measure one cell on already-open instances."""
    driver = make_driver(instances, pool, cell, ctx.settings)
    sampler = ResourceSampler()
    m = drive(driver, ctx.settings, abort=abort, probes={"resources": sampler})
    if m.requests == 0:
        return replace(cell, status="failed", reason="no request completed while measuring")
    result, warnings = summarize(
        m, ctx.settings, m.probes.get("resources"), rate_rps=cell.load.rate_rps
    )
    extra = contention_warning(cell.config, cell.load, ctx.cores)
    if extra:
        warnings.append(extra)
    status = "unstable" if m.stable is False else "ok"
    return replace(cell, status=status, reason=None, result=result, warnings=tuple(warnings))


def run_group(
    ctx: CellContext,
    cells: Iterable[Cell],
    emit: Emit,
    abort: threading.Event | None = None,
    on_start: Callable[[Cell], None] | None = None,
) -> None:
    """Measure cells (of one device group) in order, emitting each as soon as it is done."""
    by_config: dict[ServingConfig, list[Cell]] = {}
    for cell in cells:
        by_config.setdefault(cell.config, []).append(cell)
    for config, group in by_config.items():
        runnable = []
        for cell in group:
            reason = skip_reason(ctx, cell)
            if reason:
                emit(replace(cell, status="skipped", reason=reason))
            else:
                runnable.append(cell)
        if not runnable:
            continue
        try:
            instances = open_instances(ctx.model_path, config)
        except CellFailure as exc:
            for cell in runnable:
                emit(replace(cell, status="failed", reason=str(exc)))
            continue
        try:
            pool = model_mod.synthesize_inputs(
                ctx.model, config.batch_size, pool_size=POOL_SIZE, seed=ctx.settings.seed
            )
            for cell in runnable:
                if abort is not None and abort.is_set():
                    raise Aborted()
                if on_start:
                    on_start(cell)
                try:
                    done = measure_one(ctx, instances, pool, cell, abort)
                except (Aborted, KeyboardInterrupt):
                    raise
                except Exception as exc:  # an onnxruntime error while running is the cell's
                    done = replace(cell, status="failed", reason=_reason(exc))
                emit(done)
        finally:
            instances.close()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    return f"{type(exc).__name__}: {first[:300]}" + (f" (at {where[0].name})" if where else "")
