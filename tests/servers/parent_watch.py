"""Imported first by each server script: when the process that started the server dies (a test
run killed by a timeout), kill the server's whole process group (tritonserver, stubs) too."""

from __future__ import annotations

import os
import signal
import threading
import time

POLL_S = 1.0


def _watch(parent: int) -> None:
    while True:
        time.sleep(POLL_S)
        if os.getppid() != parent:
            os.killpg(os.getpgid(0), signal.SIGKILL)


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(0)  # so the server's context managers stop what they started


def start() -> None:
    """Watch the parent from a daemon thread; SIGTERM exits cleanly."""
    threading.Thread(target=_watch, args=(os.getppid(),), daemon=True).start()
    signal.signal(signal.SIGTERM, _exit)
