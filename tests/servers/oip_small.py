"""A small real Open Inference Protocol REST server (aiohttp, 127.0.0.1) whose models misbehave.

Model `ok` answers well; `truncated` cuts its JSON short; `wrongshape` answers one row too many;
`hangup` closes the connection mid-answer; `slow` sleeps past any short request timeout;
`sometimes` truncates every third answer; `ok` keeps the values of x it
was sent (`SEEN`). Every model takes x FP32 [-1, 4] and gives y FP32
[-1, 2]. It runs in a thread of the test process.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

MODELS = ("ok", "truncated", "wrongshape", "hangup", "slow", "sometimes")
SLOW_S = 3.0
COUNTS: dict[str, int] = {}
SERVED: dict[str, int] = {}  # infer requests received, per model (every model)
# The distinct values of x that model `ok` was sent (a bounded set: tests send few values).
SEEN: set[float] = set()
SEEN_LIMIT = 10_000


def _meta(name: str) -> dict:
    return {
        "name": name,
        "versions": ["1"],
        "platform": "test",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 2]}],
    }


async def _server(request: web.Request) -> web.Response:
    return web.json_response({"name": "oip-small", "version": "1", "extensions": []})


async def _model(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in MODELS:
        return web.json_response({"error": f"no model {name}"}, status=404)
    return web.json_response(_meta(name))


async def _infer(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    SERVED[name] = SERVED.get(name, 0) + 1
    body = await request.json()
    rows = int(body["inputs"][0]["shape"][0])
    if name == "ok" and len(SEEN) < SEEN_LIMIT:
        SEEN.update(float(v) for v in body["inputs"][0]["data"])
    if name == "wrongshape":
        rows += 1
    answer = json.dumps(
        {
            "outputs": [
                {"name": "y", "datatype": "FP32", "shape": [rows, 2], "data": [0.5] * (2 * rows)}
            ]
        }
    ).encode()
    if name == "sometimes":
        COUNTS[name] = COUNTS.get(name, 0) + 1
        if COUNTS[name] % 3 == 0:
            return web.Response(body=answer[:-3], content_type="application/json")
    if name == "truncated":
        return web.Response(body=answer[: len(answer) // 2], content_type="application/json")
    if name == "slow":
        await asyncio.sleep(SLOW_S)
    if name == "hangup":
        resp = web.StreamResponse(headers={"Content-Length": str(len(answer))})
        await resp.prepare(request)
        await resp.write(answer[:10])
        request.transport.close()
        return resp
    return web.Response(body=answer, content_type="application/json")


def app() -> web.Application:
    a = web.Application()
    a.router.add_get("/v2", _server)
    a.router.add_get("/v2/models/{name}", _model)
    a.router.add_post("/v2/models/{name}/infer", _infer)
    return a


@contextmanager
def serving(port: int, ssl_context: ssl.SSLContext | None = None) -> Iterator[None]:
    """Serve on 127.0.0.1:port in a thread until the block ends."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app(), access_log=None)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context)
        loop.run_until_complete(site.start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30), "the test server did not start"
    try:
        yield
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(15)
