"""The data every stage shares: configs, loads, cells, results and reports, as frozen dataclasses.

Report format history (the JSON written by `report_to_json`; keys are stable):

- benchbox.report/1 (0.1.0): schema, benchbox_version, created, host, model, profile, settings,
  cells[id, config, load, status, reason, warnings, result], recommendation.
  Fields that later features fill (CIs, issue delay, power, cost, queue/compute split, peak rate)
  are present as null until measured.
  Within 1: host.runtimes (versions of every runtime: onnxruntime, openvino), cell warnings that
  label how a cell ran (host-copies, io-binding, precision), result.peak_rate_rps/queue_ms/
  compute_ms/batch_size_counts for the serving emulation, settings.idle_power.
- benchbox.report/1.1 (0.1.0, same keys, now typed): cell warnings are {kind, text} objects (1.0
  wrote "kind: text" strings; both load); issue_delay_ms gains mean and p90 (queue_ms/compute_ms
  had them), so all three are one spread; settings, profile and histogram are typed (keys
  unchanged); batch_size_counts keys are batch sizes (ints in memory, strings in JSON).
  Within 1.1 (additions with defaults): model.batch_dims (symbolic dims tied to the batch
  with `--shape NAME=batch`, also a value "batch" in settings.shapes) and model.input_values
  (`--input NAME=VALUE`). Loading checks values, not only types: numbers are finite, measured
  figures non-negative, latencies ordered, CIs hold their point, cell ids unique.
- benchbox.report/1.2: report.target (written only for a remote server: URL, protocol, server
  name/version/extensions, wire format, statistics), result.errors/error_rate (failed requests,
  never timed), result.server_split (the server's statistics diffed over the measured interval),
  result.generator (load generator processes and busy share). Cells measured on a server have
  device `remote`; `host` is the client.
- benchbox.report/1.3: host.ray_node_id and host.ray_group, set when `benchbox fleet` measured
  the report on a node of a Ray cluster (null otherwise).

- benchbox.report/2 (0.2.0, trials): every measured cell is measured in independent trials.
  result.latency_ms percentiles and result.latency_ci_ms are now between-trial figures (the
  geometric mean of the trials' values, and a Student-t interval on their logs): a change of
  meaning, hence the major version. New: result.trials (count), result.per_trial (each trial's
  throughput, latency summary, status and place in the trial order), result.ci_level
  ("between-trial", or "within-trial" for a single trial), result.within_trial_ci_ms (the
  order-statistic CIs of the pooled requests), result.throughput_ci_ips,
  recommendation.tied, settings.trials. Reports of 1.x load as holding one trial each
  (trials 1, ci_level "within-trial", their CIs kept as the within-trial ones).
  Within 2 (same keys, now typed): profile.hardware (ProfileHardware, the keys a profile
  states), model.input_values (InputValues, the object {name: value}) and
  settings.latency_target (LatencyTarget, still written as text: its canonical form `p99=50ms`,
  where earlier reports hold the text as given, e.g. `P99=0.05s`; both load).
- Within 2 (additions with defaults, written as benchbox.report/2; a key left unset is
  not written, so an older report is written back with the keys it had):
  - config.precision ("fp32" default; cell ids gain a `/fp16`,
    `/int8d` or `/int8s` segment before the load for other precisions only, so fp32 ids are
    unchanged), cell.accuracy (each output against the fp32 CPU reference: max abs error,
    relative error, cosine, top-1 agreement with its count, label accuracy; `flag` when an fp32
    cell already differs), report.variants (per precision: method, path, sha256, size, converter
    and its version, calibration source, or the reason it could not be built; written only when
    a sweep asked for precisions), settings.spec.precisions, settings.accuracy_samples and
    settings.accuracy (the bounds as given), recommendation.accuracy (the bounds judged).
  - result.ci_df ({figure: degrees of freedom} of the
    between-trial CIs once moderated toward the sweep's pool; null when not moderated).
    Between-trial percentile CIs are now coherent (a percentile's lower bound is at least the
    lower percentiles' estimates and the fastest request, its upper bound at most the slowest
    request): a change of value, not of meaning. host.ruler ({kind, per_round_s}: the built-in
    reference workload timed once per trial round; null in reports without one).
  - target.request_timeout_s (--request-timeout; null in older
    reports), target.insecure (--insecure: the TLS certificate was not verified), target.ca_cert
    (--ca-cert file). target.url and model.path of a remote report hold the URL without userinfo
    and with token-like query values replaced (benchbox.redact).
  - result.generator.busy_shares (each generator process's busy share; empty in older
    reports), result.generator.auto (`--generators auto` chose the count), and
    result.generator.limited (the generators, not the server, were the limit: such a cell is
    never recommended); both false in older reports.
  - result.session_rss_mb, the peak RSS (MiB) while the cell's
    sessions were created (result.rss_mb stays the peak while measuring); `--max-memory-mb`
    judges the larger of the two. profile.builtin and profile.shadows_builtin: whether the
    sweep's profile was shipped with benchbox, or a user's file over a built-in of that name,
    decided where the sweep ran (None: not recorded), so views need not ask the renderer's install.
  - report.data (issue 22, `--data SOURCE`): the data the requests came from: kind, source (path or
    URL without credentials), sha256 of the samples read, samples_read/samples_used/sampled (past
    --data-limit a seeded sample), limit_bytes, seed, table/query, data_map, and the shape histogram
    (length_dim and length_counts: samples per size of that dim). Null for synthetic inputs.
  - result.buckets (issue 22): per power-of-two bucket of the request's padded length, the
    requests measured and their latency summary, pooled over the cell's trials by the cell's
    own between-trial rule. Empty for fixed-shape runs. result.repeat_check: one request repeated
    against the distinct requests of its shape (MLPerf's TEST04): their median latencies and the
    ratio, measured before a worker's first cell on --data (null elsewhere).
  - result.generator.nodes, ray_group, percentiles_from, partial (issue 26, `--ray ADDRESS
    --generators N`): the generator nodes of a Ray cluster, each with its clock offset from the
    driver (and the round trip it was read from), requests, errors, issue-delay p99 (the
    generator's own lateness), pool-wait p99, busy share and why it was lost; percentiles_from
    "merged-histogram" when the latency figures are read from the nodes' histograms merged
    exactly (mean and std then from bucket midpoints).
  - load.profile (issue 22, `--rate 100:30s,500:30s` or `100..500:60s`): an open loop's rate
    profile, canonical text; load.rate_rps is then the profile's mean rate. load.kind "trace"
    (`--load trace`) with load.trace (Trace: source `file:PATH` or `column:NAME:UNIT`, requests,
    duration_s of the trace as recorded, speed) and load.rate_rps its mean rate at that speed.
    settings.spec.rate_profile and settings.spec.trace likewise (left out while unset). Cell ids
    gain `open-r<profile>-c<N>` and `trace-n<requests>-x<speed>-c<N>`.
  - data.label_column (`--data-label COLUMN`): the column read as each sample's class; the
    accuracy check then fills label_correct/label_count on classification-like outputs.
  - target.ray_group: the Ray group whose nodes ran the generators (`--ray`); null when they ran
    on the client.

Additions bump the minor part of the version (`benchbox.report/1.1`), renames or removals the major
one. Loading refuses a newer major version and ignores unknown keys of a newer minor one.
This module imports nothing of benchbox but `errors` and `quantity` (the latency target's grammar).
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from benchbox.errors import BadInput
from benchbox.quantity import LatencyTarget, parse_target

SCHEMA_NAME = "benchbox.report"
SCHEMA_MAJOR = 2
SCHEMA_MINOR = 0
OLDEST_MAJOR = 1  # the oldest major version that still loads (upgraded on reading)
SCHEMA_ID = f"{SCHEMA_NAME}/{SCHEMA_MAJOR}"

Status = Literal["ok", "unstable", "failed", "skipped", "pending"]
MEASURED: frozenset[str] = frozenset({"ok", "unstable"})  # statuses whose cells hold a result
LoadKind = Literal["closed", "open", "offline", "trace"]
PERCENTILE_KEYS = ("p50", "p90", "p95", "p99", "p99_9")
# The precisions a model can be measured at, and each one's cell-id segment (none for fp32).
PRECISIONS = ("fp32", "fp16", "int8-dynamic", "int8-static")
PRECISION_SEGMENTS = {"fp16": "fp16", "int8-dynamic": "int8d", "int8-static": "int8s"}


# ---------------------------------------------------------------- host and model


def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


@dataclass(frozen=True)
class GpuInfo:
    name: str
    memory_gb: float | None = None
    driver: str | None = None
    index: int | None = None
    uuid: str | None = None


@dataclass(frozen=True)
class HostInfo:
    hostname: str
    os: str
    cpu_model: str
    cpu_cores_logical: int
    cpu_cores_physical: int | None
    memory_gb: float
    python: str
    onnxruntime: str
    providers: tuple[str, ...] = ()
    gpus: tuple[GpuInfo, ...] = ()
    # Every inference runtime installed, with its version ({"onnxruntime": .., "openvino": ..}).
    runtimes: dict[str, str] = field(default_factory=dict)
    # Set when a fleet measured the report on a Ray node: that node's id and its group.
    ray_node_id: str | None = None
    ray_group: str | None = None
    # 2.1: how fast this machine ran the built-in reference workload in this run's trial rounds
    ruler: Ruler | None = None


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output: dims are ints or symbolic names (str)."""

    name: str
    dtype: str
    shape: tuple[int | str, ...]


@dataclass(frozen=True)
class ModelInfo:
    path: str
    sha256: str
    opset: int | None
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...] = ()
    # The batch dimension: "dynamic" (symbolic first dim), a fixed int, or None (no batch axis).
    batch: int | str | None = "dynamic"
    # Values used for symbolic non-batch dims, and whether each came from the user or a default.
    dims: dict[str, int] = field(default_factory=dict)
    dims_defaulted: tuple[str, ...] = ()
    # Symbolic dims tied to the batch size by the user (`--shape state_batch=batch`).
    batch_dims: tuple[str, ...] = ()
    # Values fed to inputs instead of synthesized data (`--input sr=16000`).
    input_values: InputValues = field(default_factory=lambda: InputValues())


@dataclass(frozen=True, eq=False)
class InputValues(Mapping[str, "float | list[Any]"]):
    """Values fed to inputs instead of synthesized data (`--input sr=16000`), by input name: a
    number fills the tensor, a nested list is the tensor (broadcast to the input's shape). Its
    JSON form is the object {name: value}; as a mapping it reads the same."""

    names: tuple[str, ...] = ()
    values: tuple[float | list[Any], ...] = ()

    @classmethod
    def of(cls, values: Mapping[str, float | list[Any]]) -> InputValues:
        """The values of a {name: value} mapping, in its order."""
        return cls(tuple(values), tuple(values.values()))

    def __getitem__(self, name: str) -> float | list[Any]:
        if name not in self.names:
            raise KeyError(name)
        return self.values[self.names.index(name)]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


# ---------------------------------------------------------------- configs and loads


@dataclass(frozen=True)
class DynamicBatching:
    """Server-style batching (Triton semantics): release at preferred/max size or after delay."""

    max_batch: int
    delay_ms: float
    preferred: tuple[int, ...] = ()


@dataclass(frozen=True)
class ServingConfig:
    device: str = "cpu"
    intra_op_threads: int = 1
    instances: int = 1
    batch_size: int = 1
    dynamic_batching: DynamicBatching | None = None
    graph_optimization: str = "all"
    io_binding: bool = False
    # (2.1) The model variant measured: fp32 (the model as given), fp16, int8-dynamic, int8-static.
    precision: str = "fp32"


@dataclass(frozen=True)
class Trace:
    """The arrival times a `--load trace` cell replays: where they came from (`file:PATH`, or
    `column:NAME:UNIT` of the --data source), how many, the span from the first to the last as
    recorded (seconds), and the speed they were replayed at (2.0: twice as fast)."""

    source: str
    requests: int
    duration_s: float
    speed: float = 1.0


@dataclass(frozen=True)
class Load:
    """How requests arrive; `concurrency` is the worker count (closed, offline) or pool cap.

    `profile` (open loop): the rate profile, canonical text (`100:30s,500:30s`, `100..500:60s`),
    whose mean rate is `rate_rps`. `trace` (kind trace): the arrival times replayed."""

    kind: LoadKind = "closed"
    concurrency: int | None = 1
    rate_rps: float | None = None
    distribution: str | None = None
    profile: str | None = None
    trace: Trace | None = None


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class LatencyStats:
    """Latency summary in milliseconds; percentiles are nearest-rank on the raw samples."""

    mean: float
    std: float
    min: float
    p50: float
    p90: float
    p95: float
    p99: float
    p99_9: float
    max: float


CiLevel = Literal["between-trial", "within-trial"]


@dataclass(frozen=True)
class TrialSummary:
    """One trial of a cell: its own throughput and latency summary, and where it ran in the
    sweep's trial order (`order`, 0-based, None when unknown)."""

    throughput_ips: float
    latency_ms: LatencyStats
    requests: int
    duration_s: float
    status: Status = "ok"
    order: int | None = None


@dataclass(frozen=True)
class Spread:
    """A per-request duration column in ms (send delay, queue, compute): mean, p50, p90, p99, max.

    mean and p90 are None in 1.0 reports' issue_delay_ms, which held p50, p99 and max only.
    """

    p50: float
    p99: float
    max: float
    mean: float | None = None
    p90: float | None = None


@dataclass(frozen=True)
class Histogram:
    """Log-bucketed latency counts (HdrHistogram-style), sparse and exactly mergeable."""

    lowest_ms: float
    growth: float
    buckets: tuple[tuple[int, int], ...]  # (bucket index, count), index ascending, counts > 0
    count: int
    min_ms: float  # exact min and max of the samples (0 for an empty histogram)
    max_ms: float
    unit: Literal["ms"] = "ms"


def check_histogram(h: Histogram, where: str = "latency histogram") -> None:
    """BadInput when a histogram's layout or counts are inconsistent (e.g. hand-edited)."""

    def bad(why: str) -> BadInput:
        return BadInput(f"{where}: {why}", "the report may be hand-edited or truncated")

    if not (math.isfinite(h.lowest_ms) and h.lowest_ms > 0):
        raise bad(f"lowest_ms must be a positive number, got {h.lowest_ms}")
    if not (math.isfinite(h.growth) and h.growth > 1.0):
        raise bad(f"growth must be greater than 1, got {h.growth}")
    if h.count < 0:
        raise bad("count must be a non-negative integer")
    last = -1
    for i, c in h.buckets:
        if c <= 0 or i < 0:
            raise bad(f"bad bucket {[i, c]} (expected [index >= 0, count > 0])")
        if i <= last:
            raise bad("bucket indices must be strictly increasing")
        last = i
    total = sum(c for _, c in h.buckets)
    if total != h.count:
        raise bad(f"bucket counts sum to {total}, not count={h.count}")
    if h.count and not 0 <= h.min_ms <= h.max_ms:
        raise bad("min_ms/max_ms are inconsistent")


@dataclass(frozen=True)
class ServerSplit:
    """Where a request's time went on the server, from its statistics extension (Triton's),
    diffed over the measured interval; times are means per request in ms."""

    requests: int
    queue_ms: float
    compute_ms: float  # compute_input + compute_infer + compute_output
    compute_input_ms: float
    compute_infer_ms: float
    compute_output_ms: float
    server_ms: float | None  # the server's whole handling time (its `success` duration)
    network_client_ms: float | None  # client-measured send-to-answer minus queue and compute
    inferences: int
    executions: int
    # batch size the server formed -> executions at that size (from batch_stats)
    batch_sizes: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class GeneratorNodeStats:
    """One generator node of a Ray cluster (`--ray`): its clock against the driver's, what it
    sent, how late, and why it was lost (None: it finished)."""

    node_id: str
    clock_offset_ms: float  # the node's wall clock minus the driver's (min-RTT estimate)
    clock_rtt_ms: float  # the round trip the offset was read from (its error is at most half)
    requests: int
    errors: int
    issue_delay_p99_ms: float | None
    busy_share: float
    lost: str | None = None
    pool_wait_p99_ms: float | None = None  # waits for a free slot past the intended time


@dataclass(frozen=True)
class GeneratorStats:
    """The load generator's own load: processes used, the busiest one's share of time, each
    one's share, whether `--generators auto` chose the count, and whether the generators
    (not the server) were the limit.

    On a Ray cluster (`nodes` non-empty) `processes` counts the nodes that finished and the
    latency figures come from their histograms merged exactly (`percentiles_from`)."""

    processes: int
    busy_share: float
    busy_shares: tuple[float, ...] = ()
    auto: bool = False
    limited: bool = False
    nodes: tuple[GeneratorNodeStats, ...] = ()
    ray_group: str | None = None
    percentiles_from: str | None = None  # "merged-histogram" on a Ray cluster; None: raw values
    partial: bool = False  # a node was lost and the others finished (--ray-partial)


@dataclass(frozen=True)
class Result:
    requests: int
    inferences: int
    duration_s: float
    throughput_ips: float
    requests_per_s: float
    latency_ms: LatencyStats
    # {"p50": [lo, hi] | None, ...}; None means the sample is too small for a bound.
    latency_ci_ms: dict[str, list[float] | None] | None = None
    confidence: float | None = None
    issue_delay_ms: Spread | None = None
    achieved_rate_rps: float | None = None
    cpu_util_pct: float | None = None
    rss_mb: float | None = None  # peak RSS while measuring
    gpu_mem_mb: float | None = None
    gpu_util_pct: float | None = None
    power_w: float | None = None
    power_above_idle_w: float | None = None
    energy_j_per_inference: float | None = None
    power_source: str | None = None
    cost_usd_per_million: float | None = None
    histogram: Histogram | None = None
    windows: int | None = None
    queue_ms: Spread | None = None
    compute_ms: Spread | None = None
    batch_size_counts: dict[int, int] | None = None  # batch size -> batches formed
    peak_rate_rps: float | None = None
    samples_ms: list[float] | None = None
    # Remote targets: requests that failed (non-2xx, gRPC errors, timeouts), never timed.
    errors: int | None = None
    error_rate: float | None = None
    server_split: ServerSplit | None = None
    generator: GeneratorStats | None = None
    # Trials (2.0): the figures above come from `trials` independent trials, each summarized in
    # `per_trial`; latency_ci_ms and throughput_ci_ips are between-trial CIs (`ci_level` says
    # so; "within-trial" when there was one trial), within_trial_ci_ms the order-statistic CIs
    # of the pooled requests, which cover the noise within a run only.
    trials: int = 1
    per_trial: tuple[TrialSummary, ...] = ()
    ci_level: CiLevel | None = None
    within_trial_ci_ms: dict[str, list[float] | None] | None = None
    throughput_ci_ips: list[float] | None = None
    # 2.1: the degrees of freedom of each between-trial CI ("p50" .. "p99_9", "throughput"):
    # d0 + d when moderated toward the sweep's pool (measure.moderate), the cell's own d when
    # it kept its own spread; None when no pool was fitted (the plain t interval on n - 1).
    ci_df: dict[str, float] | None = None
    session_rss_mb: float | None = None  # 2.1: peak RSS while the sessions were created
    buckets: tuple[BucketStat, ...] = ()  # 2.1: per shape bucket, for runs on --data
    repeat_check: RepeatCheck | None = None  # 2.1: one sample repeated vs distinct (--data)


@dataclass(frozen=True)
class RepeatCheck:
    """One request repeated against the distinct requests of its shape (`measure.repeat`): the
    median latencies of each in alternating rounds, and distinct over repeated."""

    distinct: int
    length: int
    repeated_p50_ms: float
    distinct_p50_ms: float
    ratio: float


@dataclass(frozen=True)
class BucketStat:
    """The requests of one shape bucket: padded length in (upper/2, upper] along `dim`."""

    dim: str
    upper: int
    requests: int
    latency_ms: LatencyStats


@dataclass(frozen=True)
class CellWarning:
    """A label on a cell: a short kind (`unstable`, `io-binding`, ...) and what it means."""

    kind: str  # a `warning_kinds.WarningKind` (a str); a newer report's unknown kind loads as text
    text: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.text}" if self.text else self.kind


def legacy_warning(text: str) -> CellWarning:
    """A 1.0 report's "kind: text" warning string as a CellWarning."""
    kind, _, rest = text.partition(":")
    return CellWarning(kind.strip(), rest.strip())


@dataclass(frozen=True)
class OutputAccuracy:
    """One output of a cell against the fp32 CPU reference on the same inputs (2.1).

    rel_error is the relative L2 error (||y - ref|| / ||ref||); cosine the mean over samples of
    the per-sample cosine similarity (cosine_min its lowest). top1_agree of top1_count positions
    took the same argmax over the last dim (None: not classification-like); label_correct of
    label_count samples matched the data source's label (None: no label column).
    """

    name: str
    max_abs_error: float
    rel_error: float
    cosine: float
    cosine_min: float
    top1_agree: int | None = None
    top1_count: int | None = None
    label_correct: int | None = None
    label_count: int | None = None


@dataclass(frozen=True)
class Accuracy:
    """A cell's outputs compared with the fp32 CPU reference (2.1): on `samples` inputs from
    `source` ("synthetic", or a data source's name), outside the timed path."""

    samples: int
    source: str
    outputs: tuple[OutputAccuracy, ...] = ()
    reference: str = "fp32 on cpu (onnxruntime CPUExecutionProvider)"
    # Set when an fp32 cell's outputs already differ from the reference (an EP that computes in
    # lower precision): the largest error, in words.
    flag: str | None = None
    error: str | None = None  # why the comparison could not run


@dataclass(frozen=True)
class VariantInfo:
    """One precision of the model as measured (2.1): how it was built, or why it was not."""

    precision: str
    method: str
    path: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    converter: str | None = None
    converter_version: str | None = None
    calibration: str | None = None  # int8-static: "synthetic (N samples)" or the data source
    error: str | None = None


@dataclass(frozen=True)
class Cell:
    id: str
    config: ServingConfig
    load: Load
    status: Status = "pending"
    reason: str | None = None
    result: Result | None = None
    warnings: tuple[CellWarning, ...] = ()
    accuracy: Accuracy | None = None  # (2.1) measured after the cell, with the same session


# ---------------------------------------------------------------- recommendation and report


@dataclass(frozen=True)
class Fleet:
    qps: float
    replicas: int
    headroom: float
    usd_per_hour: float | None


@dataclass(frozen=True)
class Recommendation:
    objective: str
    percentile: str
    target_ms: float
    profile: str | None
    winner: str | None
    runners_up: tuple[str, ...] = ()
    pareto: tuple[str, ...] = ()
    rejected: dict[str, str] = field(default_factory=dict)
    point_estimate_used: tuple[str, ...] = ()
    fleet: Fleet | None = None
    note: str | None = None
    # (2.0) The cells the objective cannot tell apart from the best (their CIs overlap), the
    # winner first; the winner among them is picked by `TIE_RULE`. Empty when there is no tie.
    tied: tuple[str, ...] = ()
    accuracy: tuple[str, ...] = ()  # (2.1) the accuracy bounds judged, as given

    @property
    def target(self) -> LatencyTarget:
        """The latency target the recommendation was made under."""
        return LatencyTarget(self.percentile, self.target_ms)


@dataclass(frozen=True)
class PowerSpec:
    """What a machine draws: idle and full-load watts, facility overhead and the price of power."""

    idle_w: float
    tdp_w: float
    pue: float = 1.0
    usd_per_kwh: float | None = None
    energy_included: bool = True  # cloud prices include power; on-premises machines pay for it


@dataclass(frozen=True)
class Profile:
    """A machine's price and power, with the public source of its price (`cost` loads them)."""

    name: str
    description: str
    price_per_hour_usd: float
    price_source: str
    price_date: str
    power: PowerSpec
    hardware: ProfileHardware = field(default_factory=lambda: ProfileHardware())
    path: str | None = None
    # 2.1, decided where the sweep ran (None: not recorded): whether the file is one shipped with
    # benchbox, and whether it is a user's file that wins over a built-in of the same name.
    builtin: bool | None = None
    shadows_builtin: bool | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.hardware, ProfileHardware):  # a TOML table, a caller's dict
            hardware = from_dict(ProfileHardware, dict(self.hardware), "profile hardware")
            object.__setattr__(self, "hardware", hardware)


@dataclass(frozen=True, eq=False)
class ProfileHardware(Mapping[str, Any]):
    """A profile's `[hardware]`: the machine it prices, as host matching reads it (`pricing`).
    A key the profile leaves out is None; `cost.HARDWARE_KEYS` checks a TOML's types."""

    cpu: str | None = None  # "AMD EPYC 9R14 (4th gen EPYC)": vendor, family and part read from it
    cpu_vendor: str | None = None
    cpu_family: str | None = None
    vcpus: int | None = None
    memory_gb: int | float | None = None  # as the TOML wrote it (16, 15.25): its JSON unchanged
    gpus: str | None = None  # "1x NVIDIA A10G 24GB": count and model read from it
    gpu_model: str | None = None
    gpu_count: int | None = None

    # Read by key, it is the object its JSON is (the keys it states): `hw["vcpus"]`, `hw.get(..)`.
    def __getitem__(self, key: str) -> Any:
        value = getattr(self, key, None) if key in _field_names(type(self)) else None
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return (k for k in _field_names(type(self)) if getattr(self, k) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass(frozen=True)
class SweepSpec:
    """The axes of a sweep, as the user gave them."""

    devices: tuple[str, ...] = ("cpu",)
    batch_sizes: tuple[int, ...] = (1,)
    concurrencies: tuple[int, ...] = (1,)
    threads: tuple[int, ...] = (1,)
    instances: tuple[int, ...] = (1,)
    load_kind: str = "closed"
    rates_rps: tuple[float, ...] = ()
    arrival: str = "poisson"
    dynamic_batching: tuple[DynamicBatching, ...] = ()
    io_binding: bool = False
    precisions: tuple[str, ...] = ("fp32",)  # (2.1) written only when not just fp32
    rate_profile: str | None = None  # (2.1) one open-loop cell's rate profile, canonical text
    trace: Trace | None = None  # (2.1) the arrival times of --load trace


@dataclass(frozen=True)
class MeasureSettings:
    """How long and how carefully each cell is measured."""

    warmup_s: float | None = 1.0  # None: warm up until two consecutive windows agree
    duration_s: float | None = None  # a fixed measuring time with no early stop
    window_s: float = 1.0
    min_duration_s: float = 3.0
    max_duration_s: float = 15.0
    stability: float = 0.10
    confidence: float = 0.95
    save_samples: bool = False
    seed: int = 0
    warmup_max_s: float = 10.0
    # (percentile, ms): stop as soon as that percentile is above the bound with confidence (its
    # lower CI bound), since the cell cannot meet the target; used by the adaptive search.
    stop_above: tuple[float, float] | None = None
    # Requests a measurement needs before it may stop early: None asks for enough for a p99
    # confidence bound; a sweep with several trials per cell asks for fewer (0), since its
    # bound comes from the spread of the trials.
    min_requests: int | None = None
    # False: leave out the within-trial order-statistic CIs (the trial phase of a sweep, whose
    # CIs come from the trials; its fresh workers then start without importing scipy).
    within_cis: bool = True


@dataclass(frozen=True)
class TrialPolicy:
    """How many trials a cell gets: a fixed count, or auto (None): at least `min_trials` for
    the cells in play, then more until the deciding figure's CI is within `precision` (relative
    half-width), up to `max_trials`. `seed` draws the order of the trials."""

    trials: int | None = None  # None: auto
    max_trials: int = 10
    precision: float = 0.05
    seed: int = 0
    min_trials: int = 3

    @property
    def auto(self) -> bool:
        return self.trials is None

    @property
    def most(self) -> int:
        """The most trials any cell can get under this policy."""
        return self.trials if self.trials is not None else self.max_trials


@dataclass(frozen=True)
class IdlePower:
    """The CPU's idle power measured before a sweep; `detail` says why it could not be read."""

    power_w: float | None
    source: str | None
    seconds: float | None = None
    detail: str | None = None


@dataclass(frozen=True)
class SweepSettings:
    """A sweep's options as given, stored in the report: enough to resume it."""

    model: str = ""
    spec: SweepSpec = field(default_factory=SweepSpec)
    measure: MeasureSettings = field(default_factory=MeasureSettings)
    shapes: dict[str, int | Literal["batch"]] = field(default_factory=dict)  # "batch": tied
    search: str = "grid"
    latency_target: LatencyTarget | None = None
    profile: str | None = None
    idle_power: IdlePower | None = None
    trials: TrialPolicy | None = None  # None: a 1.x report, one trial per cell
    accuracy_samples: int | None = None  # (2.1) None: accuracy not measured
    accuracy: tuple[str, ...] = ()  # (2.1) the accuracy bounds as given


@dataclass(frozen=True)
class TargetInfo:
    """The server a report's cells were measured on (`--target URL`); `host` is the client."""

    url: str
    protocol: str  # "http" | "grpc"
    model_name: str
    model_version: str = ""
    server_name: str = ""
    server_version: str = ""
    extensions: tuple[str, ...] = ()
    wire: str = ""  # "binary", "json" or "raw_input_contents"
    statistics: bool = False  # whether the server's statistics could be read
    request_timeout_s: float | None = None  # --request-timeout: a request's bound (None: old)
    insecure: bool = False  # --insecure: the server's TLS certificate was not verified
    ca_cert: str | None = None  # --ca-cert: the PEM file of CAs trusted for the server
    ray_group: str | None = None  # --ray: the generators ran on this group of a Ray cluster


@dataclass(frozen=True)
class DataInfo:
    """Where a run's requests came from (`--data`): enough to tell whether two reports measured
    the same data."""

    kind: str
    source: str
    sha256: str
    samples_read: int
    samples_used: int
    sampled: bool = False
    limit_bytes: int | None = None
    seed: int = 0
    table: str | None = None
    query: str | None = None
    data_map: dict[str, str] = field(default_factory=dict)
    length_dim: str | None = None
    length_counts: dict[int, int] = field(default_factory=dict)
    label_column: str | None = None  # --data-label: each sample's class, for label accuracy


@dataclass(frozen=True)
class Report:
    host: HostInfo
    model: ModelInfo
    cells: tuple[Cell, ...]
    settings: SweepSettings | None = None
    profile: Profile | None = None
    recommendation: Recommendation | None = None
    benchbox_version: str = ""
    created: str = ""
    schema: str = SCHEMA_ID
    target: TargetInfo | None = None  # a remote server; None for in-process targets
    variants: tuple[VariantInfo, ...] = ()  # (2.1) the model variants measured, per precision
    data: DataInfo | None = None  # (2.1) the --data source; None for synthetic inputs


@dataclass(frozen=True)
class Ruler:
    """A fixed built-in reference workload (`kind`), timed once per trial round: seconds per
    loop of each round, in round order. Compares divide by its ratio (measure.ruler)."""

    kind: str
    per_round_s: tuple[float, ...] = ()


# ---------------------------------------------------------------- helpers

_UNSET_21: dict[type, tuple[str, ...]] = {
    Profile: ("builtin", "shadows_builtin"),
    Result: ("session_rss_mb",),
}


def cell_id(config: ServingConfig, load: Load) -> str:
    """A short stable id such as `cpu/t2/i1/b8/closed-c4`."""
    parts = [config.device, f"t{config.intra_op_threads}", f"i{config.instances}"]
    if config.dynamic_batching is not None:
        db = config.dynamic_batching
        parts.append(f"db{db.max_batch}-{_num(db.delay_ms)}ms")
    else:
        parts.append(f"b{config.batch_size}")
    if config.io_binding:
        parts.append("iob")
    if config.precision != "fp32":
        parts.append(PRECISION_SEGMENTS.get(config.precision, config.precision))
    if load.kind == "closed":
        parts.append(f"closed-c{load.concurrency}")
    elif load.kind == "open" and load.profile:
        parts.append(f"open-r{load.profile}-c{load.concurrency}")
    elif load.kind == "open":
        parts.append(f"open-r{_num(load.rate_rps or 0)}-c{load.concurrency}")
    elif load.kind == "trace" and load.trace is not None:
        t = load.trace
        parts.append(f"trace-n{t.requests}-x{_num(t.speed)}-c{load.concurrency}")
    else:
        parts.append(f"offline-c{load.concurrency}")
    return "/".join(parts)


def _num(x: float) -> str:
    return f"{x:g}"


def replace(obj: Any, **changes: Any) -> Any:
    """dataclasses.replace, re-exported so callers need one import."""
    return dataclasses.replace(obj, **changes)


def to_dict(obj: Any) -> Any:
    """A dataclass tree as plain JSON-ready data (tuples become lists; Load, IdlePower and the
    settings drop null keys they never wrote)."""
    if isinstance(obj, LatencyTarget):  # written as its text, as 2.0 and earlier wrote it
        return obj.text
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        if isinstance(obj, Load | ProfileHardware):
            out = {k: v for k, v in out.items() if v is not None}
        if isinstance(obj, InputValues):  # written as the object {name: value}
            out = {name: to_dict(value) for name, value in obj.items()}
        if isinstance(obj, IdlePower):  # `seconds` when it was read, `detail` when it was not
            out = {k: v for k, v in out.items() if v is not None or k in ("power_w", "source")}
        # Settings keys that 2.0 added are left out while unset, so a 1.x report's settings are
        # written back as they were.
        if isinstance(obj, SweepSettings) and out.get("trials") is None:
            out.pop("trials", None)
        if isinstance(obj, SweepSettings):  # 2.1 keys, left out while unset
            if out.get("accuracy_samples") is None:
                out.pop("accuracy_samples", None)
            if not out.get("accuracy"):
                out.pop("accuracy", None)
        if isinstance(obj, SweepSpec) and out.get("precisions") == ["fp32"]:
            out.pop("precisions", None)
        if isinstance(obj, SweepSpec):
            for key in ("rate_profile", "trace"):
                if out.get(key) is None:
                    out.pop(key, None)
        if isinstance(obj, ServingConfig) and out.get("precision") == "fp32":
            out.pop("precision", None)
        if isinstance(obj, Cell) and out.get("accuracy") is None:
            out.pop("accuracy", None)
        if isinstance(obj, Recommendation) and not out.get("accuracy"):
            out.pop("accuracy", None)
        # 2.1 additions likewise, so an older report is written back with the keys it had.
        for key in _UNSET_21.get(type(obj), ()):
            if out.get(key) is None:
                out.pop(key, None)
        if isinstance(obj, MeasureSettings):
            if out.get("min_requests") is None:
                out.pop("min_requests", None)
            if out.get("within_cis") is True:
                out.pop("within_cis", None)
        if isinstance(obj, Report):
            order = ["schema", "benchbox_version", "created", "host", "model", "target"]
            order += ["variants", "data", "profile", "settings", "cells", "recommendation"]
            # `target` is written for remote servers only: in-process reports keep 1.1's keys;
            # `variants` only when a sweep asked for precisions, `data` only for --data.
            optional = ("target", "variants", "data")
            out = {k: out[k] for k in order if (k not in optional or out[k])}
        return out
    if isinstance(obj, (list, tuple)):
        return [to_dict(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    return obj


def from_dict(cls: type, data: Any, where: str = "") -> Any:
    """Build a dataclass tree from plain data, checking types; unknown keys are ignored.

    The one decoder of the report: BadInput names the path of the first bad value
    (`report.cells[2].result.histogram.count: expected an integer, got "many"`).
    """
    return _build(cls, data, where or cls.__name__)


_HINTS: dict[type, dict[str, Any]] = {}

_EDITED = "the report may be hand-edited or corrupted; restore a copy or re-run the sweep"
_REL = 1e-9  # float slack for comparing figures rounded differently on the way to JSON


def _le(a: float, b: float) -> bool:
    return a <= b + _REL * max(abs(a), abs(b), 1.0)


def check_latency(s: LatencyStats, where: str = "latency_ms") -> None:
    """BadInput when a latency summary is not ordered: min <= p50 <= ... <= p99_9 <= max."""
    names = ("min", *PERCENTILE_KEYS, "max")
    for a, b in zip(names, names[1:], strict=False):
        if not _le(getattr(s, a), getattr(s, b)):
            raise BadInput(
                f"{where}: {a} ({getattr(s, a):g}) is above {b} ({getattr(s, b):g})", _EDITED
            )
    if not (_le(s.min, s.mean) and _le(s.mean, s.max)):
        raise BadInput(f"{where}.mean: {s.mean:g} is outside min … max", _EDITED)


def check_result(r: Result, where: str = "result") -> None:
    """BadInput when a result's confidence intervals are inverted or miss their point value."""
    for key, ci in (r.latency_ci_ms or {}).items():
        if ci is None:
            continue
        at = f"{where}.latency_ci_ms.{key}"
        if len(ci) != 2:
            raise BadInput(f"{at}: expected [low, high], got {len(ci)} values", _EDITED)
        lo, hi = ci
        if not _le(lo, hi):
            raise BadInput(f"{at}: the interval is inverted (low {lo:g} > high {hi:g})", _EDITED)
        point = getattr(r.latency_ms, key, None)
        if point is not None and not (_le(lo, point) and _le(point, hi)):
            raise BadInput(f"{at}: [{lo:g}, {hi:g}] does not contain {key} = {point:g}", _EDITED)
    if r.confidence is not None and not 0 < r.confidence < 1:
        raise BadInput(f"{where}.confidence: {r.confidence:g} is not between 0 and 1", _EDITED)


def check_report(report: Report, where: str = "report") -> None:
    """BadInput when two cells share an id (every rule that picks a cell by id would be lost)."""
    seen: set[str] = set()
    for i, cell in enumerate(report.cells):
        if cell.id in seen:
            raise BadInput(f"{where}.cells[{i}].id: duplicate cell id {cell.id!r}", _EDITED)
        seen.add(cell.id)


# Checks beyond types, run on a dataclass once it is built.
_CHECKS: dict[type, Callable[[Any, str], None]] = {
    Histogram: check_histogram,
    LatencyStats: check_latency,
    Result: check_result,
    Report: check_report,
}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


_INPUT_VALUE = float | list[Any]  # one of InputValues' values


def _build(tp: Any, data: Any, where: str, measured: bool = False) -> Any:
    """`data` as the type `tp`; `measured`: numbers must be non-negative (see `_is_measured`)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return data
    if origin in (typing.Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _build(arg, data, where, measured)
            except BadInput as exc:
                errors.append(exc)
        raise errors[0] if errors else _bad(where, "a value", data)
    if origin is Literal:
        if data not in args:
            raise _bad(where, " or ".join(map(repr, args)), data)
        return data
    if tp is CellWarning and isinstance(data, str):  # 1.0 wrote warnings as "kind: text"
        return legacy_warning(data)
    if tp is LatencyTarget:  # its JSON form is its text, e.g. "p99=50ms"
        if not isinstance(data, str):
            raise _bad(where, 'a latency target like "p99=50ms"', data)
        try:
            return parse_target(data)
        except BadInput as exc:
            raise BadInput(f"{where}: {exc.message}", _EDITED) from None
    if tp is InputValues:  # its JSON form is the object {name: value}
        if not isinstance(data, dict):
            raise _bad(where, "an object", data)
        built = {str(k): _build(_INPUT_VALUE, v, f"{where}.{k}", measured) for k, v in data.items()}
        return InputValues.of(built)
    if dataclasses.is_dataclass(tp):
        return _build_dataclass(tp, data, where, measured)
    if origin is tuple:
        return _build_tuple(args, data, where, measured)
    if origin is list:
        if not isinstance(data, list | tuple):
            raise _bad(where, "a list", data)
        item = args[0] if args else Any
        return [_build(item, x, f"{where}[{i}]", measured) for i, x in enumerate(data)]
    if origin is dict:
        if not isinstance(data, dict):
            raise _bad(where, "an object", data)
        kt, vt = args if len(args) == 2 else (str, Any)
        return {
            _key(kt, k, where): _build(vt, v, f"{where}.{k}", measured) for k, v in data.items()
        }
    if tp is float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise _bad(where, "a number", data)
        return _check_number(float(data), where, measured)
    if tp is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise _bad(where, "an integer", data)
        return _check_number(data, where, measured)
    if tp in (str, bool):
        if not isinstance(data, tp):
            raise _bad(where, tp.__name__, data)
        return data
    return data


def _build_dataclass(tp: type, data: Any, where: str, measured: bool = False) -> Any:
    if not isinstance(data, dict):
        raise _bad(where, "an object", data)
    kwargs = {}
    hints = _hints(tp)
    for f in dataclasses.fields(tp):
        if f.name in data:
            sub = f"{where}.{f.name}"
            sign = _is_measured(tp, f.name, measured)
            kwargs[f.name] = _build(hints[f.name], data[f.name], sub, sign)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise BadInput(f"{where}: missing key '{f.name}'")
    obj = tp(**kwargs)
    check = _CHECKS.get(tp)
    if check is not None:
        check(obj, where)
    return obj


def _build_tuple(args: tuple, data: Any, where: str, measured: bool = False) -> tuple:
    if not isinstance(data, list | tuple):
        raise _bad(where, "a list", data)
    if len(args) == 2 and args[1] is Ellipsis or not args:
        item = args[0] if args else Any
        return tuple(_build(item, x, f"{where}[{i}]", measured) for i, x in enumerate(data))
    if len(data) != len(args):
        raise _bad(where, f"a list of {len(args)}", data)
    pairs = enumerate(zip(args, data, strict=True))
    return tuple(_build(t, x, f"{where}[{i}]", measured) for i, (t, x) in pairs)


# Value rules beyond types, generic over fields so that new fields inherit them: every number in
# a report is finite (the writer stores NaN and infinities as null), and every number under a
# measured figure (a field of a result, a histogram, a spread, a latency summary, or any field
# named with a unit or a count elsewhere) is non-negative.
_MEASURED_CLASSES: set[str] = {"Result"}
_UNIT_SUFFIXES = ("_ms", "_s", "_ips", "_rps", "_mb", "_gb", "_w", "_pct", "_j", "_usd")
_COUNT_NAMES = {"requests", "inferences", "count", "windows", "trials", "instances"}
# Not checked for sign: a send delay may be a hair early; a node's clock may run behind.
_SIGNED_FIELDS = {"issue_delay_ms", "clock_offset_ms"}


def _is_measured(tp: type, name: str, inside: bool = False) -> bool:
    """True when the numbers of field `name` of dataclass `tp` (`inside` a measured field) must
    be non-negative."""
    if name in _SIGNED_FIELDS:
        return False
    if inside or tp.__name__ in _MEASURED_CLASSES:
        return True
    base = name.removesuffix("_per_million").removesuffix("_per_inference")
    return base.endswith(_UNIT_SUFFIXES) or name in _COUNT_NAMES or "usd" in name


def _check_number(value: float | int, where: str, measured: bool) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise BadInput(
            f"{where}: expected a finite number, got {value}",
            _EDITED,
        )
    if measured and value < 0:
        raise BadInput(
            f"{where}: a measured figure cannot be negative, got {value:g}",
            _EDITED,
        )
    return value


def _key(tp: Any, key: Any, where: str) -> Any:
    """A JSON object key (always a string on disk) as the dict's key type."""
    if tp is int:
        if isinstance(key, int) and not isinstance(key, bool):
            return key
        try:
            return int(key)
        except (TypeError, ValueError):
            raise BadInput(f"{where}: key {json.dumps(key)[:60]} is not an integer") from None
    return str(key)


def _bad(where: str, expected: str, got: Any) -> BadInput:
    return BadInput(f"{where}: expected {expected}, got {json.dumps(got)[:60]}")


def report_to_json(report: Report) -> str:
    """The report as JSON text (NaN/inf are written as null)."""
    return json.dumps(finite(to_dict(report)), indent=1) + "\n"


def finite(x: Any) -> Any:
    """Plain JSON data with NaN and infinities replaced by null (strict JSON has neither)."""
    if isinstance(x, float) and (x != x or x in (float("inf"), float("-inf"))):
        return None
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [finite(v) for v in x]
    return x


def parse_schema_id(value: Any) -> tuple[int, int]:
    """(major, minor) of a `benchbox.report/M[.m]` string; BadInput when it is not one."""
    if not isinstance(value, str) or not value.startswith(SCHEMA_NAME + "/"):
        raise BadInput(f"not a benchbox report (schema is {value!r})")
    version = value.split("/", 1)[1]
    try:
        major, _, minor = version.partition(".")
        return int(major), int(minor or 0)
    except ValueError:
        raise BadInput(f"not a benchbox report (schema is {value!r})") from None


def report_from_json(text: str, source: str = "report") -> Report:
    """Parse a report, checking its schema version; never executes anything."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise _too_deep(source) from None
    except json.JSONDecodeError as exc:
        raise BadInput(
            f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            "the file may be truncated or hand-edited; re-run the sweep or restore a copy",
        ) from None
    if not isinstance(data, dict):
        raise BadInput(f"{source} is not a benchbox report (top level is not an object)")
    major, _minor = parse_schema_id(data.get("schema"))
    if not OLDEST_MAJOR <= major <= SCHEMA_MAJOR:
        raise BadInput(
            f"{source} uses report schema {SCHEMA_NAME}/{major}; this benchbox reads {SCHEMA_ID}",
            f"use a benchbox version that writes {SCHEMA_NAME}/{major} to read it",
        )
    if major == 1:
        data = upgrade_v1(data)
    data = dict(data, schema=SCHEMA_ID)
    settings = data.get("settings")
    if isinstance(settings, dict) and "measure" not in settings:
        # 1.0 allowed any object here; only a sweep's settings (with `measure`) mean anything.
        data["settings"] = None
    try:
        return from_dict(Report, data, source)
    except RecursionError:
        raise _too_deep(source) from None


def upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A 1.x report's data in the 2.0 form: each measured cell held one trial, so its CIs are
    within-trial ones and its one trial is its result."""
    cells = []
    for cell in data.get("cells") or []:
        result = cell.get("result") if isinstance(cell, dict) else None
        if isinstance(result, dict) and "trials" not in result:
            trial = {
                k: result.get(k) for k in ("throughput_ips", "latency_ms", "requests", "duration_s")
            }
            trial["status"] = cell.get("status") if cell.get("status") in MEASURED else "ok"
            result = dict(
                result,
                trials=1,
                per_trial=[trial] if None not in trial.values() else [],
                ci_level="within-trial",
                within_trial_ci_ms=result.get("latency_ci_ms"),
            )
            cell = dict(cell, result=result)
        cells.append(cell)
    return dict(data, cells=cells)


def _too_deep(source: str) -> BadInput:
    return BadInput(
        f"{source} is nested too deeply to be a benchbox report",
        "the file may be corrupted or crafted; restore a copy or re-run the sweep",
    )
