"""A sweep's report before its first cell: planned and saved, with the host's idle power, the
model's variants and the context its cells share.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchbox import __version__
from benchbox import model as model_mod
from benchbox.schema import DataInfo, HostInfo, IdlePower, ModelInfo, Profile, Report, replace
from benchbox.store import save_new_report
from benchbox.sweep import peak
from benchbox.sweep.job import SweepRequest, sweep_settings
from benchbox.sweep.plan import grid
from benchbox.sweep.runner import CellContext

if TYPE_CHECKING:
    from benchbox.data.samples import SampleSet


def now_iso() -> str:
    """The current UTC time, ISO-8601 to the second."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def idle_baseline(
    profile: Profile | None, seconds: float = 1.0, settle: Callable[[], None] | None = None
) -> IdlePower | None:
    """The CPU's idle power before the sweep (RAPL, or the profile's estimate), if any.

    A meter reads the whole machine, so `settle` first waits for a worker process that is still
    starting; an estimate reads this process's own CPU share, which at rest is 0%: the profile's
    idle watts, with no window to wait for.
    """
    from benchbox.measure.power import EstimateMeter, measure_idle_w, select_meter

    meter = select_meter("cpu", profile)
    if meter is None:
        return None
    if isinstance(meter, EstimateMeter):
        return IdlePower(power_w=meter.spec.idle_w, source="estimate", seconds=0.0)
    if settle is not None:
        settle()
    try:
        reading = measure_idle_w(meter, seconds)
    except Exception as exc:  # a meter that cannot read must not stop the sweep
        return IdlePower(power_w=None, source=None, detail=str(exc))
    return IdlePower(power_w=reading.power_w, source=reading.source, seconds=seconds)


def new_report(
    req: SweepRequest,
    host: HostInfo,
    profile: Profile | None,
    out_dir: Path,
    name: str | None = None,
    info: ModelInfo | None = None,
    server: Any = None,
    data: DataInfo | None = None,
) -> tuple[Report, Path]:
    """The sweep's report for `host`, its cells planned, saved in `out_dir` (the file named after
    `name`, else the model); `info` is read from the model file when not given, `server` is a
    remote sweep's target."""
    info = info or model_mod.inspect_model(req.model_path, req.shapes, req.input_values)
    cells = peak.plan_cells(req.spec) if peak.wanted(req.spec) else grid(req.spec)
    created = now_iso()
    report = Report(
        host=host,
        model=info,
        cells=tuple(cells),
        settings=sweep_settings(req),
        profile=profile,
        benchbox_version=__version__,
        created=created,
        target=server,
        data=data,
    )
    path = save_new_report(report, out_dir, name or req.model_label or req.model_path)
    return report, path


def cell_context(
    req: SweepRequest, report: Report, cores: int, idle: IdlePower | None
) -> tuple[Report, CellContext]:
    """The report with the idle baseline in its settings, and the CellContext its cells share."""
    if idle is not None:
        report = replace(report, settings=replace(report.settings, idle_power=idle))
    settings = req.settings
    if req.trials.most > 1 and settings.min_requests is None:
        settings = replace(settings, min_requests=0)  # the bound comes from the trials' spread
    ctx = CellContext(
        model_path=req.model_path,
        model=report.model,
        settings=settings,
        cores=cores,
        profile=report.profile,
        idle_power_w=idle.power_w if idle else None,
    )
    return report, ctx


def with_variants(
    report: Report,
    model_path: str,
    precisions: tuple[str, ...],
    local: bool,
    data: SampleSet | None = None,
):
    """The report with the model's variants for the sweep's precisions (built or cached; a
    variant that cannot be built carries its reason, and its cells fail with it). `data`: the
    run's --data SampleSet; int8-static calibrates on its samples, one request of one each."""
    if not local or tuple(precisions) == ("fp32",):
        return report
    from benchbox.precision.variants import build_variants

    samples, source = None, None
    if data is not None and "int8-static" in precisions:
        from benchbox.data.pool import one_each

        samples, source = one_each(data, report.model), data.info.source
    variants = build_variants(model_path, report.model, tuple(precisions), samples, source)
    return replace(report, variants=variants)


@contextlib.contextmanager
def precision_context(
    ctx: CellContext, report: Report, accuracy_samples: int | None
) -> Iterator[CellContext]:
    """The context with the report's variants and, when accuracy is measured, a folder where
    each key's accuracy is kept for the sweep's other cells and trials (removed afterwards)."""
    ctx = replace(ctx, variants=report.variants, accuracy_samples=accuracy_samples)
    if accuracy_samples is None:
        yield ctx
        return
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="benchbox-accuracy-")
    try:
        yield replace(ctx, accuracy_dir=folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
