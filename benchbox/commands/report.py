"""`benchbox report`: show a saved report, list a folder of them, export one."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from benchbox.commands.options import JsonOption, choice_option
from benchbox.report import store
from benchbox.report.render import render_report, stdout_console
from benchbox.report.tabular import TableFormat, default_out_path, export_table, fmt_number
from benchbox.schema import Report, report_to_json

app = typer.Typer(
    name="report",
    help="Saved reports: show one, list a folder of them, export one.",
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("show")
def show(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="A report JSON file.")],
    as_json: JsonOption = False,
) -> None:
    """Show a saved report: its cells, warnings and recommendation."""
    report = store.load_report(path)
    if as_json:
        sys.stdout.write(report_to_json(report))
        return
    render_report(report, stdout_console())


@app.command("list")
def list_(
    folder: Annotated[
        Path, typer.Argument(metavar="[DIR]", help="A folder of reports.")
    ] = store.DEFAULT_DIR,
    as_json: JsonOption = False,
) -> None:
    """List the reports in a folder (default reports/), newest first."""
    if folder == store.DEFAULT_DIR and not folder.exists():
        rows = []  # no sweep has run here yet: an empty list, not an error
    else:
        rows = [summary_row(path, report) for path, report in store.iter_reports(folder)]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
        return
    console = stdout_console()
    if not rows:
        console.print(f"no reports in {escape(str(folder))}; run `benchbox sweep` to make one")
        return
    table = Table(title=f"reports in {escape(str(folder))}", header_style="bold")
    for col in ("file", "created", "host", "model", "cells ok", "best configuration"):
        table.add_column(col, justify="right" if col == "cells ok" else "left")
    for row in rows:
        best = row["best"] or "[dim]none measured[/]"
        if row["best"]:
            best = escape(row["best"]) + f" [dim]({escape(row['best_why'])})[/]"
        table.add_row(
            escape(Path(row["path"]).name),
            escape(row["created"]),
            escape(row["host"]),
            escape(row["model"]),
            f"{row['cells_ok']}/{row['cells']}",
            best,
        )
    console.print(table)


@app.command("export")
def export(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="A report JSON file.")],
    fmt: Annotated[
        TableFormat,
        choice_option(TableFormat, "--format", "export format", "-f", help="What to write."),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Where to write (default: next to the report)."),
    ] = None,
) -> None:
    """Export the cells as CSV, Parquet or a Markdown table, or the whole report as HTML."""
    target = out if out is not None else default_out_path(path, fmt)
    report = store.load_report(path)
    written = export_table(report, fmt, target)
    Console(stderr=True, highlight=False).print(f"wrote {escape(str(written))}")


def best_configuration(report: Report) -> tuple[str | None, str]:
    """The stored recommendation's winner, else the highest-throughput ok cell (id, why)."""
    rec = report.recommendation
    ids = {c.id for c in report.cells}
    if rec is not None and rec.winner in ids:
        return rec.winner, f"recommended, {rec.percentile.replace('_', '.')}≤{rec.target_ms:g}ms"
    ok = [c for c in report.cells if c.status == "ok" and c.result is not None]
    if not ok:
        return None, "no measured cell"
    best = max(ok, key=lambda c: c.result.throughput_ips)
    return best.id, f"highest throughput, {fmt_number(best.result.throughput_ips)} inf/s"


def summary_row(path: Path, report: Report) -> dict[str, Any]:
    """One line of `report list`: when, where, what, and the best configuration."""
    best, why = best_configuration(report)
    return {
        "path": str(path),
        "created": report.created,
        "host": report.host.hostname,
        "model": Path(report.model.path).name,
        "model_sha256": report.model.sha256,
        "cells": len(report.cells),
        "cells_ok": sum(c.status == "ok" for c in report.cells),
        "best": best,
        "best_why": why,
    }
