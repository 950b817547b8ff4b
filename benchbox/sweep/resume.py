"""`benchbox sweep --resume`: finish a saved report with its own settings."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psutil

from benchbox import model as model_mod
from benchbox.cost import check_profile
from benchbox.data.samples import options_of, samples_for
from benchbox.errors import BadInput
from benchbox.remote import session as remote
from benchbox.schema import MEASURED, Cell, Report, SweepSettings, TrialPolicy, replace
from benchbox.store import check_writable, load_report
from benchbox.sweep import search
from benchbox.sweep import trials as trial_phase
from benchbox.sweep.checks import check_devices
from benchbox.sweep.execute import execute
from benchbox.sweep.factories import MakeWorker, remote_worker_factory, worker_factory
from benchbox.sweep.prepare import precision_context, with_variants
from benchbox.sweep.progress import Progress
from benchbox.sweep.runner import CellContext


def resume_sweep(
    report_file: str | Path,
    model_path: str | None = None,
    progress: Progress | None = None,
    abort: threading.Event | None = None,
    make_worker: MakeWorker | None = None,
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
    if make_worker is None:
        check_not_on_ray(report, path)
    stored, search_kind, policy = resumable_settings(report, path)
    settings = stored.measure
    if policy.most > 1 and settings.min_requests is None:
        settings = replace(settings, min_requests=0)  # as run_sweep: the trials give the bound
    target = stored.latency_target
    profile = report.profile
    if profile is not None:  # the decoder checked its types; these are its values
        check_profile(profile, f"{path}: profile")
    model_file, make_worker = resume_workers(
        report, model_path, headers, make_worker, isolate, cell_timeout_s
    )
    ctx = CellContext(
        model_path=model_file,
        model=report.model,
        settings=settings,
        cores=psutil.cpu_count(logical=True) or 1,
        profile=profile,
        idle_power_w=stored.idle_power.power_w if stored.idle_power else None,
        data=resume_data(report, path),
    )
    keep = kept_cells(report, search_kind)
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
        report = with_variants(report, model_file, stored.spec.precisions, True, ctx.data)
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


def check_not_on_ray(report: Report, path: Path) -> None:
    """BadInput when the report's load came from generators on a Ray cluster: resuming it on
    this machine's generators would measure something else."""
    if report.target is not None and report.target.ray_group:
        raise BadInput(
            f"{path} was measured by generators on Ray group {report.target.ray_group!r}: "
            "resuming here would send its load from this machine",
            "start the sweep again with --ray (a Ray sweep cannot be resumed yet)",
        )


def resumable_settings(report: Report, path: Path) -> tuple[SweepSettings, str, TrialPolicy]:
    """The report's sweep settings, its search and its trial policy; BadInput when it holds no
    sweep's settings or an unknown search."""
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
    return stored, search_kind, stored.trials or TrialPolicy(trials=1)


def resume_workers(
    report: Report,
    model_path: str | None,
    headers: tuple[tuple[str, str], ...],
    make_worker: MakeWorker | None,
    isolate: bool,
    cell_timeout_s: float | None,
) -> tuple[str, MakeWorker]:
    """The model file to resume with and the workers: on the report's server (probed now: exit 2
    when it is not there), else the report's model file checked against its sha256."""
    if report.target is None:
        model_file = resume_model_path(report, model_path)
        return model_file, make_worker or worker_factory(isolate, cell_timeout_s)
    session = remote.connect(
        report.target.url,
        headers,
        report.settings.shapes,
        model_path=model_path or None,
        timeout_s=report.target.request_timeout_s or remote.REQUEST_TIMEOUT_S,
        ca_cert=report.target.ca_cert,
        insecure=report.target.insecure,
    )
    gens = [c.result.generator for c in report.cells if c.result and c.result.generator]
    # auto when any cell's count was auto's or none was measured; else the largest fixed count
    generators = None if not gens or any(g.auto for g in gens) else max(g.processes for g in gens)
    return model_path or "", make_worker or remote_worker_factory(session, generators)


def kept_cells(report: Report, search_kind: str) -> dict[str, Cell]:
    """The cells a resume keeps as done: under adaptive, the measured ones and those skipped for
    a reason other than the search's own; under grid, all but the pending and failed."""
    if search_kind == "adaptive":
        keep = {c.id: c for c in report.cells if c.status in MEASURED}
        keep.update(
            (c.id, c)
            for c in report.cells
            if c.status == "skipped" and not (c.reason or "").startswith("adaptive search:")
        )
        return keep
    return {c.id: c for c in report.cells if c.status not in ("pending", "failed")}


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
