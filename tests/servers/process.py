"""Start a server script as a real process on 127.0.0.1 with free ports; stop it by its PID."""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

from . import venvs

HERE = pathlib.Path(__file__).parent
READY_TIMEOUT_S = 180.0
POLL_S = 0.25


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass(frozen=True)
class Server:
    pid: int
    http_port: int
    grpc_port: int
    log: pathlib.Path

    def http(self, model: str) -> str:
        return f"http://127.0.0.1:{self.http_port}/v2/models/{model}"

    def grpc(self, model: str) -> str:
        return f"grpc://127.0.0.1:{self.grpc_port}/{model}"


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


# Servers whose stop was started but not waited for (stop_in_background): joined by join_stops().
_STOPPING: list[threading.Thread] = []


@contextlib.contextmanager
def serve(
    venv: str,
    script: str,
    args: list[str],
    log_dir: pathlib.Path,
    ready_path: str,
    stop_in_background: bool = False,
) -> Iterator[Server]:
    """Run tests/servers/SCRIPT in VENV's Python with --http-port/--grpc-port/--metrics-port
    added; yield once GET ready_path answers 200 (bounded), then stop the process group.

    With `stop_in_background` the block ends as soon as SIGTERM is sent, and the graceful stop
    (tritonserver unloads its models in 5-20 s) is waited for on a thread: join_stops() waits."""
    python = venvs.python_of(venv)
    http_port, grpc_port, metrics_port = free_ports(3)
    log = log_dir / f"{script}.{http_port}.log"
    cmd = [str(python), str(HERE / script), *args]
    cmd += ["--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    cmd += ["--metrics-port", str(metrics_port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=venvs.server_env(venv),
            cwd=log_dir,
            start_new_session=True,  # its own process group: tritonserver is its child
        )
    server = Server(proc.pid, http_port, grpc_port, log)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        url = f"http://127.0.0.1:{http_port}{ready_path}"
        while not _ready(url):
            if proc.poll() is not None:
                raise RuntimeError(f"{script} exited with {proc.returncode}:\n{_tail(log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{script} not ready in {READY_TIMEOUT_S:g}s:\n{_tail(log)}")
            time.sleep(POLL_S)
        yield server
    finally:
        if stop_in_background:
            thread = threading.Thread(target=_stop, args=(proc,), name=f"stop {script}")
            thread.start()
            _STOPPING.append(thread)
        else:
            _stop(proc)


def join_stops(timeout_s: float = 60.0) -> None:
    """Wait (bounded: each stop is itself bounded to ~30 s) for the servers stopping."""
    while _STOPPING:
        _STOPPING.pop().join(timeout_s)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (by the PID we started), then SIGKILL if needed."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    else:  # the leader is gone; its children may not be
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def _tail(log: pathlib.Path, n: int = 3000) -> str:
    try:
        return log.read_text(errors="replace")[-n:]
    except OSError:
        return ""
