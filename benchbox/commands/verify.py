"""`benchbox verify REPORT --target URL`: check a report's recommendation on the real server."""

from __future__ import annotations

import json
import sys
import threading
from typing import Annotated

import typer

from benchbox.errors import GateFailed, Interrupted
from benchbox.measure.cell import Aborted
from benchbox.report import verify_view
from benchbox.sweep import stop_on_signals
from benchbox.verify import VerifyOptions, verify_options

app = typer.Typer()


@app.command("verify")
def verify_cmd(
    report: Annotated[str, typer.Argument(help="A report made in-process (benchbox sweep).")],
    target: Annotated[
        str,
        typer.Option(
            "--target",
            help="The server: http://HOST:PORT/v2/models/NAME[/versions/V] or "
            "grpc://HOST:PORT/NAME.",
        ),
    ],
    latency_target: Annotated[
        str | None,
        typer.Option(help="pNN=VALUE; default: the report's recommendation's target."),
    ] = None,
    cell: Annotated[
        str | None, typer.Option("--cell", help="The cell to verify (default: the winner).")
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option("--header", help="KEY=VALUE sent with every request (repeatable)."),
    ] = None,
    shape: Annotated[
        list[str] | None, typer.Option("--shape", help="NAME=SIZE for the server's -1 dims.")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="A local ONNX file to synthesize inputs from.")
    ] = None,
    duration: Annotated[str, typer.Option(help="How long to measure.")] = "10s",
    warmup: Annotated[str, typer.Option(help="Warm-up before measuring.")] = "2s",
    generators: Annotated[int, typer.Option(help="Load generator processes.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the inputs and the arrivals.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
) -> None:
    """Check a report's recommended cell on the real server: predicted against measured.

    Drives the server with the cell's load and compares the measured latency with the
    prediction; exit 0 when the server meets the target, 1 when it does not."""
    opts = VerifyOptions(
        report, target, latency_target, cell, tuple(header or ()), tuple(shape or ()), model,
        duration, warmup, generators, seed,
    )  # fmt: skip
    try:
        with stop_on_signals(threading.Event()) as abort:
            v, session = verify_options(opts, abort)
    except Aborted:
        raise Interrupted("verify was interrupted; nothing was measured to the end") from None
    if as_json:
        sys.stdout.write(json.dumps(verify_view.as_json(v), indent=1) + "\n")
    else:
        for line in verify_view.lines(v, session.statistics_reason):
            typer.echo(line)
    if not v.meets_target:
        raise GateFailed(
            f"the server does not meet {v.target} with cell {v.cell_id}",
            "see the measured figures above",
        )
