"""Open loop: requests follow a schedule of intended send times, whatever the system does.

Latency is charged from the intended time (coordinated-omission correction, as LoadGen's Server
scenario and wrk2 do), so a stall is paid by every request it delays. `concurrency` caps the
requests in flight: when every worker is busy, the next request waits, and that wait counts.

Each request records when a worker took it: a request taken after its intended time waited for the
pool; the time from max(intended, taken) to the actual send is the generator's own lateness.
"""

from __future__ import annotations

import itertools
import threading
from time import perf_counter_ns

import numpy as np

from benchbox.backends import Feeds, Runner
from benchbox.load import Recorder, column, run_threads


def schedule_offsets_ns(
    rate_rps: float, count: int, distribution: str, seed: int = 0
) -> np.ndarray:
    """Intended send times (ns after the start) of `count` requests at `rate_rps`."""
    if distribution == "constant":
        gaps = np.full(count, 1e9 / rate_rps)
    else:
        gaps = np.random.default_rng(seed).exponential(1e9 / rate_rps, size=count)
    return np.cumsum(gaps).astype(np.int64)


class OpenDriver:
    """A pool of `concurrency` workers sending requests at their scheduled times."""

    def __init__(
        self,
        runners: list[Runner],
        pool: list[Feeds],
        rate_rps: float,
        concurrency: int,
        items_per_request: int,
        horizon_s: float,
        distribution: str = "poisson",
        seed: int = 0,
    ) -> None:
        self.runners = runners
        self.pool = pool
        self.concurrency = concurrency
        self.items_per_request = items_per_request
        count = int(rate_rps * horizon_s * 1.2) + 16
        self.offsets_ns = schedule_offsets_ns(rate_rps, count, distribution, seed).tolist()
        self.recorders = [Recorder() for _ in range(concurrency)]
        self._next = itertools.count()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.t0_ns = 0
        self.errors: list[BaseException] = []

    def _worker(self, k: int) -> None:
        run = self.runners[k % len(self.runners)]
        pool, n = self.pool, len(self.pool)
        rec = self.recorders[k]
        intended, sent, ends = rec.intended_ns.append, rec.sent_ns.append, rec.end_ns.append
        taken = rec.extra.setdefault("taken", column()).append
        offsets, limit = self.offsets_ns, len(self.offsets_ns)
        t0, stop, take = self.t0_ns, self._stop, self._next.__next__
        try:
            while not stop.is_set():
                i = take()
                t_take = perf_counter_ns()
                if i >= limit:
                    return
                t_int = t0 + offsets[i]
                wait_ns = t_int - t_take
                if wait_ns > 0 and stop.wait(wait_ns / 1e9):
                    return
                t_send = perf_counter_ns()
                run(pool[i % n])
                t_end = perf_counter_ns()
                intended(t_int)
                taken(t_take)
                sent(t_send)
                ends(t_end)
        except BaseException as exc:
            self.errors.append(exc)

    def start(self) -> None:
        self.t0_ns = perf_counter_ns() + 2_000_000  # let the threads reach their first wait
        self._threads = run_threads(
            [lambda k=k: self._worker(k) for k in range(self.concurrency)], "open"
        )

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()
