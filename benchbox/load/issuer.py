"""The open-loop issuer: requests sent at their intended times, as punctually as the machine allows.

An `Issuer` takes a schedule of intended send times and calls `send` for each request, from the
threads that call `run` (in-process targets: the worker threads themselves, so a send costs one
wake-up and no hand-off), never before the intended time. A request goes to the first thread that
is free; one taken after its intended time waited for the pool, not for the issuer.

Why it is punctual (benchmarks/fidelity.py measures it; see "How it measures" in the README):
- while measuring, the interpreter's switch interval is lowered from 5 ms to SWITCH_INTERVAL_S,
  since a waking issuer must win the GIL back from threads that hold it, and with the default a
  busy thread may keep it for 5 ms (`lower_switch_interval`, restored afterwards);
- the thread sleeps until SPIN_NS before the due time (with the kernel's timer slack cut from
  50 us to 1 ns on Linux), then polls the clock. The poll neither yields the core (on a busy
  machine a sched_yield can give it away for a whole time slice) nor releases the GIL; a worker
  coming back from a run meanwhile waits for the GIL at most SPIN_NS, which is why it is short.
"""

from __future__ import annotations

import ctypes
import itertools
import sys
from collections.abc import Callable
from time import perf_counter_ns, sleep

import numpy as np

# The interpreter's switch interval while an open loop measures (CPython's default is 5 ms).
SWITCH_INTERVAL_S = 0.0002
# How long before a due time the issuer stops sleeping and polls the clock: past the usual
# overshoot of a sleep with 1 ns timer slack (26 us median, 50 us p90 measured).
SPIN_NS = 50_000
# The longest single sleep, so that stop() is noticed promptly even at low rates.
MAX_SLEEP_S = 0.02
PR_SET_TIMERSLACK = 29

# send(index, intended_ns, taken_ns, sent_ns): taken is when the thread asked for the request,
# sent is when it was released (both perf_counter_ns); send runs the request or starts it.
Send = Callable[[int, int, int, int], object]


def schedule_offsets_ns(
    rate_rps: float, count: int, distribution: str, seed: int = 0
) -> np.ndarray:
    """Intended send times (ns after the start) of `count` requests at `rate_rps`: constant
    gaps, exponential ones (poisson), or gamma ones of mean 1/rate and the given coefficient of
    variation ('gamma:cv=2': shape 1/cv², bursts of short gaps between long ones)."""
    mean_ns = 1e9 / rate_rps
    if distribution == "constant":
        gaps = np.full(count, mean_ns)
    elif distribution.startswith("gamma:cv="):
        shape = 1.0 / float(distribution.split("=", 1)[1]) ** 2
        gaps = np.random.default_rng(seed).gamma(shape, mean_ns / shape, size=count)
    else:
        gaps = np.random.default_rng(seed).exponential(mean_ns, size=count)
    return np.cumsum(gaps).astype(np.int64)


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()


def fine_timer_slack() -> None:
    """Let this thread's sleeps end within 1 ns of their deadline, not 50 us (Linux only)."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_TIMERSLACK, ctypes.c_ulong(1), 0, 0, 0)


def lower_switch_interval(interval_s: float = SWITCH_INTERVAL_S) -> float:
    """Lower the switch interval to `interval_s` (never raise it); return the one before."""
    previous_s = sys.getswitchinterval()
    sys.setswitchinterval(min(interval_s, previous_s))
    return previous_s


def restore_switch_interval(previous_s: float | None) -> None:
    """Put back the switch interval `lower_switch_interval` returned (None: nothing to do)."""
    if previous_s is not None:
        sys.setswitchinterval(previous_s)


def wait_until(due_ns: int, stopped: list[bool], spin_ns: int = SPIN_NS) -> int:
    """Block until perf_counter_ns() >= due_ns and return that reading; 0 if stopped[0] was set.

    Never returns early: the last clock reading decides. The last `spin_ns` are a busy poll.
    """
    now = perf_counter_ns()
    while due_ns - now > spin_ns:
        if stopped[0]:
            return 0
        sleep(min((due_ns - now - spin_ns) / 1e9, MAX_SLEEP_S))
        now = perf_counter_ns()
    while now < due_ns:
        now = perf_counter_ns()
    return now


class Issuer:
    """Sends the requests of a schedule at their intended times, from the threads that `run` it."""

    def __init__(self, offsets_ns: np.ndarray | list[int], spin_ns: int = SPIN_NS) -> None:
        self.offsets_ns = [int(x) for x in offsets_ns]
        self.spin_ns = spin_ns
        self.t0_ns = 0
        self.stopped = [False]
        self._next = itertools.count().__next__

    def start(self, t0_ns: int) -> None:
        """Set the schedule's zero (an absolute perf_counter_ns time), before any `run`."""
        self.t0_ns = t0_ns

    def stop(self) -> None:
        """Make every `run` return within MAX_SLEEP_S (or once its current send returns)."""
        self.stopped[0] = True

    def intended_ns(self, index: int) -> int:
        """The absolute intended send time of request `index`."""
        return self.t0_ns + self.offsets_ns[index]

    def run(self, send: Send) -> None:
        """Call send(index, intended, taken, sent) for each request this thread takes, on time.

        Returns when the schedule is used up or the issuer is stopped. Several threads may run
        one issuer: each request goes to exactly one of them.
        """
        fine_timer_slack()
        offsets, limit, t0 = self.offsets_ns, len(self.offsets_ns), self.t0_ns
        stopped, take, spin_ns, clock = self.stopped, self._next, self.spin_ns, perf_counter_ns
        while not stopped[0]:
            i = take()
            if i >= limit:
                return
            taken = clock()
            due = t0 + offsets[i]
            sent = taken if taken >= due else wait_until(due, stopped, spin_ns)
            if not sent:
                return
            send(i, due, taken, sent)
