"""Load generators: closed loop, open loop (Poisson or constant) and offline.

A driver runs worker threads that call runners and record, per request, the intended time, the
actual send time and the completion time (perf_counter_ns). Nothing else sits in the timed path:
the controller in `benchbox.measure.cell` reads the records between windows. A closed loop records
one clock reading per request: a request starts when the one before it on its worker ended.
"""

from __future__ import annotations

import threading
from array import array
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from benchbox.kinds import Arrival, LoadKind  # noqa: F401 (re-exported)


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
    # Set for chained records (closed loops): intended_ns stays empty, request j was sent when
    # request j-1 ended, and request 0 at this time.
    chained_from_ns: int | None = None
    # Set for drivers that cycle through the pool in order (closed loops): request j of this
    # recorder used pool item first_item + j (mod the pool's size), so nothing is appended
    # per request to know it.
    first_item: int | None = None

    def rows(self, lo: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The intended and end times (int64 ns) of requests lo..n-1."""
        end = np.asarray(self.end_ns[lo:n], dtype=np.int64)
        if self.chained_from_ns is None:
            return np.asarray(self.intended_ns[lo:n], dtype=np.int64), end
        intended = np.empty_like(end)
        if len(end):
            intended[0] = self.end_ns[lo - 1] if lo else self.chained_from_ns
            intended[1:] = end[:-1]
        return intended, end


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
