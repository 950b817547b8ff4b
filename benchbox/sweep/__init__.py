"""A sweep end to end: plan the cells, measure them group by group, save the report as it grows.

Each device group runs in a worker process of its own (`sweep.worker`), so a crash or a hang costs
one cell, not the sweep. An interrupted sweep leaves its unmeasured cells `pending`; `resume_sweep`
measures those (and the failed ones) later with the report's own settings.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from benchbox import __version__
from benchbox import model as model_mod
from benchbox.cost import check_profile
from benchbox.data.samples import options_of, samples_for
from benchbox.devices import device_problem, host_info, parse_device
from benchbox.errors import BadInput, Interrupted, NothingMeasured
from benchbox.format import reason_line
from benchbox.measure.cell import Aborted, MeasureSettings
from benchbox.options import DataOptions
from benchbox.parse import LatencyTarget
from benchbox.pricing import AUTO, choose_profile
from benchbox.remote import session as remote
from benchbox.schema import (
    MEASURED,
    Cell,
    DataInfo,
    HostInfo,
    IdlePower,
    ModelInfo,
    Profile,
    Report,
    SweepSettings,
    TrialPolicy,
    replace,
)
from benchbox.store import check_writable, load_report, save_new_report, save_report
from benchbox.sweep import peak, search
from benchbox.sweep import trials as trial_phase
from benchbox.sweep.plan import SweepSpec, grid, group_key
from benchbox.sweep.runner import POOL_SIZE, CellContext, InProcessWorker
from benchbox.sweep.worker import ProcessWorkers
from benchbox.worker_process import NO_ISOLATION_ENV


@dataclass(frozen=True)
class SweepRequest:
    """Everything a sweep needs, as parsed from the command line."""

    model_path: str
    spec: SweepSpec
    settings: MeasureSettings
    shapes: dict[str, int | str] = field(default_factory=dict)
    input_values: dict[str, float | list] = field(default_factory=dict)
    out_dir: str = "reports"
    search: str = "grid"
    latency_target: LatencyTarget | None = None
    profile: str | None = None  # a name, a .toml file, "auto" (match this host) or None/"none"
    model_label: str | None = None
    isolate: bool = True  # each device group in its own worker process
    cell_timeout_s: float | None = None  # None: worker.default_cell_timeout_s(settings)
    trials: TrialPolicy = field(default_factory=TrialPolicy)
    target: RemoteTarget | None = None  # a server (--target URL) instead of in-process sessions
    # (precision) Accuracy samples per cell (None: outputs not compared) and the bounds as given.
    accuracy_samples: int | None = None
    accuracy: tuple[str, ...] = ()
    data: DataOptions = field(default_factory=DataOptions)  # --data: requests from samples


@dataclass(frozen=True)
class RemoteTarget:
    """A server to measure (`--target URL`): its URL, the headers to send, the generators.

    `model_path` of the request is then a local ONNX file for the inputs, or "" for the server's
    model metadata. Headers are not stored in the report: they may hold secrets."""

    url: str
    headers: tuple[tuple[str, str], ...] = ()
    generators: int = 1
    request_timeout_s: float | None = None  # None: remote.REQUEST_TIMEOUT_S
    ca_cert: str | None = None
    insecure: bool = False


class NoCellMeasured(NothingMeasured):
    """No cell of a finished sweep could be measured; the saved report comes with it (exit 3)."""

    def __init__(self, message: str, hint: str | None, report: Report) -> None:
        super().__init__(message, hint)
        self.report = report


class Progress:
    """Callbacks a front end implements to show a sweep's progress (all optional)."""

    def planned(self, cells: list[Cell]) -> None: ...

    def started(self, cell: Cell) -> None: ...

    def finished(self, cell: Cell) -> None: ...

    def trial_started(self, cell: Cell, trial: int) -> None: ...

    def trial_finished(self, cell: Cell, trial: int) -> None:
        """Trial number `trial` of a cell is done: `cell` is that trial's own outcome."""


def sweep_settings(req: SweepRequest) -> SweepSettings:
    """The sweep's options as stored in the report (enough to resume it)."""
    return SweepSettings(
        model=req.model_label or req.model_path,
        spec=req.spec,
        measure=req.settings,
        shapes=dict(req.shapes),
        search=req.search,
        latency_target=req.latency_target,
        profile=req.profile,
        trials=req.trials,
        accuracy_samples=req.accuracy_samples,
        accuracy=req.accuracy,
    )


def now_iso() -> str:
    """The current UTC time, ISO-8601 to the second."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def make_in_process_worker(ctx: CellContext, abort: threading.Event | None):
    """The default worker factory: measure in this process."""
    return InProcessWorker(ctx, abort)


def finalize_report(report: Report, profile: Any, target: LatencyTarget | None) -> Report:
    """Price the cells on the profile and add the recommendation, when those were asked for."""
    if profile is not None:
        from benchbox.cost import price_report

        report = price_report(report, profile)
    if target is not None:
        from benchbox.recommend import recommend, with_recommendation

        objective = "cost" if profile is not None else "throughput"
        bounds = report.settings.accuracy if report.settings else ()
        rec = recommend(report, target, objective=objective, accuracy=bounds)
        report = with_recommendation(report, rec)
    return report


def idle_baseline(
    profile: Profile | None, seconds: float = 1.0, settle: Callable[[], None] | None = None
) -> IdlePower | None:
    """The CPU's idle power before the sweep (RAPL, or the profile's estimate), if any.

    A meter reads the whole machine, so `settle` first waits for a worker process that is still
    starting; an estimate reads this process's own CPU share, which at rest is 0%: the profile's
    idle watts, with no window to wait for.
    """
    from benchbox.measure.power import EstimateMeter, measure_idle_w, select_meter

    meter = select_meter("cpu", profile)
    if meter is None:
        return None
    if isinstance(meter, EstimateMeter):
        return IdlePower(power_w=meter.spec.idle_w, source="estimate", seconds=0.0)
    if settle is not None:
        settle()
    try:
        reading = measure_idle_w(meter, seconds)
    except Exception as exc:  # a meter that cannot read must not stop the sweep
        return IdlePower(power_w=None, source=None, detail=str(exc))
    return IdlePower(power_w=reading.power_w, source=reading.source, seconds=seconds)


def new_report(
    req: SweepRequest,
    host: HostInfo,
    profile: Profile | None,
    out_dir: Path,
    name: str | None = None,
    info: ModelInfo | None = None,
    server: Any = None,
    data: DataInfo | None = None,
) -> tuple[Report, Path]:
    """The sweep's report for `host`, its cells planned, saved in `out_dir` (the file named after
    `name`, else the model); `info` is read from the model file when not given, `server` is a
    remote sweep's target."""
    info = info or model_mod.inspect_model(req.model_path, req.shapes, req.input_values)
    cells = peak.plan_cells(req.spec) if peak.wanted(req.spec) else grid(req.spec)
    created = now_iso()
    report = Report(
        host=host,
        model=info,
        cells=tuple(cells),
        settings=sweep_settings(req),
        profile=profile,
        benchbox_version=__version__,
        created=created,
        target=server,
        data=data,
    )
    path = save_new_report(report, out_dir, name or req.model_label or req.model_path)
    return report, path


def cell_context(
    req: SweepRequest, report: Report, cores: int, idle: IdlePower | None
) -> tuple[Report, CellContext]:
    """The report with the idle baseline in its settings, and the CellContext its cells share."""
    if idle is not None:
        report = replace(report, settings=replace(report.settings, idle_power=idle))
    settings = req.settings
    if req.trials.most > 1 and settings.min_requests is None:
        settings = replace(settings, min_requests=0)  # the bound comes from the trials' spread
    ctx = CellContext(
        model_path=req.model_path,
        model=report.model,
        settings=settings,
        cores=cores,
        profile=report.profile,
        idle_power_w=idle.power_w if idle else None,
    )
    return report, ctx


def run_sweep(
    req: SweepRequest,
    progress: Progress | None = None,
    abort: threading.Event | None = None,
    make_worker: Callable[[CellContext, threading.Event | None], Any] | None = None,
) -> tuple[Report, Path]:
    """Measure the planned cells, saving the report after each; return it and its path."""
    progress = progress or Progress()
    if make_worker is None and req.target is None:  # ours: its first process starts now
        make_worker = worker_factory(req.isolate, req.cell_timeout_s, warm=True)
        try:
            return _run_sweep(req, progress, abort, make_worker)
        finally:
            if hasattr(make_worker, "close"):
                make_worker.close()
    return _run_sweep(req, progress, abort, make_worker)


def _run_sweep(
    req: SweepRequest,
    progress: Progress,
    abort: threading.Event | None,
    make_worker: Callable[[CellContext, threading.Event | None], Any] | None,
) -> tuple[Report, Path]:
    out_dir = check_writable(req.out_dir)
    target = req.latency_target
    host = host_info()
    server = None
    if req.target is not None:  # probed before anything is planned: exit 2 when it is not there
        # This machine is the client: its hardware says nothing of what the server costs, so
        # only a profile named for the server's machine prices a remote sweep.
        auto = (req.profile or "").strip().lower() == AUTO
        profile = None if auto else choose_profile(req.profile, host)
        session = remote.connect(
            req.target.url,
            req.target.headers,
            req.shapes,
            model_path=req.model_path or None,
            timeout_s=req.target.request_timeout_s or remote.REQUEST_TIMEOUT_S,
            ca_cert=req.target.ca_cert,
            insecure=req.target.insecure,
        )
        info, server = session.model, remote.target_info(session)
        make_worker = make_worker or remote_worker_factory(session, req.target.generators)
    else:
        check_devices(req.spec.devices)
        profile = choose_profile(req.profile, host)
        info = model_mod.inspect_model(req.model_path, req.shapes, req.input_values)
        check_input_memory(info, req.spec)
        make_worker = make_worker or worker_factory(req.isolate, req.cell_timeout_s)
    samples = samples_for(req.data, info, req.settings.seed)  # bad data: before any report
    data_info = samples.info if samples is not None else None
    report, path = new_report(req, host, profile, out_dir, info=info, server=server, data=data_info)
    report = with_variants(report, req.model_path, req.spec.precisions, server is None)
    progress.planned(list(report.cells))
    idle = (  # a remote sweep's client idle power is moot
        idle_baseline(profile, settle=getattr(make_worker, "settle", None))
        if server is None
        else None
    )
    report, ctx = cell_context(req, report, psutil.cpu_count(logical=True) or 1, idle)
    ctx = replace(ctx, data=samples)
    with precision_context(ctx, report, req.accuracy_samples) as ctx:
        return execute(
            report,
            path,
            ctx,
            req.search,
            target,
            profile,
            progress,
            abort,
            make_worker,
            policy=req.trials,
        )


def with_variants(report: Report, model_path: str, precisions: tuple[str, ...], local: bool):
    """The report with the model's variants for the sweep's precisions (built or cached; a
    variant that cannot be built carries its reason, and its cells fail with it)."""
    if not local or tuple(precisions) == ("fp32",):
        return report
    from benchbox.precision.variants import build_variants

    return replace(report, variants=build_variants(model_path, report.model, tuple(precisions)))


@contextlib.contextmanager
def precision_context(
    ctx: CellContext, report: Report, accuracy_samples: int | None
) -> Iterator[CellContext]:
    """The context with the report's variants and, when accuracy is measured, a folder where
    each key's accuracy is kept for the sweep's other cells and trials (removed afterwards)."""
    ctx = replace(ctx, variants=report.variants, accuracy_samples=accuracy_samples)
    if accuracy_samples is None:
        yield ctx
        return
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="benchbox-accuracy-")
    try:
        yield replace(ctx, accuracy_dir=folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_input_memory(info: ModelInfo, spec: SweepSpec) -> None:
    """BadInput, before measuring, when the largest batch's input pool cannot fit in memory."""
    batches = [*spec.batch_sizes, *(db.max_batch for db in spec.dynamic_batching)]
    largest = max(batches, default=1)
    need = model_mod.input_bytes(info, largest) * POOL_SIZE
    available = psutil.virtual_memory().available
    if need > available // 2:
        raise BadInput(
            f"batch {largest} needs {need / 2**30:,.1f} GiB of inputs ({POOL_SIZE} distinct sets),"
            f" and this machine has {available / 2**30:,.1f} GiB available",
            "choose a smaller --batch (or smaller --shape sizes)",
        )


def check_devices(devices: Iterable[str]) -> None:
    """BadInput, with what to install, for the first device that cannot run here."""
    for text in devices:
        spec = parse_device(text)
        problem = device_problem(spec)
        if problem is not None:
            why, fix = problem
            raise BadInput(f"device {spec.name} cannot run here: {why}", fix)


def resume_sweep(
    report_file: str | Path,
    model_path: str | None = None,
    progress: Progress | None = None,
    abort: threading.Event | None = None,
    make_worker: Callable[[CellContext, threading.Event | None], Any] | None = None,
    isolate: bool = True,
    cell_timeout_s: float | None = None,
    headers: tuple[tuple[str, str], ...] = (),
    check: Callable[[Iterable[str]], None] | None = None,
    width: int = 1,
) -> tuple[Report, Path]:
    """Measure the pending and failed cells of a saved report with its original settings, and the
    missing trials of cells the trial phase had not finished, writing into the same file. A
    report of a remote server is resumed on the same URL (the headers are given again: the
    report does not keep them). `check` vets the devices still to measure (default: that they
    run here); `width` is `execute`'s.

    With `search = adaptive` the search runs again over the whole plan, taking the cells already
    measured (ok or unstable) as done; cells it skipped before may be measured when a cell that had
    failed now changes its course, and cells it no longer needs are skipped.
    """
    progress = progress or Progress()
    path = Path(report_file)
    report = load_report(path)
    check_writable(path.parent if str(path.parent) else ".")
    stored = report.settings
    if stored is None:
        raise BadInput(
            f"{path} does not hold the settings of a sweep, so it cannot be resumed",
            "start a new sweep with `benchbox sweep`",
        )
    search_kind = stored.search or "grid"
    if search_kind not in list(search.SearchKind):
        raise BadInput(f"{path}: unknown search {search_kind!r} in its settings")
    # Reports from before trials measured one trial per cell: resume them the same way.
    policy = stored.trials or TrialPolicy(trials=1)
    settings = stored.measure
    if policy.most > 1 and settings.min_requests is None:
        settings = replace(settings, min_requests=0)  # as run_sweep: the trials give the bound
    target = stored.latency_target
    profile = report.profile
    if profile is not None:  # the decoder checked its types; these are its values
        check_profile(profile, f"{path}: profile")
    if report.target is not None:
        session = remote.connect(
            report.target.url,
            headers,
            stored.shapes,
            model_path=model_path or None,
            timeout_s=report.target.request_timeout_s or remote.REQUEST_TIMEOUT_S,
            ca_cert=report.target.ca_cert,
            insecure=report.target.insecure,
        )
        model_file = model_path or ""
        generators = max((c.result.generator.processes for c in report.cells if c.result
                          and c.result.generator), default=1)  # fmt: skip
        make_worker = make_worker or remote_worker_factory(session, generators)
    else:
        model_file = resume_model_path(report, model_path)
        make_worker = make_worker or worker_factory(isolate, cell_timeout_s)
    ctx = CellContext(
        model_path=model_file,
        model=report.model,
        settings=settings,
        cores=psutil.cpu_count(logical=True) or 1,
        profile=profile,
        idle_power_w=stored.idle_power.power_w if stored.idle_power else None,
        data=resume_data(report, path),
    )
    if search_kind == "adaptive":
        keep = {c.id: c for c in report.cells if c.status in MEASURED}
        keep.update(
            (c.id, c)
            for c in report.cells
            if c.status == "skipped" and not (c.reason or "").startswith("adaptive search:")
        )
    else:
        keep = {c.id: c for c in report.cells if c.status not in ("pending", "failed")}
    if report.target is None:
        devices = sorted({c.config.device for c in report.cells if c.id not in keep})
        (check or check_devices)(devices)
    # The earlier answer no longer holds once cells change; `execute` makes a new one.
    report = replace(report, recommendation=None)
    kept = [c for c in report.cells if c.id in keep]
    short = trial_phase.short_of_trials(kept, policy, target)  # interrupted in the trial phase
    # a cell short of trials is planned as one still to measure
    planned = [c for c in report.cells if c.id not in keep]
    progress.planned(planned + [replace(c, status="pending") for c in short])
    # (precision) the report's variants are reused; one whose file is gone is built again
    if report.target is None and any(
        v.path is None or not Path(v.path).is_file() for v in report.variants
    ):
        report = with_variants(report, model_file, stored.spec.precisions, True)
    with precision_context(ctx, report, stored.accuracy_samples) as ctx:
        return execute(
            report,
            path,
            ctx,
            search_kind,
            target,
            profile,
            progress,
            abort,
            make_worker,
            keep,
            width=width,
            policy=policy,
        )


def resume_data(report: Report, path: Path) -> Any:
    """The samples a report's cells were measured on, read again (None: synthetic inputs);
    BadInput when the source now holds other samples than it did."""
    if report.data is None:
        return None
    samples = samples_for(options_of(report.data), report.model, report.data.seed)
    if samples is not None and samples.info.sha256 != report.data.sha256:
        raise BadInput(
            f"--data {report.data.source} holds other samples than when {path} was measured"
            f" (sha256 {samples.info.sha256[:12]}, not {report.data.sha256[:12]})",
            "start a new sweep on the data as it is now",
        )
    return samples


def resume_model_path(report: Report, model_path: str | None = None) -> str:
    """The model file to resume a report with; BadInput when it is gone or its sha256 changed."""
    from benchbox import zoo

    label = report.settings.model if report.settings else ""
    if model_path is not None:
        candidates = [model_path]
    else:
        candidates = [report.model.path]
        if label and label != report.model.path:
            candidates.append(str(zoo.resolve(label)))
    found = next((c for c in candidates if Path(c).is_file()), None)
    if found is None:
        raise BadInput(
            f"the model of this report, {candidates[0]}, is not found",
            "pass the model file too: `benchbox sweep MODEL --resume REPORT`",
        )
    sha = model_mod.sha256_file(found)
    if sha != report.model.sha256:
        raise BadInput(
            f"{found} changed since the sweep (sha256 {report.model.sha256[:12]}... is now "
            f"{sha[:12]}...), so its cells cannot be resumed",
            "resume with the original model file, or start a new sweep for this one",
        )
    return found


def remote_worker_factory(
    session: remote.Session, generators: int = 1
) -> Callable[[CellContext, threading.Event | None], Any]:
    """Workers that measure cells on a server, from this process (the model runs there)."""

    def make(ctx: CellContext, abort: threading.Event | None) -> Any:
        return remote.RemoteWorker(session, ctx.settings, generators, abort, ctx.data)

    return make


def worker_factory(
    isolate: bool = True, cell_timeout_s: float | None = None, warm: bool = False
) -> Callable[[CellContext, threading.Event | None], Any]:
    """Workers in their own processes (the default), or in this one (BENCHBOX_NO_ISOLATION=1).
    `warm` starts the first process at once (close the factory when done)."""
    if not isolate or os.environ.get(NO_ISOLATION_ENV, "") not in ("", "0"):
        return make_in_process_worker
    return ProcessWorkers(cell_timeout_s, warm=warm)


def execute(
    report: Report,
    path: Path,
    ctx: CellContext,
    search_kind: str,
    target: LatencyTarget | None,
    profile: Any,
    progress: Progress,
    abort: threading.Event | None,
    make_worker: Callable[[CellContext, threading.Event | None], Any],
    keep: dict[str, Cell] | None = None,
    width: int = 1,
    policy: TrialPolicy | None = None,
) -> tuple[Report, Path]:
    """Run the search over the report's cells (those in `keep` count as done), then the trial
    phase (`sweep.trials`) over the cells it measured, saving the report after every cell and
    trial; price, recommend and save it at the end. Cells kept from a resumed report continue
    from the trials they have (`sweep.trials.earlier_log`).

    `width`: how many cells a grid search measures at a time (workers that measure on several
    machines, such as a fleet group's nodes, take one cell per machine)."""
    keep = keep or {}
    policy = policy or TrialPolicy(trials=1)
    if search_kind == "adaptive" and target is not None and ctx.settings.duration_s is None:
        # A cell that breaks the target with confidence cannot win: stop measuring it early.
        early = replace(ctx.settings, stop_above=(target.q, target.value_ms))
        ctx = replace(ctx, settings=early)
    cells = list(report.cells)
    index = {c.id: i for i, c in enumerate(cells)}
    state = {"report": report}
    lock = threading.Lock()  # `width` > 1: cells come back on several threads

    def emit(cell: Cell, trial: bool = False) -> None:
        with lock:
            r = state["report"]
            new = list(r.cells)
            new[index[cell.id]] = cell
            state["report"] = replace(r, cells=tuple(new))
            save_report(state["report"], path)
        if not trial:  # a trial's progress comes with its own outcome (`on_trial`)
            progress.finished(cell)

    workers: dict[tuple, Any] = {}
    first_orders: dict[str, int] = {}

    measure_trial = trial_measurer(ctx, make_worker, abort)

    def emit_trial(cell: Cell) -> None:
        emit(cell, trial=True)

    def measure(cell: Cell) -> Cell:
        if cell.id in keep:
            return keep[cell.id]
        if abort is not None and abort.is_set():
            raise Aborted()
        key = group_key(cell.config)
        with lock:
            if key not in workers:
                workers[key] = make_worker(ctx, abort)
        progress.started(cell)
        done = workers[key].measure(cell)
        first_orders[cell.id] = len(first_orders)
        emit(done)
        return done

    try:
        if any(peak.is_peak_cell(c) for c in cells):
            final = peak.search(cells, measure, target, adaptive=search_kind == "adaptive")
        elif search_kind == "adaptive":
            final = search.adaptive(cells, measure, target)
        else:
            final = search.grid(cells, measure, width)
        for cell in final:
            if cell.id in keep and cell.status == "skipped":
                cell = keep[cell.id]  # a measurement is never thrown away
            if state["report"].cells[index[cell.id]] != cell:
                emit(cell)
        for worker in workers.values():  # the search's workers are done: trials start fresh
            worker.close()
        workers.clear()
        combined = trial_phase.run_trials(
            list(state["report"].cells),
            measure_trial,
            policy,
            target,
            ctx.settings.confidence,
            emit=emit_trial,
            first_orders=first_orders,
            eligible=lambda c: (
                (c.id not in keep or trial_phase.resumed(c)) and not peak.is_peak_cell(c)
            ),
            ruler=lambda: _time_ruler(state, lock),
            saved=set(keep),
            on_trial=lambda cell, number, done: (
                progress.trial_started(cell, number)
                if done is None
                else progress.trial_finished(done, number)
            ),
        )
        state["report"] = replace(state["report"], cells=tuple(combined))
    except (Aborted, KeyboardInterrupt):
        # priced like a finished sweep, so the cells measured so far carry their cost
        with lock:
            save_report(finalize_report(state["report"], profile, None), path)
        raise Interrupted(
            f"interrupted; the partial report is saved in {path}",
            f"resume it with `benchbox sweep --resume {path}`",
        ) from None
    finally:
        for worker in workers.values():
            worker.close()
    report = finalize_report(state["report"], profile, target)
    save_report(report, path)
    if not any(c.status in MEASURED for c in report.cells):
        reasons = dict.fromkeys(
            f"{c.status}: {reason_line(c.reason)}" for c in report.cells if c.reason
        )
        raise NoCellMeasured(
            f"no cell could be measured (report saved in {path})",
            "; ".join(reasons) or None,
            report=report,
        )
    return report, path


def _time_ruler(state: dict, lock: Any) -> None:
    """One round's reading of the reference workload, kept in the report (measure.ruler)."""
    from benchbox.measure import ruler
    from benchbox.schema import Ruler

    seconds = ruler.time_ruler()
    with lock:
        host = state["report"].host
        old = host.ruler
        rounds = (*old.per_round_s, seconds) if old is not None else (seconds,)
        host = replace(host, ruler=Ruler(ruler.RULER_KIND, rounds))
        state["report"] = replace(state["report"], host=host)


def trial_measurer(
    ctx: CellContext,
    make_worker: Callable[[CellContext, threading.Event | None], Any],
    abort: threading.Event | None,
) -> Callable[[Cell], Cell]:
    """measure(cell): one more trial of a cell in a fresh worker (a new session, and a new
    process where isolation is on). A later trial's CIs come from the trials, so it needs no
    within-trial CI, sample-size rule or early stop of its own (and its process no scipy)."""
    trial_ctx = replace(
        ctx, settings=replace(ctx.settings, within_cis=False, min_requests=0, stop_above=None)
    )

    def measure_trial(cell: Cell) -> Cell:
        if abort is not None and abort.is_set():
            raise Aborted()
        worker = make_worker(trial_ctx, abort)
        try:
            return worker.measure(cell)
        finally:
            worker.close()

    return measure_trial


@contextlib.contextmanager
def stop_on_signals(abort: threading.Event) -> Iterator[threading.Event]:
    """While inside, SIGINT and SIGTERM set `abort` (the sweep stops and saves); a second signal
    raises KeyboardInterrupt at once. Outside the main thread this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield abort
        return

    def handle(signum: int, frame: Any) -> None:
        if abort.is_set():
            raise KeyboardInterrupt()
        abort.set()

    old = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield abort
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
