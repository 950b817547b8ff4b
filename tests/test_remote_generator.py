"""The remote load generator against a tiny aiohttp server in this process (127.0.0.1): what it
records, never what speed it reaches."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
from aiohttp import web

from benchbox import model as model_mod
from benchbox.remote import session as remote
from benchbox.remote.generator import LoadPlan, RemoteDriver
from benchbox.schema import Cell, Load, MeasureSettings, ServingConfig, cell_id

STALL_S = 0.02


def _app(state: dict) -> web.Application:
    async def server(_):
        return web.json_response({"name": "tiny", "version": "0", "extensions": []})

    async def metadata(_):
        inputs = [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
        return web.json_response({"name": "m", "versions": ["1"], "inputs": inputs})

    async def infer(request):
        await request.read()
        state["calls"] += 1
        state["headers"] = dict(request.headers)
        if state.get("fail_every") and state["calls"] % state["fail_every"] == 0:
            return web.json_response({"error": "tiny server: scheduled failure"}, status=500)
        if state.get("stall"):
            await asyncio.sleep(STALL_S)
        return web.json_response({"outputs": []})

    app = web.Application()
    app.add_routes(
        [
            web.get("/v2", server),
            web.get("/v2/models/m", metadata),
            web.post("/v2/models/m/infer", infer),
        ]
    )
    return app


@pytest.fixture()
def tiny() -> Iterator[tuple[str, dict]]:
    """A KServe-v2-shaped aiohttp server in a thread; yields (model URL, its state)."""
    state = {"calls": 0}
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(_app(state), access_log=None)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.SockSite(runner, sock).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/v2/models/m", state
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.run_until_complete(runner.cleanup())
        loop.close()


def _drive(url: str, plan: LoadPlan, seconds: float, processes: int = 1) -> RemoteDriver:
    session = remote.connect(url)
    prepared = remote.prepare(session, model_mod.synthesize_inputs(session.model, 1))
    driver = RemoteDriver(prepared, plan, 1, processes)
    driver.start()
    time.sleep(seconds)
    driver.stop()
    return driver


def _cols(driver: RemoteDriver) -> dict[str, np.ndarray]:
    out = {}
    for name in ("intended_ns", "sent_ns", "end_ns"):
        out[name] = np.concatenate(
            [np.frombuffer(getattr(r, name), dtype=np.int64) for r in driver.recorders]
        )
    return out


def test_open_loop_never_sends_early_and_keeps_the_schedule_order(tiny):
    url, _ = tiny
    driver = _drive(url, LoadPlan("open", concurrency=16, rate_rps=200.0, seed=3), 1.0)
    c = _cols(driver)
    assert len(c["end_ns"]) > 20 and not driver.errors
    assert np.all(c["sent_ns"] >= c["intended_ns"])
    assert np.all(c["end_ns"] > c["sent_ns"])


def test_a_stalled_pool_is_charged_to_latency_from_the_intended_time(tiny):
    url, state = tiny
    state["stall"] = True
    # one request in flight at a time, arriving faster than the server answers them
    driver = _drive(url, LoadPlan("open", concurrency=1, rate_rps=200.0, seed=1), 1.0)
    c = _cols(driver)
    waited = c["sent_ns"] - c["intended_ns"]
    assert np.median(c["end_ns"] - c["intended_ns"]) > np.median(c["end_ns"] - c["sent_ns"])
    assert np.median(waited) / 1e9 > STALL_S  # the queue behind the stalled pool grows
    taken = np.frombuffer(driver.recorders[0].extra["taken"], dtype=np.int64)
    assert np.median(taken - c["intended_ns"]) > 0  # it is the pool's wait, not the generator's


def test_failed_requests_are_logged_not_timed(tiny):
    url, state = tiny
    state["fail_every"] = 4
    driver = _drive(url, LoadPlan("closed", concurrency=2), 0.5)
    ok = sum(len(r.end_ns) for r in driver.recorders)
    failed = len(driver.error_log.times_ns)
    assert ok > 0 and failed > 0
    assert abs(failed / (ok + failed) - 0.25) < 0.05
    assert driver.error_log.first == "HTTP 500: tiny server: scheduled failure"


def test_two_generator_processes_split_an_open_loop(tiny):
    url, _ = tiny
    driver = _drive(url, LoadPlan("open", concurrency=8, rate_rps=100.0, seed=2), 2.0, 2)
    assert driver.processes == 2 and not driver.errors
    counts = [len(r.end_ns) for r in driver.recorders]
    assert all(n > 10 for n in counts)
    c = _cols(driver)
    assert np.all(c["sent_ns"] >= c["intended_ns"])
    assert all(s.wall_s > 0 for s in driver.loop_stats)


def test_a_measured_cell_counts_errors_and_fails_over_one_percent(tiny):
    url, state = tiny
    state["fail_every"] = 10
    config = ServingConfig(device="remote")
    load = Load("closed", concurrency=2)
    done = remote.measure_cell(
        remote.connect(url), Cell(cell_id(config, load), config, load), MeasureSettings(0.2, 0.5)
    )
    assert done.status == "failed" and done.result.errors > 0
    assert "first error: HTTP 500: tiny server: scheduled failure" in done.reason
    kinds = {w.kind for w in done.warnings}
    assert {"request-errors", "no-server-split"} <= kinds


def test_requests_carry_the_given_headers_and_ask_for_no_compression(tiny):
    url, state = tiny
    session = remote.connect(url, (("Authorization", "Bearer abc"),))
    prepared = remote.prepare(session, model_mod.synthesize_inputs(session.model, 1))
    assert remote.first_request(prepared) is None
    headers = {k.lower(): v for k, v in state["headers"].items()}
    assert headers["authorization"] == "Bearer abc"
    assert headers["content-type"] == "application/json"
    # a server that compresses for clients that accept it would be measured compressing
    assert "accept-encoding" not in headers
