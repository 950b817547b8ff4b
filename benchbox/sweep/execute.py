"""Measuring a report's cells: the search, then the trial phase, saving the report after every
cell and trial; at the end it is priced and the recommendation added.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchbox.errors import Interrupted, NothingMeasured
from benchbox.format import reason_line
from benchbox.measure.cell import Aborted
from benchbox.parse import LatencyTarget
from benchbox.schema import MEASURED, Cell, Report, TrialPolicy, replace
from benchbox.store import save_report
from benchbox.sweep import peak, search
from benchbox.sweep import trials as trial_phase
from benchbox.sweep.factories import MakeWorker, trial_measurer
from benchbox.sweep.plan import group_key
from benchbox.sweep.progress import Progress
from benchbox.sweep.runner import CellContext


class NoCellMeasured(NothingMeasured):
    """No cell of a finished sweep could be measured; the saved report comes with it (exit 3)."""

    def __init__(self, message: str, hint: str | None, report: Report) -> None:
        super().__init__(message, hint)
        self.report = report


def finalize_report(report: Report, profile: Any, target: LatencyTarget | None) -> Report:
    """Price the cells on the profile and add the recommendation, when those were asked for."""
    if profile is not None:
        from benchbox.cost import price_report

        report = price_report(report, profile)
    if target is not None:
        from benchbox.recommend import recommend, with_recommendation

        objective = "cost" if profile is not None else "throughput"
        bounds = report.settings.accuracy if report.settings else ()
        rec = recommend(report, target, objective=objective, accuracy=bounds)
        report = with_recommendation(report, rec)
    return report


class Growing:
    """The report as its cells come back, saved after each one (with `width` > 1 they come back
    on several threads, hence the lock)."""

    def __init__(self, report: Report, path: Path, progress: Progress) -> None:
        self.report = report
        self.path = path
        self.progress = progress
        self.index = {c.id: i for i, c in enumerate(report.cells)}
        self.lock = threading.Lock()

    def emit(self, cell: Cell, trial: bool = False) -> None:
        """Put `cell` in the report and save it; a trial's progress comes with its own outcome
        (`on_trial`), so only a cell's own is reported here."""
        with self.lock:
            new = list(self.report.cells)
            new[self.index[cell.id]] = cell
            self.report = replace(self.report, cells=tuple(new))
            save_report(self.report, self.path)
        if not trial:
            self.progress.finished(cell)


class SearchWorkers:
    """The search's measure(cell): one worker per device group, opened on the group's first
    cell; cells in `keep` count as done. `first_orders` records the order cells were measured."""

    def __init__(
        self,
        ctx: CellContext,
        make_worker: MakeWorker,
        abort: threading.Event | None,
        keep: dict[str, Cell],
        grow: Growing,
    ) -> None:
        self.ctx, self.make_worker, self.abort = ctx, make_worker, abort
        self.keep, self.grow = keep, grow
        self.workers: dict[tuple, Any] = {}
        self.first_orders: dict[str, int] = {}

    def measure(self, cell: Cell) -> Cell:
        if cell.id in self.keep:
            return self.keep[cell.id]
        if self.abort is not None and self.abort.is_set():
            raise Aborted()
        key = group_key(cell.config)
        with self.grow.lock:
            if key not in self.workers:
                self.workers[key] = self.make_worker(self.ctx, self.abort)
        self.grow.progress.started(cell)
        done = self.workers[key].measure(cell)
        self.first_orders[cell.id] = len(self.first_orders)
        self.grow.emit(done)
        return done

    def close(self) -> None:
        for worker in self.workers.values():
            worker.close()
        self.workers.clear()


def execute(
    report: Report,
    path: Path,
    ctx: CellContext,
    search_kind: str,
    target: LatencyTarget | None,
    profile: Any,
    progress: Progress,
    abort: threading.Event | None,
    make_worker: MakeWorker,
    keep: dict[str, Cell] | None = None,
    width: int = 1,
    policy: TrialPolicy | None = None,
) -> tuple[Report, Path]:
    """Run the search over the report's cells (those in `keep` count as done), then the trial
    phase (`sweep.trials`) over the cells it measured, saving the report after every cell and
    trial; price, recommend and save it at the end. Cells kept from a resumed report continue
    from the trials they have (`sweep.trials.earlier_log`).

    `width`: how many cells a grid search measures at a time (workers that measure on several
    machines, such as a fleet group's nodes, take one cell per machine)."""
    keep = keep or {}
    policy = policy or TrialPolicy(trials=1)
    if search_kind == "adaptive" and target is not None and ctx.settings.duration_s is None:
        # A cell that breaks the target with confidence cannot win: stop measuring it early.
        early = replace(ctx.settings, stop_above=(target.q, target.value_ms))
        ctx = replace(ctx, settings=early)
    grow = Growing(report, path, progress)
    workers = SearchWorkers(ctx, make_worker, abort, keep, grow)
    try:
        run_search(grow, workers.measure, search_kind, target, keep, width)
        workers.close()  # the search's workers are done: trials start fresh
        combined = trial_phase.run_trials(
            list(grow.report.cells),
            trial_measurer(ctx, make_worker, abort),
            policy,
            target,
            ctx.settings.confidence,
            emit=lambda cell: grow.emit(cell, trial=True),
            first_orders=workers.first_orders,
            eligible=lambda c: (
                (c.id not in keep or trial_phase.resumed(c)) and not peak.is_peak_cell(c)
            ),
            ruler=lambda: _time_ruler(grow),
            saved=set(keep),
            on_trial=lambda cell, number, done: (
                progress.trial_started(cell, number)
                if done is None
                else progress.trial_finished(done, number)
            ),
        )
        grow.report = replace(grow.report, cells=tuple(combined))
    except (Aborted, KeyboardInterrupt):
        # priced like a finished sweep, so the cells measured so far carry their cost
        with grow.lock:
            save_report(finalize_report(grow.report, profile, None), path)
        raise Interrupted(
            f"interrupted; the partial report is saved in {path}",
            f"resume it with `benchbox sweep --resume {path}`",
        ) from None
    finally:
        workers.close()
    report = finalize_report(grow.report, profile, target)
    save_report(report, path)
    check_measured(report, path)
    return report, path


def run_search(
    grow: Growing,
    measure: Callable[[Cell], Cell],
    search_kind: str,
    target: LatencyTarget | None,
    keep: dict[str, Cell],
    width: int,
) -> None:
    """The search over the report's cells (peak, adaptive or grid); every cell it settles that
    differs from the report's goes into the report."""
    cells = list(grow.report.cells)
    if any(peak.is_peak_cell(c) for c in cells):
        final = peak.search(cells, measure, target, adaptive=search_kind == "adaptive")
    elif search_kind == "adaptive":
        final = search.adaptive(cells, measure, target)
    else:
        final = search.grid(cells, measure, width)
    for cell in final:
        if cell.id in keep and cell.status == "skipped":
            cell = keep[cell.id]  # a measurement is never thrown away
        if grow.report.cells[grow.index[cell.id]] != cell:
            grow.emit(cell)


def check_measured(report: Report, path: Path) -> None:
    """NoCellMeasured, with each reason once, when no cell of the finished report was measured."""
    if any(c.status in MEASURED for c in report.cells):
        return
    reasons = dict.fromkeys(
        f"{c.status}: {reason_line(c.reason)}" for c in report.cells if c.reason
    )
    raise NoCellMeasured(
        f"no cell could be measured (report saved in {path})",
        "; ".join(reasons) or None,
        report=report,
    )


def _time_ruler(grow: Growing) -> None:
    """One round's reading of the reference workload, kept in the report (measure.ruler)."""
    from benchbox.measure import ruler
    from benchbox.schema import Ruler

    seconds = ruler.time_ruler()
    with grow.lock:
        host = grow.report.host
        old = host.ruler
        rounds = (*old.per_round_s, seconds) if old is not None else (seconds,)
        host = replace(host, ruler=Ruler(ruler.RULER_KIND, rounds))
        grow.report = replace(grow.report, host=host)
