"""A sweep end to end: plan the cells, measure them group by group, save the report as it grows.

Each device group runs in a worker process of its own (`sweep.worker`), so a crash or a hang costs
one cell, not the sweep. An interrupted sweep leaves its unmeasured cells `pending`; `resume_sweep`
measures those (and the failed ones) later with the report's own settings.

One concept a file: the request (`job`), the progress callbacks (`progress`), the checks before
measuring (`checks`), the workers (`factories`), the report before its first cell (`prepare`),
measuring the cells (`execute`), a new sweep (`run`), a resumed one (`resume`) and the signals
that stop one (`signals`). Their public names are importable from here.
"""

from __future__ import annotations

from benchbox.sweep.checks import check_devices, check_input_memory
from benchbox.sweep.execute import NoCellMeasured, execute, finalize_report
from benchbox.sweep.factories import (
    make_in_process_worker,
    remote_worker_factory,
    trial_measurer,
    worker_factory,
)
from benchbox.sweep.job import RemoteTarget, SweepRequest, sweep_settings
from benchbox.sweep.prepare import (
    cell_context,
    idle_baseline,
    new_report,
    now_iso,
    precision_context,
    with_variants,
)
from benchbox.sweep.progress import Progress
from benchbox.sweep.resume import resume_data, resume_model_path, resume_sweep
from benchbox.sweep.run import run_sweep
from benchbox.sweep.signals import stop_on_signals

__all__ = [
    "NoCellMeasured",
    "Progress",
    "RemoteTarget",
    "SweepRequest",
    "cell_context",
    "check_devices",
    "check_input_memory",
    "execute",
    "finalize_report",
    "idle_baseline",
    "make_in_process_worker",
    "new_report",
    "now_iso",
    "precision_context",
    "remote_worker_factory",
    "resume_data",
    "resume_model_path",
    "resume_sweep",
    "run_sweep",
    "stop_on_signals",
    "sweep_settings",
    "trial_measurer",
    "with_variants",
    "worker_factory",
]
