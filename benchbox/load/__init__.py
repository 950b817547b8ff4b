"""Load generators: closed loop, open loop (Poisson or constant) and offline.

A driver runs worker threads that call runners and record, per request, the intended time, the
actual send time and the completion time (perf_counter_ns). Nothing else sits in the timed path:
the controller in `benchbox.measure.cell` reads the records between windows.
"""

from __future__ import annotations

import threading
from array import array
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class LoadKind(StrEnum):
    """How requests arrive: N always outstanding, on a schedule, or everything at once."""

    CLOSED = "closed"
    OPEN = "open"
    OFFLINE = "offline"


class Arrival(StrEnum):
    """The open loop's gaps between intended send times."""

    POISSON = "poisson"
    CONSTANT = "constant"


def column() -> array:
    """A per-request column of int64 values: 8 bytes a request, not a Python int object each."""
    return array("q")


@dataclass
class Recorder:
    """One worker's records, appended in completion order (so ends are non-decreasing)."""

    intended_ns: array = field(default_factory=lambda: column())
    end_ns: array = field(default_factory=lambda: column())
    # Actual send times; empty for drivers that send at the intended time (closed, offline).
    sent_ns: array = field(default_factory=lambda: column())
    # Optional extra per-request columns (e.g. batch size, compute start for the batcher).
    extra: dict[str, array] = field(default_factory=dict)


class Driver(Protocol):
    """What the measurement controller needs from a load generator."""

    recorders: list[Recorder]
    items_per_request: int

    def start(self) -> None: ...

    def stop(self) -> None: ...


def run_threads(targets: list, name: str) -> list[threading.Thread]:
    """Start daemon threads for the given callables."""
    threads = [
        threading.Thread(target=t, name=f"benchbox-{name}-{i}", daemon=True)
        for i, t in enumerate(targets)
    ]
    for t in threads:
        t.start()
    return threads
