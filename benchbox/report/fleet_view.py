"""Rendering a fleet: each group's outcome and report, then the machines ranking."""

from __future__ import annotations

import dataclasses

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from benchbox.report.compare_view import comparison_json, render_machines
from benchbox.sweep.fleet import FleetResult

STATUS_STYLE = {"done": "green", "incomplete": "yellow", "failed": "bold red"}


def fleet_json(result: FleetResult) -> dict:
    """The fleet's summary as plain JSON-ready data (`--json`): groups, report files, ranking."""
    return {
        "out_dir": result.out_dir,
        "manifest": result.manifest,
        "groups": [dataclasses.asdict(g) for g in result.groups],
        "ranking": comparison_json(result.ranking) if result.ranking is not None else None,
    }


def render_fleet(result: FleetResult, console: Console) -> None:
    """A table of the groups (status, nodes, cells, report file), then the ranking."""
    table = Table(title=f"fleet in {escape(result.out_dir)}", header_style="bold")
    for name in ("group", "profile", "nodes", "cells measured", "status", "report"):
        table.add_column(name)
    for g in result.groups:
        style = STATUS_STYLE.get(g.status, "")
        status = f"[{style}]{g.status}[/]" if style else g.status
        if g.error:
            status += f"\n[dim]{escape(g.error)}[/]"
        table.add_row(
            escape(g.name),
            escape(g.profile),
            ", ".join(n[:12] for n in g.nodes) or "—",
            f"{g.cells_measured}/{g.cells_total}",
            status,
            escape(g.report or "—"),
        )
    console.print(table)
    if result.ranking is not None:
        render_machines(result.ranking, console)
