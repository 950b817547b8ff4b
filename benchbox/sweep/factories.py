"""Where a sweep's cells are measured: worker factories (a process per device group, this
process, or a server) and the fresh worker each later trial gets.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from benchbox.measure.cell import Aborted
from benchbox.remote import session as remote
from benchbox.schema import Cell, replace
from benchbox.sweep.runner import CellContext, InProcessWorker
from benchbox.sweep.worker import ProcessWorkers
from benchbox.worker_process import NO_ISOLATION_ENV

# A worker factory: the sweep's shared cell context and its abort event -> a worker.
MakeWorker = Callable[[CellContext, threading.Event | None], Any]


def make_in_process_worker(ctx: CellContext, abort: threading.Event | None):
    """The default worker factory: measure in this process."""
    return InProcessWorker(ctx, abort)


def remote_worker_factory(
    session: remote.Session, generators: int | None = None
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
