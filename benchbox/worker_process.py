"""A worker process started ahead of need: its Python start and its imports (numpy, onnxruntime,
the measuring code) overlap with what the parent does meanwhile.

It runs `benchbox.sweep.worker.child_main`, says READY once imported, then waits for its context
(`sweep.worker.ProcessWorker` sends it). This module imports nothing of benchbox, so the command
line can start the process for `sweep` and `run` before it imports the sweep itself
(`start_early`); the sweep's first worker takes that process (`take_early`).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

READY = "ready"
NO_ISOLATION_ENV = "BENCHBOX_NO_ISOLATION"  # set, not 0: measure in-process, no worker
STARTUP_TIMEOUT_S = 120.0
POLL_S = 0.1


@dataclass
class Child:
    """A worker process and its end of the socket pair."""

    proc: subprocess.Popen
    conn: Connection
    ready: bool = False

    def wait_ready(self, timeout_s: float = STARTUP_TIMEOUT_S) -> bool:
        """Wait (interruptibly) until the child has imported what it measures with; False if it
        died or took longer than `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while not self.ready and self.proc.poll() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if wait([self.conn], timeout=min(POLL_S, left)):
                try:
                    self.ready = self.conn.recv() == READY
                except (EOFError, OSError):
                    return False
        return self.ready

    def discard(self) -> None:
        """Kill the child (if alive) and close the socket."""
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(2.0)
        self.conn.close()


def spawn_child() -> Child:
    """Start a worker process now. It imports onnxruntime and the measuring code while the caller
    goes on, says READY, then waits for its context."""
    parent_sock, child_sock = socket.socketpair()
    fd = child_sock.fileno()
    code = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        f"sys.path[:] = {sys.path!r}; "
        f"from benchbox.sweep.worker import child_main; child_main({fd})"
    )
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", code], pass_fds=(fd,), stdin=subprocess.DEVNULL
        )
    finally:
        child_sock.close()
    return Child(proc, Connection(parent_sock.detach()))


_early: list[Child] = []  # at most one: the process the command line started


def start_early() -> None:
    """Start a worker process now, for the sweep this command is about to run."""
    if not _early:
        _early.append(spawn_child())


def take_early() -> Child | None:
    """The process `start_early` started, if it is still alive (it is the caller's now)."""
    while _early:
        child = _early.pop()
        if child.proc.poll() is None:
            return child
        child.discard()
    return None


def discard_early() -> None:
    """Stop the early process if no sweep took it (bad input, --help)."""
    while _early:
        _early.pop().discard()
