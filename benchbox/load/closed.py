"""Closed loop (N requests always outstanding) and offline (every worker flat out)."""

from __future__ import annotations

import itertools
import threading
from time import perf_counter_ns

from benchbox.backends import Feeds, Runner
from benchbox.load import Recorder, run_threads


class ClosedDriver:
    """N worker threads, each keeping one request outstanding (perf_analyzer's concurrency mode).

    Workers are spread over the instances round-robin; each cycles through the input pool. The
    timed path per request is one run, one clock reading and one append (chained records).
    """

    def __init__(
        self, runners: list[Runner], pool: list[Feeds], concurrency: int, items_per_request: int
    ) -> None:
        self.runners = runners
        self.pool = pool
        self.concurrency = concurrency
        self.items_per_request = items_per_request
        self.recorders = [
            Recorder(chained_from_ns=0, first_item=k % len(pool)) for k in range(concurrency)
        ]
        self._running = [True]
        self._threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def _worker(self, k: int) -> None:
        run = self.runners[k % len(self.runners)]
        # Each worker starts at its own place in the pool; a cycle costs less than indexing.
        feeds_cycle = itertools.cycle(
            self.pool[k % len(self.pool) :] + self.pool[: k % len(self.pool)]
        )
        rec = self.recorders[k]
        ends = rec.end_ns.append
        running = self._running
        clock = perf_counter_ns  # a local name: one lookup less per request
        try:
            # One clock reading a request: each request starts when the one before it ended
            # (Recorder.chained_from_ns), so its latency also holds the few hundred ns of this
            # loop's own bookkeeping, as a client's loop would.
            rec.chained_from_ns = clock()
            for feeds in feeds_cycle:  # a for loop: the next input without a call
                run(feeds)
                ends(clock())
                if not running[0]:
                    break
        except BaseException as exc:  # surfaced by the controller as a failed cell
            self.errors.append(exc)

    def start(self) -> None:
        self._threads = run_threads(
            [lambda k=k: self._worker(k) for k in range(self.concurrency)], "closed"
        )

    def stop(self) -> None:
        self._running[0] = False
        for t in self._threads:
            t.join()
