"""What runs on a fleet's node: the NodeSweeper actor."""

from __future__ import annotations

import functools
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import psutil

from benchbox import __version__
from benchbox import model as model_mod
from benchbox.devices import host_info
from benchbox.devices.inventory import expand_devices
from benchbox.errors import BadInput
from benchbox.measure.cell import MeasureSettings
from benchbox.schema import Cell, Profile, from_dict, replace, to_dict
from benchbox.sweep import check_devices, idle_baseline, worker_factory
from benchbox.sweep.fleet.cluster import require_ray
from benchbox.sweep.fleet.data import Machine
from benchbox.sweep.runner import CellContext


class NodeSweeper:
    """Runs on one node (as a Ray actor): its host facts, its device checks, and its cells,
    each measured in benchbox's worker process as `benchbox sweep` measures them."""

    def __init__(self, model_bytes: bytes, model_name: str, shapes: dict[str, int]) -> None:
        self._dir = tempfile.mkdtemp(prefix="benchbox-fleet-")
        self.model_path = str(Path(self._dir) / (Path(model_name).name or "model.onnx"))
        Path(self.model_path).write_bytes(model_bytes)
        self.model = model_mod.inspect_model(self.model_path, shapes)
        self.abort_event = threading.Event()
        self.workers: dict[int, Any] = {}

    def facts(self, device: str, profile: dict[str, Any] | None) -> dict[str, Any]:
        """This node's id and Machine (host facts, cores, idle power), its devices (the list
        expanded here) and the first device problem, as `benchbox sweep` checks them."""
        problem = None
        devices: list[str] = []
        try:
            devices = expand_devices(device)
            check_devices(devices)
        except BadInput as exc:
            problem = (exc.message, exc.hint)
        cores = psutil.cpu_count(logical=True) or 1
        machine = Machine(host_info(), cores, idle_baseline(_profile(profile)))
        return {
            "node_id": require_ray().get_runtime_context().get_node_id(),
            "machine": to_dict(machine),
            "devices": devices,
            "problem": problem,
            "version": __version__,
        }

    def measure(self, token: int, job: dict[str, Any], cell: dict[str, Any]) -> dict[str, Any]:
        """One cell measured here, as plain data; `job` holds the caller's CellContext fields."""
        worker = self.workers.get(token)
        if worker is None:
            data = job.get("data")
            ctx = CellContext(
                model_path=self.model_path,
                model=self.model,
                settings=from_dict(MeasureSettings, job["settings"], "settings"),
                cores=psutil.cpu_count(logical=True) or 1,
                profile=_profile(job["profile"]),
                idle_power_w=job["idle_power_w"],
                data=require_ray().get(data) if data is not None else None,
            )
            ctx = self._with_precision(ctx, job)
            make = worker_factory(job["isolate"], job["cell_timeout_s"])
            worker = self.workers[token] = make(ctx, self.abort_event)
        return to_dict(worker.measure(from_dict(Cell, cell, "cell")))

    def _with_precision(self, ctx: CellContext, job: dict[str, Any]) -> CellContext:
        """(precision) The context with this node's variants (built from its copy of the model,
        or from its cache) and where its accuracy measurements are kept."""
        precisions = tuple(job.get("precisions") or ())
        if not precisions and job.get("accuracy_samples") is None:
            return ctx
        from benchbox.precision.variants import build_variants

        samples, source = None, None
        if ctx.data is not None and "int8-static" in precisions:  # calibrated on the data
            from benchbox.data.pool import one_each

            samples, source = one_each(ctx.data, self.model), ctx.data.info.source
        return replace(
            ctx,
            variants=build_variants(self.model_path, self.model, precisions, samples, source),
            accuracy_samples=job.get("accuracy_samples"),
            accuracy_dir=str(Path(self._dir) / "accuracy"),
        )

    def close_worker(self, token: int) -> None:
        worker = self.workers.pop(token, None)
        if worker is not None:
            worker.close()

    def abort(self) -> None:
        """Stop the cell being measured (its worker process is killed)."""
        self.abort_event.set()

    def close(self) -> None:
        for token in list(self.workers):
            self.close_worker(token)
        shutil.rmtree(self._dir, ignore_errors=True)


def _profile(data: dict[str, Any] | None) -> Profile | None:
    return from_dict(Profile, data, "profile") if data is not None else None


@functools.cache
def remote_sweeper() -> Any:
    """NodeSweeper as a Ray actor class."""
    return require_ray().remote(NodeSweeper)
