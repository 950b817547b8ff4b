"""What the commands share: every option declared once (its flag, type, default and help), in
sets that commands compose with `@command`, and one way to print JSON.

A set's defaults are the fields of its dataclass in `benchbox.options`; a command whose default
must differ (`run` measures one cell in depth) gives it once, in `@command(..., defaults=...)`,
with its reason beside that dataclass. The measuring commands' bodies import their stages when
they run, so `benchbox COMMAND --help` imports only typer, this module and `benchbox.options`.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from types import SimpleNamespace
from typing import Annotated, Any

import typer

from benchbox.kinds import Arrival, LoadKind, SearchKind
from benchbox.options import (
    DataOptions,
    MeasureOptions,
    PrecisionOptions,
    RayOptions,
    RemoteOptions,
    TraceOptions,
    TrialOptions,
)
from benchbox.parse import parse_choice

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


def choice_option(kind: type[StrEnum], flag: str, what: str, *names: str, **kw: Any) -> Any:
    """A typer option whose value is a member of `kind` (the help lists them); a bad choice is
    one line naming the flag, then the choices (exit 2), not click's usage block."""
    return typer.Option(
        flag, *names, parser=partial(parse_choice, kind, what=what, flag=flag), **kw
    )


@dataclass(frozen=True)
class Opt:
    """One option (or argument) of the command line: its parameter name, type, default, typer
    info."""

    name: str
    type: Any
    default: Any
    info: Any

    def parameter(self, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
        value = self.default if default is inspect.Parameter.empty else default
        return inspect.Parameter(
            self.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=value,
            annotation=Annotated[self.type, self.info],
        )


def opt(name: str, type_: Any, default: Any, *flags: str, **kw: Any) -> Opt:
    return Opt(name, type_, default, typer.Option(*flags, **kw))


def choice(name: str, kind: type[StrEnum], default: Any, flag: str, what: str, **kw: Any) -> Opt:
    return Opt(name, kind, default, choice_option(kind, flag, what, **kw))


def arg(name: str, type_: Any, default: Any, help: str, **kw: Any) -> Opt:
    return Opt(name, type_, default, typer.Argument(help=help, **kw))


_M, _T, _R = MeasureOptions(), TrialOptions(), RemoteOptions()
_D, _P, _Y, _TR = DataOptions(), PrecisionOptions(), RayOptions(), TraceOptions()

# ---- the sets

DEVICE = opt(
    "device",
    str | None,
    None,
    "--device",
    "-d",
    help="Devices, comma-separated: cpu, cuda:0, tensorrt:0, openvino (onnxruntime's EP), ov:CPU "
    "(the OpenVINO runtime), ... or all (every usable device; see `benchbox devices`). "
    "Default: cpu.",
)
LOAD = choice("load", LoadKind, LoadKind.CLOSED, "--load", "load kind", help="How requests arrive.")
ARRIVAL = opt(
    "arrival",
    str,
    Arrival.POISSON.value,
    "--arrival",
    help="Open-loop arrivals: poisson, constant, or gamma:cv=N (gaps with coefficient of "
    "variation N: 1 is poisson, 2 or more bursty).",
)

# `--load trace`: where its arrival times come from, and how fast they are replayed.
TRACE = (
    opt(
        "trace",
        str | None,
        _TR.file,
        "--trace",
        metavar="FILE",
        help="With --load trace: the arrival times, one offset in seconds a line (or a JSON "
        "list); requests cycle through the inputs.",
    ),
    opt(
        "trace_column",
        str | None,
        _TR.column,
        "--trace-column",
        metavar="NAME[:UNIT]",
        help="With --load trace: a --data column of timestamps (epoch or offsets; UNIT s, ms, "
        "us or ns, default s); request i sends row i.",
    ),
    opt(
        "speed",
        str | None,
        _TR.speed,
        "--speed",
        help="With --load trace: replay speed, e.g. 2x (twice as fast), 0.5x. The trace plays "
        "once after the warm-up; its length is the measured duration.",
    ),
)
RATE = opt(
    "rate",
    str | None,
    None,
    "--rate",
    help="Open-loop rates, requests/s: 100,200 (a cell each; `run` takes one), or one cell's "
    "profile of steps RATE:DURATION and ramps FROM..TO:DURATION, e.g. 100:30s,500:30s or "
    "100..500:60s (its length is the measured duration, after the warm-up at its first rate). "
    "None, with --latency-target: the peak.",
)

# A sweep's axes: comma-separated lists.
GRID = (
    DEVICE,
    opt("batch", str | None, None, "--batch", "-b", help="Batch sizes, e.g. 1,4,16."),
    opt(
        "concurrency",
        str | None,
        None,
        "--concurrency",
        "-c",
        help="Requests in flight (closed) / pool size.",
    ),
    opt("threads", str | None, None, "--threads", "-t", help="Intra-op threads."),
    opt("instances", str, "1", "--instances", "-i", help="Independent sessions."),
    LOAD,
    RATE,
    ARRIVAL,
    *TRACE,
)

# One cell's config and load (`run`, `ab`): one value each.
CELL = (
    DEVICE,
    opt("batch", int, 1, "--batch", "-b", help="Batch size."),
    opt("concurrency", int, 1, "--concurrency", "-c", help="Concurrency."),
    opt("threads", int | None, None, "--threads", "-t", help="Intra-op threads (default 1)."),
    opt("instances", int | None, None, "--instances", "-i", help="Sessions (default 1)."),
    LOAD,
    RATE,
    ARRIVAL,
    *TRACE,
)

TIMING = (
    opt(
        "duration",
        str | None,
        _M.duration,
        "--duration",
        help="Fixed measuring time per cell (no early stop).",
    ),
    opt("warmup", str, _M.warmup, "--warmup", help="Warm-up time, 0 for none, or 'auto'."),
    opt("window", str, _M.window, "--window", help="Measurement window."),
    opt("min_duration", str, _M.min_duration, "--min-duration", help="Shortest measuring time."),
    opt("max_duration", str, _M.max_duration, "--max-duration", help="Longest measuring time."),
    opt("stability", str, _M.stability, "--stability", help="Window agreement tolerance."),
    opt("confidence", float, _M.confidence, "--confidence", help="Confidence level of the CIs."),
)
SAVE_SAMPLES = opt(
    "save_samples", bool, _M.save_samples, "--save-samples", help="Keep raw latency samples."
)
SEED = opt(
    "seed", int, _M.seed, "--seed", help="Seed for inputs, arrival times and the order of trials."
)

LATENCY_TARGET = opt(
    "latency_target",
    str | None,
    None,
    "--latency-target",
    help="e.g. p99=20ms: recommend at the end; with --load open and no --rate, search the peak "
    "rate that meets it.",
)
SEARCH = choice(
    "search",
    SearchKind,
    SearchKind.ADAPTIVE,
    "--search",
    "search strategy",
    help="adaptive (skip what cannot win) or grid (all).",
)

SHAPE = opt(
    "shape",
    list[str] | None,
    None,
    "--shape",
    help="Symbolic dim value, e.g. seq=128, or NAME=batch to follow the batch size (repeatable).",
)
INPUT = opt(
    "input_value",
    list[str] | None,
    None,
    "--input",
    help="An input's value instead of synthesized data, e.g. sr=16000 (a number fills the "
    "tensor; a JSON array like [[1,2]] is broadcast to its shape), or @FILE.json holding "
    '{"NAME": VALUE, ...} (repeatable).',
)

TRIALS = (
    opt(
        "trials",
        str,
        _T.trials,
        "--trials",
        help="Independent trials per cell (a fresh session and process each), interleaved across "
        "cells in a seeded random order; 'auto': at least 3 for the cells in play, then more "
        "until the deciding figure's CI is within --trial-precision.",
    ),
    opt(
        "max_trials",
        int | None,
        _T.max_trials,
        "--max-trials",
        help="Most trials per cell (auto); default 4 in a sweep (the demo sweep's 3), 10 for "
        "one cell.",
    ),
    opt(
        "trial_precision",
        str,
        _T.precision,
        "--trial-precision",
        help="auto: more trials until the CI half-width is within this, e.g. 5%.",
    ),
)

VARIANTS = (
    opt(
        "precision",
        str | None,
        _P.precision,
        "--precision",
        help="Model variants to measure: fp32,fp16,int8-dynamic,int8-static (built once, "
        "cached); each cell's outputs are compared with the fp32 CPU reference.",
    ),
    opt(
        "accuracy_samples",
        int | None,
        _P.accuracy_samples,
        "--accuracy-samples",
        help="Fixed samples each variant's outputs are compared on (default 400 when accuracy is "
        "measured; 0: off).",
    ),
)
ACCURACY = opt(
    "accuracy",
    list[str] | None,
    None,
    "--accuracy",
    help="Accuracy bound for the recommendation: top1>=99%, cosine>=0.999, max-abs<=1e-3, "
    "rel<=1e-2, label>=90%; NAME:cosine>=0.99 for one output (repeat or comma-separate).",
)

DATA = (
    opt(
        "data",
        str | None,
        _D.source,
        "--data",
        metavar="SOURCE",
        help="Requests from your data instead of synthesized inputs: FILE.npz, FILE.jsonl, a "
        "Parquet file or folder, sqlite:FILE.db?table=T (or ?query=SELECT...), or a folder of "
        "ONNX test data (test_data_set_*/input_*.pb).",
    ),
    opt(
        "data_map",
        list[str] | None,
        None,
        "--data-map",
        metavar="COLUMN=INPUT",
        help="With --data: feed a column to an input of another name (repeatable).",
    ),
    opt(
        "data_limit",
        str | None,
        _D.limit,
        "--data-limit",
        help="With --data: the most memory the samples may take, e.g. 512MB (past it, a seeded "
        "sample is kept); default a quarter of the free memory.",
    ),
    opt(
        "data_label",
        str | None,
        _D.label,
        "--data-label",
        metavar="COLUMN",
        help="With --data: the column holding each sample's class, so accuracy checks count "
        "argmax == label (the --accuracy bound label>=90%).",
    ),
)

_WITH_TARGET = "With --target: "
REMOTE = (
    opt(
        "target",
        str | None,
        _R.target,
        "--target",
        help="Measure a server instead: http://HOST:PORT/v2/models/NAME[/versions/V] (KServe v2 "
        "REST) or grpc://HOST:PORT/NAME. MODEL is then an optional local ONNX file for the inputs.",
    ),
    opt(
        "header",
        list[str] | None,
        None,
        "--header",
        help=_WITH_TARGET + "KEY=VALUE sent with every request (repeatable).",
    ),
    opt(
        "generators",
        str,
        _R.generators,
        "--generators",
        help=_WITH_TARGET + "load generator processes: a count, or auto (from one process, "
        "one more while the generators, not the server, are the limit, up to the cores).",
    ),
    opt(
        "request_timeout",
        str | None,
        _R.request_timeout,
        "--request-timeout",
        help=_WITH_TARGET + "a request's bound, e.g. 5s (30s).",
    ),
    opt(
        "ca_cert",
        str | None,
        _R.ca_cert,
        "--ca-cert",
        help="With an https:// target: a PEM CA file to trust.",
    ),
    opt(
        "insecure",
        bool,
        _R.insecure,
        "--insecure",
        help="With an https:// target: do not verify its certificate.",
    ),
)

# A Ray cluster: `fleet` sweeps on its node groups, `sweep --target` places generators there.
RAY_ADDRESS = opt(
    "ray_address",
    str | None,
    _Y.address,
    "--ray",
    metavar="ADDRESS",
    help="The Ray cluster: auto (RAY_ADDRESS, or the one on this machine), ray://HOST:10001, "
    "or HOST:6379. With sweep or run --target: run the --generators there, one per node.",
)
GROUP_LABEL = opt(
    "group_label",
    str,
    _Y.group_label,
    "--group-label",
    help="The node label that names a node's group.",
)
PLACEMENT_TIMEOUT = opt(
    "placement_timeout",
    str,
    _Y.placement_timeout,
    "--placement-timeout",
    help="How long to wait for every group's nodes (or the generators' nodes) to take it.",
)
RAY_GENERATORS = (
    RAY_ADDRESS,
    opt(
        "ray_group",
        str,
        _Y.group,
        "--ray-group",
        help="With --ray: the group (--group-label value) of the generator nodes.",
    ),
    GROUP_LABEL,
    PLACEMENT_TIMEOUT,
    opt(
        "ray_partial",
        bool,
        _Y.partial,
        "--ray-partial",
        help="With --ray: a generator node lost mid-cell leaves the others to finish it "
        "(flagged) instead of failing the cell.",
    ),
)

PROFILE = opt(
    "profile",
    str,
    "auto",
    "--profile",
    help="Price/power profile: auto (the profile matching this host), a name, a .toml file, or "
    "none.",
)
OUT = opt("out", str, "reports", "--out", "-o", help="Folder for the report.")
JSON = opt("as_json", bool, False, "--json", help="Print the report as JSON on stdout.")
DYNAMIC_BATCHING = opt(
    "dynamic_batching",
    str | None,
    None,
    "--dynamic-batching",
    help="Server-style batching of one-sample requests (open loop): "
    "max_batch=16,delay=2ms[,preferred=4|8] (';' between several), or auto.",
)
NO_ISOLATION = opt(
    "no_isolation",
    bool,
    False,
    "--no-isolation",
    help="Measure in this process (for debugging; no crash guard).",
)
ISOLATION = (
    opt(
        "cell_timeout",
        str,
        "auto",
        "--cell-timeout",
        help="Stop a cell's worker after this long ('auto': from the durations).",
    ),
    NO_ISOLATION,
)


def command(
    app: typer.Typer,
    *sets: Opt | tuple[Opt, ...],
    name: str | None = None,
    defaults: dict[str, Any] | None = None,
) -> Callable[[Callable[[SimpleNamespace], None]], Callable[..., None]]:
    """Register `body(o)` as a command of `app` taking the options of `sets`, in that order;
    `o` holds each option's value by its name. `defaults` gives the command's own default for
    an option (written once, with its reason, where the command is)."""
    flat: list[Opt] = []
    for item in sets:
        flat.extend(item if isinstance(item, tuple) else (item,))
    names = [o.name for o in flat]
    if len(set(names)) != len(names):
        raise ValueError(f"an option is given twice: {names}")
    defaults = dict(defaults or {})
    unknown = set(defaults) - set(names)
    if unknown:
        raise ValueError(f"defaults for options the command does not take: {sorted(unknown)}")

    def register(body: Callable[[SimpleNamespace], None]) -> Callable[..., None]:
        def cmd(**values: Any) -> None:
            return body(SimpleNamespace(**values))

        params = [o.parameter(defaults.get(o.name, inspect.Parameter.empty)) for o in flat]
        cmd.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        cmd.__name__ = body.__name__
        cmd.__qualname__ = body.__qualname__
        cmd.__doc__ = body.__doc__
        cmd.__module__ = body.__module__
        cmd.options = tuple(flat)  # type: ignore[attr-defined]
        app.command(name=name)(cmd)
        return cmd

    return register


# ---- from the values given to the option sets of benchbox.options


def measure_options(o: SimpleNamespace) -> MeasureOptions:
    return MeasureOptions(
        warmup=o.warmup,
        duration=o.duration,
        window=o.window,
        min_duration=o.min_duration,
        max_duration=o.max_duration,
        stability=o.stability,
        confidence=o.confidence,
        save_samples=getattr(o, "save_samples", False),  # `ab` keeps no samples
        seed=o.seed,
    )


def trial_options(o: SimpleNamespace) -> TrialOptions:
    return TrialOptions(o.trials, o.max_trials, o.trial_precision)


def remote_options(o: SimpleNamespace) -> RemoteOptions:
    return RemoteOptions(
        target=o.target,
        headers=tuple(o.header or ()),
        generators=o.generators,
        request_timeout=o.request_timeout,
        ca_cert=o.ca_cert,
        insecure=o.insecure,
    )


def ray_options(o: SimpleNamespace) -> RayOptions:
    return RayOptions(o.ray_address, o.group_label, o.placement_timeout, o.ray_group, o.ray_partial)


def data_options(o: SimpleNamespace) -> DataOptions:
    return DataOptions(o.data, tuple(o.data_map or ()), o.data_limit, o.data_label)


def trace_options(o: SimpleNamespace) -> TraceOptions:
    return TraceOptions(o.trace, o.trace_column, o.speed)


def variant_options(o: SimpleNamespace) -> PrecisionOptions:
    return PrecisionOptions(
        o.precision, o.accuracy_samples, tuple(getattr(o, "accuracy", None) or ())
    )


def print_json(data: Any) -> None:
    """Print `data` (a report, a dataclass, or plain data) as strict JSON on stdout: NaN and
    infinities as null, one space of indent. Every command's `--json` comes here."""
    import json

    from benchbox.schema import finite, to_dict

    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        data = to_dict(data)
    sys.stdout.write(json.dumps(finite(data), indent=1, allow_nan=False) + "\n")
