"""Rendering a recommendation with rich: the winner, runners-up, Pareto front, rejects and fleet."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from benchbox.format import (
    MISSING,
    ci_label,
    common_confidence,
    config_label,
    fmt_mib,
    fmt_ms,
    fmt_ms_given,
    fmt_ms_range,
    fmt_number,
    load_label,
    percentile_label,
    reason_line,
)
from benchbox.pricing import mismatch_text
from benchbox.schema import Cell, Recommendation, Report

_OBJECTIVE_WORDS = {
    "cost": "lowest cost per million inferences",
    "throughput": "highest throughput",
    "energy": "lowest energy per inference",
}


def render_recommendation(report: Report, rec: Recommendation, console: Console) -> None:
    """Print the recommendation: what won and why, what came close, and why the rest lost."""
    cells = {c.id: c for c in report.cells}
    label = percentile_label(rec.percentile)
    head = Text("Recommendation", style="bold")
    head.append(
        f"  {label} ≤ {fmt_ms_given(rec.target_ms)}, {_OBJECTIVE_WORDS.get(rec.objective, '')}"
    )
    if rec.profile:
        head.append(f", profile {rec.profile}", style="dim")
    console.print(head)
    other = mismatch_text(report)
    if other is not None and rec.profile:
        console.print(Text(f"! {other}", style="yellow"))

    winner = cells.get(rec.winner) if rec.winner else None
    if winner is None:
        console.print(
            Text(f"✗ No configuration meets {label} ≤ {fmt_ms_given(rec.target_ms)}.", "bold red")
        )
    else:
        console.print(Text("✓ ", "bold green") + Text(winner.id, "bold"))
        console.print(_winner_table(winner, rec.percentile))
    if rec.note:
        console.print(Text(rec.note, style="yellow" if winner is None else ""))
    if rec.point_estimate_used:
        shown = ", ".join(rec.point_estimate_used[:4])
        more = len(rec.point_estimate_used) - 4
        if more > 0:
            shown += f" and {more} more"
        console.print(
            Text(
                f"! {len(rec.point_estimate_used)} cell(s) had too few samples for a {label} "
                f"confidence bound, so the point estimate was held to the target: {shown}. "
                "Measure longer for a bound.",
                style="yellow",
            )
        )

    if rec.fleet is not None:
        f = rec.fleet
        line = (
            f"Fleet: {f.replicas} replica{'s' if f.replicas != 1 else ''} for {f.qps:g} requests/s "
            f"at {f.headroom:.0%} of the measured throughput"
        )
        if f.usd_per_hour is not None:
            line += f", ${f.usd_per_hour:,.2f} per hour"
        console.print(line)

    if rec.runners_up:
        console.print(
            _cells_table(
                "Runners-up", [cells[i] for i in rec.runners_up if i in cells], rec.percentile
            )
        )
    if rec.pareto:
        console.print(
            _cells_table(
                f"Pareto front: {label} against {'cost' if _priced(report) else 'throughput'}",
                [cells[i] for i in rec.pareto if i in cells],
                rec.percentile,
            )
        )
    if rec.rejected:
        table = Table(title="Rejected", title_justify="left", show_edge=False)
        table.add_column("cell", no_wrap=True)
        table.add_column("why")
        for cid, why in rec.rejected.items():
            table.add_row(cid, Text(reason_line(why)))
        console.print(table)


def _priced(report: Report) -> bool:
    return any(c.result and c.result.cost_usd_per_million is not None for c in report.cells)


def _bound_text(cell: Cell, key: str) -> str:
    r = cell.result
    value = getattr(r.latency_ms, key)
    ci = (r.latency_ci_ms or {}).get(key)
    if ci:
        return f"{fmt_ms(value)} ({ci_label(r.confidence)} {fmt_ms_range(ci[0], ci[1])})"
    return f"{fmt_ms(value)} (no CI: point estimate)"


def _winner_table(cell: Cell, key: str) -> Table:
    r = cell.result
    table = Table(show_header=False, show_edge=False, box=None, padding=(0, 2))
    table.add_column(style="dim")
    table.add_column()
    table.add_row("config", f"{config_label(cell)}, {load_label(cell)}")
    table.add_row(percentile_label(key), _bound_text(cell, key))
    table.add_row("throughput", f"{fmt_number(r.throughput_ips, 1, MISSING)} inferences/s")
    if r.cost_usd_per_million is not None:
        table.add_row("cost", f"${r.cost_usd_per_million:,.4g} per million inferences")
    if r.energy_j_per_inference is not None:
        source = f" ({r.power_source})" if r.power_source else ""
        table.add_row("energy", f"{r.energy_j_per_inference * 1000:,.4g} mJ per inference{source}")
    if r.rss_mb is not None:
        text = f"{fmt_mib(r.rss_mb)} RSS measuring"
        if r.session_rss_mb is not None:
            text += f", {fmt_mib(r.session_rss_mb)} creating sessions"
        table.add_row("memory", text)
    return table


def _cells_table(title: str, cells: list[Cell], key: str) -> Table:
    label = percentile_label(key)
    cells = [c for c in cells if c.result is not None]
    priced = any(c.result.cost_usd_per_million is not None for c in cells)
    powered = any(c.result.energy_j_per_inference is not None for c in cells)
    table = Table(title=title, title_justify="left", show_edge=False)
    table.add_column("cell", no_wrap=True)
    level = ci_label(common_confidence(c.result.confidence for c in cells))
    table.add_column(f"{label} ({level} upper)", justify="right")
    table.add_column("inf/s", justify="right")
    if priced:
        table.add_column("$ / million", justify="right")
    if powered:
        table.add_column("mJ / inf", justify="right")
    for c in cells:
        r = c.result
        ci = (r.latency_ci_ms or {}).get(key)
        lat = fmt_ms(ci[1]) if ci else f"{fmt_ms(getattr(r.latency_ms, key))} (point)"
        row = [c.id, lat, fmt_number(r.throughput_ips, 1, MISSING)]
        if priced:
            cost = r.cost_usd_per_million
            row.append("—" if cost is None else f"{cost:,.4g}")
        if powered:
            energy = r.energy_j_per_inference
            row.append("—" if energy is None else f"{energy * 1000:,.4g}")
        table.add_row(*row)
    return table
