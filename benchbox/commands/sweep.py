"""`benchbox sweep` and `benchbox run`: measure a grid of cells, or one cell in depth."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress

from benchbox import model as model_mod
from benchbox import parse, zoo
from benchbox.cost import load_profile
from benchbox.devices import expand_devices
from benchbox.errors import BadInput, GateFailed
from benchbox.measure.cell import MeasureSettings
from benchbox.report.render import render_cell_detail, render_report, stdout_console
from benchbox.schema import Cell, Report, replace, report_to_json
from benchbox.sweep import Progress, SweepRequest, peak, resume_sweep, run_sweep, stop_on_signals
from benchbox.sweep.plan import SweepSpec
from benchbox.sweep.schedule import trial_policy

# The quick default sweep of `benchbox sweep` with no model: about a minute on 2 cores.
# Each measured cell gets at least 3 trials (auto), so a trial is short: 1-3 s after a 0.5 s
# warm-up, and at most SWEEP_MAX_TRIALS of them.
DEMO = {"batch": "1,4", "concurrency": "1,2", "threads": "1,2", "latency_target": "p99=50ms"}
SWEEP_MAX_TRIALS = 5


class BarProgress(Progress):
    """A rich progress bar on stderr naming the current cell, with an ETA."""

    def __init__(self, console: Console) -> None:
        self.bar = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.task = None
        self.done: set[str] = set()

    def planned(self, cells: list[Cell]) -> None:
        self.bar.start()
        self.task = self.bar.add_task("planning", total=len(cells))

    def started(self, cell: Cell) -> None:
        label = cell.id
        if cell.id in self.done or (cell.load.kind == "open" and "peak" in cell.id):
            label = f"{cell.id} (probing {cell.load.rate_rps:g}/s)"  # a peak-rate search step
        self.bar.update(self.task, description=label)

    def trial_started(self, cell: Cell, trial: int) -> None:
        self.bar.update(self.task, description=f"{cell.id} (trial {trial})")
        self.bar.update(self.task, total=self.bar.tasks[0].total + 1)

    def trial_finished(self, cell: Cell) -> None:
        self.bar.advance(self.task)

    def finished(self, cell: Cell) -> None:
        if cell.id not in self.done:  # a peak search measures one cell at several rates
            self.done.add(cell.id)
            self.bar.advance(self.task)
        if cell.status == "failed":
            self.bar.console.print(
                f"[dim]{cell.id}: {cell.status} — {cell.reason}[/]", highlight=False
            )

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
        console.print(f"report saved: [bold]{saved}[/]", highlight=False)
    rec = report.recommendation
    if rec is not None and rec.winner is None:
        raise GateFailed(
            f"no configuration meets {rec.percentile.replace('_', '.')}={rec.target_ms:g}ms"
            f" (report saved in {saved})",
            "see the closest cell above; relax the target, or measure other devices or configs",
        )


def resolve_model(model: str | None) -> tuple[str, str]:
    """(path, label): a file, a zoo name, or the demo model when none is given."""
    if model is None:
        return str(zoo.path_for(zoo.DEMO_MODEL)), zoo.DEMO_MODEL
    return str(zoo.resolve(model)), model


def measure_settings(
    warmup: str,
    duration: str | None,
    window: str,
    min_duration: str,
    max_duration: str,
    stability: str,
    confidence: float,
    save_samples: bool,
    seed: int,
) -> MeasureSettings:
    """MeasureSettings from the command line's text options."""
    if not 0.5 <= confidence < 1.0:
        raise BadInput(f"--confidence {confidence} must be between 0.5 and 1 (e.g. 0.95)")
    warmup_s = (
        None if warmup.strip().lower() == "auto" else parse.parse_duration_s(warmup, "--warmup")
    )
    min_s = parse.parse_duration_s(min_duration, "--min-duration")
    max_s = parse.parse_duration_s(max_duration, "--max-duration")
    if max_s < min_s:
        raise BadInput(
            f"--max-duration {max_duration} is shorter than --min-duration {min_duration}"
        )
    return MeasureSettings(
        warmup_s=warmup_s,
        duration_s=parse.parse_duration_s(duration, "--duration") if duration else None,
        window_s=parse.parse_duration_s(window, "--window"),
        min_duration_s=min_s,
        max_duration_s=max_s,
        stability=parse.parse_percent(stability, "stability"),
        confidence=confidence,
        save_samples=save_samples,
        seed=seed,
    )


def build_request(
    path: str,
    label: str,
    spec: SweepSpec,
    shape: list[str] | None,
    out: str,
    settings: MeasureSettings,
    **extra,
) -> SweepRequest:
    """The SweepRequest both `sweep` and `run` hand to the sweep."""
    return SweepRequest(
        model_path=path,
        spec=spec,
        settings=settings,
        shapes=parse.parse_shapes(shape),
        out_dir=out,
        model_label=label,
        **extra,
    )


def sweep_spec(
    device: str,
    batch: str,
    concurrency: str,
    threads: str,
    instances: str,
    load: str,
    rate: str | None,
    arrival: str,
    peak_search: bool = False,
) -> SweepSpec:
    """The sweep's axes from the command line's lists (`peak_search`: open loop may omit --rate)."""
    if load not in ("closed", "open", "offline"):
        raise BadInput(f"--load {load!r} is not a load kind", "use closed, open or offline")
    if arrival not in ("poisson", "constant"):
        raise BadInput(f"--arrival {arrival!r} is not known", "use poisson or constant")
    devices = expand_devices(device)
    rates = parse.parse_float_list(rate, "rate") if rate else []
    if load == "open" and not rates and not peak_search:
        raise BadInput(
            "--load open needs --rate",
            "e.g. --load open --rate 100,200 (or, in a sweep, --latency-target p99=20ms without"
            " --rate to search each config's peak rate)",
        )
    return SweepSpec(
        devices=tuple(devices),
        batch_sizes=tuple(parse.parse_int_list(batch, "batch")),
        concurrencies=tuple(parse.parse_int_list(concurrency, "concurrency")),
        threads=tuple(parse.parse_int_list(threads, "threads")),
        instances=tuple(parse.parse_int_list(instances, "instances")),
        load_kind=load,
        rates_rps=tuple(rates),
        arrival=arrival,
    )


def dynamic_batching_spec(
    spec: SweepSpec,
    text: str,
    model_path: str,
    shapes: dict[str, int],
    latency_target: str | None,
    concurrency_given: bool,
) -> SweepSpec:
    """The spec with `--dynamic-batching` settings (`auto` expanded for the model and target)."""
    if spec.load_kind != "open":
        raise BadInput(
            "--dynamic-batching batches one-sample requests arriving on an open-loop schedule",
            "add --load open (and --latency-target p99=20ms to find each config's peak rate)",
        )
    target = parse.parse_target(latency_target) if latency_target else None
    batchings = peak.batching_grid(text, model_mod.inspect_model(model_path, shapes), target)
    concurrencies = spec.concurrencies if concurrency_given else (1,)
    return replace(spec, dynamic_batching=tuple(batchings), concurrencies=concurrencies)


ModelArg = Annotated[
    str | None, typer.Argument(help="ONNX file or zoo model name (default: the demo model).")
]
DeviceOpt = Annotated[
    str,
    typer.Option(
        "--device",
        "-d",
        help="Devices, comma-separated: cpu, cuda:0, tensorrt:0, openvino (onnxruntime's EP), "
        "ov:CPU (the OpenVINO runtime), ... or all (every usable device; see `benchbox devices`).",
    ),
]
BatchOpt = Annotated[str | None, typer.Option("--batch", "-b", help="Batch sizes, e.g. 1,4,16.")]
ConcOpt = Annotated[
    str | None, typer.Option("--concurrency", "-c", help="Requests in flight (closed) / pool size.")
]
ThreadsOpt = Annotated[str | None, typer.Option("--threads", "-t", help="Intra-op threads.")]
InstOpt = Annotated[str, typer.Option("--instances", "-i", help="Independent sessions.")]
LoadOpt = Annotated[str, typer.Option("--load", help="closed, open or offline.")]
RateOpt = Annotated[str | None, typer.Option("--rate", help="Open-loop rates (requests/s).")]
ArrivalOpt = Annotated[str, typer.Option("--arrival", help="poisson or constant.")]
DurationOpt = Annotated[
    str | None, typer.Option("--duration", help="Fixed measuring time per cell (no early stop).")
]
WarmupOpt = Annotated[str, typer.Option("--warmup", help="Warm-up time, or 'auto'.")]
WindowOpt = Annotated[str, typer.Option("--window", help="Measurement window.")]
MinDurOpt = Annotated[str, typer.Option("--min-duration", help="Shortest measuring time.")]
MaxDurOpt = Annotated[str, typer.Option("--max-duration", help="Longest measuring time.")]
StabOpt = Annotated[str, typer.Option("--stability", help="Window agreement tolerance.")]
ConfOpt = Annotated[float, typer.Option("--confidence", help="Confidence level of the CIs.")]
ShapeOpt = Annotated[
    list[str] | None, typer.Option("--shape", help="Symbolic dim value, e.g. seq=128 (repeatable).")
]
OutOpt = Annotated[str, typer.Option("--out", "-o", help="Folder for the report.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")]
TargetOpt = Annotated[
    str | None, typer.Option("--latency-target", help="e.g. p99=20ms: recommend at the end.")
]
ProfileOpt = Annotated[
    str | None, typer.Option("--profile", help="Price/power profile: name or .toml file.")
]
SamplesOpt = Annotated[bool, typer.Option("--save-samples", help="Keep raw latency samples.")]
SeedOpt = Annotated[
    int, typer.Option("--seed", help="Seed for inputs, arrival times and the order of trials.")
]
TrialsOpt = Annotated[
    str,
    typer.Option(
        "--trials",
        help="Independent trials per cell (fresh session and process each), interleaved across "
        "cells in a seeded random order; 'auto': at least 3 for the cells in play, then more "
        "until the deciding figure's CI is within --precision.",
    ),
]
MaxTrialsOpt = Annotated[int, typer.Option("--max-trials", help="Most trials per cell (auto).")]
PrecisionOpt = Annotated[
    str,
    typer.Option(
        "--precision", help="auto: stop when the CI half-width is within this share, e.g. 5%."
    ),
]
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


def cell_timeout_s(text: str) -> float | None:
    """--cell-timeout: None for 'auto', else seconds."""
    if text.strip().lower() == "auto":
        return None
    return parse.parse_duration_s(text, "--cell-timeout")


def _run(req: SweepRequest | None, as_json: bool, resume: dict | None = None):
    console = Console(stderr=True)
    bar = BarProgress(console) if (console.is_terminal or not as_json) else None
    try:
        with stop_on_signals(threading.Event()) as abort:  # Ctrl-C, SIGTERM: save and exit 130
            if resume is not None:
                report, path = resume_sweep(progress=bar, abort=abort, **resume)
            else:
                report, path = run_sweep(req, progress=bar, abort=abort)
    finally:
        if bar is not None:
            bar.close()
    return report, path


def register(app: typer.Typer) -> None:
    """Add `sweep` and `run`."""

    @app.command()
    def sweep(
        model: ModelArg = None,
        device: DeviceOpt = "cpu",
        batch: BatchOpt = None,
        concurrency: ConcOpt = None,
        threads: ThreadsOpt = None,
        instances: InstOpt = "1",
        load: LoadOpt = "closed",
        rate: RateOpt = None,
        arrival: ArrivalOpt = "poisson",
        duration: DurationOpt = None,
        warmup: WarmupOpt = "0.5s",
        window: WindowOpt = "0.5s",
        min_duration: MinDurOpt = "1s",
        max_duration: MaxDurOpt = "3s",
        stability: StabOpt = "10%",
        confidence: ConfOpt = 0.95,
        search: Annotated[
            str, typer.Option("--search", help="adaptive (skip what cannot win) or grid (all).")
        ] = "adaptive",
        latency_target: TargetOpt = None,
        profile: ProfileOpt = None,
        shape: ShapeOpt = None,
        out: OutOpt = "reports",
        save_samples: SamplesOpt = False,
        seed: SeedOpt = 0,
        trials: TrialsOpt = "auto",
        max_trials: MaxTrialsOpt = SWEEP_MAX_TRIALS,
        precision: PrecisionOpt = "5%",
        as_json: JsonOpt = False,
        resume: ResumeOpt = None,
        dynamic_batching: DynBatchOpt = None,
        cell_timeout: CellTimeoutOpt = "auto",
        no_isolation: NoIsolationOpt = False,
    ) -> None:
        """Sweep a model across devices, batch sizes, threads, instances and load levels."""
        if resume is not None:  # the report's settings, not the options, say what to measure
            report, saved = _run(
                None,
                as_json,
                resume={
                    "report_file": resume,
                    "model_path": resolve_model(model)[0] if model else None,
                    "isolate": not no_isolation,
                    "cell_timeout_s": cell_timeout_s(cell_timeout),
                },
            )
            show_sweep(report, saved, as_json)
            return
        if search not in ("grid", "adaptive"):
            raise BadInput(f"--search {search!r} is not known", "use --search adaptive or grid")
        if latency_target is None and model is None:
            latency_target = DEMO["latency_target"]
        if latency_target is not None:
            parse.parse_target(latency_target)  # fail before measuring
        path, label = resolve_model(model)
        spec = sweep_spec(
            device,
            batch or DEMO["batch"],
            concurrency or DEMO["concurrency"],
            threads or DEMO["threads"],
            instances,
            load,
            rate,
            arrival,
            peak_search=latency_target is not None,
        )
        if dynamic_batching is not None:
            spec = dynamic_batching_spec(
                spec,
                dynamic_batching,
                path,
                parse.parse_shapes(shape),
                latency_target,
                concurrency is not None,
            )
        timing = (warmup, duration, window, min_duration, max_duration, stability, confidence)
        req = build_request(
            path,
            label,
            spec,
            shape,
            out,
            measure_settings(*timing, save_samples, seed),
            search=search,
            latency_target=latency_target,
            profile=profile,
            isolate=not no_isolation,
            cell_timeout_s=cell_timeout_s(cell_timeout),
            trials=trial_policy(
                trials, max_trials, parse.parse_percent(precision, "precision"), seed
            ),
        )
        if profile:
            load_profile(profile)  # fail before measuring
        report, saved = _run(req, as_json)
        show_sweep(report, saved, as_json)

    @app.command()
    def run(
        model: Annotated[str, typer.Argument(help="ONNX file or zoo model name.")],
        device: DeviceOpt = "cpu",
        batch: Annotated[int, typer.Option("--batch", "-b", help="Batch size.")] = 1,
        concurrency: Annotated[int, typer.Option("--concurrency", "-c", help="Concurrency.")] = 1,
        threads: Annotated[int, typer.Option("--threads", "-t", help="Intra-op threads.")] = 1,
        instances: Annotated[int, typer.Option("--instances", "-i", help="Sessions.")] = 1,
        load: LoadOpt = "closed",
        rate: Annotated[float | None, typer.Option("--rate", help="Open-loop rate.")] = None,
        arrival: ArrivalOpt = "poisson",
        duration: DurationOpt = None,
        warmup: WarmupOpt = "1s",
        window: WindowOpt = "1s",
        min_duration: MinDurOpt = "3s",
        max_duration: MaxDurOpt = "15s",
        stability: StabOpt = "10%",
        confidence: ConfOpt = 0.95,
        shape: ShapeOpt = None,
        out: OutOpt = "reports",
        save_samples: SamplesOpt = False,
        seed: SeedOpt = 0,
        trials: TrialsOpt = "auto",
        max_trials: MaxTrialsOpt = 10,
        precision: PrecisionOpt = "5%",
        as_json: JsonOpt = False,
    ) -> None:
        """Measure one cell in depth: every percentile, the histogram, resources."""
        for name, value in (
            ("batch", batch),
            ("concurrency", concurrency),
            ("threads", threads),
            ("instances", instances),
        ):
            if value < 1:
                raise BadInput(f"--{name} {value} must be at least 1")
        path, label = resolve_model(model)
        spec = sweep_spec(
            device,
            str(batch),
            str(concurrency),
            str(threads),
            str(instances),
            load,
            None if rate is None else str(rate),
            arrival,
        )
        timing = (warmup, duration, window, min_duration, max_duration, stability, confidence)
        req = build_request(
            path,
            label,
            spec,
            shape,
            out,
            measure_settings(*timing, save_samples, seed),
            trials=trial_policy(
                trials, max_trials, parse.parse_percent(precision, "precision"), seed
            ),
        )
        report, saved = _run(req, as_json)
        if as_json:
            sys.stdout.write(report_to_json(report))
            return
        console = stdout_console()
        for cell in report.cells:
            render_cell_detail(report, cell, console)
        console.print(f"report saved: [bold]{saved}[/]", highlight=False)
