"""What is checked before a sweep measures anything: the devices, and the memory the inputs need."""

from __future__ import annotations

from collections.abc import Iterable

import psutil

from benchbox import model as model_mod
from benchbox.devices import device_problem, parse_device
from benchbox.errors import BadInput
from benchbox.schema import ModelInfo
from benchbox.sweep.plan import SweepSpec
from benchbox.sweep.runner import POOL_SIZE


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
