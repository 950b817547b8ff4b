"""A remote target end to end: probe the server, build the requests, measure a cell on it.

Everything that can be wrong with the target (unreachable, unknown model, malformed metadata,
inputs it will not take) is found by `connect` and the first request of each cell, before any
load is sent; the load's own failures are counted per cell and never timed.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import os
import sys
import threading
from dataclasses import dataclass
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

import numpy as np

from benchbox import model as model_mod
from benchbox.data.trace import cell_trace_offsets, from_data
from benchbox.errors import BadInput
from benchbox.load.schedule import cell_schedule_ns
from benchbox.measure.cell import Aborted, MeasureSettings, drive, summarize
from benchbox.remote import auto
from benchbox.remote import split as split_mod
from benchbox.remote.auto import ProbeStep
from benchbox.remote.generator import (
    SENDERS,
    ErrorLog,
    LoadPlan,
    RemoteDriver,
    make_sender,
    probe_step,
)
from benchbox.remote.target import Target, parse_url
from benchbox.remote.wire import (
    STATISTICS_EXTENSION,
    Expected,
    Prepared,
    ServerInfo,
    binary_body,
    expected_outputs,
    json_body,
)
from benchbox.schema import (
    MEASURED,
    Cell,
    CellWarning,
    GeneratorStats,
    ModelInfo,
    TargetInfo,
    replace,
)
from benchbox.warning_kinds import WarningKind

if TYPE_CHECKING:
    from benchbox.data.samples import SampleSet

CLIENTS = {"http": "benchbox.remote.rest", "grpc": "benchbox.remote.rpc"}
POOL_SIZE = 4
ERROR_SHARE_LIMIT = 0.01
BUSY_WARN_SHARE = 0.85
OPEN_POOL_DEFAULT = 256  # requests in flight at most in an open loop with no --concurrency
REQUEST_TIMEOUT_S = 30.0
SERVER_SIDE = "threads, instances and dynamic batching are the server's own settings"


@dataclass(frozen=True)
class Session:
    """A probed target: the server's metadata and the model as benchbox sees it."""

    target: Target
    headers: tuple[tuple[str, str], ...]
    server: ServerInfo
    model: ModelInfo
    wire: str  # "binary" | "json" | "raw_input_contents"
    statistics_reason: str | None  # None: the statistics extension answers
    timeout_s: float = REQUEST_TIMEOUT_S

    @property
    def statistics(self) -> bool:
        return self.statistics_reason is None


def client(protocol: str) -> Any:
    """The blocking client module (probe, statistics) of a protocol; BadInput, before anything
    is sent, when the load generator's sender for it cannot be imported either (the REST probe
    needs only the standard library, the sender httptools)."""
    try:
        importlib.import_module(SENDERS[protocol])
        return importlib.import_module(CLIENTS[protocol])
    except ImportError as exc:
        raise BadInput(
            f"remote targets need a library that is not installed ({exc.name})",
            "pip install 'benchbox[remote]'",
        ) from None


def connect(
    url: str,
    headers: tuple[tuple[str, str], ...] = (),
    shapes: dict[str, int] | None = None,
    model_path: str | None = None,
    timeout_s: float = REQUEST_TIMEOUT_S,
    ca_cert: str | None = None,
    insecure: bool = False,
) -> Session:
    """Probe the target's server and model; BadInput (exit 2) when either is not there."""
    target = replace(parse_url(url), ca_cert=ca_cert, insecure=insecure)
    if (ca_cert or insecure) and not target.tls:
        raise BadInput(
            f"{'--ca-cert' if ca_cert else '--insecure'} applies to https:// and grpcs:// only",
            f"the target is {target.safe_url}",
        )
    if insecure and target.protocol == "grpc":
        raise BadInput("--insecure applies to https:// only", "give gRPC --ca-cert FILE")
    headers = with_basic_auth(target, headers)
    if target.redacted:
        print(
            f"benchbox: the target URL's credentials are used but not saved or printed "
            f"(shown as {target.safe_url})",
            file=sys.stderr,
        )
    module = client(target.protocol)
    server = module.probe(target, headers)
    if model_path:
        info = model_mod.inspect_model(model_path, shapes)
        missing = {s.name for s in server.inputs} - {s.name for s in info.inputs}
        if missing:
            raise BadInput(
                f"{model_path} has no input named {', '.join(sorted(missing))}, "
                f"which model '{target.model}' on the server takes",
                "give the ONNX file the server serves, or leave it out to use its metadata",
            )
        info = replace(info, path=target.safe_url)
    else:
        info = model_mod.info_from_specs(target.safe_url, server.inputs, server.outputs, shapes)
    if target.protocol == "grpc":
        wire = "raw_input_contents"
    else:
        wire = "binary" if server.binary else "json"
    _data, reason = module.statistics(target, headers)
    if reason is not None and STATISTICS_EXTENSION not in server.extensions:
        reason = "the server does not implement the statistics extension"
    elif _data is not None and split_mod.counters(_data, target.version) is None:
        reason = "the server's statistics are not in Triton's format"
    return Session(target, headers, server, info, wire, reason, timeout_s)


def with_basic_auth(
    target: Target, headers: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str], ...]:
    """The headers plus Basic auth from the URL's `user:pass@`, unless they set Authorization."""
    if target.username is None or any(k.lower() == "authorization" for k, _ in headers):
        return headers
    token = base64.b64encode(f"{target.username}:{target.password or ''}".encode()).decode()
    return (*headers, ("Authorization", f"Basic {token}"))


def target_info(session: Session) -> TargetInfo:
    """What the report records of the server."""
    return TargetInfo(
        url=session.target.safe_url,
        protocol=session.target.protocol,
        model_name=session.target.model,
        model_version=session.target.version,
        server_name=session.server.name,
        server_version=session.server.version,
        extensions=session.server.extensions,
        wire=session.wire,
        statistics=session.statistics,
        request_timeout_s=session.timeout_s,
        insecure=session.target.insecure,
        ca_cert=session.target.ca_cert,
    )


def expected(session: Session, pool: list[dict[str, np.ndarray]]) -> Expected:
    """The output dims every answer to the pool's requests must have."""
    model = session.model
    if model.batch is None or not pool or not pool[0]:
        return expected_outputs(model.outputs, frozenset(), 0)
    first = {s.shape[0] for s in model.inputs if s.shape and isinstance(s.shape[0], str)}
    names = frozenset({"batch", *first, *model.batch_dims})
    arr = next(iter(pool[0].values()))
    return expected_outputs(model.outputs, names, int(arr.shape[0]) if arr.ndim else 0)


def prepare(session: Session, pool: list[dict[str, np.ndarray]]) -> Prepared:
    """The pool of input sets encoded for the target's wire format."""
    target = session.target
    tls = {"ca_cert": target.ca_cert, "insecure": target.insecure}
    want = expected(session, pool)
    if target.protocol == "grpc":
        rpc = client("grpc")
        bodies = tuple(rpc.request_bytes(target, feeds) for feeds in pool)
        return Prepared(
            "grpc", target.authority, bodies, session.headers, (), session.timeout_s, target.tls,
            want, **tls,
        )  # fmt: skip
    rest = client("http")
    if session.wire == "binary":
        encoded = [binary_body(feeds) for feeds in pool]
        bodies, lengths = tuple(b for b, _ in encoded), tuple(n for _, n in encoded)
    else:
        bodies, lengths = tuple(json_body(feeds) for feeds in pool), ()
    return Prepared(
        "http", rest.infer_url(target), bodies, session.headers, lengths, session.timeout_s,
        target.tls, want, **tls,
    )  # fmt: skip


async def _first(prepared: Prepared) -> str | None:
    sender = make_sender(prepared, 1)
    await sender.open()
    try:
        err, answer = await sender.send(0)
        return err if err is not None else sender.check(0, answer)
    finally:
        await sender.close()


def first_request(prepared: Prepared) -> str | None:
    """Send one request and wait for it: None when the server answered, else its error."""
    return asyncio.run(_first(prepared))


class ErrorProbe:
    """Counts the failed requests of the measured interval."""

    def __init__(self, log: ErrorLog) -> None:
        self.log = log
        self.t0 = 0

    def start(self) -> None:
        self.t0 = perf_counter_ns()

    def stop(self) -> int:
        return self.log.between(self.t0, perf_counter_ns())


class StatsProbe:
    """Snapshots the server's statistics at the start and the end of the measured interval."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.before: split_mod.Counters | None = None

    def _read(self) -> split_mod.Counters | None:
        s = self.session
        data, _reason = client(s.target.protocol).statistics(s.target, s.headers)
        return split_mod.counters(data, s.target.version) if data is not None else None

    def start(self) -> None:
        self.before = self._read()

    def stop(self) -> tuple[Any, Any]:
        return self.before, self._read()


def load_plan(
    cell: Cell, settings: MeasureSettings, trace_offsets_s: np.ndarray | None = None
) -> LoadPlan:
    """The generator's plan for a cell's load (a trace's times given as `trace_offsets_s`);
    a profile or a trace is an open loop on a given schedule."""
    load = cell.load
    horizon = (settings.warmup_s or settings.warmup_max_s) + (
        settings.duration_s or settings.max_duration_s
    )
    warmup_s = settings.warmup_s if settings.warmup_s is not None else settings.warmup_max_s
    schedule = cell_schedule_ns(load, warmup_s, settings.seed, trace_offsets_s)
    offsets, index = schedule if schedule is not None else (None, None)
    kind = "open" if load.kind == "trace" else load.kind
    default = OPEN_POOL_DEFAULT if kind == "open" else 1
    return LoadPlan(
        kind=kind,
        concurrency=load.concurrency or default,
        rate_rps=load.rate_rps,
        distribution=load.distribution or "poisson",
        seed=settings.seed,
        horizon_s=horizon + 2.0,
        offsets_ns=offsets,
        items=index if from_data(load.trace) else None,
    )


def skip_reason(session: Session, cell: Cell) -> str | None:
    """Why a cell cannot run against the server at all, else None."""
    if cell.config.dynamic_batching is not None:
        return f"dynamic batching does not apply to a remote target ({SERVER_SIDE})"
    return model_mod.batch_skip_reason(session.model, cell.config.batch_size)


def request_feeds(
    session: Session, cell: Cell, settings: MeasureSettings, data: SampleSet | None
) -> list:
    """The inputs a cell's requests carry: the data's samples batched and padded as in-process,
    or synthesized ones."""
    if data is not None:
        from benchbox.data.pool import build_pool

        return build_pool(data, session.model, cell.config.batch_size).feeds
    return model_mod.synthesize_inputs(
        session.model, cell.config.batch_size, pool_size=POOL_SIZE, seed=settings.seed
    )


def measure_cell(
    session: Session,
    cell: Cell,
    settings: MeasureSettings,
    generators: int | None = 1,
    abort: threading.Event | None = None,
    data: SampleSet | None = None,
    probed: dict[str, tuple[int, tuple[ProbeStep, ...]]] | None = None,
) -> Cell:
    """Drive the server with the cell's load and return the measured (or failed) cell; with
    `data` (--data), the requests are its samples, batched and padded as in-process.
    `generators` None is `--generators auto` (a probe chooses the count; `probed` keeps each
    cell's choice, so a cell's later trials reuse it)."""
    reason = skip_reason(session, cell)
    if reason:
        return replace(cell, status="skipped", reason=reason, result=None)
    prepared = prepare(session, request_feeds(session, cell, settings, data))
    first = first_request(prepared)
    if first is not None:
        return replace(
            cell, status="failed", result=None, reason=f"the first request failed: {first}"
        )
    plan = load_plan(cell, settings, cell_trace_offsets(cell.load, data))
    if probed is not None and cell.id in probed and generators is None:
        count, steps = probed[cell.id]
    else:
        count, steps = generator_count(prepared, plan, cell.config.batch_size, generators, abort)
        if probed is not None and generators is None:
            probed[cell.id] = (count, steps)
    driver = RemoteDriver(prepared, plan, cell.config.batch_size, count)
    probes: dict[str, Any] = {"errors": ErrorProbe(driver.error_log)}
    if session.statistics:
        probes["stats"] = StatsProbe(session)
    m = drive(driver, settings, abort=abort, probes=probes)
    return _measured(session, cell, settings, driver, m, (generators, steps))


def _measured(
    session: Session, cell: Cell, settings: MeasureSettings, driver: RemoteDriver, m: Any,
    chosen: tuple[int | None, tuple[ProbeStep, ...]],
) -> Cell:  # fmt: skip
    """The cell of a finished measurement: its result, warnings and status."""
    errors = int(m.probes.get("errors") or 0)
    total = m.requests + errors
    first_error = driver.error_log.first
    if m.requests == 0:
        why = f"; first error: {first_error}" if first_error else ""
        return replace(
            cell, status="failed", result=None, reason=f"no request succeeded while measuring{why}"
        )
    result, warnings = summarize(m, settings, None, rate_rps=cell.load.rate_rps)
    sent_ms = m.latency_ns if m.issue_delay_ns is None else m.latency_ns - m.issue_delay_ns
    split = None
    snapshots = m.probes.get("stats")
    if snapshots is not None and snapshots[0] is not None and snapshots[1] is not None:
        split = split_mod.diff(snapshots[0], snapshots[1], float(np.mean(sent_ms)) / 1e6)
    result = replace(
        result,
        errors=errors,
        error_rate=errors / total if total else 0.0,
        server_split=split,
        generator=generator_stats(driver, result.requests_per_s, driver.plans[0], *chosen),
        batch_size_counts=split.batch_sizes if split is not None and split.batch_sizes else None,
    )
    warnings += remote_warnings(session, result, cell, first_error, chosen[1])
    status = "unstable" if m.stable is False else "ok"
    assert status in MEASURED
    reason = None
    if result.error_rate and result.error_rate > ERROR_SHARE_LIMIT:
        status = "failed"
        reason = (
            f"{errors} of {total} requests failed ({result.error_rate:.1%}, over the "
            f"{ERROR_SHARE_LIMIT:.0%} a cell may lose); first error: {first_error}"
        )
    return replace(cell, status=status, reason=reason, result=result, warnings=tuple(warnings))


def auto_cap(plan: LoadPlan) -> int:
    """The most generator processes `--generators auto` may use: the cores this process may
    run on, and the load's concurrency (each generator needs a slot)."""
    return max(1, min(len(os.sched_getaffinity(0)), plan.concurrency))


def intended_rps(plan: LoadPlan) -> float | None:
    """The rate a load intends (an open loop's), or None (closed and offline loops)."""
    return plan.rate_rps if plan.kind == "open" else None


def generator_count(
    prepared: Prepared,
    plan: LoadPlan,
    items_per_request: int,
    generators: int | None,
    abort: threading.Event | None = None,
) -> tuple[int, tuple[ProbeStep, ...]]:
    """The generator count to measure with, and the probe steps that chose it: `generators`
    as given, or for None (auto) the probe's choice (the rules: benchbox.remote.auto)."""
    if generators is not None:
        return generators, ()
    cap = auto_cap(plan)
    if cap == 1:
        return 1, ()
    steps: tuple[ProbeStep, ...] = ()
    n: int | None = 1
    while n is not None:
        if abort is not None and abort.is_set():
            raise Aborted()
        steps += (probe_step(prepared, plan, items_per_request, n, abort),)
        n = auto.next_count(steps, intended_rps(plan), cap)
    return auto.choose(steps).processes, steps


def generator_stats(
    driver: RemoteDriver,
    rate_rps: float,
    plan: LoadPlan,
    generators: int | None,
    steps: tuple[ProbeStep, ...],
) -> GeneratorStats:
    """What the report keeps of the generators: count, busy shares, auto, and whether they
    were the limit (judged against the cap for auto, the count itself when fixed)."""
    shares = driver.busy_shares()
    measured = ProbeStep(driver.processes, rate_rps, shares)
    cap = auto_cap(plan) if generators is None else driver.processes
    limit = auto.limited(steps, measured, intended_rps(plan), cap)
    return GeneratorStats(
        processes=driver.processes,
        busy_share=measured.busiest,
        busy_shares=shares,
        auto=generators is None,
        limited=limit,
    )


def remote_warnings(
    session: Session,
    result: Any,
    cell: Cell,
    first_error: str | None,
    steps: tuple[ProbeStep, ...] = (),
) -> list[CellWarning]:
    """The warnings a remote cell deserves: errors, busy or limiting generators, the auto
    probe's note, a missing split."""
    out = []
    if result.errors:
        out.append(
            CellWarning(
                WarningKind.REQUEST_ERRORS,
                f"{result.errors} requests failed ({result.error_rate:.2%}) and are not in the "
                f"latency figures; first error: {first_error}",
            )
        )
    gen = result.generator
    if gen is not None and gen.limited:
        out.append(CellWarning(WarningKind.GENERATOR_LIMIT, limit_text(gen)))
    elif gen is not None and gen.busy_share > BUSY_WARN_SHARE:
        out.append(
            CellWarning(
                WarningKind.GENERATOR_BUSY,
                f"the load generator was busy {gen.busy_share:.0%} of the time ({gen.processes} "
                f"process{'es' if gen.processes > 1 else ''}); it may not keep up with the load, "
                "so the figures may be the client's — raise --generators",
            )
        )
    if steps and gen is not None:
        out.append(CellWarning(WarningKind.GENERATORS_AUTO, auto.probe_text(steps, gen.processes)))
    if not session.statistics:
        out.append(
            CellWarning(
                WarningKind.NO_SERVER_SPLIT,
                f"the server-side split is unavailable: {session.statistics_reason}",
            )
        )
    return out


def limit_text(gen: GeneratorStats) -> str:
    """The generator-limit warning's text."""
    shares = ", ".join(f"{b:.0%}" for b in gen.busy_shares) or f"{gen.busy_share:.0%}"
    more = (
        "--generators auto reached its cap (the cores this client may use, or the load's "
        "concurrency)"
        if gen.auto
        else "raise --generators, or use --generators auto"
    )
    return (
        f"the load generators were the limit ({gen.processes} process"
        f"{'es' if gen.processes > 1 else ''}, busy {shares}): these are the client's figures, "
        f"not the server's, and the cell is not recommended; {more}, or run the client on a "
        "machine with more cores"
    )


class RemoteWorker:
    """The sweep's worker for a remote target (`measure(cell) -> Cell`, `close()`): cells are
    measured from this process, since the server, not this machine, runs the model."""

    def __init__(
        self,
        session: Session,
        settings: MeasureSettings,
        generators: int | None = 1,
        abort: threading.Event | None = None,
        data: SampleSet | None = None,
    ) -> None:
        self.session = session
        self.settings = settings
        self.data = data
        self.generators = generators  # None: auto
        self.abort = abort
        self.probed: dict[str, tuple[int, tuple[ProbeStep, ...]]] = {}  # auto's count per cell

    def measure(self, cell: Cell) -> Cell:
        """The cell measured on the server, or failed with the reason (the sweep goes on)."""
        try:
            return measure_cell(
                self.session,
                cell,
                self.settings,
                self.generators,
                self.abort,
                self.data,
                self.probed,
            )
        except (Aborted, KeyboardInterrupt):
            raise
        except Exception as exc:  # the generator's own failure is this cell's, not the sweep's
            text = " ".join(str(exc).split())[:300] or type(exc).__name__
            return replace(
                cell, status="failed", result=None, reason=f"{type(exc).__name__}: {text}"
            )

    def close(self) -> None:
        pass
