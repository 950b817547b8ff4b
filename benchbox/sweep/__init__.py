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
from benchbox.report.store import check_writable, report_path, save_report
from benchbox.schema import Cell, Report, replace, to_dict
from benchbox.sweep.plan import SweepSpec, grid, group_key
from benchbox.sweep.runner import CellContext, run_group


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


def run_sweep(
    req: SweepRequest,
    progress: Progress | None = None,
    abort: threading.Event | None = None,
    finalize: Callable[[Report], Report] | None = None,
) -> tuple[Report, Path]:
    """Measure every planned cell, saving the report after each; return it and its path."""
    progress = progress or Progress()
    out_dir = check_writable(req.out_dir)
    info = model_mod.inspect_model(req.model_path, req.shapes)
    cells = grid(req.spec)
    created = now_iso()
    path = report_path(out_dir, req.model_label or req.model_path, created)
    report = Report(
        host=host_info(),
        model=info,
        cells=tuple(cells),
        settings=settings_dict(req),
        benchbox_version=__version__,
        created=created,
    )
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

    ctx = CellContext(
        model_path=req.model_path,
        model=info,
        settings=req.settings,
        cores=psutil.cpu_count(logical=True) or 1,
    )
    save_report(report, path)
    groups: dict[tuple, list[Cell]] = {}
    for cell in cells:
        groups.setdefault(group_key(cell.config), []).append(cell)
    try:
        for group in groups.values():
            run_group(ctx, group, emit, abort=abort, on_start=progress.started)
    except (Aborted, KeyboardInterrupt):
        save_report(state["report"], path)
        raise Interrupted(
            f"interrupted; the partial report is saved in {path}",
            f"resume it with `benchbox sweep --resume {path}`",
        ) from None
    report = state["report"]
    if finalize is not None:
        report = finalize(report)
    save_report(report, path)
    if not any(c.status in ("ok", "unstable") for c in report.cells):
        reasons = {c.reason for c in report.cells if c.reason}
        raise NothingMeasured(
            f"no cell could be measured (report saved in {path})",
            "; ".join(sorted(reasons))[:300] or None,
        )
    return report, path
