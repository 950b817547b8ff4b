"""`benchbox ab BASELINE CANDIDATE`: two models in randomized interleaved trials of one cell."""

from __future__ import annotations

from types import SimpleNamespace

import typer

from benchbox.commands.options import (
    CELL,
    DATA,
    JSON,
    NO_ISOLATION,
    OUT,
    SEED,
    SHAPE,
    TIMING,
    TRIALS,
    VARIANTS,
    arg,
    command,
    opt,
    print_json,
)
from benchbox.commands.sweep import cell_options
from benchbox.options import AB_TRIALS

app = typer.Typer()

AB_SETS = (
    arg("baseline", str, ..., "The baseline ONNX file or zoo model."),
    arg("candidate", str, ..., "The candidate ONNX file or zoo model."),
    CELL,
    TIMING,
    SHAPE,
    OUT,
    SEED,
    TRIALS,
    opt(
        "fail_on_regression",
        str | None,
        None,
        "--fail-on-regression",
        help="Exit 1 when the candidate is slower (p50, p99 or throughput) by more than this, "
        "with confidence, e.g. 5%.",
    ),
    NO_ISOLATION,
    JSON,
    # precision options (issue 25): P for both sides, or P1,P2 for baseline and candidate
    VARIANTS,
    DATA,
)


@command(app, *AB_SETS, name="ab", defaults={"trial_precision": AB_TRIALS.precision})
def ab(o: SimpleNamespace) -> None:
    """Measure two models in randomized interleaved trials of one cell; print the ratios."""
    import threading

    from rich.console import Console

    from benchbox.errors import GateFailed
    from benchbox.report.ab_view import as_plain, show
    from benchbox.report.render import stdout_console
    from benchbox.sweep import stop_on_signals, worker_factory
    from benchbox.sweep.ab import run_ab
    from benchbox.sweep.request import AbOptions, build_ab_request

    cell = cell_options(SimpleNamespace(**vars(o), model=o.baseline))
    req = build_ab_request(AbOptions(cell, o.candidate, o.fail_on_regression))
    err = Console(stderr=True, highlight=False)
    with stop_on_signals(threading.Event()) as abort, err.status("measuring") as status:
        result = run_ab(
            req,
            worker_factory(not o.no_isolation),
            abort,
            on_trial=lambda side, k: status.update(f"{side}: trial {k}"),
        )
    if o.as_json:
        print_json(as_plain(result))
    else:
        show(result, stdout_console())
    if o.fail_on_regression is not None and result.regressed:
        raise GateFailed(
            f"the candidate regressed by more than {o.fail_on_regression}: "
            + ", ".join(
                f"{k} {result.figures[k].ratio:.3f}x (CI {result.figures[k].lo:.3f}–"
                f"{result.figures[k].hi:.3f})"
                for k in result.regressed
            ),
            "the reports of both are saved: " + ", ".join(result.reports),
        )
