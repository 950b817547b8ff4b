"""The dynamic batcher: one-sample requests on an open-loop schedule, batched as Triton does.

Requests arrive at their intended times (the schedule of `benchbox.load.issuer`) and queue up. A
free instance takes a batch by the rules of Triton's dynamic batcher (`GetDynamicBatch` in
dynamic_batch_scheduler.cc):

- the largest preferred size the queue can fill, while the oldest request is within its delay;
- once the oldest request has waited `delay`, or the queue holds the largest preferred size (or
  `max_batch` when no preferred sizes are set), or `delay` is 0: everything queued, up to
  `max_batch`;
- otherwise the instance waits for the next arrival that completes a batch, or for the delay.

Batches run at the size formed, unpadded: Triton's onnxruntime backend concatenates the requests
along the batch axis and runs that size. The inputs of every size 1..max_batch are slices of one
array built before the run, so nothing is copied or concatenated in the timed path (Triton's own
gather copy is not emulated). Each request's latency runs from its intended arrival to the end of
its batch; each records its queue wait (batch start - arrival), the batch's compute time and the
batch size, as Triton's server-side statistics split them. An instance only forms a batch when it
is free; Triton may form the next batch while every instance is busy (a payload queue ahead of
the instances), so under saturation its batches can start smaller.
"""

from __future__ import annotations

import bisect
import math
import threading
from time import perf_counter_ns

import numpy as np

from benchbox.backends import Feeds, Runner
from benchbox.load import Recorder, column, run_threads
from benchbox.load.issuer import (
    SPIN_NS,
    SWITCH_INTERVAL_S,
    fine_timer_slack,
    lower_switch_interval,
    restore_switch_interval,
    schedule_offsets_ns,
    wait_until,
)
from benchbox.schema import DynamicBatching

# Extra per-request columns the batcher records (`Recorder.extra`), in nanoseconds or requests.
QUEUE_NS, COMPUTE_NS, BATCH = "queue_ns", "compute_ns", "batch"


def release_size(queued: int, waited_ns: int, batching: DynamicBatching) -> int:
    """How many queued requests a free instance takes now (0: keep waiting), by Triton's rules."""
    if queued <= 0:
        return 0
    pending = min(queued, batching.max_batch)
    delay_ns = batching.delay_ms * 1e6
    expired = delay_ns > 0 and waited_ns >= delay_ns
    best = max((p for p in batching.preferred if p <= pending), default=0)
    if best and not expired:
        return best
    largest = max(batching.preferred, default=batching.max_batch)
    if expired or delay_ns == 0 or pending >= largest:
        return pending
    return 0


def next_release_size(queued: int, batching: DynamicBatching) -> int:
    """The queue length at which a batch would be released before the delay expires."""
    bigger = [p for p in batching.preferred if p > queued]
    return min(bigger) if bigger else batching.max_batch


def decide(
    arrivals_ns: list[int], first: int, now_ns: int, batching: DynamicBatching
) -> tuple[int, int]:
    """A free instance's decision at `now_ns`: (size to take, 0) or (0, instant to wake at).

    `arrivals_ns` is sorted and `first` the oldest request not yet taken. The wake instant is
    never later than the oldest queued request's deadline (arrival + delay), so an idle instance
    never lets a request wait past the delay by its own choice.
    """
    limit = len(arrivals_ns)
    top = min(limit, first + batching.max_batch)
    queued = bisect.bisect_right(arrivals_ns, now_ns, first, top) - first
    oldest = arrivals_ns[first]
    size = release_size(queued, now_ns - oldest if queued else 0, batching)
    if size:
        return size, 0
    if queued == 0:
        return 0, oldest
    fill = first + next_release_size(queued, batching) - 1
    wake = oldest + math.ceil(batching.delay_ms * 1e6)  # past the deadline, never before it
    if fill < limit:
        wake = min(wake, arrivals_ns[fill])
    return 0, wake


def batch_feeds(pool: list[Feeds], max_batch: int) -> list[Feeds]:
    """Inputs for batch sizes 0..max_batch (index = size), as views of one array of samples."""
    if not pool:
        raise ValueError("the input pool is empty")
    full = {
        name: np.ascontiguousarray(
            np.concatenate([pool[j % len(pool)][name] for j in range(max_batch)], axis=0)
        )
        for name in pool[0]
    }
    return [{name: a[:b] for name, a in full.items()} for b in range(max_batch + 1)]


class BatcherDriver:
    """Open-loop one-sample requests, batched dynamically onto one worker thread per instance."""

    def __init__(
        self,
        runners: list[Runner],
        batches: list[Feeds],
        rate_rps: float,
        batching: DynamicBatching,
        horizon_s: float,
        distribution: str = "poisson",
        seed: int = 0,
        offsets_ns: np.ndarray | None = None,
    ) -> None:
        if len(batches) <= batching.max_batch:
            raise ValueError(f"inputs for batch sizes up to {batching.max_batch} are needed")
        self.runners = runners
        self.batches = batches
        self.batching = batching
        self.items_per_request = 1
        count = int(rate_rps * horizon_s * 1.2) + 16
        if offsets_ns is None:  # given: a rate profile's or a trace's schedule
            offsets_ns = schedule_offsets_ns(rate_rps, count, distribution, seed)
        self.offsets_ns = offsets_ns
        self.arrivals_ns: list[int] = []
        self.recorders = [
            Recorder(extra={QUEUE_NS: column(), COMPUTE_NS: column(), BATCH: column()})
            for _ in runners
        ]
        self._lock = threading.Lock()
        self._next = 0  # index of the oldest request not yet taken
        self._stopping = [False]
        self._previous_switch_s: float | None = None
        self._threads: list[threading.Thread] = []
        self.t0_ns = 0
        self.errors: list[BaseException] = []

    def _take(self) -> tuple[int, int] | None:
        """Wait until a batch may be released; (first index, size), or None when stopping.

        The wait for the next release instant is the open-loop issuer's (`wait_until`): the
        instance wakes on time, not 50 us to a switch interval late.
        """
        arrivals, limit, db = self.arrivals_ns, len(self.arrivals_ns), self.batching
        stopping = self._stopping
        while not stopping[0]:
            with self._lock:
                i = self._next
                if i >= limit:
                    return None
                size, wake = decide(arrivals, i, perf_counter_ns(), db)
                if size:
                    self._next = i + size
                    return i, size
            if not wait_until(wake, stopping, SPIN_NS):
                return None
        return None

    def _worker(self, k: int) -> None:
        run, batches, arrivals = self.runners[k], self.batches, self.arrivals_ns
        rec = self.recorders[k]
        queue, compute, sizes = rec.extra[QUEUE_NS], rec.extra[COMPUTE_NS], rec.extra[BATCH]
        fine_timer_slack()
        try:
            while True:
                taken = self._take()
                if taken is None:
                    return
                i, size = taken
                t_start = perf_counter_ns()
                run(batches[size])
                t_end = perf_counter_ns()
                intended = arrivals[i : i + size]
                # Every column before end_ns: the collector reads up to len(end_ns).
                rec.intended_ns.extend(intended)
                queue.extend([t_start - t for t in intended])
                compute.extend([t_end - t_start] * size)
                sizes.extend([size] * size)
                rec.end_ns.extend([t_end] * size)
        except BaseException as exc:
            self.errors.append(exc)
            self._stopping[0] = True

    def start(self) -> None:
        self._previous_switch_s = lower_switch_interval(SWITCH_INTERVAL_S)
        self.t0_ns = perf_counter_ns() + 2_000_000  # let the threads reach their first wait
        self.arrivals_ns = (self.offsets_ns + self.t0_ns).tolist()  # ints: bisect stays fast
        self._threads = run_threads(
            [lambda k=k: self._worker(k) for k in range(len(self.runners))], "batcher"
        )

    def stop(self) -> None:
        self._stopping[0] = True
        try:
            for t in self._threads:
                t.join()
        finally:
            restore_switch_interval(self._previous_switch_s)
            self._previous_switch_s = None
