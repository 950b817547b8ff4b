"""`benchbox compare`: one model's reports across machines (cheapest first) or versions."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from benchbox import cost, parse
from benchbox.errors import BadInput, GateFailed
from benchbox.report import store
from benchbox.report.compare import (
    MachineComparison,
    VersionComparison,
    compare_reports,
    regressions,
)
from benchbox.report.render import stdout_console
from benchbox.report.tabular import fmt_number

MODES = ("auto", "machines", "versions")
VERDICT_STYLE = {"faster": "green", "slower": "bold red", "not significant": "dim"}


def register(app: typer.Typer) -> None:
    """Add `compare`."""
    if any(c.name == "compare" for c in app.registered_commands):
        return  # register_all may run more than once in one process (tests)

    @app.command(name="compare")
    def compare_cmd(
        reports: Annotated[
            list[Path], typer.Argument(metavar="REPORT...", help="Two or more report JSON files.")
        ],
        latency_target: Annotated[
            str | None,
            typer.Option(
                "--latency-target", help="Pick each machine's best config under it, e.g. p99=20ms."
            ),
        ] = None,
        profile: Annotated[
            str | None,
            typer.Option("--profile", help="Price reports that have no profile with this one."),
        ] = None,
        mode: Annotated[
            str,
            typer.Option(
                "--mode", help="auto (same host: versions, else machines), machines or versions."
            ),
        ] = "auto",
        fail_on_regression: Annotated[
            str | None,
            typer.Option(
                "--fail-on-regression",
                help="Exit 1 when a cell is significantly slower by more than this, e.g. 5%.",
            ),
        ] = None,
        confidence: Annotated[
            float, typer.Option("--confidence", help="Confidence level of the intervals and tests.")
        ] = 0.95,
        allow_different_models: Annotated[
            bool,
            typer.Option(
                "--allow-different-models",
                help="Compare reports of different model files as versions (a new export).",
            ),
        ] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
    ) -> None:
        """Compare reports of one model: across machines by cost, or versions cell by cell."""
        if len(reports) < 2:
            raise BadInput(
                f"compare needs at least two reports, got {len(reports)}",
                "pass two or more report files, e.g. benchbox compare a.json b.json",
            )
        if mode not in MODES:
            raise BadInput(f"--mode {mode!r} is not one of {', '.join(MODES)}")
        if not 0.5 <= confidence < 1.0:
            raise BadInput(
                f"--confidence {confidence:g} must be in [0.5, 1)", "e.g. --confidence 0.95"
            )
        target = parse.parse_target(latency_target) if latency_target else None
        threshold = (
            parse.parse_percent(fail_on_regression, "fail-on-regression")
            if fail_on_regression
            else 0.0
        )
        if threshold >= 1.0:
            raise BadInput(f"--fail-on-regression {fail_on_regression!r} must be below 100%")
        prof = cost.load_profile(profile) if profile else None
        loaded = [store.load_report(p) for p in reports]
        result = compare_reports(
            loaded,
            target,
            prof,
            threshold=threshold,
            confidence=confidence,
            mode=mode,  # type: ignore[arg-type]
            labels=_labels(reports),
            allow_different_models=allow_different_models,
        )
        if fail_on_regression is not None and isinstance(result, MachineComparison):
            raise BadInput(
                "--fail-on-regression compares versions, "
                "but these reports come from different machines",
                "pass --mode versions to compare them cell by cell anyway",
            )
        err = Console(stderr=True, highlight=False, soft_wrap=True)
        for line in result.warnings:
            err.print(f"[yellow]warning:[/] {escape(line)}")
        if getattr(result, "trial_warning", None):
            err.print(f"[yellow]warning:[/] {escape(result.trial_warning)}")
        if as_json:
            sys.stdout.write(json.dumps(_plain(result), indent=1) + "\n")
        elif isinstance(result, MachineComparison):
            _print_machines(result, stdout_console())
        else:
            _print_versions(result, stdout_console())
        if fail_on_regression is not None and isinstance(result, VersionComparison):
            _gate(result, threshold, fail_on_regression)


def _labels(paths: list[Path]) -> list[str]:
    """File names, or full paths when two reports share a name."""
    names = [p.name for p in paths]
    if len(set(names)) == len(names):
        return names
    return [str(p) for p in paths]


def _plain(result: MachineComparison | VersionComparison) -> dict:
    data = dataclasses.asdict(result)
    if isinstance(result, MachineComparison) and result.target is not None:
        data["target"] = str(result.target)
    return data


def _gate(result: VersionComparison, threshold: float, text: str) -> None:
    slower = regressions(result, threshold)
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
    text = fmt_number(value)
    if prefix:
        text = f"{prefix.replace('_', '.')} {text}"
    if ci:
        text += f" [dim]({fmt_number(ci[0])}–{fmt_number(ci[1])})[/]"
    return text


def _print_machines(result: MachineComparison, console: Console) -> None:
    pname = result.target.percentile.replace("_", ".") if result.target else "latency"
    title = f"machines, best configuration under {result.target}" if result.target else "machines"
    table = Table(title=title, header_style="bold")
    table.add_column("report")
    table.add_column("host")
    table.add_column("profile")
    table.add_column("best configuration")
    table.add_column(f"{pname} ms (95% CI)", justify="right")
    table.add_column("inf/s", justify="right")
    table.add_column("USD / million", justify="right")
    table.add_column("J / inference", justify="right")
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
        table.add_row(
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
            style="on grey15" if row.cheapest else None,
        )
    console.print(table)
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


def _print_versions(result: VersionComparison, console: Console) -> None:
    level = f"{result.confidence * 100:g}%"
    title = escape(f"{' / '.join(result.candidates)} against {result.baseline}")
    table = Table(title=title, header_style="bold")
    table.add_column("cell")
    if len(result.candidates) > 1:
        table.add_column("candidate")
    table.add_column("p50 ms", justify="right")
    table.add_column("p99 ms", justify="right")
    table.add_column(f"median ratio ({level} CI)", justify="right")
    table.add_column("trials", justify="right")
    table.add_column("verdict")
    for d in result.cells:
        style = VERDICT_STYLE.get(d.verdict, "")
        cells = [d.cell_id]
        if len(result.candidates) > 1:
            cells.append(escape(d.candidate))
        cells += [
            f"{fmt_number(d.baseline_p50_ms)} → {fmt_number(d.candidate_p50_ms)}",
            f"{fmt_number(d.baseline_p99_ms)} → {fmt_number(d.candidate_p99_ms)}",
            f"{d.ratio:.3f} ({d.ratio_lo:.3f}–{d.ratio_hi:.3f})",
            f"{d.baseline_trials} / {d.candidate_trials}",
            f"[{style}]{d.verdict}[/]" if style else d.verdict,
        ]
        table.add_row(*cells)
    console.print(table)
    for d in result.cells:
        line = f"{d.cell_id}: {escape(d.summary)}" + (
            "" if d.level == "between-trial" else " [within one run]"
        )
        console.print(line if d.verdict != "not significant" else f"[dim]{line}[/]")
    slower = sum(d.verdict == "slower" for d in result.cells)
    faster = sum(d.verdict == "faster" for d in result.cells)
    console.print(
        f"{len(result.cells)} cells matched: {slower} slower, {faster} faster, "
        f"{len(result.cells) - slower - faster} not significant "
        f"(ratio = candidate / baseline median latency; above 1 is slower)"
    )
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
