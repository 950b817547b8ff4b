"""`benchbox sweep` and `benchbox run`: measure a grid of cells, or one cell in depth."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as RichProgress
from rich.text import Text

from benchbox.commands.options import choice_option
from benchbox.errors import GateFailed
from benchbox.format import fmt_duration_s, fmt_ms, fmt_number, percentile_label, reason_line
from benchbox.load import Arrival, LoadKind
from benchbox.measure.cell import MeasureSettings
from benchbox.report.render import render_cell_detail, render_report, stdout_console
from benchbox.schema import Cell, Report, report_to_json
from benchbox.store import load_report
from benchbox.sweep import (
    NoCellMeasured,
    Progress,
    SweepRequest,
    resume_sweep,
    run_sweep,
    stop_on_signals,
)
from benchbox.sweep.eta import Eta, is_large, planned_cell_s, size_note
from benchbox.sweep.request import (
    DEMO_MAX_TRIALS,
    SWEEP_MAX_TRIALS,
    CellOptions,
    MeasureOptions,
    ResumeRequest,
    SweepOptions,
    TrialOptions,
    build_cell_request,
    build_request,
    build_resume,
)
from benchbox.sweep.search import SearchKind

app = typer.Typer()


class EtaColumn(ProgressColumn):
    """The planned measuring time left, counting down while a cell runs."""

    def __init__(self, eta: Eta) -> None:
        super().__init__()
        self.eta = eta

    def render(self, task: Task) -> Text:
        return Text(f"ETA {fmt_duration_s(self.eta.seconds_left(time.monotonic()))}")


class BarProgress(Progress):
    """Progress on stderr: a rich bar naming the current cell with an ETA from the planned
    measuring time on a terminal, else a line per finished cell; first, for a large sweep (or
    when stderr is a log), a note of the grid's size."""

    def __init__(
        self, console: Console, settings: MeasureSettings | None, adaptive: bool = False
    ) -> None:
        self.console = console
        self.eta = Eta(planned_cell_s(settings) if settings is not None else 0.0)
        self.adaptive = adaptive
        self.live = console.is_terminal
        self.bar = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            EtaColumn(self.eta),
            console=console,
            transient=True,
        )
        self.task = None
        self.total = 0
        self.trial = 0
        self.done: set[str] = set()

    def planned(self, cells: list[Cell]) -> None:
        self.eta.plan(cells)
        self.total = len(self.eta.left)
        if not self.live or is_large(self.total, self.eta.planned_s):
            note = size_note(self.total, self.eta.planned_s, self.adaptive)
            self.console.print(note, highlight=False, markup=False, soft_wrap=True)
        if self.live:
            self.bar.start()
            self.task = self.bar.add_task("planning", total=self.total)

    def started(self, cell: Cell) -> None:
        self.eta.start(time.monotonic())
        label = cell.id
        if cell.id in self.done or (cell.load.kind == "open" and "peak" in cell.id):
            label = f"{cell.id} (probing {cell.load.rate_rps:g}/s)"  # a peak-rate search step
        if self.task is not None:
            self.bar.update(self.task, description=label)

    def trial_started(self, cell: Cell, trial: int) -> None:
        self.trial = trial
        if self.task is not None:  # one more step: the trials are not planned ahead
            total = (self.bar.tasks[0].total or 0) + 1
            self.bar.update(self.task, description=f"{cell.id} (trial {trial})", total=total)

    def trial_finished(self, cell: Cell) -> None:
        if self.task is not None:
            self.bar.advance(self.task)
        if not self.live:
            r = cell.result
            text = f"  trial {self.trial} of {cell.id}: {cell.status}"
            if r is not None:
                text += f"  {fmt_number(r.throughput_ips, 1)} inf/s  p99 {fmt_ms(r.latency_ms.p99)}"
                text += f" ({r.trials} trials so far)"
            self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def finished(self, cell: Cell) -> None:
        first = cell.id not in self.done  # a peak search measures one cell at several rates
        self.done.add(cell.id)
        self.eta.finish(cell.id)
        if first and self.task is not None:
            self.bar.advance(self.task)
        if not self.live:
            self.console.print(self._line(cell), highlight=False, markup=False, soft_wrap=True)
        elif cell.status == "failed":
            self.bar.console.print(
                Text(f"{cell.id}: {cell.status} — {reason_line(cell.reason)}", style="dim"),
                highlight=False,
            )

    def _line(self, cell: Cell) -> str:
        """`[3/8] cpu/t1/i1/b1/closed-c1 ok  180.3 inf/s  p99 6.371 ms  ETA 25s`."""
        text = f"[{len(self.done)}/{self.total}] {cell.id}"
        if cell.load.kind == "open" and cell.load.rate_rps and "peak" in cell.id:
            text += f" at {cell.load.rate_rps:g}/s"  # a step of the peak-rate search
        text += f" {cell.status}"
        r = cell.result
        if r is not None:
            text += f"  {fmt_number(r.throughput_ips, 1)} inf/s  p99 {fmt_ms(r.latency_ms.p99)}"
        elif cell.reason:
            text += f" — {cell.reason}"
        return text + f"  ETA {fmt_duration_s(self.eta.seconds_left(time.monotonic()))}"

    def close(self) -> None:
        if self.task is not None:
            self.bar.stop()


def show_sweep(report: Report, saved: Path, as_json: bool) -> None:
    """Print the finished sweep; exit 1 when a latency target was set and nothing meets it."""
    if as_json:
        sys.stdout.write(report_to_json(report))
    else:
        console = stdout_console()
        render_report(report, console)
        console.print(f"report saved: [bold]{escape(str(saved))}[/]", highlight=False)
    rec = report.recommendation
    if rec is not None and rec.winner is None:
        raise GateFailed(
            f"no configuration meets {percentile_label(rec.percentile)}={rec.target_ms:g}ms"
            f" (report saved in {saved})",
            ("" if as_json else "see the closest cell above; ")
            + "relax the target, or measure other devices or configs",
        )


ModelArg = Annotated[
    str | None, typer.Argument(help="ONNX file or zoo model name (default: the demo model).")
]
DeviceOpt = Annotated[
    str | None,
    typer.Option(
        "--device",
        "-d",
        help="Devices, comma-separated: cpu, cuda:0, tensorrt:0, openvino (onnxruntime's EP), "
        "ov:CPU (the OpenVINO runtime), ... or all (every usable device; see `benchbox devices`). "
        "Default: cpu.",
    ),
]
RemoteOpt = Annotated[
    str | None,
    typer.Option(
        "--target",
        help="Measure a server instead: http://HOST:PORT/v2/models/NAME[/versions/V] (KServe v2 "
        "REST) or grpc://HOST:PORT/NAME. MODEL is then an optional local ONNX file for the inputs.",
    ),
]
HeaderOpt = Annotated[
    list[str] | None,
    typer.Option("--header", help="With --target: KEY=VALUE sent with every request (repeatable)."),
]
GeneratorsOpt = Annotated[
    int, typer.Option("--generators", help="With --target: load generator processes.")
]
RequestTimeoutOpt = Annotated[
    str | None,
    typer.Option("--request-timeout", help="With --target: a request's bound, e.g. 5s (30s)."),
]
CaCertOpt = Annotated[
    str | None, typer.Option("--ca-cert", help="With an https:// target: a PEM CA file to trust.")
]
InsecureOpt = Annotated[
    bool,
    typer.Option("--insecure", help="With an https:// target: do not verify its certificate."),
]
BatchOpt = Annotated[str | None, typer.Option("--batch", "-b", help="Batch sizes, e.g. 1,4,16.")]
ConcOpt = Annotated[
    str | None, typer.Option("--concurrency", "-c", help="Requests in flight (closed) / pool size.")
]
ThreadsOpt = Annotated[str | None, typer.Option("--threads", "-t", help="Intra-op threads.")]
InstOpt = Annotated[str, typer.Option("--instances", "-i", help="Independent sessions.")]
LoadOpt = Annotated[
    LoadKind, choice_option(LoadKind, "--load", "load kind", help="How requests arrive.")
]
RateOpt = Annotated[str | None, typer.Option("--rate", help="Open-loop rates (requests/s).")]
ArrivalOpt = Annotated[
    Arrival,
    choice_option(Arrival, "--arrival", "arrival distribution", help="Open-loop arrivals."),
]
DurationOpt = Annotated[
    str | None, typer.Option("--duration", help="Fixed measuring time per cell (no early stop).")
]
WarmupOpt = Annotated[str, typer.Option("--warmup", help="Warm-up time, 0 for none, or 'auto'.")]
WindowOpt = Annotated[str, typer.Option("--window", help="Measurement window.")]
MinDurOpt = Annotated[str, typer.Option("--min-duration", help="Shortest measuring time.")]
MaxDurOpt = Annotated[str, typer.Option("--max-duration", help="Longest measuring time.")]
StabOpt = Annotated[str, typer.Option("--stability", help="Window agreement tolerance.")]
ConfOpt = Annotated[float, typer.Option("--confidence", help="Confidence level of the CIs.")]
ShapeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--shape",
        help="Symbolic dim value, e.g. seq=128, or NAME=batch to follow the batch size "
        "(repeatable).",
    ),
]
InputOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--input",
        help="An input's value instead of synthesized data, e.g. sr=16000 (a number fills the "
        "tensor; a JSON array like [[1,2]] is broadcast to its shape), or @FILE.json holding "
        '{"NAME": VALUE, ...} (repeatable).',
    ),
]
OutOpt = Annotated[str, typer.Option("--out", "-o", help="Folder for the report.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")]
SearchOpt = Annotated[
    SearchKind,
    choice_option(
        SearchKind,
        "--search",
        "search strategy",
        help="adaptive (skip what cannot win) or grid (all).",
    ),
]
TargetOpt = Annotated[
    str | None,
    typer.Option(
        "--latency-target",
        help="e.g. p99=20ms: recommend at the end; with --load open and no --rate, search the "
        "peak rate that meets it.",
    ),
]
ProfileOpt = Annotated[
    str,
    typer.Option(
        "--profile",
        help="Price/power profile: auto (the profile matching this host), a name, a .toml "
        "file, or none.",
    ),
]
SamplesOpt = Annotated[bool, typer.Option("--save-samples", help="Keep raw latency samples.")]
SeedOpt = Annotated[
    int, typer.Option("--seed", help="Seed for inputs, arrival times and the order of trials.")
]
TrialsOpt = Annotated[
    str,
    typer.Option(
        "--trials",
        help="Independent trials per cell (a fresh session and process each), interleaved "
        "across cells in a seeded random order; 'auto': at least 3 for the cells in play, then "
        "more until the deciding figure's CI is within --precision.",
    ),
]
MaxTrialsOpt = Annotated[
    int | None, typer.Option("--max-trials", help="Most trials per cell (auto); default 10.")
]
PrecisionOpt = Annotated[
    str,
    typer.Option(
        "--trial-precision",
        help="auto: more trials until the CI half-width is within this, e.g. 5%.",
    ),
]
# ---- precision options (issue 25): model variants as a sweep dimension, accuracy measured.
# `--precision` names the variants; the trials' CI precision is `--trial-precision`.
VariantPrecisionOpt = Annotated[
    str | None,
    typer.Option(
        "--precision",
        help="Model variants to measure: fp32,fp16,int8-dynamic,int8-static (built once, "
        "cached); each cell's outputs are compared with the fp32 CPU reference.",
    ),
]
AccuracySamplesOpt = Annotated[
    int | None,
    typer.Option(
        "--accuracy-samples",
        help="Fixed samples each variant's outputs are compared on (default 400 when accuracy "
        "is measured; 0: off).",
    ),
]
AccuracyOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--accuracy",
        help="Accuracy bound for the recommendation: top1>=99%, cosine>=0.999, max-abs<=1e-3, "
        "rel<=1e-2, label>=90%; NAME:cosine>=0.99 for one output (repeat or comma-separate).",
    ),
]
# ---- end of precision options
DynBatchOpt = Annotated[
    str | None,
    typer.Option(
        "--dynamic-batching",
        help="Server-style batching of one-sample requests (open loop): "
        "max_batch=16,delay=2ms[,preferred=4|8] (';' between several), or auto.",
    ),
]
ResumeOpt = Annotated[
    str | None,
    typer.Option(
        "--resume",
        metavar="REPORT",
        help="Finish a saved report: measure its pending and failed cells with the report's "
        "own settings (the grid and measuring options given here are not used).",
    ),
]
CellTimeoutOpt = Annotated[
    str,
    typer.Option(
        "--cell-timeout", help="Stop a cell's worker after this long ('auto': from the durations)."
    ),
]
NoIsolationOpt = Annotated[
    bool,
    typer.Option("--no-isolation", help="Measure in this process (for debugging; no crash guard)."),
]


def _run(req: SweepRequest | ResumeRequest, as_json: bool) -> tuple[Report, Path]:
    """Measure with a progress bar on stderr; Ctrl-C or SIGTERM saves the report and exits 130."""
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
            return run_sweep(req, progress=bar, abort=abort)
    except NoCellMeasured as exc:
        if as_json:  # --json always prints the report, also when nothing could be measured
            sys.stdout.write(report_to_json(exc.report))
        else:  # the model header (with the dims that were defaulted) and why each cell failed
            render_report(exc.report, stdout_console())
        raise
    finally:
        if bar is not None:
            bar.close()


@app.command()
def sweep(
    model: ModelArg = None,
    device: DeviceOpt = None,
    batch: BatchOpt = None,
    concurrency: ConcOpt = None,
    threads: ThreadsOpt = None,
    instances: InstOpt = "1",
    load: LoadOpt = LoadKind.CLOSED,
    rate: RateOpt = None,
    arrival: ArrivalOpt = Arrival.POISSON,
    duration: DurationOpt = None,
    warmup: WarmupOpt = "0.5s",
    window: WindowOpt = "0.5s",
    min_duration: MinDurOpt = "1s",
    max_duration: MaxDurOpt = "3s",
    stability: StabOpt = "10%",
    confidence: ConfOpt = 0.95,
    search: SearchOpt = SearchKind.ADAPTIVE,
    latency_target: TargetOpt = None,
    profile: ProfileOpt = "auto",
    shape: ShapeOpt = None,
    input_value: InputOpt = None,
    out: OutOpt = "reports",
    save_samples: SamplesOpt = False,
    seed: SeedOpt = 0,
    trials: TrialsOpt = "auto",
    max_trials: Annotated[
        int | None,
        typer.Option(
            "--max-trials",
            help=f"Most trials per cell (auto); default {SWEEP_MAX_TRIALS}, the demo sweep's "
            f"{DEMO_MAX_TRIALS}.",
        ),
    ] = None,
    precision: PrecisionOpt = "5%",
    as_json: JsonOpt = False,
    resume: ResumeOpt = None,
    dynamic_batching: DynBatchOpt = None,
    cell_timeout: CellTimeoutOpt = "auto",
    no_isolation: NoIsolationOpt = False,
    target: RemoteOpt = None,
    header: HeaderOpt = None,
    generators: GeneratorsOpt = 1,
    variant_precision: VariantPrecisionOpt = None,  # precision options (issue 25)
    accuracy_samples: AccuracySamplesOpt = None,
    accuracy: AccuracyOpt = None,
    request_timeout: RequestTimeoutOpt = None,
    ca_cert: CaCertOpt = None,
    insecure: InsecureOpt = False,
) -> None:
    """Sweep a model across devices, batch sizes, threads, instances and load levels."""
    if resume is not None:  # the report's settings, not the options, say what to measure
        req = build_resume(resume, model, not no_isolation, cell_timeout, tuple(header or ()))
    else:
        timing = (warmup, duration, window, min_duration, max_duration, stability, confidence)
        opts = SweepOptions(
            model=model,
            device=device,
            batch=batch,
            concurrency=concurrency,
            threads=threads,
            instances=instances,
            load=load,
            rate=rate,
            arrival=arrival,
            measure=MeasureOptions(*timing, save_samples, seed),
            search=search,
            latency_target=latency_target,
            profile=profile,
            shape=tuple(shape or ()),
            inputs=tuple(input_value or ()),
            out=out,
            dynamic_batching=dynamic_batching,
            cell_timeout=cell_timeout,
            isolate=not no_isolation,
            trials=TrialOptions(trials, max_trials, precision),
            target=target,
            headers=tuple(header or ()),
            generators=generators,
            precision=variant_precision,
            accuracy_samples=accuracy_samples,
            accuracy=tuple(accuracy or ()),
            request_timeout=request_timeout,
            ca_cert=ca_cert,
            insecure=insecure,
        )
        req = build_request(opts)
    report, saved = _run(req, as_json)
    show_sweep(report, saved, as_json)


@app.command()
def run(
    model: Annotated[
        str | None, typer.Argument(help="ONNX file or zoo model name (optional with --target).")
    ] = None,
    device: DeviceOpt = None,
    batch: Annotated[int, typer.Option("--batch", "-b", help="Batch size.")] = 1,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", help="Concurrency.")] = 1,
    threads: Annotated[
        int | None, typer.Option("--threads", "-t", help="Intra-op threads (default 1).")
    ] = None,
    instances: Annotated[
        int | None, typer.Option("--instances", "-i", help="Sessions (default 1).")
    ] = None,
    load: LoadOpt = LoadKind.CLOSED,
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate", help="Open-loop rate (requests/s); none, with --latency-target: the peak."
        ),
    ] = None,
    arrival: ArrivalOpt = Arrival.POISSON,
    duration: DurationOpt = None,
    warmup: WarmupOpt = "1s",
    window: WindowOpt = "1s",
    min_duration: MinDurOpt = "3s",
    max_duration: MaxDurOpt = "15s",
    stability: StabOpt = "10%",
    confidence: ConfOpt = 0.95,
    profile: ProfileOpt = "auto",
    shape: ShapeOpt = None,
    input_value: InputOpt = None,
    out: OutOpt = "reports",
    save_samples: SamplesOpt = False,
    seed: SeedOpt = 0,
    trials: TrialsOpt = "auto",
    max_trials: MaxTrialsOpt = None,
    precision: PrecisionOpt = "5%",
    as_json: JsonOpt = False,
    dynamic_batching: DynBatchOpt = None,
    latency_target: TargetOpt = None,
    cell_timeout: CellTimeoutOpt = "auto",
    no_isolation: NoIsolationOpt = False,
    target: RemoteOpt = None,
    header: HeaderOpt = None,
    generators: GeneratorsOpt = 1,
    variant_precision: VariantPrecisionOpt = None,  # precision options (issue 25)
    accuracy_samples: AccuracySamplesOpt = None,
    accuracy: AccuracyOpt = None,
    request_timeout: RequestTimeoutOpt = None,
    ca_cert: CaCertOpt = None,
    insecure: InsecureOpt = False,
) -> None:
    """Measure one cell in depth: every percentile, the histogram, resources."""
    timing = (warmup, duration, window, min_duration, max_duration, stability, confidence)
    opts = CellOptions(
        model=model,
        device=device,
        batch=batch,
        concurrency=concurrency,
        threads=threads,
        instances=instances,
        load=load,
        rate=rate,
        arrival=arrival,
        measure=MeasureOptions(*timing, save_samples, seed),
        shape=tuple(shape or ()),
        inputs=tuple(input_value or ()),
        out=out,
        trials=TrialOptions(trials, max_trials, precision),
        profile=profile,
        dynamic_batching=dynamic_batching,
        latency_target=latency_target,
        cell_timeout=cell_timeout,
        isolate=not no_isolation,
        target=target,
        headers=tuple(header or ()),
        generators=generators,
        precision=variant_precision,
        accuracy_samples=accuracy_samples,
        accuracy=tuple(accuracy or ()),
        request_timeout=request_timeout,
        ca_cert=ca_cert,
        insecure=insecure,
    )
    report, saved = _run(build_cell_request(opts), as_json)
    if as_json:
        sys.stdout.write(report_to_json(report))
        return
    console = stdout_console()
    for cell in report.cells:
        render_cell_detail(report, cell, console)
    console.print(f"report saved: [bold]{escape(str(saved))}[/]", highlight=False)
