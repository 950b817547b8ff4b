"""`benchbox fleet`: one sweep per node group of a Ray cluster, ranked by cost per million."""

from __future__ import annotations

import json
import sys
import threading
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

from benchbox import parse
from benchbox.commands.sweep import (
    AccuracyOpt,
    AccuracySamplesOpt,
    ArrivalOpt,
    BatchOpt,
    CellTimeoutOpt,
    ConcOpt,
    ConfOpt,
    DeviceOpt,
    DurationOpt,
    InstOpt,
    LoadOpt,
    MaxDurOpt,
    MinDurOpt,
    ModelArg,
    NoIsolationOpt,
    RateOpt,
    SamplesOpt,
    SearchOpt,
    SeedOpt,
    ShapeOpt,
    StabOpt,
    TargetOpt,
    ThreadsOpt,
    VariantPrecisionOpt,
    WarmupOpt,
    WindowOpt,
)
from benchbox.load import Arrival, LoadKind
from benchbox.report.fleet_view import fleet_json, render_fleet
from benchbox.report.render import stdout_console
from benchbox.schema import Cell
from benchbox.sweep import Progress, stop_on_signals
from benchbox.sweep.fleet import (
    DEFAULT_GROUP_LABEL,
    FleetRequest,
    FleetResult,
    fleet_gate,
    fleet_out_dir,
    parse_groups,
    resume_fleet,
    run_fleet,
)
from benchbox.sweep.request import MeasureOptions, SweepOptions, build_request, cell_timeout_s
from benchbox.sweep.search import SearchKind

app = typer.Typer()


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


def _run(start, as_json: bool) -> FleetResult:
    """Run the fleet with one progress line per group on stderr; Ctrl-C cancels the nodes'
    work, saves what came back and exits 130."""
    console = Console(stderr=True)
    bar = RichProgress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=as_json and not console.is_terminal,
    )
    try:
        with stop_on_signals(threading.Event()) as abort:
            return start(lambda group: GroupBar(bar, group), abort)
    finally:
        if bar.live.is_started:  # stopping a bar never started prints a blank line
            bar.stop()


@app.command()
def fleet(
    model: ModelArg = None,
    ray_address: Annotated[
        str,
        typer.Option(
            "--ray",
            metavar="ADDRESS",
            help="The Ray cluster: auto (RAY_ADDRESS, or the one on this machine), "
            "ray://HOST:10001, or HOST:6379.",
        ),
    ] = "auto",
    group: Annotated[
        list[str] | None,
        typer.Option(
            "--group",
            metavar="NAME=PROFILE",
            help="A node group (the nodes whose --group-label is NAME) and the price profile "
            "of its machine type; repeat for each group.",
        ),
    ] = None,
    group_label: Annotated[
        str, typer.Option("--group-label", help="The node label that names a node's group.")
    ] = DEFAULT_GROUP_LABEL,
    placement_timeout: Annotated[
        str,
        typer.Option(
            "--placement-timeout", help="How long to wait for every group's nodes to take it."
        ),
    ] = "60s",
    device: DeviceOpt = "cpu",
    batch: BatchOpt = None,
    concurrency: ConcOpt = None,
    threads: ThreadsOpt = None,
    instances: InstOpt = "1",
    load: LoadOpt = LoadKind.CLOSED,
    rate: RateOpt = None,
    arrival: ArrivalOpt = Arrival.POISSON,
    duration: DurationOpt = None,
    warmup: WarmupOpt = "0.5s",
    window: WindowOpt = "0.5s",
    min_duration: MinDurOpt = "1.5s",
    max_duration: MaxDurOpt = "6s",
    stability: StabOpt = "10%",
    confidence: ConfOpt = 0.95,
    search: SearchOpt = SearchKind.ADAPTIVE,
    latency_target: TargetOpt = None,
    shape: ShapeOpt = None,
    out: Annotated[
        str | None,
        typer.Option(
            "--out", "-o", help="Folder for the fleet's reports (default reports/fleet-TIME)."
        ),
    ] = None,
    save_samples: SamplesOpt = False,
    seed: SeedOpt = 0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary (groups, reports, ranking) as JSON.")
    ] = False,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="DIR",
            help="Finish a fleet's reports: measure their pending and failed cells on their "
            "groups' nodes, with the reports' own settings.",
        ),
    ] = None,
    cell_timeout: CellTimeoutOpt = "auto",
    no_isolation: NoIsolationOpt = False,
    variant_precision: VariantPrecisionOpt = None,  # precision options (issue 25)
    accuracy_samples: AccuracySamplesOpt = None,
    accuracy: AccuracyOpt = None,
) -> None:
    """Sweep a model on every machine type of a Ray cluster and rank them by cost per million."""
    timeout_s = parse.parse_duration_s(placement_timeout, "--placement-timeout")
    if resume is not None:
        address = ray_address if ray_address != "auto" else None

        def start(progress_for, abort):
            return resume_fleet(
                resume,
                address,
                timeout_s,
                progress_for,
                abort,
                isolate=not no_isolation,
                cell_timeout_s=cell_timeout_s(cell_timeout),
            )
    else:
        groups = parse_groups(group)
        timing = (warmup, duration, window, min_duration, max_duration, stability, confidence)
        opts = SweepOptions(
            model=model,
            device=device,
            batch=batch,
            concurrency=concurrency,
            threads=threads,
            instances=instances,
            load=load,
            rate=rate,
            arrival=arrival,
            measure=MeasureOptions(*timing, save_samples, seed),
            search=search,
            latency_target=latency_target,
            shape=tuple(shape or ()),
            out=fleet_out_dir(out),
            cell_timeout=cell_timeout,
            isolate=not no_isolation,
            precision=variant_precision,
            accuracy_samples=accuracy_samples,
            accuracy=tuple(accuracy or ()),
        )
        req = FleetRequest(
            sweep=build_request(opts),
            groups=groups,
            address=ray_address,
            group_label=group_label,
            placement_timeout_s=timeout_s,
            device=device,
        )

        def start(progress_for, abort):
            return run_fleet(req, progress_for, abort)

    result = _run(start, as_json)
    if as_json:
        sys.stdout.write(json.dumps(fleet_json(result), indent=1) + "\n")
    else:
        render_fleet(result, stdout_console())
    fleet_gate(result)
