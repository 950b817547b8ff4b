"""Crash isolation: the cells of one device group are measured in a worker process of their own.

`ProcessWorker` has the same face as `runner.InProcessWorker` (`measure(cell) -> Cell`, `close()`)
but runs the cells in a child Python process, one cell at a time over a socket pair (pickled
messages, multiprocessing's `Connection`), so each result comes back (and is saved by the sweep)
as soon as it is measured. When the child dies while measuring (segfault, OOM kill, abort) or a
cell runs past its timeout, the cell comes back `failed` with the reason, and the next cell starts
a fresh child. The child ignores SIGINT: the parent handles Ctrl-C (through the sweep's `abort`
event) and kills the child.

The child is a plain `subprocess` running `serve`, not a multiprocessing `Process`: spawn would
start multiprocessing's resource tracker beside it, and when a signal takes that helper down
with the worker, the next spawn prints the tracker's "process died unexpectedly" warning to the
user. The child shares nothing that needs tracking, and the caller's main module is not imported
again (no `if __name__ == "__main__":` guard needed).

Test hook (tests only): `BENCHBOX_TEST_WORKER_FAULT=KIND:CELL_ID` makes the worker fault when it
is handed that cell, with KIND one of `segv` (SIGSEGV), `exit` (exit code 3), `hang`, or
`hang-trial` (hang on a later trial of that cell only).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection, wait

from benchbox.measure.cell import Aborted, MeasureSettings
from benchbox.schema import Cell, replace
from benchbox.sweep.runner import CellContext, InProcessWorker, failure_reason, skip_reason
from benchbox.worker_process import READY, STARTUP_TIMEOUT_S, Child, spawn_child, take_early

# Time to open a config's sessions (TensorRT builds its engines then), on top of measuring.
SESSION_MARGIN_S = 120.0
POLL_S = 0.1
TAKEN = "taken"
FAULT_ENV = "BENCHBOX_TEST_WORKER_FAULT"


def default_cell_timeout_s(settings: MeasureSettings) -> float:
    """How long one cell may take, from when its worker takes it, before the worker is stopped:
    twice the warm-up plus the longest measuring time (windows stretch, requests drain), plus
    the margin for opening the sessions."""
    warmup_s = settings.warmup_s if settings.warmup_s is not None else settings.warmup_max_s
    measure_s = settings.duration_s if settings.duration_s is not None else settings.max_duration_s
    return 2.0 * (warmup_s + measure_s) + SESSION_MARGIN_S


def exit_reason(exitcode: int | None) -> str:
    """How a worker process ended, in words: the signal that killed it, or its exit code."""
    if exitcode is None:
        return "the worker process stopped answering"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        text = f"the worker process was killed by {name} (signal {-exitcode})"
        if -exitcode == signal.SIGKILL:
            text += "; the kernel's OOM killer sends SIGKILL when memory runs out"
        return text
    return f"the worker process exited with code {exitcode}"


class ProcessWorker:
    """Measures the cells of one device group in a spawned child process, restarting it after a
    crash or a timeout."""

    def __init__(
        self,
        ctx: CellContext,
        abort: threading.Event | None = None,
        cell_timeout_s: float | None = None,
        child: Child | None = None,
    ) -> None:
        """`child`: a process already started with `spawn_child`, for the first cell."""
        self.ctx = ctx
        self.abort = abort
        self.cell_timeout_s = cell_timeout_s or default_cell_timeout_s(ctx.settings)
        self.processes_started = 0
        self._proc = None
        self._conn = None
        self._spare = child

    @property
    def pid(self) -> int | None:
        """The current child's process id (None before the first cell or after a crash)."""
        return self._proc.pid if self._proc is not None else None

    def _start(self) -> None:
        child, self._spare = self._spare, None
        if child is None or child.proc.poll() is not None:
            if child is not None:
                child.discard()
            child = spawn_child()
        try:
            child.conn.send(self.ctx)
        except OSError:  # it died while starting: the next cell's send sees that
            pass
        self._proc, self._conn = child.proc, child.conn
        self.processes_started += 1

    def measure(self, cell: Cell) -> Cell:
        """The cell measured in the child, or failed with how the child died or timed out."""
        reason = skip_reason(self.ctx, cell)
        if reason:  # no need to start a process to say so
            return replace(cell, status="skipped", reason=reason, result=None)
        if self._aborted():
            raise Aborted()
        if self._proc is None or self._proc.poll() is not None:
            self._discard()
            self._start()
        assert self._proc is not None and self._conn is not None
        # Until the child takes the cell it may still be starting (importing onnxruntime); the
        # cell's own timeout runs from then.
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        taken = False
        try:
            self._conn.send(cell)
        except OSError:  # the child died before it could take the cell
            return self._died(cell)
        while True:
            if self._aborted():
                self._discard()
                raise Aborted()
            left = deadline - time.monotonic()
            if left <= 0:
                self._discard()
                return replace(cell, status="failed", result=None, reason=self._late(taken))
            # The child holds the only other end of the socket: it becomes readable (EOF) when
            # the child dies, however it dies.
            if not wait([self._conn], timeout=min(POLL_S, left)):
                continue
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                return self._died(cell)
            if message == READY:  # a child started ahead of its context says so first
                continue
            if message == TAKEN:
                taken = True
                deadline = time.monotonic() + self.cell_timeout_s
                continue
            return message

    def _late(self, taken: bool) -> str:
        if taken:
            return (
                f"timed out after {self.cell_timeout_s:g}s (--cell-timeout); the worker process "
                "was stopped and the sweep went on"
            )
        return f"the worker process did not start within {STARTUP_TIMEOUT_S:g}s"

    def _aborted(self) -> bool:
        return self.abort is not None and self.abort.is_set()

    def _died(self, cell: Cell) -> Cell:
        assert self._proc is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(2.0)
        why = exit_reason(self._proc.returncode)
        self._discard()
        if self._aborted():  # a Ctrl-C or SIGTERM reached the whole process group
            raise Aborted()
        return replace(
            cell, status="failed", result=None, reason=f"{why} while measuring this cell"
        )

    def _discard(self) -> None:
        """Kill the child (if alive) and forget it."""
        proc, conn = self._proc, self._conn
        self._proc, self._conn = None, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(2.0)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Ask the child to finish (it closes its sessions); kill it if it does not."""
        if self._proc is not None and self._proc.poll() is None and not self._aborted():
            try:
                self._conn.send(None)
                self._proc.wait(2.0)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._discard()
        if self._spare is not None:
            self._spare.discard()
            self._spare = None


class ProcessWorkers:
    """The sweep's worker factory: a ProcessWorker per device group. With `warm`, the first one's
    process starts at once, so Python's start and the imports overlap with what the sweep does
    before its first cell (reading the model, the host, the idle baseline)."""

    def __init__(self, cell_timeout_s: float | None = None, warm: bool = False) -> None:
        self.cell_timeout_s = cell_timeout_s
        self.spare = (take_early() or spawn_child()) if warm else None

    def __call__(self, ctx: CellContext, abort: threading.Event | None) -> ProcessWorker:
        child, self.spare = self.spare, None
        return ProcessWorker(ctx, abort, self.cell_timeout_s, child)

    def settle(self, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        """Wait until the early process has finished starting (the machine is quiet again)."""
        if self.spare is not None:
            self.spare.wait_ready(timeout_s)

    def close(self) -> None:
        """Stop the early process if no worker took it."""
        if self.spare is not None:
            self.spare.discard()
            self.spare = None


def child_main(fd: int) -> None:
    """The child's entry point: READY, then the context over the socket, then the cells."""
    conn = Connection(fd)
    import onnxruntime  # noqa: F401 - now, while the parent reads the model, not in the first cell

    try:
        conn.send(READY)
        ctx = conn.recv()
    except (EOFError, OSError):  # the parent is gone before it sent anything
        os._exit(0)
    serve(ctx, conn)
    # The sessions are closed: skip the interpreter's teardown (onnxruntime's takes a while),
    # which the parent would otherwise wait for.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def serve(ctx: CellContext, conn) -> None:
    """The child's loop: take a cell, measure it, send it back; stop on None or a closed pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.dup2(2, 1)  # keep the parent's stdout clean (`--json`): anything printed goes to stderr
    worker = InProcessWorker(ctx, None)
    try:
        while True:
            try:
                cell = conn.recv()
                if cell is None:
                    return
                conn.send(TAKEN)
                _test_fault(cell.id, cell.result is not None)
                try:
                    done = worker.measure(cell)
                except Exception as exc:  # the cell's own failure, not the worker's
                    done = replace(cell, status="failed", result=None, reason=failure_reason(exc))
                conn.send(done)
            except (EOFError, OSError):  # the parent is gone: nobody to measure for
                return
    finally:
        worker.close()


def _test_fault(cell_id: str, later_trial: bool = False) -> None:
    """Tests only: fault as BENCHBOX_TEST_WORKER_FAULT asks when handed that cell (`hang-trial`:
    hang on a later trial of it only, the trial phase handing over a measured cell)."""
    kind, _, target = os.environ.get(FAULT_ENV, "").partition(":")
    if not target or target != cell_id:
        return
    if kind == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif kind == "exit":
        os._exit(3)
    elif kind == "hang" or (kind == "hang-trial" and later_trial):
        time.sleep(3600)
