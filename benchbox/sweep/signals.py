"""SIGINT and SIGTERM stop a sweep cleanly: it saves what it measured."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def stop_on_signals(abort: threading.Event) -> Iterator[threading.Event]:
    """While inside, SIGINT and SIGTERM set `abort` (the sweep stops and saves); a second signal
    raises KeyboardInterrupt at once. Outside the main thread this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield abort
        return

    def handle(signum: int, frame: Any) -> None:
        if abort.is_set():
            raise KeyboardInterrupt()
        abort.set()

    old = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield abort
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
