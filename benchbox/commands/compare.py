"""`benchbox compare`: one model's reports across machines (cheapest first) or versions.

The comparison stage and its view are imported when the command runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from benchbox.commands.options import JsonOption, choice_option
from benchbox.kinds import CompareMode

app = typer.Typer()


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
        CompareMode,
        choice_option(
            CompareMode,
            "--mode",
            "comparison mode",
            help="auto (same host: versions, else machines), machines or versions.",
        ),
    ] = CompareMode.AUTO,
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
    as_json: JsonOption = False,
) -> None:
    """Compare reports of one model: across machines by cost, or versions cell by cell."""
    from rich.console import Console

    from benchbox.compare import VersionComparison, compare_files
    from benchbox.report.compare_view import (
        comparison_json,
        regression_gate,
        render_comparison,
        render_warnings,
    )
    from benchbox.report.render import stdout_console

    result = compare_files(
        reports,
        latency_target,
        profile,
        mode,
        fail_on_regression,
        confidence,
        allow_different_models=allow_different_models,
    )
    render_warnings(result, Console(stderr=True, highlight=False, soft_wrap=True))
    if as_json:
        sys.stdout.write(json.dumps(comparison_json(result), indent=1) + "\n")
    else:
        render_comparison(result, stdout_console())
    if fail_on_regression is not None and isinstance(result, VersionComparison):
        regression_gate(result, fail_on_regression)
