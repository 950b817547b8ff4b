"""Progress views on stderr: a sweep's bar (a line per finished cell when stderr is a log) and
a fleet's bar per node group."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as RichProgress
from rich.text import Text

from benchbox.format import fmt_duration_s, fmt_ms, fmt_number, reason_line
from benchbox.measure.cell import MeasureSettings
from benchbox.schema import Cell
from benchbox.sweep import Progress
from benchbox.sweep.eta import Eta, is_large, planned_cell_s, size_note


class EtaColumn(ProgressColumn):
    """The planned measuring time left, counting down while a cell runs."""

    def __init__(self, eta: Eta) -> None:
        super().__init__()
        self.eta = eta

    def render(self, task: Task) -> Text:
        return Text(f"ETA {fmt_duration_s(self.eta.seconds_left(time.monotonic()))}")


class BarProgress(Progress):
    """Progress on stderr: a rich bar naming the current cell with an ETA from the planned
    measuring time on a terminal, else a line per finished cell; first, for a large sweep (or
    when stderr is a log), a note of the grid's size."""

    def __init__(
        self, console: Console, settings: MeasureSettings | None, adaptive: bool = False
    ) -> None:
        self.console = console
        self.eta = Eta(planned_cell_s(settings) if settings is not None else 0.0)
        self.adaptive = adaptive
        self.live = console.is_terminal
        self.bar = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            EtaColumn(self.eta),
            console=console,
            transient=True,
        )
        self.task = None
        self.total = 0
        self.done: set[str] = set()

    def planned(self, cells: list[Cell]) -> None:
        self.eta.plan(cells)
        self.total = len(self.eta.left)
        if not self.live or is_large(self.total, self.eta.planned_s):
            note = size_note(self.total, self.eta.planned_s, self.adaptive)
            self.console.print(note, highlight=False, markup=False, soft_wrap=True)
        if self.live:
            self.bar.start()
            self.task = self.bar.add_task("planning", total=self.total)

    def started(self, cell: Cell) -> None:
        self.eta.start(time.monotonic())
        label = cell.id
        if cell.id in self.done or (cell.load.kind == "open" and "peak" in cell.id):
            label = f"{cell.id} (probing {cell.load.rate_rps:g}/s)"  # a peak-rate search step
        if self.task is not None:
            self.bar.update(self.task, description=label)

    def trial_started(self, cell: Cell, trial: int) -> None:
        if self.task is not None:  # one more step: the trials are not planned ahead
            total = (self.bar.tasks[0].total or 0) + 1
            self.bar.update(self.task, description=f"{cell.id} (trial {trial})", total=total)

    def trial_finished(self, cell: Cell, trial: int) -> None:
        """`  trial 3 of cpu/t1/i1/b1/closed-c1: ok  180.3 inf/s  p99 6.371 ms`: the trial's
        own outcome (a failed trial: its reason, never the figures of an earlier one)."""
        if self.task is not None:
            self.bar.advance(self.task)
        if self.live:
            if cell.status == "failed":
                line = f"{cell.id} trial {trial}: failed — {reason_line(cell.reason)}"
                self.bar.console.print(Text(line, style="dim"), highlight=False)
            return
        text = f"  trial {trial} of {cell.id}: {cell.status}"
        r = cell.result
        if cell.status in ("ok", "unstable") and r is not None:
            text += f"  {fmt_number(r.throughput_ips, 1)} inf/s  p99 {fmt_ms(r.latency_ms.p99)}"
        elif cell.reason:
            text += f" — {reason_line(cell.reason)}"
        self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def finished(self, cell: Cell) -> None:
        first = cell.id not in self.done  # a peak search measures one cell at several rates
        self.done.add(cell.id)
        self.eta.finish(cell.id)
        if first and self.task is not None:
            self.bar.advance(self.task)
        if not self.live:
            self.console.print(self._line(cell), highlight=False, markup=False, soft_wrap=True)
        elif cell.status == "failed":
            self.bar.console.print(
                Text(f"{cell.id}: {cell.status} — {reason_line(cell.reason)}", style="dim"),
                highlight=False,
            )

    def _line(self, cell: Cell) -> str:
        """`[3/8] cpu/t1/i1/b1/closed-c1 ok  180.3 inf/s  p99 6.371 ms  ETA 25s`."""
        text = f"[{len(self.done)}/{self.total}] {cell.id}"
        if cell.load.kind == "open" and cell.load.rate_rps and "peak" in cell.id:
            text += f" at {cell.load.rate_rps:g}/s"  # a step of the peak-rate search
        text += f" {cell.status}"
        r = cell.result
        if r is not None:
            text += f"  {fmt_number(r.throughput_ips, 1)} inf/s  p99 {fmt_ms(r.latency_ms.p99)}"
        elif cell.reason:
            text += f" — {cell.reason}"
        return text + f"  ETA {fmt_duration_s(self.eta.seconds_left(time.monotonic()))}"

    def close(self) -> None:
        if self.task is not None:
            self.bar.stop()


class GroupBar(Progress):
    """One line of the fleet's progress bar: a group's cells."""

    def __init__(self, bar: RichProgress, group: str) -> None:
        self.bar, self.group, self.task = bar, group, None
        self.done: set[str] = set()

    def planned(self, cells: list[Cell]) -> None:
        self.bar.start()  # once the first group is placed (again: a no-op)
        self.task = self.bar.add_task(self.group, total=len(cells))

    def started(self, cell: Cell) -> None:
        if self.task is not None:
            self.bar.update(self.task, description=f"{self.group}: {cell.id}")

    def finished(self, cell: Cell) -> None:
        if self.task is not None and cell.id not in self.done:
            self.done.add(cell.id)
            self.bar.advance(self.task)
        if cell.status == "failed":
            self.bar.console.print(f"[dim]{self.group} {cell.id}: failed — {cell.reason}[/]")


def fleet_bar(console: Console, disable: bool) -> RichProgress:
    """The fleet's bar: one line per group (`GroupBar`)."""
    return RichProgress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=disable,
    )
