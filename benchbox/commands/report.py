"""`benchbox report`: show a saved report, list a folder of them, export one.

The views and exporters are imported when a command runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from benchbox import store
from benchbox.commands.options import JsonOption, choice_option
from benchbox.kinds import TableFormat
from benchbox.schema import report_to_json

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
    from benchbox.report.render import render_report, stdout_console

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
    from benchbox.report.listing import listing_rows, render_listing
    from benchbox.report.render import stdout_console

    rows = listing_rows(folder)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
        return
    render_listing(rows, folder, stdout_console())


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
    from rich.console import Console
    from rich.markup import escape

    from benchbox.report.tabular import default_out_path, export_table

    target = out if out is not None else default_out_path(path, fmt)
    report = store.load_report(path)
    written = export_table(report, fmt, target)
    Console(stderr=True, highlight=False).print(f"wrote {escape(str(written))}")
