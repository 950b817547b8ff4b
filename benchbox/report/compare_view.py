"""Rendering a comparison of reports: machines by cost, versions cell by cell, and the gate."""

from __future__ import annotations

import dataclasses

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from benchbox.compare import CellDelta, MachineComparison, VersionComparison, regressions
from benchbox.errors import GateFailed
from benchbox.format import (
    ci_label,
    common_confidence,
    fmt_ms,
    fmt_ms_group,
    fmt_ms_range,
    fmt_number,
    percentile_label,
)

VERDICT_STYLE = {"faster": "green", "slower": "bold red", "not significant": "dim"}


def render_warnings(result: MachineComparison | VersionComparison, console: Console) -> None:
    """What differs between the reports' machines, one warning a line (stderr, even with --json)."""
    for line in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(line)}")
    for line in result.noise_warnings if isinstance(result, VersionComparison) else ():
        console.print(f"[yellow]warning:[/] {escape(line)}")


def render_comparison(result: MachineComparison | VersionComparison, console: Console) -> None:
    """The comparison's table and summary."""
    if isinstance(result, MachineComparison):
        render_machines(result, console)
    else:
        render_versions(result, console)


def comparison_json(result: MachineComparison | VersionComparison) -> dict:
    """The comparison as plain JSON-ready data (`--json`)."""
    data = dataclasses.asdict(result)
    if isinstance(result, MachineComparison) and result.target is not None:
        data["target"] = str(result.target)
    return data


def regression_gate(result: VersionComparison, text: str) -> None:
    """GateFailed naming the cells slower than the threshold (`text` as given), and new failures."""
    slower = regressions(result, result.threshold)
    problems = [
        f"{d.cell_id} ({d.candidate}: {fmt_number(d.ratio)}x, CI {fmt_number(d.ratio_lo)}–"
        f"{fmt_number(d.ratio_hi)})"
        for d in slower
    ]
    problems += list(result.newly_failed)
    if problems:
        shown = "; ".join(problems[:5]) + (
            f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        raise GateFailed(
            f"{len(problems)} cell(s) regressed by more than {text}: {shown}",
            "look at the table above; re-run both on a quiet machine if the change is unexpected",
        )


def _ms_ci(value: float | None, ci: tuple[float, float] | None, prefix: str | None) -> str:
    if value is None:
        return "—"
    if ci:
        point, lo, hi = fmt_ms_group(value, ci[0], ci[1])
        text = f"{point} [dim]({lo} … {hi})[/]"
    else:
        text = fmt_ms(value)
    if prefix:
        text = f"{percentile_label(prefix)} {text}"
    return text


def render_machines(result: MachineComparison, console: Console) -> None:
    """Each machine's best configuration, cheapest first, and how much cheaper it is."""
    pname = percentile_label(result.target.percentile) if result.target else "latency"
    title = f"machines, best configuration under {result.target}" if result.target else "machines"
    table = Table(title=title, header_style="bold")
    table.add_column("report")
    table.add_column("host")
    table.add_column("profile")
    table.add_column("best configuration")
    level = ci_label(common_confidence(row.confidence for row in result.rows))
    table.add_column(f"{pname} ({level})", justify="right")
    table.add_column("inf/s", justify="right")
    table.add_column("USD / million", justify="right")
    table.add_column("J / inference", justify="right")
    has_accuracy = any(row.accuracy for row in result.rows)
    if has_accuracy:
        table.add_column("accuracy vs fp32", justify="right")
    for row in result.rows:
        profile = escape(row.profile) if row.profile else "[dim]no profile[/]"
        if row.profile_from_flag:
            profile += " [dim](--profile)[/]"
        cell = row.cell_id or f"[red]{escape(row.how)}[/]"
        if row.cell_id and result.target is None:
            cell += f"\n[dim]{escape(row.how)}[/]"
        usd = fmt_number(row.usd_per_million) if row.usd_per_million is not None else "—"
        if row.cheapest:
            usd = f"[bold green]{usd} cheapest[/]"
        values = [
            escape(row.label),
            f"{escape(row.hostname)}\n[dim]{escape(row.hardware)}[/]",
            profile,
            cell,
            _ms_ci(row.latency_ms, row.latency_ci_ms, None if result.target else row.percentile),
            fmt_number(row.throughput_ips) if row.throughput_ips is not None else "—",
            usd,
            fmt_number(row.energy_j_per_inference)
            if row.energy_j_per_inference is not None
            else "—",
        ]
        if has_accuracy:
            values.append(escape(row.accuracy or "—"))
        table.add_row(*values, style="on grey15" if row.cheapest else None)
    console.print(table)
    for row in result.rows:
        if row.pricing_note is not None:
            console.print(f"[yellow]! {escape(row.label)}: {escape(row.pricing_note)}[/]")
    priced = [r for r in result.rows if r.usd_per_million is not None]
    if len(priced) >= 2:
        best, nxt = priced[0], priced[1]
        console.print(
            f"[bold]{escape(best.hostname)}[/] ({escape(best.label)}) is "
            f"{nxt.usd_per_million / best.usd_per_million:.2f}"
            f" times cheaper per million inferences than [bold]{escape(nxt.hostname)}[/] "
            f"({escape(nxt.label)})"
        )
    if not priced:
        console.print("[dim]no report is priced; pass --profile NAME to price them[/]")


def _verdict_text(d: CellDelta) -> str:
    """The family's call, styled; the cell's own test beside it when Holm overruled it."""
    style = VERDICT_STYLE.get(d.verdict, "")
    text = f"[{style}]{d.verdict}[/]" if style else d.verdict
    if d.own_verdict and d.own_verdict != d.verdict:
        text += f" [dim]({d.own_verdict} alone)[/]"
    return text


def render_versions(result: VersionComparison, console: Console) -> None:
    """Every matched cell's latency before and after, its ratio with a CI, and the verdict."""
    level = ci_label(result.confidence)
    title = escape(f"{' / '.join(result.candidates)} against {result.baseline}")
    table = Table(title=title, header_style="bold")
    table.add_column("cell")
    if len(result.candidates) > 1:
        table.add_column("candidate")
    table.add_column("p50", justify="right")
    table.add_column("p99", justify="right")
    table.add_column(f"median ratio ({level})", justify="right")
    table.add_column("trials", justify="right")
    table.add_column(f"verdict (Holm, {result.confidence:.0%})")
    has_accuracy = any(d.accuracy for d in result.cells)
    if has_accuracy:
        table.add_column("accuracy vs fp32")
    for d in result.cells:
        cells = [d.cell_id]
        if len(result.candidates) > 1:
            cells.append(escape(d.candidate))
        cells += [
            fmt_ms_range(d.baseline_p50_ms, d.candidate_p50_ms, " → "),
            fmt_ms_range(d.baseline_p99_ms, d.candidate_p99_ms, " → "),
            f"{d.ratio:.3f} ({d.ratio_lo:.3f}–{d.ratio_hi:.3f})",
            f"{d.baseline_trials} / {d.candidate_trials}",
            _verdict_text(d),
        ]
        if has_accuracy:
            cells.append(escape(d.accuracy or "—"))
        table.add_row(*cells)
    console.print(table)
    for d in result.cells:  # hyperfine's closing line, for each cell
        line = f"{d.cell_id}: {escape(d.summary)}"
        if d.level != "between-trial":
            line += " [within one run]"
        console.print(line if d.verdict != "not significant" else f"[dim]{line}[/]")
    slower = sum(d.verdict == "slower" for d in result.cells)
    faster = sum(d.verdict == "faster" for d in result.cells)
    pooled = sum(d.pooled for d in result.cells)
    cis = (
        f"{pooled} of the CIs pool each report's trial-to-trial noise over its cells"
        if pooled
        else "each ratio's CI is the cell's own"
    )
    console.print(
        f"{len(result.cells)} cells matched: {slower} slower, {faster} faster, "
        f"{len(result.cells) - slower - faster} not significant after Holm over the "
        f"{len(result.cells)} cells (ratio = candidate / baseline median latency; above 1 is "
        f"slower; {cis})"
    )
    if result.verdict:
        console.print(escape(result.verdict), style="bold", highlight=False)
    if result.threshold > 0:
        console.print(f"[dim]changes under {result.threshold * 100:g}% count as not significant[/]")
    for line in result.newly_failed:
        console.print(f"[red]{escape(line)}[/]")
    if result.unmatched:
        console.print(
            f"[dim]{len(result.unmatched)} cells only in one report: "
            + ", ".join(result.unmatched[:6])
            + (" …" if len(result.unmatched) > 6 else "")
            + "[/]"
        )
