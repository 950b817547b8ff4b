"""The remote load generator: one asyncio loop per generator, in this process or in several.

It has the face of the in-process drivers (`recorders`, `items_per_request`, `start`, `stop`),
so `benchbox.measure.cell.drive` measures it in windows like any other load. Per request it
records the intended time, when the request was taken from the pool (open loop), the actual send
and the answer (perf_counter_ns, CLOCK_MONOTONIC, so child processes share the parent's clock).
Failed requests are not timed: their times go to an error log, with the first error's text.

Open loop: requests follow a schedule of intended times; latency is charged from the intended
time. asyncio's timers wake up to a millisecond late (epoll's resolution), so the scheduler
sleeps until SPIN_S before each send and yields to the loop from there (`sleep(0)`, which keeps
answers flowing) until the send is due. The generator measures its own busy share (CPU time of
its loop outside those spin waits, over wall time) and its lateness (the issue delay); on an
oversubscribed machine the busy share reads low (a waiting thread uses no CPU) while the
lateness shows the wait.

The `taken` column follows the in-process open loop's meaning: a request taken after its intended
time waited that long for the pool (every slot in flight); the rest of its issue delay is the
generator's.

Several processes (`processes=N`): each runs its own loop with 1/N of the concurrency or of the
rate (a Poisson stream split N ways is N Poisson streams), and ships its records to this process
over a pipe every FLUSH_S; the parent appends them to that generator's recorder.
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import os
import signal
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from time import perf_counter_ns
from typing import Any

import numpy as np

from benchbox.load import Recorder, column
from benchbox.load.open import schedule_offsets_ns
from benchbox.remote.auto import ProbeStep
from benchbox.remote.wire import Prepared

SENDERS = {"http": "benchbox.remote.http1", "grpc": "benchbox.remote.rpc"}
SPIN_S = 0.0012
FLUSH_S = 0.05
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
START_LEAD_NS = 5_000_000  # the schedule starts this long after `start`, so all loops are ready
PROBE_WARM_S = 0.5  # a probe step's start, not counted (connections, the children's first flush)
PROBE_S = 1.0  # a probe step's counted time


@dataclass(frozen=True)
class LoadPlan:
    """One generator's share of a load."""

    kind: str  # "closed" | "open" | "offline"
    concurrency: int
    rate_rps: float | None = None
    distribution: str = "poisson"
    seed: int = 0
    horizon_s: float = 60.0
    first_index: int = 0  # request k of this generator sends body first_index + k
    # A given schedule (a rate profile's or a trace's, ns from the start) instead of one drawn
    # from the rate, and (a trace of the data) the body each of its requests sends.
    offsets_ns: np.ndarray | None = None
    items: np.ndarray | None = None


@dataclass
class ErrorLog:
    """When requests failed, and the first failure's text."""

    times_ns: array = field(default_factory=column)
    first: str | None = None

    def add(self, t_ns: int, text: str) -> None:
        if self.first is None:
            self.first = text
        self.times_ns.append(t_ns)

    def between(self, lo_ns: int, hi_ns: int) -> int:
        """How many requests failed in [lo_ns, hi_ns]."""
        # A slice is a copy taken under the GIL: a view of the live array would stop the loop's
        # thread from appending to it (BufferError) while this one reads.
        snapshot = self.times_ns[:]
        t = np.frombuffer(snapshot, dtype=np.int64) if len(snapshot) else np.empty(0)
        return int(np.count_nonzero((t >= lo_ns) & (t <= hi_ns)))


@dataclass
class LoopStats:
    """The generator loop's own time: CPU used, of it the CPU spent spinning before sends, and
    wall time."""

    cpu_s: float = 0.0
    spin_s: float = 0.0
    wall_s: float = 0.0

    @property
    def busy_share(self) -> float:
        if self.wall_s <= 0:
            return 0.0
        return float(min(1.0, max(0.0, (self.cpu_s - self.spin_s) / self.wall_s)))


def run_loop(main: Any, kind: str) -> Any:
    """Run a generator's loop to its end: on uvloop where it is installed, for closed and
    offline loops; an open loop, and any loop without uvloop, on asyncio's own."""
    # uvloop did 1.05-1.2x the requests per CPU-second of asyncio's loop on the same sender
    # (README, "The client path"). Open loops stay on asyncio's: their punctuality (SPIN_S, the
    # issue-delay goal) was measured there, and libuv's timers count whole milliseconds.
    if kind != "open":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                return runner.run(main)
    return asyncio.run(main)


def make_sender(prepared: Prepared, connections: int) -> Any:
    """The async sender for the prepared requests' protocol."""
    return importlib.import_module(SENDERS[prepared.protocol]).Sender(prepared, connections)


async def sleep_until(t_ns: int, stats: LoopStats) -> None:
    """Sleep until SPIN_S before `t_ns`, then yield to the loop until it is due (the spin is
    counted in `stats`)."""
    delay_s = (t_ns - perf_counter_ns()) / 1e9
    if delay_s > SPIN_S:
        await asyncio.sleep(delay_s - SPIN_S)
    if perf_counter_ns() >= t_ns:
        return
    cpu = time.thread_time()  # CPU, not wall: a descheduled spin costs the generator nothing
    while perf_counter_ns() < t_ns:
        await asyncio.sleep(0)
    stats.spin_s += time.thread_time() - cpu


async def _closed(sender: Any, plan: LoadPlan, rec: Recorder, errs: ErrorLog) -> None:
    starts, ends = rec.intended_ns.append, rec.end_ns.append
    clock, send, check, n = perf_counter_ns, sender.send, sender.check, plan.concurrency

    async def worker(k: int) -> None:
        i = plan.first_index + k
        while True:
            t0 = clock()
            err, answer = await send(i)
            t1 = clock()
            if err is None:  # checked after its time is taken; a malformed answer is an error
                err = check(i, answer)
            if err is None:
                starts(t0)
                ends(t1)
            else:
                errs.add(t1, err)
            i += n

    await asyncio.gather(*(worker(k) for k in range(n)))


async def _open(
    sender: Any, plan: LoadPlan, rec: Recorder, errs: ErrorLog, t0_ns: int, stats: LoopStats
) -> None:
    count = int((plan.rate_rps or 1.0) * plan.horizon_s) + 16
    offsets = plan.offsets_ns
    if offsets is None:
        offsets = schedule_offsets_ns(plan.rate_rps or 1.0, count, plan.distribution, plan.seed)
    bodies = plan.items.tolist() if plan.items is not None else None
    first = plan.first_index
    record = (
        rec.intended_ns.append,
        rec.extra.setdefault("taken", column()).append,
        rec.sent_ns.append,
        rec.end_ns.append,  # last: the collector reads up to len(end_ns)
    )
    body_of = (lambda k: first + k) if bodies is None else bodies.__getitem__
    await send_schedule(
        sender, offsets.tolist(), body_of, plan.concurrency, t0_ns, record, errs, stats
    )


async def send_schedule(
    sender: Any,
    offsets: list[int],
    body_of: Callable[[int], int],
    concurrency: int,
    t0_ns: int,
    record: tuple[Callable[[int], None], ...],
    errs: ErrorLog,
    stats: LoopStats,
    stopped: Any = None,
) -> set[asyncio.Task]:
    """Send request k (body `body_of(k)`) at t0_ns + offsets[k], at most `concurrency` in
    flight, never early; each answered request's (intended, taken, sent, end) go to the four
    `record` appends, each failure to `errs`. Returns the requests still in flight when the
    schedule ends (or `stopped.is_set()`); the caller awaits or drops them."""
    intended, taken, sent, ends = record
    clock, send, check = perf_counter_ns, sender.send, sender.check
    pool = asyncio.Semaphore(concurrency)
    inflight: set[asyncio.Task] = set()

    async def one(i: int, t_int: int, t_take: int) -> None:
        try:
            t_send = clock()
            err, answer = await send(i)
            t_end = clock()
            if err is None:
                err = check(i, answer)
            if err is None:
                intended(t_int)
                taken(t_take)
                sent(t_send)
                ends(t_end)
            else:
                errs.add(t_end, err)
        finally:
            pool.release()

    for k, off in enumerate(offsets):
        if stopped is not None and stopped.is_set():
            break
        t_ask = clock()
        await pool.acquire()
        t_got = clock()
        t_int = t0_ns + off
        await sleep_until(t_int, stats)
        # Only the time spent waiting for a free slot after the intended time is the pool's: the
        # scheduler running late for any other reason is the generator's own lateness.
        waited = t_got - max(t_ask, t_int)
        t_take = t_int + waited if waited > 0 else min(t_got, t_int)
        task = asyncio.create_task(one(body_of(k), t_int, t_take))
        inflight.add(task)
        task.add_done_callback(inflight.discard)
    return inflight


async def generate(
    prepared: Prepared,
    plan: LoadPlan,
    rec: Recorder,
    errs: ErrorLog,
    stopped: Any,
    t0_ns: int,
    stats: LoopStats,
    on_tick: Any = None,
) -> None:
    """Drive one generator's share of the load until `stopped.is_set()`."""
    sender = make_sender(prepared, plan.concurrency)
    await sender.open()
    cpu0, wall0 = time.thread_time(), perf_counter_ns()
    if plan.kind == "open":
        main = asyncio.ensure_future(_open(sender, plan, rec, errs, t0_ns, stats))
    else:
        await asyncio.sleep(max(0.0, (t0_ns - perf_counter_ns()) / 1e9))
        main = asyncio.ensure_future(_closed(sender, plan, rec, errs))
    try:
        while not main.done() and not stopped.is_set():
            await asyncio.sleep(FLUSH_S)
            if on_tick is not None:
                on_tick()
    finally:
        main.cancel()
        await asyncio.gather(main, return_exceptions=True)
        stats.cpu_s = time.thread_time() - cpu0
        stats.wall_s = (perf_counter_ns() - wall0) / 1e9
        await sender.close()
    if main.done() and not main.cancelled() and main.exception() is not None:
        raise main.exception()


def split_plan(plan: LoadPlan, processes: int) -> list[LoadPlan]:
    """Each of `processes` generators' share of a load (concurrency or rate split evenly)."""
    n = max(1, min(processes, plan.concurrency))
    shares = [plan.concurrency // n + (1 if k < plan.concurrency % n else 0) for k in range(n)]
    rate = plan.rate_rps / n if plan.rate_rps else None
    return [
        LoadPlan(
            kind=plan.kind,
            concurrency=c,
            rate_rps=rate,
            distribution=plan.distribution,
            seed=plan.seed + 7919 * k,
            horizon_s=plan.horizon_s,
            first_index=k,
            offsets_ns=None if plan.offsets_ns is None else plan.offsets_ns[k::n],
            items=None if plan.items is None else plan.items[k::n],
        )
        for k, c in enumerate(shares)
    ]


class RemoteDriver:
    """Drives a server with a load from one asyncio loop (a thread here) or from several
    generator processes."""

    def __init__(
        self, prepared: Prepared, plan: LoadPlan, items_per_request: int, processes: int = 1
    ) -> None:
        self.prepared = prepared
        self.plans = split_plan(plan, processes)
        self.items_per_request = items_per_request
        self.recorders = [Recorder() for _ in self.plans]
        self.error_log = ErrorLog()
        self.loop_stats = [LoopStats() for _ in self.plans]
        self.errors: list[BaseException] = []  # the generator's own failures (not requests')
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._procs: list[Any] = []
        self._conns: list[Connection] = []
        self._mp_stop: Any = None

    @property
    def processes(self) -> int:
        return len(self._procs) or 1

    def busy_share(self) -> float:
        """The busiest generator's busy share over its run."""
        return max((s.busy_share for s in self.loop_stats), default=0.0)

    def busy_shares(self) -> tuple[float, ...]:
        """Each generator's busy share over its run."""
        return tuple(s.busy_share for s in self.loop_stats)

    def completed(self) -> int:
        """How many requests have been answered well so far (the children's as of their last
        flush)."""
        return sum(len(r.end_ns) for r in self.recorders)

    def start(self) -> None:
        if len(self.plans) == 1:
            self._start_thread()
        else:
            self._start_processes()

    def _start_thread(self) -> None:
        t0 = perf_counter_ns() + START_LEAD_NS
        plan, rec, stats = self.plans[0], self.recorders[0], self.loop_stats[0]

        def run() -> None:
            try:
                run_loop(
                    generate(self.prepared, plan, rec, self.error_log, self._stop, t0, stats),
                    plan.kind,
                )
            except BaseException as exc:  # surfaced by the controller as a failed cell
                self.errors.append(exc)

        thread = threading.Thread(target=run, name="benchbox-remote-0", daemon=True)
        thread.start()
        self._threads = [thread]

    def _start_processes(self) -> None:
        mp = multiprocessing.get_context("spawn")
        self._mp_stop = mp.Event()
        for plan in self.plans:
            parent, child = mp.Pipe()
            proc = mp.Process(
                target=_child, args=(self.prepared, plan, child, self._mp_stop), daemon=True
            )
            proc.start()
            child.close()
            self._procs.append(proc)
            self._conns.append(parent)
        deadline = time.monotonic() + START_TIMEOUT_S
        for conn in self._conns:  # every child is up before the schedule starts
            if not conn.poll(max(0.0, deadline - time.monotonic())) or conn.recv() != "ready":
                self._kill()
                raise RuntimeError("a load generator process did not start")
        t0 = perf_counter_ns() + START_LEAD_NS
        for k, conn in enumerate(self._conns):
            conn.send(t0)
            thread = threading.Thread(
                target=self._read, args=(k, conn), name=f"benchbox-remote-{k}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _read(self, k: int, conn: Connection) -> None:
        rec, errs = self.recorders[k], self.error_log
        taken = rec.extra.setdefault("taken", column()) if self.plans[k].kind == "open" else None
        try:
            while True:
                message = conn.recv()
                if message[0] == "records":
                    _, cols, err_times, first = message
                    rec.intended_ns.frombytes(cols[0])
                    if taken is not None:
                        taken.frombytes(cols[1])
                        rec.sent_ns.frombytes(cols[2])
                    rec.end_ns.frombytes(cols[3])  # last: a reader never sees a partial row
                    if err_times:
                        if errs.first is None:
                            errs.first = first
                        errs.times_ns.frombytes(err_times)
                elif message[0] == "done":
                    _, cpu_s, spin_s, wall_s = message
                    self.loop_stats[k] = LoopStats(cpu_s, spin_s, wall_s)
                    return
                elif message[0] == "error":
                    self.errors.append(RuntimeError(message[1]))
                    return
        except (EOFError, OSError):
            self.errors.append(RuntimeError(f"load generator process {k} died"))

    def stop(self) -> None:
        self._stop.set()
        if self._mp_stop is not None:
            self._mp_stop.set()
        for thread in self._threads:
            thread.join(STOP_TIMEOUT_S)
        self._kill()

    def _kill(self) -> None:
        for proc in self._procs:
            proc.join(STOP_TIMEOUT_S)
            if proc.is_alive():
                proc.kill()
                proc.join(2.0)
        for conn in self._conns:
            conn.close()


def probe_step(
    prepared: Prepared, plan: LoadPlan, items_per_request: int, processes: int, abort: Any = None
) -> ProbeStep:
    """Drive the load with `processes` generators for a short probe: the rate it reached and
    each generator's busy share (`--generators auto`)."""
    driver = RemoteDriver(prepared, plan, items_per_request, processes)
    driver.start()
    try:
        _pause(PROBE_WARM_S, abort)
        n0, t0 = driver.completed(), perf_counter_ns()
        _pause(PROBE_S, abort)
        n1, t1 = driver.completed(), perf_counter_ns()
    finally:
        driver.stop()
    if driver.errors:
        raise driver.errors[0]
    return ProbeStep(driver.processes, (n1 - n0) * 1e9 / max(t1 - t0, 1), driver.busy_shares())


def _pause(seconds: float, abort: Any) -> None:
    if abort is None:
        time.sleep(seconds)
    else:
        abort.wait(seconds)


def _child(prepared: Prepared, plan: LoadPlan, conn: Connection, stopped: Any) -> None:
    """A generator process: open the sender's loop, wait for the start time, drive, ship."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    os.dup2(2, 1)
    rec, errs, stats = Recorder(), ErrorLog(), LoopStats()
    cursor = {"rows": 0, "errors": 0}

    def flush() -> None:
        n, lo = len(rec.end_ns), cursor["rows"]
        e, elo = len(errs.times_ns), cursor["errors"]
        if n == lo and e == elo:
            return
        taken = rec.extra.get("taken")
        cols = (
            rec.intended_ns[lo:n].tobytes(),
            taken[lo:n].tobytes() if taken is not None else b"",
            rec.sent_ns[lo:n].tobytes() if rec.sent_ns else b"",
            rec.end_ns[lo:n].tobytes(),
        )
        conn.send(("records", cols, errs.times_ns[elo:e].tobytes(), errs.first))
        cursor["rows"], cursor["errors"] = n, e

    try:
        importlib.import_module(SENDERS[prepared.protocol])  # its imports are slow: not later
        conn.send("ready")
        t0 = conn.recv()
        run_loop(generate(prepared, plan, rec, errs, stopped, t0, stats, on_tick=flush), plan.kind)
        flush()
        conn.send(("done", stats.cpu_s, stats.spin_s, stats.wall_s))
    except (EOFError, OSError):
        return
    except BaseException as exc:
        try:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        except OSError:
            pass
