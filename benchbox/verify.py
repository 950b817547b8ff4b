"""Verify a recommendation on the real deployment: drive the server with the cell's load and
hold the measured percentile to the same target, by the same rule, as the prediction.

The predicted figure is the in-process cell's percentile with its CI; the recommendation held
the cell to the CI's upper bound, so that bound is what the prediction promises. The measured
figure comes from driving the server (`--target URL`) with the same batch size and load; the
server's own threads, instances and dynamic batching are what it is configured with.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from benchbox import parse
from benchbox.data.samples import SampleSet, check_options, options_of, samples_for
from benchbox.errors import BadInput
from benchbox.measure.cell import MeasureSettings
from benchbox.options import DataOptions
from benchbox.parse import LatencyTarget
from benchbox.recommend import recommend
from benchbox.remote import session as remote
from benchbox.remote.target import parse_headers
from benchbox.schema import (
    MEASURED,
    Cell,
    ModelInfo,
    Report,
    Result,
    ServerSplit,
    ServingConfig,
    cell_id,
    replace,
)
from benchbox.store import load_report
from benchbox.verdict import latency_bound, meets_target


@dataclass(frozen=True)
class VerifyOptions:
    """`benchbox verify`'s options as given."""

    report: str
    target: str
    latency_target: str | None = None
    cell: str | None = None
    headers: tuple[str, ...] = ()
    shapes: tuple[str, ...] = ()
    model: str | None = None
    duration: str = "10s"
    warmup: str = "2s"
    generators: str = "auto"  # a count, or auto (benchbox.remote.auto)
    seed: int = 0
    data: DataOptions = field(default_factory=DataOptions)  # none: the report's own --data
    request_timeout: str | None = None
    ca_cert: str | None = None
    insecure: bool = False


@dataclass(frozen=True)
class Figure:
    """One percentile of one cell: the point value, its CI, and the value held to the target."""

    value_ms: float
    ci_ms: tuple[float, float] | None
    bound_ms: float
    point_estimate: bool


@dataclass(frozen=True)
class Verification:
    """The prediction of a report's cell beside what the server measured."""

    cell_id: str
    target: LatencyTarget
    predicted: Figure
    measured: Figure | None  # None when the server's cell failed
    meets_target: bool
    measured_cell: Cell
    server: str  # "triton 2.51.0"
    url: str
    notes: tuple[str, ...] = ()  # what the measurement rests on (the data the requests came from)

    @property
    def gap_ms(self) -> float | None:
        """The measured percentile minus the predicted bound (what the prediction promised)."""
        if self.measured is None:
            return None
        return self.measured.value_ms - self.predicted.bound_ms

    @property
    def split(self) -> ServerSplit | None:
        r = self.measured_cell.result
        return r.server_split if r is not None else None


def figure(result: Result, percentile: str) -> Figure:
    """A result's percentile as a Figure (the bound is the CI's upper end when there is one)."""
    ci = (result.latency_ci_ms or {}).get(percentile)
    bound = latency_bound(result, percentile)
    return Figure(
        value_ms=float(getattr(result.latency_ms, percentile)),
        ci_ms=(float(ci[0]), float(ci[1])) if ci is not None and None not in ci else None,
        bound_ms=bound.value_ms,
        point_estimate=bound.point_estimate,
    )


def choose(
    report: Report, target: LatencyTarget | None, wanted: str | None
) -> tuple[Cell, LatencyTarget]:
    """The cell to verify (--cell, else the recommendation's winner) and the target to hold."""
    rec = report.recommendation
    if target is None:
        if rec is None:
            raise BadInput(
                "the report has no recommendation, so there is no target to verify against",
                "give --latency-target pNN=VALUE (and --cell ID to pick the cell)",
            )
        target = rec.target
    if wanted is None:
        # The report's own recommendation, held to the target given (if any); a report made
        # without a target gets its recommendation for the one given.
        if rec is not None:
            wanted = rec.winner
        else:
            wanted = recommend(report, target, objective=_objective(report)).winner
        if wanted is None:
            raise BadInput(
                f"no cell of the report was recommended for {target}, so none is verified",
                "pick a cell with --cell ID",
            )
    by_id = {c.id: c for c in report.cells}
    if wanted not in by_id:
        raise BadInput(f"the report has no cell {wanted!r}", "`benchbox report show` lists them")
    cell = by_id[wanted]
    if cell.status not in MEASURED or cell.result is None:
        raise BadInput(f"cell {wanted} was not measured ({cell.status}), so it predicts nothing")
    return cell, target


def _objective(report: Report) -> str:
    return "cost" if report.profile is not None else "throughput"


def remote_cell(cell: Cell) -> Cell:
    """The cell's load and batch size as a cell on the server (the server batches by itself).

    An open loop keeps its rate but not its in-process worker count: that count modelled the
    sessions (or the batcher's queue, which takes every arrival), and a server takes the requests
    in flight itself, so the client lets up to OPEN_POOL_DEFAULT of them be outstanding."""
    batch = 1 if cell.config.dynamic_batching is not None else cell.config.batch_size
    config = ServingConfig(device="remote", batch_size=batch)
    load = cell.load
    if load.kind == "open":
        load = replace(load, concurrency=remote.OPEN_POOL_DEFAULT)
    return Cell(cell_id(config, load), config, load)


def verify(
    report: Report,
    session: remote.Session,
    target: LatencyTarget | None = None,
    wanted: str | None = None,
    settings: MeasureSettings | None = None,
    generators: int | None = 1,
    abort: threading.Event | None = None,
    data: SampleSet | None = None,
    notes: tuple[str, ...] = (),
) -> Verification:
    """Drive the server with the chosen cell's load (requests from `data`, else synthetic);
    the prediction and the measurement."""
    cell, target = choose(report, target, wanted)
    settings = settings or MeasureSettings()
    measured_cell = remote.measure_cell(
        session, remote_cell(cell), settings, generators, abort, data
    )
    measured = None
    meets = False
    if measured_cell.status in MEASURED and measured_cell.result is not None:
        measured = figure(measured_cell.result, target.percentile)
        # the recommendation's rule (verdict.py): the upper bound within the target; an
        # unstable server cell still counts, since it is what the server did
        meets = meets_target(measured_cell, target, MEASURED)
    server = " ".join(x for x in (session.server.name, session.server.version) if x)
    return Verification(
        cell_id=cell.id,
        target=target,
        predicted=figure(cell.result, target.percentile),
        measured=measured,
        meets_target=meets,
        measured_cell=measured_cell,
        server=server or "the server",
        url=session.target.safe_url,
        notes=notes,
    )


def verify_options(
    opts: VerifyOptions, abort: threading.Event | None = None
) -> tuple[Verification, remote.Session]:
    """`benchbox verify`: read the report, probe the server (exit 2 before any load when it is not
    there), then verify the chosen cell on it."""
    report = load_report(opts.report)
    target = parse.parse_target(opts.latency_target) if opts.latency_target else None
    generators = parse.parse_generators(opts.generators)
    settings = MeasureSettings(
        warmup_s=parse.parse_duration_s(opts.warmup, "--warmup"),
        duration_s=parse.parse_duration_s(opts.duration, "--duration"),
        seed=opts.seed,
    )
    choose(report, target, opts.cell)  # a bad --cell or target fails before the server is asked
    check_options(opts.data)
    session = remote.connect(
        opts.target,
        parse_headers(list(opts.headers)),
        parse.parse_shapes(list(opts.shapes)),
        model_path=opts.model,
        timeout_s=parse.parse_request_timeout_s(opts.request_timeout) or remote.REQUEST_TIMEOUT_S,
        ca_cert=opts.ca_cert,
        insecure=opts.insecure,
    )
    samples, notes = verify_data(report, opts.data, session.model, opts.seed)
    v = verify(report, session, target, opts.cell, settings, generators, abort, samples, notes)
    return v, session


def verify_data(
    report: Report, given: DataOptions, info: ModelInfo, seed: int
) -> tuple[SampleSet | None, tuple[str, ...]]:
    """The samples to verify on: `--data` as given, else the report's own (the prediction was
    made on them), with a note saying which, and whether they differ from the report's."""
    own = report.data
    if given.source is None and own is None:
        return None, ()
    if given.source is None:
        samples = samples_for(options_of(own), info, own.seed)
        note = f"requests from the report's data: {own.source} ({own.samples_used} samples)"
    else:
        samples = samples_for(given, info, seed)
        note = f"requests from --data {samples.info.source} ({samples.info.samples_used} samples)"
    notes = [note]
    if own is None:
        notes.append(
            "the report was measured on synthetic inputs, the server on --data: the prediction "
            "is for another workload"
        )
    elif samples.info.sha256 != own.sha256:
        notes.append(
            f"the data differ from the report's (sha256 {samples.info.sha256[:12]}, the report's "
            f"{own.sha256[:12]}): the prediction is for another workload"
        )
    return samples, tuple(notes)
