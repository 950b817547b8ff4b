"""`benchbox ab BASELINE CANDIDATE`: two models in randomized interleaved trials of one cell."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import threading
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from benchbox.commands.sweep import (
    AccuracySamplesOpt,
    ArrivalOpt,
    ConfOpt,
    DeviceOpt,
    DurationOpt,
    JsonOpt,
    LoadOpt,
    MaxDurOpt,
    MaxTrialsOpt,
    MinDurOpt,
    NoIsolationOpt,
    OutOpt,
    PrecisionOpt,
    SeedOpt,
    ShapeOpt,
    StabOpt,
    TrialsOpt,
    VariantPrecisionOpt,
    WarmupOpt,
    WindowOpt,
)
from benchbox.errors import GateFailed
from benchbox.format import accuracy_label, fmt_ms
from benchbox.load import Arrival, LoadKind
from benchbox.report.render import stdout_console
from benchbox.sweep import stop_on_signals, worker_factory
from benchbox.sweep.ab import AbResult, run_ab
from benchbox.sweep.request import (
    AbOptions,
    CellOptions,
    MeasureOptions,
    TrialOptions,
    build_ab_request,
)

app = typer.Typer()
VERDICT_STYLE = {"slower": "red", "faster": "green"}


@app.command(name="ab")
def ab(
    baseline: Annotated[str, typer.Argument(help="The baseline ONNX file or zoo model.")],
    candidate: Annotated[str, typer.Argument(help="The candidate ONNX file or zoo model.")],
    device: DeviceOpt = "cpu",
    batch: Annotated[int, typer.Option("--batch", "-b", help="Batch size.")] = 1,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", help="Concurrency.")] = 1,
    threads: Annotated[int, typer.Option("--threads", "-t", help="Intra-op threads.")] = 1,
    instances: Annotated[int, typer.Option("--instances", "-i", help="Sessions.")] = 1,
    load: LoadOpt = LoadKind.CLOSED,
    rate: Annotated[float | None, typer.Option("--rate", help="Open-loop rate.")] = None,
    arrival: ArrivalOpt = Arrival.POISSON,
    duration: DurationOpt = None,
    warmup: WarmupOpt = "0.5s",
    window: WindowOpt = "0.5s",
    min_duration: MinDurOpt = "1.5s",
    max_duration: MaxDurOpt = "5s",
    stability: StabOpt = "10%",
    confidence: ConfOpt = 0.95,
    shape: ShapeOpt = None,
    out: OutOpt = "reports",
    seed: SeedOpt = 0,
    trials: TrialsOpt = "auto",
    max_trials: MaxTrialsOpt = None,
    precision: PrecisionOpt = "3%",
    fail_on_regression: Annotated[
        str | None,
        typer.Option(
            "--fail-on-regression",
            help="Exit 1 when the candidate is slower (p50, p99 or throughput) by more than "
            "this, with confidence, e.g. 5%.",
        ),
    ] = None,
    no_isolation: NoIsolationOpt = False,
    as_json: JsonOpt = False,
    # precision options (issue 25): P for both sides, or P1,P2 for baseline and candidate
    variant_precision: VariantPrecisionOpt = None,
    accuracy_samples: AccuracySamplesOpt = None,
) -> None:
    """Measure two models in randomized interleaved trials of one cell; print the ratios."""
    timing = (warmup, duration, window, min_duration, max_duration, stability, confidence)
    cell = CellOptions(
        model=baseline,
        device=device,
        batch=batch,
        concurrency=concurrency,
        threads=threads,
        instances=instances,
        load=load,
        rate=rate,
        arrival=arrival,
        measure=MeasureOptions(*timing, False, seed),
        shape=tuple(shape or ()),
        out=out,
        trials=TrialOptions(trials, max_trials, precision),
        precision=variant_precision,
        accuracy_samples=accuracy_samples,
    )
    req = build_ab_request(AbOptions(cell, candidate, fail_on_regression))
    err = Console(stderr=True, highlight=False)
    with stop_on_signals(threading.Event()) as abort, err.status("measuring") as status:
        result = run_ab(
            req,
            worker_factory(not no_isolation),
            abort,
            on_trial=lambda side, k: status.update(f"{side}: trial {k}"),
        )
    if as_json:
        sys.stdout.write(json.dumps(as_plain(result), indent=1) + "\n")
    else:
        show(result, stdout_console())
    if fail_on_regression is not None and result.regressed:
        raise GateFailed(
            f"the candidate regressed by more than {fail_on_regression}: "
            + ", ".join(
                f"{k} {result.figures[k].ratio:.3f}x (CI {result.figures[k].lo:.3f}–"
                f"{result.figures[k].hi:.3f})"
                for k in result.regressed
            ),
            "the reports of both are saved: " + ", ".join(result.reports),
        )


def as_plain(result: AbResult) -> dict:
    """The JSON `ab --json` prints."""
    return {
        "baseline": result.labels[0],
        "candidate": result.labels[1],
        "cell": result.baseline.id,
        "trials": result.trials,
        "order": list(result.order),
        "threshold": result.threshold,
        "ratios": {k: _finite(dataclasses.asdict(f)) for k, f in result.figures.items()},
        "regressed": result.regressed,
        "decides": result.decides,
        "verdict": result.verdict,
        "warnings": list(result.warnings),
        "reports": list(result.reports),
    }


def _finite(d: dict) -> dict:
    """A figure's fields with an unbounded CI end as null (JSON has no infinity)."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def _ratio_text(f: Any) -> str:
    if not (math.isfinite(f.hi) and f.lo > 0):
        return f"{f.ratio:.3f} (no interval)"
    return f"{f.ratio:.3f} ({f.lo:.3f}–{f.hi:.3f})"


def show(result: AbResult, console: Console) -> None:
    """The ratios table and hyperfine's summary lines."""
    b, c = result.baseline.result, result.candidate.result
    labels = result.labels
    table = Table(
        title=escape(f"{labels[1]} against {labels[0]} — {result.baseline.id}"),
        header_style="bold",
    )
    for col in ("figure", "baseline", "candidate", "ratio (CI)", "verdict"):
        table.add_column(col, justify="left" if col in ("figure", "verdict") else "right")
    for name, f in result.figures.items():
        if name == "throughput":
            bv, cv = f"{b.throughput_ips:,.1f} inf/s", f"{c.throughput_ips:,.1f} inf/s"
        else:
            bv, cv = fmt_ms(getattr(b.latency_ms, name)), fmt_ms(getattr(c.latency_ms, name))
        style = VERDICT_STYLE.get(f.verdict, "")
        verdict = f"[{style}]{f.verdict}[/]" if style else f.verdict
        table.add_row(name, bv, cv, _ratio_text(f), verdict)
    console.print(table)
    console.print(
        f"{result.trials} trials each, interleaved in a seeded random order: "
        + " ".join("B" if s == "baseline" else "C" for s in result.order),
        highlight=False,
    )
    console.print(escape(result.verdict), style="bold", highlight=False)
    for f in result.figures.values():
        console.print(escape(f.summary), highlight=False)
    if result.baseline.accuracy or result.candidate.accuracy:  # (precision)
        console.print(
            f"accuracy vs fp32: {labels[0]} {accuracy_label(result.baseline)}, "
            f"{labels[1]} {accuracy_label(result.candidate)}",
            highlight=False,
        )
    for w in result.warnings:
        console.print(f"[yellow]warning[/] {escape(w)}", highlight=False)
    if result.threshold > 0:
        console.print(f"[dim]changes under {result.threshold * 100:g}% count as not significant[/]")
    console.print("reports saved: " + ", ".join(result.reports), highlight=False)
