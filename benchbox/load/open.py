"""Open loop: requests follow a schedule of intended send times, whatever the system does.

Latency is charged from the intended time (coordinated-omission correction, as LoadGen's Server
scenario and wrk2 do), so a stall is paid by every request it delays. `concurrency` caps the
requests in flight: when every worker is busy, the next request waits, and that wait counts.

Each request records when a worker took it: a request taken after its intended time waited for the
pool; the time from max(intended, taken) to the actual send is the generator's own lateness. The
timing of the sends is `benchbox.load.issuer`'s.
"""

from __future__ import annotations

import threading
from time import perf_counter_ns

import numpy as np

from benchbox.backends import Feeds, Runner
from benchbox.load import Recorder, column, run_threads
from benchbox.load.issuer import (
    SPIN_NS,
    SWITCH_INTERVAL_S,
    Issuer,
    lower_switch_interval,
    restore_switch_interval,
    schedule_offsets_ns,
)

__all__ = ["OpenDriver", "schedule_offsets_ns"]


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
        spin_ns: int = SPIN_NS,
        switch_interval_s: float = SWITCH_INTERVAL_S,
        record_items: bool = False,
        offsets_ns: np.ndarray | None = None,
        order: np.ndarray | None = None,
    ) -> None:
        self.runners = runners
        self.concurrency = concurrency
        self.items_per_request = items_per_request
        if offsets_ns is None:
            count = int(rate_rps * horizon_s * 1.2) + 16
            offsets_ns = schedule_offsets_ns(rate_rps, count, distribution, seed)
        # order (a trace of the data): request i sends pool[order[i]], not pool[i % len(pool)];
        # the pool is laid out in that order up front, so the send path stays one lookup.
        self.pool_ids = None if order is None else [int(j) % len(pool) for j in order]
        self.pool = pool if self.pool_ids is None else [pool[j] for j in self.pool_ids]
        self.issuer = Issuer(offsets_ns, spin_ns)
        # record_items: each request's pool index (for per-bucket latency on --data), appended
        # after the request's end was read, so outside its timed interval.
        names = ("taken", "item") if record_items else ("taken",)
        self.recorders = [Recorder(extra={k: column() for k in names}) for _ in range(concurrency)]
        self.switch_interval_s = switch_interval_s
        self._previous_switch_s: float | None = None
        self._threads: list[threading.Thread] = []
        self.t0_ns = 0
        self.errors: list[BaseException] = []

    def _worker(self, k: int) -> None:
        run = self.runners[k % len(self.runners)]
        pool, n = self.pool, len(self.pool)
        ids = self.pool_ids if self.pool_ids is not None else range(n)
        rec = self.recorders[k]
        intended, sent, ends = rec.intended_ns.append, rec.sent_ns.append, rec.end_ns.append
        taken = rec.extra["taken"].append
        item = rec.extra["item"].append if "item" in rec.extra else None
        clock = perf_counter_ns

        def send(i: int, t_int: int, t_take: int, t_send: int) -> None:
            run(pool[i % n])
            t_end = clock()
            intended(t_int)
            taken(t_take)
            sent(t_send)
            ends(t_end)  # last: the collector reads up to len(end_ns)

        def send_item(i: int, t_int: int, t_take: int, t_send: int) -> None:
            run(pool[i % n])
            t_end = clock()
            intended(t_int)
            taken(t_take)
            sent(t_send)
            item(ids[i % n])
            ends(t_end)

        try:
            self.issuer.run(send if item is None else send_item)
        except BaseException as exc:
            self.errors.append(exc)

    def start(self) -> None:
        self._previous_switch_s = lower_switch_interval(self.switch_interval_s)
        self.t0_ns = perf_counter_ns() + 2_000_000  # let the threads reach their first wait
        self.issuer.start(self.t0_ns)
        self._threads = run_threads(
            [lambda k=k: self._worker(k) for k in range(self.concurrency)], "open"
        )

    def stop(self) -> None:
        self.issuer.stop()
        try:
            for t in self._threads:
                t.join()
        finally:
            restore_switch_interval(self._previous_switch_s)
            self._previous_switch_s = None
