"""The reports in a folder: one summary row each (when, where, what, the best configuration)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from benchbox import store
from benchbox.format import fmt_ms_given, fmt_number, percentile_label
from benchbox.schema import Report


def listing_rows(folder: Path) -> list[dict[str, Any]]:
    """`report list`: a summary row per report in `folder`, newest first."""
    if folder == store.DEFAULT_DIR and not folder.exists():
        return []  # no sweep has run here yet: an empty list, not an error
    return [summary_row(path, report) for path, report in store.iter_reports(folder)]


def render_listing(rows: list[dict[str, Any]], folder: Path, console: Console) -> None:
    """The rows as a table (or a line saying there are none)."""
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


def best_configuration(report: Report) -> tuple[str | None, str]:
    """The stored recommendation's winner, else the highest-throughput ok cell (id, why)."""
    rec = report.recommendation
    ids = {c.id for c in report.cells}
    if rec is not None and rec.winner in ids:
        return (
            rec.winner,
            f"recommended, {percentile_label(rec.percentile)}≤{fmt_ms_given(rec.target_ms, 'ms')}",
        )
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
