"""What runs on a generator node: the GeneratorNode actor, which sends its share of one arrival
schedule to the server and answers with histograms, not raw latencies.

The driver sends every node the same start time in its own wall clock and the node's measured
clock offset; the node turns it into its own perf_counter once, then times each request from its
intended time (open loop, as `remote.generator` does in one process), so no clock but its own
ever enters a latency.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import threading
import time
from array import array
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Any

import numpy as np

from benchbox import __version__
from benchbox.measure import stats
from benchbox.measure.histogram import LatencyHistogram, to_plain
from benchbox.remote.generator import ErrorLog, LoopStats, make_sender, send_schedule
from benchbox.remote.wire import Prepared
from benchbox.sweep.fleet.cluster import require_ray


@dataclass(frozen=True)
class Share:
    """One generator's share of a cell's schedule: requests index, index + stride, ..."""

    offsets_ns: np.ndarray  # their intended times, ns after the start
    index: int
    stride: int
    concurrency: int  # this node's pool: requests in flight at most
    warmup_ns: int  # requests intended before this are sent but not timed
    keep_raw: bool = False  # also ship the raw latencies (tests and the figure check merges)


@dataclass
class Records:
    """Per timed request: intended, taken from the pool, sent and answered (this node's
    perf_counter_ns; `taken` as `remote.generator` records it)."""

    intended: array
    taken: array
    sent: array
    ends: array
    errors: ErrorLog
    stats: LoopStats


class GeneratorNode:
    """A load generator pinned on one node of the cluster (as a Ray actor)."""

    def __init__(self) -> None:
        self._stop = threading.Event()

    def facts(self) -> dict[str, Any]:
        return {
            "node_id": require_ray().get_runtime_context().get_node_id(),
            "host": socket.gethostname(),
            "version": __version__,
        }

    def clock_ns(self) -> int:
        """This node's wall clock, for the driver's offset estimate."""
        return time.time_ns()

    def stop(self) -> None:
        """Send no more requests of the cell being sent (it failed elsewhere, or was stopped)."""
        self._stop.set()

    def run(self, prepared: Prepared, share: Share, start_ns: int, offset_ns: int) -> dict:
        """Send the share from `start_ns` (the driver's wall clock; this node's reads
        `offset_ns` ahead) and answer with its histograms and counts."""
        self._stop = stopped = threading.Event()  # a run of its own: an older one stays stopped
        local_start = start_ns + offset_ns
        t0 = perf_counter_ns() + (local_start - time.time_ns())
        rec = asyncio.run(_drive(prepared, share, t0, stopped))
        return summary(rec, share, t0)


async def _drive(prepared: Prepared, share: Share, t0_ns: int, stopped: threading.Event) -> Records:
    sender = make_sender(prepared, share.concurrency)
    await sender.open()
    rec = Records(array("q"), array("q"), array("q"), array("q"), ErrorLog(), LoopStats())
    record = (rec.intended.append, rec.taken.append, rec.sent.append, rec.ends.append)
    cpu0, wall0 = time.thread_time(), perf_counter_ns()
    try:
        inflight = await send_schedule(
            sender,
            share.offsets_ns.tolist(),
            lambda k: share.index + k * share.stride,
            share.concurrency,
            t0_ns,
            record,
            rec.errors,
            rec.stats,
            stopped,
        )
        await asyncio.gather(*inflight)  # each is bounded by the request timeout
    finally:
        rec.stats.cpu_s = time.thread_time() - cpu0
        rec.stats.wall_s = (perf_counter_ns() - wall0) / 1e9
        await sender.close()
    return rec


def summary(rec: Records, share: Share, t0_ns: int) -> dict[str, Any]:
    """The node's answer: latency and issue-delay histograms of the requests intended after the
    warm-up, their count, the failures, its busy share and the measured span. The issue delay is
    the generator's own lateness, pool waits excluded (`measure.cell.generator_delay_ns`)."""
    intended, taken, sent, ends = (
        np.frombuffer(c, dtype=np.int64) if c else np.empty(0, "i8")
        for c in (rec.intended, rec.taken, rec.sent, rec.ends)
    )
    t_warm = t0_ns + share.warmup_ns
    timed = intended >= t_warm
    wait_ns = np.maximum(taken - intended, 0)
    latency_ns = (ends - intended)[timed]
    delay_ns = np.maximum(sent - intended - wait_ns, 0)[timed]
    latency, delay = LatencyHistogram.empty(), LatencyHistogram.empty()
    latency.record_ns(latency_ns)
    delay.record_ns(delay_ns)
    err_t = np.frombuffer(rec.errors.times_ns[:], dtype=np.int64) if rec.errors.times_ns else []
    return {
        "requests": int(timed.sum()),
        "errors": int(np.count_nonzero(np.asarray(err_t) >= t_warm)),
        "first_error": rec.errors.first,
        "latency": to_plain(latency),
        "issue_delay": to_plain(delay),
        "busy_share": rec.stats.busy_share,
        "pool_wait_p99_ms": stats.percentile(np.sort(wait_ns[timed]) / 1e6, 99.0)
        if timed.any()
        else None,
        "span_s": max(0.0, (int(ends[timed].max()) - t_warm) / 1e9) if timed.any() else 0.0,
        "raw_ms": (latency_ns / 1e6).tolist() if share.keep_raw else None,
    }


@functools.cache
def remote_generator() -> Any:
    """GeneratorNode as a Ray actor class."""
    return require_ray().remote(GeneratorNode)
