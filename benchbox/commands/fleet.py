"""`benchbox fleet`: one sweep per node group of a Ray cluster, ranked by cost per million."""

from __future__ import annotations

from types import SimpleNamespace

import typer

from benchbox.commands.options import (
    GROUP_LABEL,
    ISOLATION,
    PLACEMENT_TIMEOUT,
    RAY_ADDRESS,
    arg,
    command,
    opt,
    print_json,
)
from benchbox.commands.sweep import SWEEP_SETS, sweep_options

app = typer.Typer()


FLEET_SETS = (
    arg("model", str | None, None, "ONNX file or zoo model name (default: the demo model)."),
    RAY_ADDRESS,
    opt(
        "group",
        list[str] | None,
        None,
        "--group",
        metavar="NAME=PROFILE",
        help="A node group (the nodes whose --group-label is NAME) and the price profile of its "
        "machine type; repeat for each group.",
    ),
    GROUP_LABEL,
    PLACEMENT_TIMEOUT,
    *SWEEP_SETS,
    opt(
        "out",
        str | None,
        None,
        "--out",
        "-o",
        help="Folder for the fleet's reports (default reports/fleet-TIME).",
    ),
    opt(
        "as_json",
        bool,
        False,
        "--json",
        help="Print the summary (groups, reports, ranking) as JSON.",
    ),
    opt(
        "resume",
        str | None,
        None,
        "--resume",
        metavar="DIR",
        help="Finish a fleet's reports: measure their pending and failed cells on their groups' "
        "nodes, with the reports' own settings.",
    ),
    ISOLATION,
)


def run_with_bars(start, as_json: bool):
    """Run the fleet with one progress line per group on stderr; Ctrl-C cancels the nodes'
    work, saves what came back and exits 130."""
    import threading

    from rich.console import Console

    from benchbox.report.progress import GroupBar, fleet_bar
    from benchbox.sweep import stop_on_signals

    console = Console(stderr=True)
    bar = fleet_bar(console, disable=as_json and not console.is_terminal)
    try:
        with stop_on_signals(threading.Event()) as abort:
            return start(lambda group: GroupBar(bar, group), abort)
    finally:
        if bar.live.is_started:  # stopping a bar never started prints a blank line
            bar.stop()


@command(app, *FLEET_SETS)
def fleet(o: SimpleNamespace) -> None:
    """Sweep a model on every machine type of a Ray cluster and rank them by cost per million."""
    from benchbox import parse
    from benchbox.report.fleet_view import fleet_json, render_fleet
    from benchbox.report.render import stdout_console
    from benchbox.sweep.fleet import (
        FleetRequest,
        fleet_gate,
        fleet_out_dir,
        parse_groups,
        resume_fleet,
        run_fleet,
    )
    from benchbox.sweep.request import build_request, cell_timeout_s

    timeout_s = parse.parse_duration_s(o.placement_timeout, "--placement-timeout")
    if o.resume is not None:
        address = o.ray_address if o.ray_address != "auto" else None

        def start(progress_for, abort):
            return resume_fleet(
                o.resume,
                address,
                timeout_s,
                progress_for,
                abort,
                isolate=not o.no_isolation,
                cell_timeout_s=cell_timeout_s(o.cell_timeout),
            )
    else:
        groups = parse_groups(o.group)
        opts = sweep_options(
            o,
            out=fleet_out_dir(o.out),
            cell_timeout=o.cell_timeout,
            isolate=not o.no_isolation,
        )
        sweep = build_request(opts)
        req = FleetRequest(
            sweep=sweep,
            trials=sweep.trials,
            groups=groups,
            address=o.ray_address,
            group_label=o.group_label,
            placement_timeout_s=timeout_s,
            device=o.device or "cpu",
        )

        def start(progress_for, abort):
            return run_fleet(req, progress_for, abort)

    result = run_with_bars(start, o.as_json)
    if o.as_json:
        print_json(fleet_json(result))
    else:
        render_fleet(result, stdout_console())
    fleet_gate(result)
