"""`benchbox verify REPORT --target URL`: check a report's recommendation on the real server."""

from __future__ import annotations

from types import SimpleNamespace

import typer

from benchbox.commands.options import (
    DATA,
    JSON,
    REMOTE,
    SEED,
    SHAPE,
    arg,
    command,
    data_options,
    opt,
    print_json,
)

app = typer.Typer()

VERIFY_SETS = (
    arg("report", str, ..., "A report made in-process (benchbox sweep)."),
    opt(
        "target",
        str,
        ...,
        "--target",
        help="The server: http://HOST:PORT/v2/models/NAME[/versions/V] or grpc://HOST:PORT/NAME.",
    ),
    opt(
        "latency_target",
        str | None,
        None,
        "--latency-target",
        help="pNN=VALUE; default: the report's recommendation's target.",
    ),
    opt("cell", str | None, None, "--cell", help="The cell to verify (default: the winner)."),
    *REMOTE[1:],  # how to reach the server: headers, generators, timeout, TLS
    SHAPE,
    opt(
        "model",
        str | None,
        None,
        "--model",
        help="A local ONNX file to synthesize inputs from.",
    ),
    opt("duration", str, "10s", "--duration", help="How long to measure."),
    opt("warmup", str, "2s", "--warmup", help="Warm-up before measuring."),
    SEED,
    DATA,  # none given: the report's own data, when it was measured on --data
    JSON,
)


@command(app, *VERIFY_SETS, name="verify")
def verify_cmd(o: SimpleNamespace) -> None:
    """Check a report's recommended cell on the real server: predicted against measured.

    Drives the server with the cell's load and compares the measured latency with the
    prediction; exit 0 when the server meets the target, 1 when it does not."""
    import threading

    from benchbox.errors import GateFailed, Interrupted
    from benchbox.measure.cell import Aborted
    from benchbox.report import verify_view
    from benchbox.sweep import stop_on_signals
    from benchbox.verify import VerifyOptions, verify_options

    opts = VerifyOptions(
        report=o.report,
        target=o.target,
        latency_target=o.latency_target,
        cell=o.cell,
        headers=tuple(o.header or ()),
        shapes=tuple(o.shape or ()),
        model=o.model,
        duration=o.duration,
        warmup=o.warmup,
        generators=o.generators,
        seed=o.seed,
        data=data_options(o),
        request_timeout=o.request_timeout,
        ca_cert=o.ca_cert,
        insecure=o.insecure,
    )
    try:
        with stop_on_signals(threading.Event()) as abort:
            v, session = verify_options(opts, abort)
    except Aborted:
        raise Interrupted("verify was interrupted; nothing was measured to the end") from None
    if o.as_json:
        print_json(verify_view.as_json(v))
    else:
        for line in verify_view.lines(v, session.statistics_reason):
            typer.echo(line)
    if not v.meets_target:
        raise GateFailed(
            f"the server does not meet {v.target} with cell {v.cell_id}",
            "see the measured figures above",
        )
