"""pytest fixtures: the test servers, started on first use (PyTriton once per session, stopped
after its last test by tests/last_use.py; the others once per module). A server's graceful stop
goes on in the background while the next tests run; the session's end waits for it.

Import the ones a module needs (`from servers.fixtures import pytriton  # noqa: F401`).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
from collections.abc import Iterator

import last_use
import pytest

from benchbox import zoo

from . import process
from .process import Server

TOKEN = "benchbox-test-token"
SKIP_ENV = "BENCHBOX_SKIP_SERVERS"  # =1: skip the real-server tests (no PyPI to build venvs)


def serve(*args):
    """process.serve, or a skip when BENCHBOX_SKIP_SERVERS=1."""
    if os.environ.get(SKIP_ENV, "") not in ("", "0"):
        pytest.skip(f"{SKIP_ENV} is set: the real-server tests are skipped")
    return process.serve(*args, stop_in_background=True)


def pytest_sessionfinish(session: pytest.Session) -> None:
    process.join_stops()


def _mlp(cache: pathlib.Path) -> str:
    return str(zoo.path_for("mlp", cache=cache))


@pytest.fixture(scope="session")
def pytriton(zoo_cache, tmp_path_factory) -> Iterator[Server]:
    """PyTriton serving the MLP (`mlp`, and `flaky`), dynamic batching up to 16 with a 200 us
    delay, statistics opened with TritonSecurityConfig."""
    args = [_mlp(zoo_cache), "--max-batch", "16", "--delay-us", "200", "--preferred", "4,8"]
    args += ["--open-statistics", "--flaky"]
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(
            serve(
                "pytriton",
                "pytriton_server.py",
                args,
                tmp_path_factory.mktemp("pytriton"),
                "/v2/models/flaky/ready",
            )
        )
        last_use.hold("pytriton", stack)
        yield server


@pytest.fixture(scope="module")
def pytriton_token(zoo_cache, tmp_path_factory) -> Iterator[Server]:
    """PyTriton with its default restrictions: statistics need `triton-access-token: TOKEN`."""
    args = [_mlp(zoo_cache), "--max-batch", "8", "--token", TOKEN]
    with serve(
        "pytriton",
        "pytriton_server.py",
        args,
        tmp_path_factory.mktemp("pytriton-token"),
        "/v2/models/mlp/ready",
    ) as server:
        yield server


@pytest.fixture(scope="module")
def kserve_server(zoo_cache, tmp_path_factory) -> Iterator[Server]:
    """KServe ModelServer (REST and gRPC) serving the MLP (`mlp`, and `flaky`)."""
    with serve(
        "kserve",
        "kserve_server.py",
        [_mlp(zoo_cache)],
        tmp_path_factory.mktemp("kserve"),
        "/v2/models/flaky/ready",
    ) as server:
        yield server


@pytest.fixture(scope="module")
def mlserver_server(zoo_cache, tmp_path_factory) -> Iterator[Server]:
    """MLServer with the custom onnxruntime runtime serving the MLP (`mlp`, and `flaky`)."""
    with serve(
        "mlserver",
        "mlserver_server.py",
        [_mlp(zoo_cache)],
        tmp_path_factory.mktemp("mlserver"),
        "/v2/models/flaky/ready",
    ) as server:
        yield server
