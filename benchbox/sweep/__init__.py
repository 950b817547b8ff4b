"""A sweep end to end: plan the cells, measure them group by group, save the report as it grows."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from benchbox import __version__
from benchbox import model as model_mod
from benchbox.devices import host_info
from benchbox.errors import Interrupted, NothingMeasured
from benchbox.measure.cell import Aborted, MeasureSettings
from benchbox.parse import LatencyTarget, parse_target
from benchbox.report.store import check_writable, report_path, save_report
from benchbox.schema import Cell, Report, replace, to_dict
from benchbox.sweep import search
from benchbox.sweep.plan import SweepSpec, grid, group_key
from benchbox.sweep.runner import CellContext, InProcessWorker


@dataclass(frozen=True)
class SweepRequest:
    """Everything a sweep needs, as parsed from the command line."""

    model_path: str
    spec: SweepSpec
    settings: MeasureSettings
    shapes: dict[str, int] = field(default_factory=dict)
    out_dir: str = "reports"
    search: str = "grid"
    latency_target: str | None = None
    profile: str | None = None
    model_label: str | None = None


class Progress:
    """Callbacks a front end implements to show a sweep's progress (all optional)."""

    def planned(self, cells: list[Cell]) -> None: ...

    def started(self, cell: Cell) -> None: ...

    def finished(self, cell: Cell) -> None: ...


def settings_dict(req: SweepRequest) -> dict[str, Any]:
    """The sweep's options as stored in the report (enough to resume it)."""
    return {
        "model": req.model_label or req.model_path,
        "spec": to_dict(req.spec),
        "measure": to_dict(req.settings),
        "shapes": dict(req.shapes),
        "search": req.search,
        "latency_target": req.latency_target,
        "profile": req.profile,
    }


def now_iso() -> str:
    """The current UTC time, ISO-8601 to the second."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def make_in_process_worker(ctx: CellContext, abort: threading.Event | None):
    """The default worker factory: measure in this process."""
    return InProcessWorker(ctx, abort)


def finalize_report(report: Report, profile: Any, target: LatencyTarget | None) -> Report:
    """Price the cells on the profile and add the recommendation, when those were asked for."""
    if profile is not None:
        from benchbox.cost import price_report

        report = price_report(report, profile)
    if target is not None:
        from benchbox.recommend import recommend, with_recommendation

        objective = "cost" if profile is not None else "throughput"
        report = with_recommendation(report, recommend(report, target, objective=objective))
    return report


def idle_baseline(profile: Any, seconds: float = 1.0) -> dict[str, Any] | None:
    """The CPU's idle power before the sweep (RAPL, or the profile's estimate), if any."""
    from benchbox.measure.power import measure_idle_w, select_meter

    meter = select_meter("cpu", profile)
    if meter is None:
        return None
    try:
        reading = measure_idle_w(meter, seconds)
    except Exception as exc:  # a meter that cannot read must not stop the sweep
        return {"power_w": None, "source": None, "detail": str(exc)}
    return {"power_w": reading.power_w, "source": reading.source, "seconds": seconds}


def run_sweep(
    req: SweepRequest,
    progress: Progress | None = None,
    abort: threading.Event | None = None,
    make_worker: Callable[[CellContext, threading.Event | None], Any] | None = None,
) -> tuple[Report, Path]:
    """Measure the planned cells, saving the report after each; return it and its path."""
    progress = progress or Progress()
    make_worker = make_worker or make_in_process_worker
    out_dir = check_writable(req.out_dir)
    target = parse_target(req.latency_target) if req.latency_target else None
    profile = None
    if req.profile:
        from benchbox.cost import load_profile, profile_to_dict

        profile = load_profile(req.profile)
    info = model_mod.inspect_model(req.model_path, req.shapes)
    cells = grid(req.spec)
    created = now_iso()
    path = report_path(out_dir, req.model_label or req.model_path, created)
    settings = settings_dict(req)
    report = Report(
        host=host_info(),
        model=info,
        cells=tuple(cells),
        settings=settings,
        profile=profile_to_dict(profile) if profile else None,
        benchbox_version=__version__,
        created=created,
    )
    save_report(report, path)
    progress.planned(cells)
    index = {c.id: i for i, c in enumerate(cells)}
    state = {"report": report}

    def emit(cell: Cell) -> None:
        r = state["report"]
        new = list(r.cells)
        new[index[cell.id]] = cell
        state["report"] = replace(r, cells=tuple(new))
        save_report(state["report"], path)
        progress.finished(cell)

    idle = idle_baseline(profile)
    if idle is not None:
        settings = dict(settings, idle_power=idle)
        state["report"] = replace(state["report"], settings=settings)
    ctx = CellContext(
        model_path=req.model_path,
        model=info,
        settings=req.settings,
        cores=psutil.cpu_count(logical=True) or 1,
        profile=profile_to_dict(profile) if profile else None,
        idle_power_w=(idle or {}).get("power_w"),
    )
    workers: dict[tuple, Any] = {}

    def measure(cell: Cell) -> Cell:
        if abort is not None and abort.is_set():
            raise Aborted()
        key = group_key(cell.config)
        if key not in workers:
            workers[key] = make_worker(ctx, abort)
        progress.started(cell)
        done = workers[key].measure(cell)
        emit(done)
        return done

    try:
        if req.search == "adaptive":
            final = search.adaptive(cells, measure, target)
        else:
            final = search.grid(cells, measure)
        for cell in final:
            if state["report"].cells[index[cell.id]] != cell:
                emit(cell)
    except (Aborted, KeyboardInterrupt):
        save_report(state["report"], path)
        raise Interrupted(
            f"interrupted; the partial report is saved in {path}",
            f"resume it with `benchbox sweep --resume {path}`",
        ) from None
    finally:
        for worker in workers.values():
            worker.close()
    report = finalize_report(state["report"], profile, target)
    save_report(report, path)
    if not any(c.status in ("ok", "unstable") for c in report.cells):
        reasons = {c.reason for c in report.cells if c.reason}
        raise NothingMeasured(
            f"no cell could be measured (report saved in {path})",
            "; ".join(sorted(reasons))[:300] or None,
        )
    return report, path
