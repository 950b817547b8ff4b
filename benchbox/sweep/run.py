"""`benchbox sweep`: a new sweep from its request, in-process sessions or a server."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from benchbox import model as model_mod
from benchbox.data.samples import samples_for
from benchbox.data.trace import check_pairing
from benchbox.devices import host_info
from benchbox.pricing import AUTO, choose_profile
from benchbox.remote import session as remote
from benchbox.schema import Report, replace
from benchbox.store import check_writable
from benchbox.sweep.checks import check_devices, check_input_memory
from benchbox.sweep.execute import execute
from benchbox.sweep.factories import remote_worker_factory, worker_factory
from benchbox.sweep.job import SweepRequest
from benchbox.sweep.prepare import (
    cell_context,
    idle_baseline,
    new_report,
    precision_context,
    with_variants,
)
from benchbox.sweep.progress import Progress
from benchbox.sweep.runner import CellContext


def run_sweep(
    req: SweepRequest,
    progress: Progress | None = None,
    abort: threading.Event | None = None,
    make_worker: Callable[[CellContext, threading.Event | None], Any] | None = None,
    session: remote.Session | None = None,
) -> tuple[Report, Path]:
    """Measure the planned cells, saving the report after each; return it and its path
    (`session`: a remote target's session already probed by the caller)."""
    progress = progress or Progress()
    if make_worker is None and req.target is None:  # ours: its first process starts now
        make_worker = worker_factory(req.isolate, req.cell_timeout_s, warm=True)
        try:
            return _run_sweep(req, progress, abort, make_worker)
        finally:
            if hasattr(make_worker, "close"):
                make_worker.close()
    return _run_sweep(req, progress, abort, make_worker, session)


def connect_target(req: SweepRequest) -> remote.Session:
    """The probed session of the request's server; BadInput (exit 2) when it is not there."""
    assert req.target is not None
    return remote.connect(
        req.target.url,
        req.target.headers,
        req.shapes,
        model_path=req.model_path or None,
        timeout_s=req.target.request_timeout_s or remote.REQUEST_TIMEOUT_S,
        ca_cert=req.target.ca_cert,
        insecure=req.target.insecure,
    )


def _run_sweep(
    req: SweepRequest,
    progress: Progress,
    abort: threading.Event | None,
    make_worker: Callable[[CellContext, threading.Event | None], Any] | None,
    session: remote.Session | None = None,
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
        session = session or connect_target(req)
        info, server = session.model, remote.target_info(session)
        if req.target.ray is not None:  # resume must know the generators were not on this host
            server = replace(server, ray_group=req.target.ray.group)
        make_worker = make_worker or remote_worker_factory(session, req.target.generators)
    else:
        check_devices(req.spec.devices)
        profile = choose_profile(req.profile, host)
        info = model_mod.inspect_model(req.model_path, req.shapes, req.input_values)
        check_input_memory(info, req.spec)
        make_worker = make_worker or worker_factory(req.isolate, req.cell_timeout_s)
    samples = samples_for(req.data, info, req.settings.seed)  # bad data: before any report
    check_pairing(req.spec.trace, samples)
    data_info = samples.info if samples is not None else None
    report, path = new_report(req, host, profile, out_dir, info=info, server=server, data=data_info)
    report = with_variants(report, req.model_path, req.spec.precisions, server is None, samples)
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
