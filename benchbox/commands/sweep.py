"""`benchbox sweep` and `benchbox run`: measure a grid of cells, or one cell in depth.

The options come from `commands/options.py`; the stages are imported when a command runs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import typer

from benchbox.commands.options import (
    ACCURACY,
    CELL,
    DATA,
    DYNAMIC_BATCHING,
    GRID,
    INPUT,
    ISOLATION,
    JSON,
    LATENCY_TARGET,
    OUT,
    PROFILE,
    RAY_GENERATORS,
    REMOTE,
    SAVE_SAMPLES,
    SEARCH,
    SEED,
    SHAPE,
    TIMING,
    TRIALS,
    VARIANTS,
    arg,
    command,
    data_options,
    measure_options,
    opt,
    print_json,
    ray_options,
    remote_options,
    trace_options,
    trial_options,
    variant_options,
)
from benchbox.options import DEPTH, MeasureOptions

if TYPE_CHECKING:
    from benchbox.schema import Report
    from benchbox.sweep import SweepRequest
    from benchbox.sweep.request import CellOptions, ResumeRequest, SweepOptions

app = typer.Typer()

MODEL = arg("model", str | None, None, "ONNX file or zoo model name (default: the demo model).")
RUN_MODEL = arg("model", str | None, None, "ONNX file or zoo model name (optional with --target).")
RESUME = opt(
    "resume",
    str | None,
    None,
    "--resume",
    metavar="REPORT",
    help="Finish a saved report: measure its pending and failed cells with the report's own "
    "settings (the grid and measuring options given here are not used).",
)

# The options `sweep` and `fleet` share: given the same flags, their reports record the same
# settings (tests/test_options.py).
SWEEP_SETS = (GRID, TIMING, SEARCH, LATENCY_TARGET, SHAPE, SAVE_SAMPLES, SEED, TRIALS, VARIANTS)
SWEEP_SETS += (ACCURACY, DATA)


def depth_defaults() -> dict[str, Any]:
    """`run`'s own defaults: the measuring options where DEPTH differs from the grid's."""
    grid = MeasureOptions()
    return {
        f.name: getattr(DEPTH, f.name)
        for f in dataclasses.fields(MeasureOptions)
        if getattr(DEPTH, f.name) != getattr(grid, f.name)
    }


def given_fields(o: SimpleNamespace) -> dict[str, Any]:
    """The fields SweepOptions and CellOptions share, from the values of their option sets."""
    return dict(
        model=o.model,
        device=o.device,
        batch=o.batch,
        concurrency=o.concurrency,
        threads=o.threads,
        instances=o.instances,
        load=o.load,
        rate=o.rate,
        arrival=o.arrival,
        measure=measure_options(o),
        shape=tuple(o.shape or ()),
        trials=trial_options(o),
        data=data_options(o),
        variants=variant_options(o),
        trace=trace_options(o),
    )


def sweep_options(o: SimpleNamespace, **overrides: Any) -> SweepOptions:
    """SweepOptions from the values of SWEEP_SETS (and, for `sweep`, its own)."""
    from benchbox.sweep.request import SweepOptions

    fields = given_fields(o) | dict(search=o.search, latency_target=o.latency_target)
    return SweepOptions(**(fields | overrides))


def cell_options(o: SimpleNamespace, **overrides: Any) -> CellOptions:
    """CellOptions from the values of the one-cell sets (`run`, and `ab`'s baseline)."""
    from benchbox.sweep.request import CellOptions

    return CellOptions(**(given_fields(o) | dict(out=o.out) | overrides))


def measure_with_progress(req: SweepRequest | ResumeRequest, as_json: bool) -> tuple[Report, Path]:
    """Measure with a progress bar on stderr; Ctrl-C or SIGTERM saves the report and exits 130."""
    import threading

    from rich.console import Console

    from benchbox.report.progress import BarProgress
    from benchbox.report.render import render_report, stdout_console
    from benchbox.store import load_report
    from benchbox.sweep import NoCellMeasured, resume_sweep, run_sweep, stop_on_signals
    from benchbox.sweep.request import ResumeRequest
    from benchbox.sweep.search import SearchKind

    console = Console(stderr=True)
    bar = None
    if console.is_terminal or not as_json:
        if isinstance(req, ResumeRequest):
            stored = load_report(req.report_file).settings
            settings, search = (stored.measure, stored.search) if stored else (None, None)
        else:
            settings, search = req.settings, req.search
        bar = BarProgress(console, settings, adaptive=search == SearchKind.ADAPTIVE)
    try:
        with stop_on_signals(threading.Event()) as abort:
            if isinstance(req, ResumeRequest):  # the report's settings say what to measure
                return resume_sweep(
                    req.report_file,
                    req.model_path,
                    progress=bar,
                    abort=abort,
                    isolate=req.isolate,
                    cell_timeout_s=req.cell_timeout_s,
                    headers=req.headers,
                )
            run = run_sweep
            if req.target is not None and req.target.ray is not None:  # generators on Ray
                from benchbox.sweep.fleet.ray_worker import run_ray_sweep as run
            return run(req, progress=bar, abort=abort)
    except NoCellMeasured as exc:
        if as_json:  # --json always prints the report, also when nothing could be measured
            print_json(exc.report)
        else:  # the model header (with the dims that were defaulted) and why each cell failed
            render_report(exc.report, stdout_console())
        raise
    finally:
        if bar is not None:
            bar.close()


def show_sweep(report: Report, saved: Path, as_json: bool) -> None:
    """Print the finished sweep; exit 1 when a latency target was set and nothing meets it."""
    from rich.markup import escape

    from benchbox.errors import GateFailed
    from benchbox.report.render import render_report, stdout_console

    if as_json:
        print_json(report)
    else:
        console = stdout_console()
        render_report(report, console)
        console.print(f"report saved: [bold]{escape(str(saved))}[/]", highlight=False)
    rec = report.recommendation
    if rec is not None and rec.winner is None:
        raise GateFailed(
            f"no configuration meets {rec.target} (report saved in {saved})",
            ("" if as_json else "see the closest cell above; ")
            + "relax the target, or measure other devices or configs",
        )


SWEEP_ONLY = (PROFILE, INPUT, OUT, JSON, RESUME, DYNAMIC_BATCHING, ISOLATION, REMOTE)
SWEEP_ONLY += (RAY_GENERATORS,)
# A sweep's generators run on this machine unless --ray names a cluster (fleet's default: auto).
SWEEP_DEFAULTS = {"ray_address": None}


@command(app, MODEL, *SWEEP_SETS, *SWEEP_ONLY, defaults=SWEEP_DEFAULTS)
def sweep(o: SimpleNamespace) -> None:
    """Sweep a model across devices, batch sizes, threads, instances and load levels."""
    from benchbox.sweep.request import build_request, build_resume

    if o.resume is not None:  # the report's settings, not the options, say what to measure
        req = build_resume(
            o.resume, o.model, not o.no_isolation, o.cell_timeout, tuple(o.header or ())
        )
    else:
        opts = sweep_options(
            o,
            profile=o.profile,
            inputs=tuple(o.input_value or ()),
            out=o.out,
            dynamic_batching=o.dynamic_batching,
            cell_timeout=o.cell_timeout,
            isolate=not o.no_isolation,
            remote=remote_options(o),
            ray=ray_options(o) if o.ray_address is not None else None,
        )
        req = build_request(opts)
    report, saved = measure_with_progress(req, o.as_json)
    show_sweep(report, saved, o.as_json)


RUN_SETS = (RUN_MODEL, CELL, TIMING, PROFILE, SHAPE, INPUT, DATA, OUT, SAVE_SAMPLES, SEED, TRIALS)
RUN_SETS += (JSON, DYNAMIC_BATCHING, LATENCY_TARGET, ISOLATION, REMOTE, VARIANTS, ACCURACY)
RUN_SETS += (RAY_GENERATORS,)


@command(app, *RUN_SETS, defaults=depth_defaults() | SWEEP_DEFAULTS)
def run(o: SimpleNamespace) -> None:
    """Measure one cell in depth: every percentile, the histogram, resources."""
    from rich.markup import escape

    from benchbox.report.render import render_cell_detail, stdout_console
    from benchbox.sweep.request import build_cell_request

    opts = cell_options(
        o,
        inputs=tuple(o.input_value or ()),
        profile=o.profile,
        dynamic_batching=o.dynamic_batching,
        latency_target=o.latency_target,
        cell_timeout=o.cell_timeout,
        isolate=not o.no_isolation,
        remote=remote_options(o),
        ray=ray_options(o) if o.ray_address is not None else None,
    )
    report, saved = measure_with_progress(build_cell_request(opts), o.as_json)
    if o.as_json:
        print_json(report)
        return
    console = stdout_console()
    for cell in report.cells:
        render_cell_detail(report, cell, console)
    console.print(f"report saved: [bold]{escape(str(saved))}[/]", highlight=False)
