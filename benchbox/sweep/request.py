"""From the command line's text options to a SweepRequest: the axes, the measuring settings, the
model (a file or a zoo name) and, for `--dynamic-batching auto`, what the model allows.

`build_request` is `benchbox sweep`; `build_cell_request` is `benchbox run` (one cell, in depth);
`build_resume` is `benchbox sweep --resume`. Each checks what it can before anything is measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchbox import model as model_mod
from benchbox import parse, zoo
from benchbox.devices.inventory import expand_devices
from benchbox.errors import BadInput
from benchbox.load import Arrival, LoadKind
from benchbox.measure.cell import MIN_MEASURED_REQUESTS, MeasureSettings
from benchbox.options import (
    DEFAULT_MAX_TRIALS,
    DEMO_MAX_TRIALS,
    DEPTH,
    SWEEP_MAX_TRIALS,
    DataOptions,
    MeasureOptions,
    PrecisionOptions,
    RayOptions,
    RemoteOptions,
    TraceOptions,
    TrialOptions,
)
from benchbox.parse import LatencyTarget
from benchbox.pricing import AUTO, check_choice
from benchbox.remote.target import REMOTE_DEVICE, parse_headers, parse_url
from benchbox.schema import Trace, TrialPolicy, replace
from benchbox.sweep import peak
from benchbox.sweep.ab import AbRequest
from benchbox.sweep.checks import check_devices
from benchbox.sweep.job import RayGenerators, RemoteTarget, SweepRequest
from benchbox.sweep.plan import SweepSpec
from benchbox.sweep.schedule import trial_policy
from benchbox.sweep.search import SearchKind

# The shortest --duration, --window or --min-duration: below it, timer and collection overheads
# are the measurement.
MIN_TIMING_S = 0.01

# The most requests in flight an in-process load may keep (one thread each): starting threads
# while the others already run slows down with their number squared (about 8 s for 128, 70 s
# for 512 on 2 cores, for the tiny MLP). Sessions and their thread pools are bounded alike
# (100000 of either did not open within a minute).
MAX_CONCURRENCY = 256
MAX_THREADS = 256
MAX_INSTANCES = 256
LIMITS = {
    "concurrency": (
        MAX_CONCURRENCY,
        "each request in flight is a thread of the measuring process; past the limit the"
        " threads take minutes to start and contend for the interpreter, so the figures"
        " would measure benchbox, not the model (use --load open --rate for heavier loads)",
    ),
    "threads": (
        MAX_THREADS,
        "each session starts this many intra-op threads; past the limit they take minutes to"
        " start and only contend for the cores (one per core is the usual best)",
    ),
    "instances": (
        MAX_INSTANCES,
        "each instance is a session of its own, opened before measuring; past the limit opening"
        " them takes minutes and their memory adds up",
    ),
}

# The highest open-loop rate: its schedule of send times is built up front (a rate of 1e9/s would
# ask for billions of them), and a Python generator sends well below this.
MAX_RATE_RPS = 1_000_000.0
# The most requests a rate profile may schedule (8 bytes each, drawn before the cell starts).
MAX_PROFILE_REQUESTS = 50_000_000

# The quick default sweep of `benchbox sweep` with no model: about a minute on 2 cores. Each
# measured cell gets at least 3 trials (auto), so a sweep's trial is short (1-3 s after a 0.5 s
# warm-up), and a cell gets at most SWEEP_MAX_TRIALS (the demo: DEMO_MAX_TRIALS, so 3 each).
# The target is typed here, as every request carries it.
DEMO = {
    "batch": "1,4",
    "concurrency": "1,2",
    "threads": "1,2",
    "latency_target": parse.parse_target("p99=50ms"),
}


@dataclass(frozen=True)
class SweepOptions:
    """`benchbox sweep`'s options as given (lists are comma-separated text; None: the default)."""

    model: str | None = None
    device: str | None = None  # None: cpu (remote with a target)
    batch: str | None = None
    concurrency: str | None = None
    threads: str | None = None
    instances: str = "1"
    load: LoadKind = LoadKind.CLOSED
    rate: str | None = None
    arrival: str = Arrival.POISSON.value
    measure: MeasureOptions = MeasureOptions()
    search: SearchKind = SearchKind.ADAPTIVE
    latency_target: str | None = None
    profile: str | None = AUTO
    shape: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    out: str = "reports"
    dynamic_batching: str | None = None
    cell_timeout: str = "auto"
    isolate: bool = True
    trials: TrialOptions = TrialOptions()
    remote: RemoteOptions = RemoteOptions()  # a server's URL: measure it instead of sessions
    ray: RayOptions | None = None  # --ray: the remote sweep's generators run on that cluster
    data: DataOptions = DataOptions()
    variants: PrecisionOptions = PrecisionOptions()
    trace: TraceOptions = TraceOptions()


@dataclass(frozen=True)
class CellOptions:
    """`benchbox run`'s options: one serving config under one load."""

    model: str | None = None  # required unless a target is given
    device: str | None = None
    batch: int = 1
    concurrency: int = 1
    threads: int | None = None
    instances: int | None = None
    load: LoadKind = LoadKind.CLOSED
    rate: str | float | None = None  # one rate, or a profile: 100:30s,500:30s
    arrival: str = Arrival.POISSON.value
    measure: MeasureOptions = DEPTH
    shape: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    out: str = "reports"
    trials: TrialOptions = TrialOptions()
    profile: str | None = AUTO
    # The cell options `sweep` has too: a batcher, and (open loop, no --rate) the peak search.
    dynamic_batching: str | None = None
    latency_target: str | None = None
    cell_timeout: str = "auto"
    isolate: bool = True
    remote: RemoteOptions = RemoteOptions()
    ray: RayOptions | None = None  # --ray: the one remote cell's generators run on that cluster
    data: DataOptions = DataOptions()
    variants: PrecisionOptions = PrecisionOptions()
    trace: TraceOptions = TraceOptions()


@dataclass(frozen=True)
class ResumeRequest:
    """What `resume_sweep` needs: the report, and the model file when given anew."""

    report_file: str
    model_path: str | None = None
    isolate: bool = True
    cell_timeout_s: float | None = None
    headers: tuple[tuple[str, str], ...] = ()  # for a remote server's report


def build_request(opts: SweepOptions) -> SweepRequest:
    """The SweepRequest of `benchbox sweep` (no model: the demo model with a quick grid)."""
    check_data(opts.data)  # fail before a model is read
    if opts.remote.target is not None:
        return build_remote_request(opts)
    if opts.ray is not None:
        raise BadInput(
            "sweep --ray places the load generators of a --target on the cluster",
            "give --target URL, or sweep a model on a cluster's nodes with `benchbox fleet`",
        )
    search = parse.parse_choice(SearchKind, opts.search, "search strategy", "--search")
    latency_target = target_of(opts.latency_target)  # fails before measuring
    if latency_target is None and opts.model is None:
        latency_target = DEMO["latency_target"]
    path, label = resolve_model(opts.model)
    spec = sweep_spec(
        "cpu" if opts.device is None else opts.device,
        DEMO["batch"] if opts.batch is None else opts.batch,
        DEMO["concurrency"] if opts.concurrency is None else opts.concurrency,
        DEMO["threads"] if opts.threads is None else opts.threads,
        opts.instances,
        opts.load,
        opts.rate,
        opts.arrival,
        peak_search=latency_target is not None,
        trace=opts.trace,
        data_source=opts.data.source,
    )
    shapes = parse.parse_shapes(list(opts.shape))
    if opts.dynamic_batching is not None:
        spec = dynamic_batching_spec(
            spec,
            opts.dynamic_batching,
            path,
            shapes,
            latency_target,
            opts.concurrency is not None,
        )
    req = SweepRequest(
        model_path=path,
        spec=spec,
        settings=shaped_settings(measure_settings(opts.measure), spec, opts.measure),
        shapes=shapes,
        input_values=parse.parse_input_values(list(opts.inputs)),
        out_dir=opts.out,
        model_label=label,
        search=search,
        latency_target=latency_target,
        profile=opts.profile,
        isolate=opts.isolate,
        cell_timeout_s=cell_timeout_s(opts.cell_timeout),
        data=opts.data,
        trials=trials_policy(
            opts.trials,
            opts.measure.seed,
            DEMO_MAX_TRIALS if opts.model is None else SWEEP_MAX_TRIALS,
        ),
    )
    check_choice(opts.profile)  # fail before measuring
    return with_precision(req, opts)


def with_precision(req: SweepRequest, opts: SweepOptions | CellOptions) -> SweepRequest:
    """The request with its precisions, accuracy samples and bounds (checked before measuring)."""
    from benchbox.precision import accuracy_plan, parse_precisions

    precisions = parse_precisions(opts.variants.precision)
    samples, bounds = accuracy_plan(
        precisions,
        opts.variants.accuracy_samples,
        opts.variants.accuracy,
        req.model_path,
        req.shapes,
        req.input_values,
        has_data=opts.data.source is not None,
    )
    spec = replace(req.spec, precisions=precisions)
    return replace(req, spec=spec, accuracy_samples=samples, accuracy=bounds)


def remote_cell_request(opts: CellOptions) -> SweepRequest:
    """`benchbox run --target URL`: the one cell, as a remote sweep of one cell measures it."""
    return build_remote_request(
        SweepOptions(
            model=opts.model,
            device=opts.device,
            batch=str(opts.batch),
            concurrency=str(opts.concurrency),
            threads=None if opts.threads is None else str(opts.threads),
            instances="1" if opts.instances is None else str(opts.instances),
            dynamic_batching=opts.dynamic_batching,  # refused there, as threads are
            load=opts.load,
            rate=None if opts.rate is None else str(opts.rate),
            arrival=opts.arrival,
            trace=opts.trace,
            measure=opts.measure,
            search=SearchKind.GRID,
            shape=opts.shape,
            out=opts.out,
            profile=opts.profile,
            remote=opts.remote,
            data=opts.data,
            variants=opts.variants,
            latency_target=opts.latency_target,
            trials=opts.trials,
            ray=opts.ray,
        ),
        one_cell=True,
    )


def build_cell_request(opts: CellOptions) -> SweepRequest:
    """The SweepRequest of `benchbox run`: the one cell the options describe."""
    check_cell_axes(opts)
    target = target_of(opts.latency_target)  # fails before measuring
    check_data(opts.data)
    if opts.remote.target is not None:
        return remote_cell_request(opts)
    if opts.ray is not None:
        raise BadInput(
            "run --ray places the load generators of a --target on the cluster",
            "give --target URL, or measure a model on a cluster's nodes with `benchbox fleet`",
        )
    if opts.model is None:
        raise BadInput("benchbox run needs a MODEL (or --target URL to measure a server)")
    path, label = resolve_model(opts.model)
    spec = sweep_spec(
        opts.device or "cpu",
        str(opts.batch),
        str(opts.concurrency),
        str(opts.threads or 1),
        str(opts.instances or 1),
        opts.load,
        None if opts.rate is None else str(opts.rate),
        opts.arrival,
        peak_search=target is not None,
        trace=opts.trace,
        data_source=opts.data.source,
    )
    check_one_rate(spec, opts.rate)
    check_choice(opts.profile)  # fail before measuring
    shapes = parse.parse_shapes(list(opts.shape))
    if opts.dynamic_batching is not None:
        spec = dynamic_batching_spec(spec, opts.dynamic_batching, path, shapes, target, True)
        if len(spec.dynamic_batching) != 1:
            raise BadInput(
                f"--dynamic-batching {opts.dynamic_batching!r} gives "
                f"{len(spec.dynamic_batching)} settings; `benchbox run` measures one",
                "give one, e.g. --dynamic-batching max_batch=16,delay=2ms (or use `benchbox "
                "sweep` to try several)",
            )
    req = SweepRequest(
        model_path=path,
        spec=spec,
        settings=shaped_settings(measure_settings(opts.measure), spec, opts.measure),
        shapes=shapes,
        input_values=parse.parse_input_values(list(opts.inputs)),
        out_dir=opts.out,
        model_label=label,
        trials=trials_policy(opts.trials, opts.measure.seed),
        profile=opts.profile,
        latency_target=target,
        isolate=opts.isolate,
        cell_timeout_s=cell_timeout_s(opts.cell_timeout),
        data=opts.data,
    )
    return with_precision(req, opts)


def check_one_rate(spec: SweepSpec, rate: object) -> None:
    """BadInput for a list of rates where one cell is measured (a profile is one cell)."""
    if len(spec.rates_rps) > 1:
        raise BadInput(
            f"--rate {rate}: `benchbox run` measures one cell, at one rate",
            "give one rate or a profile (100:30s,500:30s), or use `benchbox sweep`",
        )


def check_cell_axes(opts: CellOptions) -> None:
    """One cell's batch, concurrency, threads and instances: each at least 1."""
    for name in ("batch", "concurrency", "threads", "instances"):
        value = getattr(opts, name)
        if value is not None and value < 1:
            raise BadInput(f"--{name} {value} must be at least 1")


def trials_policy(
    opts: TrialOptions, seed: int, default_max: int = DEFAULT_MAX_TRIALS
) -> TrialPolicy:
    """The TrialPolicy of the trial options (the order of trials is drawn from --seed)."""
    precision = parse.parse_percent(opts.precision, "precision")
    most = opts.max_trials if opts.max_trials is not None else default_max
    policy = trial_policy(opts.trials, most, precision, seed)
    if opts.max_trials is not None and policy.trials is not None and policy.trials > most:
        raise BadInput(
            f"--trials {policy.trials} is above --max-trials {most}",
            f"give --max-trials {policy.trials} or more, or fewer trials",
        )
    return policy


@dataclass(frozen=True)
class AbOptions:
    """`benchbox ab`'s options: the baseline's cell options, the candidate, the gate."""

    cell: CellOptions
    candidate: str
    fail_on_regression: str | None = None


def build_ab_request(opts: AbOptions) -> AbRequest:
    """The AbRequest of `benchbox ab`: both models, the one cell, the trials and the gate."""
    base = build_cell_request(opts.cell)
    cand_path, cand_label = resolve_model(opts.candidate)
    threshold = 0.0
    if opts.fail_on_regression:
        threshold = parse.parse_percent(opts.fail_on_regression, "fail-on-regression")
        if threshold >= 1.0:
            raise BadInput(f"--fail-on-regression {opts.fail_on_regression!r} must be below 100%")
    check_devices(base.spec.devices)
    base_label = _short(base.model_label or base.model_path)
    cand_label = _short(cand_label)
    labels = (base_label, cand_label) if base_label != cand_label else ("baseline", "candidate")
    return AbRequest(
        baseline_path=base.model_path,
        candidate_path=cand_path,
        spec=base.spec,
        settings=base.settings,
        trials=base.trials,
        shapes=base.shapes,
        out_dir=base.out_dir,
        threshold=threshold,
        labels=labels,
        accuracy_samples=base.accuracy_samples,
        data=base.data,
    )


def _short(label: str) -> str:
    """A model's label for a sentence: a file's stem, or the zoo name as given."""
    path = Path(label)
    return path.stem if path.suffix == ".onnx" else label


def build_resume(
    report_file: str,
    model: str | None = None,
    isolate: bool = True,
    cell_timeout: str = "auto",
    headers: tuple[str, ...] = (),
) -> ResumeRequest:
    """What `benchbox sweep --resume REPORT [MODEL]` hands to `resume_sweep`."""
    return ResumeRequest(
        report_file=report_file,
        model_path=resolve_model(model)[0] if model else None,
        isolate=isolate,
        cell_timeout_s=cell_timeout_s(cell_timeout),
        headers=parse_headers(list(headers)),
    )


# The grid axes that are the server's own settings, not the client's.
SERVER_SIDE = (
    "it is the server's own setting (Triton: instance_group, dynamic_batching and the backend's "
    "thread parameters in config.pbtxt)"
)


def build_remote_request(opts: SweepOptions, one_cell: bool = False) -> SweepRequest:
    """The SweepRequest for a server (`--target URL`): its batch sizes and loads; the device is
    `remote`, and threads, instances and dynamic batching, the server's settings, are refused.

    MODEL is then optional: a local ONNX file to take the inputs from, instead of the server's
    model metadata. The server itself is probed when the sweep starts.
    """
    if opts.variants.precision not in (None, "fp32") or opts.variants.accuracy:
        raise BadInput(
            "--precision and --accuracy measure model variants in-process; a server runs its own",
            "load the variant on the server, or sweep the ONNX file in-process",
        )
    remote = opts.remote
    parse_url(remote.target)  # a malformed URL fails here, before anything else
    for flag, value, default in (
        ("--device", opts.device, None),
        ("--threads", opts.threads, None),
        ("--instances", opts.instances, "1"),
        ("--dynamic-batching", opts.dynamic_batching, None),
    ):
        if (
            value is not None
            and value != default
            and not (flag == "--device" and value == REMOTE_DEVICE)
        ):
            raise BadInput(f"{flag} does not apply to a remote target: {SERVER_SIDE}",
                           f"leave {flag} out; measure the server as it is configured")  # fmt: skip
    generators = parse.parse_generators(remote.generators)
    search = parse.parse_choice(SearchKind, opts.search, "search strategy", "--search")
    latency_target = target_of(opts.latency_target)  # fails before measuring
    path = str(zoo.resolve(opts.model)) if opts.model else ""
    spec = sweep_spec(
        REMOTE_DEVICE,
        opts.batch or "1",
        opts.concurrency or "1",
        "1",
        "1",
        opts.load,
        opts.rate,
        opts.arrival,
        peak_search=latency_target is not None and not one_cell,
        trace=opts.trace,
        data_source=opts.data.source,
    )
    if one_cell:
        check_one_rate(spec, opts.rate)
    check_choice(opts.profile)  # fail before measuring (`auto` prices nothing for a server)
    target = RemoteTarget(
        remote.target,
        parse_headers(list(remote.headers)),
        generators,
        parse.parse_request_timeout_s(remote.request_timeout),
        remote.ca_cert,
        remote.insecure,
        ray_generators(opts.ray, opts.load, opts.rate),
    )
    return SweepRequest(
        model_path=path,
        spec=spec,
        settings=shaped_settings(measure_settings(opts.measure), spec, opts.measure),
        shapes=parse.parse_shapes(list(opts.shape)),
        out_dir=opts.out,
        model_label=parse_url(remote.target).model,
        search=search,
        latency_target=latency_target,
        profile=opts.profile,
        isolate=False,
        target=target,
        data=opts.data,
        trials=trials_policy(
            opts.trials, opts.measure.seed, DEFAULT_MAX_TRIALS if one_cell else SWEEP_MAX_TRIALS
        ),
    )


def target_of(text: str | None) -> LatencyTarget | None:
    """--latency-target as the LatencyTarget every later stage takes (None: not given)."""
    return parse.parse_target(text) if text is not None else None


def check_data(opts: DataOptions) -> None:
    """--data, --data-map and --data-limit checked before anything is read."""
    from benchbox.data.samples import check_options

    check_options(opts)


def resolve_model(model: str | None) -> tuple[str, str]:
    """(path, label): a file, a zoo name, or the demo model when none is given."""
    if model is None:
        return str(zoo.path_for(zoo.DEMO_MODEL)), zoo.DEMO_MODEL
    return str(zoo.resolve(model)), model


def measure_settings(opts: MeasureOptions) -> MeasureSettings:
    """MeasureSettings from the command line's text options."""
    if not 0.5 <= opts.confidence < 1.0:
        raise BadInput(f"--confidence {opts.confidence} must be between 0.5 and 1 (e.g. 0.95)")
    if not 0 <= opts.seed < 2**32:
        raise BadInput(
            f"--seed {opts.seed} is out of range", f"give a whole number from 0 to {2**32 - 1}"
        )
    warmup_s = parse.parse_warmup_s(opts.warmup)
    min_s = parse.parse_duration_s(opts.min_duration, "--min-duration")
    max_s = parse.parse_duration_s(opts.max_duration, "--max-duration")
    if max_s < min_s:
        raise BadInput(
            f"--max-duration {opts.max_duration} is shorter than --min-duration {opts.min_duration}"
        )
    duration_s = (
        parse.parse_duration_s(opts.duration, "--duration") if opts.duration is not None else None
    )
    window_s = parse.parse_duration_s(opts.window, "--window")
    for flag, text, value in (
        ("--duration", opts.duration, duration_s),
        ("--window", opts.window, window_s),
        ("--min-duration", opts.min_duration, min_s),
    ):
        if value is not None and value < MIN_TIMING_S:
            raise BadInput(
                f"{flag} {text} is too short to time requests in",
                f"give at least {MIN_TIMING_S * 1000:g}ms (a cell also runs until it holds"
                f" {MIN_MEASURED_REQUESTS} requests)",
            )
    return MeasureSettings(
        warmup_s=warmup_s,
        duration_s=duration_s,
        window_s=window_s,
        min_duration_s=min_s,
        max_duration_s=max_s,
        stability=parse.parse_percent(opts.stability, "stability"),
        confidence=opts.confidence,
        save_samples=opts.save_samples,
        seed=opts.seed,
    )


def sweep_spec(
    device: str,
    batch: str,
    concurrency: str,
    threads: str,
    instances: str,
    load: LoadKind | str,
    rate: str | None,
    arrival: str,
    peak_search: bool = False,
    trace: TraceOptions = TraceOptions(),
    data_source: str | None = None,
) -> SweepSpec:
    """The sweep's axes from the command line's lists (`peak_search`: open loop may omit --rate)."""
    load = parse.parse_choice(LoadKind, load, "load kind", "--load")
    arrival = parse.parse_arrival(arrival)
    devices = [REMOTE_DEVICE] if device == REMOTE_DEVICE else expand_devices(device)
    rates, profile = open_rates(load, rate, peak_search)
    axes = {
        name: parse.parse_int_list(text, name)
        for name, text in (
            ("batch", batch),
            ("concurrency", concurrency),
            ("threads", threads),
            ("instances", instances),
        )
    }
    for name, (limit, why) in LIMITS.items():
        if axes[name][-1] > limit:
            raise BadInput(f"--{name} {axes[name][-1]} is above the limit of {limit}", why)
    replay = trace_of(load, trace, data_source, tuple(axes["batch"]))
    if replay is not None:
        rates = [replay.requests / (replay.duration_s / replay.speed)]
    return SweepSpec(
        devices=tuple(devices),
        batch_sizes=tuple(axes["batch"]),
        concurrencies=tuple(axes["concurrency"]),
        threads=tuple(axes["threads"]),
        instances=tuple(axes["instances"]),
        load_kind=load,
        rates_rps=tuple(rates),
        arrival=arrival,
        rate_profile=profile,
        trace=replay,
    )


def open_rates(
    load: LoadKind, rate: str | None, peak_search: bool
) -> tuple[list[float], str | None]:
    """--rate as the open loop's rates, or (a profile) its mean rate and canonical text."""
    if rate is not None and load == LoadKind.TRACE:
        raise BadInput(
            "--rate does not apply to --load trace: the trace sets the times",
            "leave --rate out, or use --speed 2x to replay it faster",
        )
    if parse.is_rate_profile(rate):
        segments = parse.parse_rate_profile(str(rate))
        peak_rps = max(max(a, b) for a, b, _ in segments)
        rates, profile = [parse.profile_mean_rps(segments)], parse.profile_text(segments)
        expected = rates[0] * parse.profile_duration_s(segments)
        if expected > MAX_PROFILE_REQUESTS:
            raise BadInput(
                f"--rate {rate}: about {expected:,.0f} requests, above the limit of "
                f"{MAX_PROFILE_REQUESTS:,}",
                "every intended send time is held in memory: shorten the profile",
            )
    else:
        rates = parse.parse_float_list(str(rate), "rate") if rate is not None else []
        peak_rps, profile = (rates[-1] if rates else 0.0), None
    if peak_rps > MAX_RATE_RPS:
        raise BadInput(
            f"--rate {peak_rps:g} is above the limit of {MAX_RATE_RPS:,.0f} requests/s",
            "the open-loop schedule holds every intended send time in memory, and one process"
            " cannot send that fast: the figures would measure the generator, not the model",
        )
    if load == LoadKind.OPEN and not rates and not peak_search:
        raise BadInput(
            "--load open needs --rate",
            "e.g. --load open --rate 100,200 (or, in a sweep, --latency-target p99=20ms without"
            " --rate to search each config's peak rate)",
        )
    if profile is not None and load != LoadKind.OPEN:
        raise BadInput(f"--rate {rate} is an open-loop rate profile", "add --load open")
    return rates, profile


def trace_of(
    load: LoadKind, opts: TraceOptions, data_source: str | None, batch_sizes: tuple[int, ...]
) -> Trace | None:
    """The trace `--load trace` replays, read and checked now (None for other loads)."""
    from benchbox.data.trace import trace_info

    given = [
        f
        for f, v in (
            ("--trace", opts.file),
            ("--trace-column", opts.column),
            ("--speed", opts.speed),
        )
        if v is not None
    ]
    if load != LoadKind.TRACE:
        if given:
            raise BadInput(f"{given[0]} applies to --load trace only", "add --load trace")
        return None
    if opts.file is None and opts.column is None:
        raise BadInput(
            "--load trace needs the arrival times: --trace FILE or --trace-column NAME",
            "e.g. --load trace --trace offsets.txt, or --data requests.jsonl --trace-column ts:ms",
        )
    if opts.file is not None and opts.column is not None:
        raise BadInput("give --trace FILE or --trace-column NAME, not both")
    speed = parse.parse_speed(opts.speed) if opts.speed is not None else 1.0
    column, unit = parse.parse_trace_column(opts.column) if opts.column else (None, "s")
    if column is not None and batch_sizes != (1,):
        raise BadInput(
            "--trace-column replays one row a request, so the batch size is 1",
            "leave --batch out (or give --trace FILE to batch the inputs)",
        )
    return trace_info(opts.file, column, unit, speed, data_source)


def shaped_settings(
    settings: MeasureSettings, spec: SweepSpec, opts: MeasureOptions
) -> MeasureSettings:
    """The measuring settings of a rate profile's or a trace's cell: its length is the measured
    duration (after a fixed warm-up, so the schedule knows where the measured part starts)."""
    if spec.rate_profile is not None:
        span_s, what = (
            parse.profile_duration_s(parse.parse_rate_profile(spec.rate_profile)),
            "rate profile",
        )
    elif spec.trace is not None:
        span_s, what = spec.trace.duration_s / spec.trace.speed, "trace"
    else:
        return settings
    if opts.duration is not None:
        raise BadInput(
            f"--duration does not apply to a {what}: its length ({span_s:g}s) is the "
            "measured duration",
            "leave --duration out",
        )
    if settings.warmup_s is None:
        raise BadInput(f"a {what} needs a fixed --warmup, not auto", "e.g. --warmup 1s")
    if span_s < MIN_TIMING_S:
        raise BadInput(f"the {what} lasts {span_s:g}s, too short to time requests in")
    return replace(
        settings,
        duration_s=span_s,
        max_duration_s=span_s,
        min_duration_s=min(settings.min_duration_s, span_s),
    )


def dynamic_batching_spec(
    spec: SweepSpec,
    text: str,
    model_path: str,
    shapes: dict[str, int | str],
    target: LatencyTarget | None,
    concurrency_given: bool,
) -> SweepSpec:
    """The spec with `--dynamic-batching` settings (`auto` expanded for the model and target)."""
    if spec.load_kind != LoadKind.OPEN:
        raise BadInput(
            "--dynamic-batching batches one-sample requests arriving on an open-loop schedule",
            "add --load open (and --latency-target p99=20ms to find each config's peak rate)",
        )
    batchings = peak.batching_grid(text, model_mod.inspect_model(model_path, shapes), target)
    concurrencies = spec.concurrencies if concurrency_given else (1,)
    return replace(spec, dynamic_batching=tuple(batchings), concurrencies=concurrencies)


def cell_timeout_s(text: str) -> float | None:
    """--cell-timeout: None for 'auto', else seconds."""
    if text.strip().lower() == "auto":
        return None
    return parse.parse_duration_s(text, "--cell-timeout")


def ray_generators(ray: RayOptions | None, load: str, rate: str | None) -> RayGenerators | None:
    """Where the generators run (`--ray`), checked: they send an open-loop schedule at given
    rates, so a closed loop or a peak-rate search is BadInput."""
    if ray is None:
        return None
    if load != LoadKind.OPEN or rate is None:
        raise BadInput(
            "generators on Ray send one open-loop schedule: give --load open --rate R[,R...]",
            "a closed loop or a peak-rate search runs its generators on this machine (no --ray)",
        )
    return RayGenerators(
        address=ray.address or "auto",
        group=ray.group,
        group_label=ray.group_label,
        placement_timeout_s=parse.parse_duration_s(ray.placement_timeout, "--placement-timeout"),
        partial=ray.partial,
    )
