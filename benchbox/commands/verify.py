"""`benchbox verify REPORT --target URL`: check a report's recommendation on the real server."""

from __future__ import annotations

import json
import sys
import threading
from typing import Annotated

import typer

from benchbox import parse
from benchbox.errors import GateFailed, Interrupted
from benchbox.measure.cell import Aborted, MeasureSettings
from benchbox.remote import session as remote
from benchbox.remote.target import parse_headers
from benchbox.report import verify_view
from benchbox.report.store import load_report
from benchbox.sweep import stop_on_signals
from benchbox.verify import verify


def register(app: typer.Typer) -> None:
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
        """Drive the server with a report's cell and compare the measured latency with the
        prediction; exit 0 when the server meets the target, 1 when it does not."""
        rep = load_report(report)
        wanted = parse.parse_target(latency_target) if latency_target else None
        settings = MeasureSettings(
            warmup_s=parse.parse_duration_s(warmup, "--warmup"),
            duration_s=parse.parse_duration_s(duration, "--duration"),
            seed=seed,
        )
        session = remote.connect(
            target, parse_headers(header), parse.parse_shapes(shape), model_path=model
        )
        try:
            with stop_on_signals(threading.Event()) as abort:
                v = verify(rep, session, wanted, cell, settings, max(1, generators), abort)
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
