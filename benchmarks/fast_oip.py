"""A tiny fast Open Inference Protocol server and the candidate client loops that
`benchmarks/remote.py clients` measures against wrk and hey. Nothing here asserts.

    python benchmarks/fast_oip.py serve PORT CORE
    python benchmarks/fast_oip.py client NAME URL BODY CONNECTIONS SECONDS CORE

The server is a bare ASGI app on uvicorn with httptools and uvloop, pinned to one core: it
answers `GET /v2`, `GET /v2/models/M` and `POST /v2/models/M/infer` (a fixed JSON answer for x
FP32 [-1, 4] -> y FP32 [-1, 4], batch 1), so the client side, not the server, is what varies.

A client runs a closed loop of CONNECTIONS workers over kept-alive connections for SECONDS,
pinned to CORE, and prints one JSON line: requests, seconds, cpu_s. Candidates:

    aiohttp          aiohttp's ClientSession on asyncio's default loop (benchbox's sender today)
    aiohttp-uvloop   the same on uvloop
    httpx            httpx.AsyncClient (HTTP/1.1) on asyncio
    protocol         a bare asyncio.Protocol per connection, the request pre-serialized to bytes
    protocol-uvloop  the same on uvloop
    llhttp           the bare protocol with httptools (llhttp, uvicorn's parser) reading answers
    llhttp-uvloop    the same on uvloop
    benchbox         benchbox's own RemoteDriver (one generator, a thread of this process), as
                     shipped: since the README's figures, closed loops run on uvloop when it
                     is installed, so this now equals benchbox-uvloop
    benchbox-N       benchbox's RemoteDriver with N generator processes (on the same core)
    benchbox-uvloop  benchbox's RemoteDriver, one generator, its loop on uvloop
    benchbox@base    benchbox's RemoteDriver from the checkout in $BENCHBOX_BASELINE (the
                     sender before this one: `remote.py --baseline PATH`)
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

ANSWER = json.dumps(
    {
        "model_name": "m",
        "outputs": [
            {"name": "y", "datatype": "FP32", "shape": [1, 4], "data": [0.0, 0.0, 0.0, 0.0]}
        ],
    }  # fmt: skip
).encode()
SERVER = json.dumps({"name": "fast-oip", "version": "1", "extensions": []}).encode()


def _meta(name: str) -> bytes:
    spec = {"datatype": "FP32", "shape": [-1, 4]}
    meta = {"name": name, "versions": ["1"], "platform": "fixed",
            "inputs": [{"name": "x", **spec}], "outputs": [{"name": "y", **spec}]}  # fmt: skip
    return json.dumps(meta).encode()


async def app(scope, receive, send) -> None:
    """The ASGI app: metadata, readiness and a fixed inference answer."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    if scope["method"] == "POST":
        more = True
        while more:  # drain the request body
            more = (await receive()).get("more_body", False)
        body = ANSWER
    elif path == "/v2" or path.endswith("/ready"):
        body = SERVER
    else:
        body = _meta(path.rsplit("/", 1)[-1])
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def serve(port: int, core: int) -> None:
    import uvicorn

    os.sched_setaffinity(0, {core})
    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools",
                lifespan="off", access_log=False, log_level="warning")  # fmt: skip


# ---------------------------------------------------------------- clients


async def _aiohttp(url: str, body: bytes, c: int, seconds: float) -> int:
    import aiohttp

    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=c)
    count = 0
    async with aiohttp.ClientSession(
        connector=connector, skip_auto_headers=("User-Agent", "Accept-Encoding")
    ) as session:
        end = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal count
            while time.monotonic() < end:
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                count += 1

        await asyncio.gather(*(worker() for _ in range(c)))
    return count


async def _httpx(url: str, body: bytes, c: int, seconds: float) -> int:
    import httpx

    limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
    headers = {"Content-Type": "application/json"}
    count = 0
    async with httpx.AsyncClient(limits=limits) as client:
        end = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal count
            while time.monotonic() < end:
                (await client.post(url, content=body, headers=headers)).read()
                count += 1

        await asyncio.gather(*(worker() for _ in range(c)))
    return count


class _Conn(asyncio.Protocol):
    """One kept-alive HTTP/1.1 connection: write pre-serialized bytes, read one answer with
    a Content-Length (what OIP servers send)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.need = -1
        self.waiter: asyncio.Future | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.need < 0:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).lower()
            i = head.index(b"content-length:") + 15
            j = head.find(b"\r\n", i)
            self.need = end + 4 + int(head[i : j if j > 0 else None])
        if len(self.buf) >= self.need:
            answer = bytes(self.buf[: self.need])
            del self.buf[: self.need]
            self.need = -1
            self.waiter.set_result(answer)

    async def request(self, raw: bytes) -> bytes:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter


class _Parsed(_Conn):
    """The bare connection with httptools parsing the answers (chunked, keep-alive and all)."""

    def __init__(self) -> None:
        import httptools

        super().__init__()
        self.parser = httptools.HttpResponseParser(self)
        self.chunks: list[bytes] = []

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        answer, self.chunks = b"".join(self.chunks), []
        self.waiter.set_result(answer)


async def _protocol(url: str, body: bytes, c: int, seconds: float, conn=_Conn) -> int:
    from urllib.parse import urlsplit

    u = urlsplit(url)
    raw = (
        f"POST {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    loop = asyncio.get_running_loop()
    conns = [(await loop.create_connection(conn, u.hostname, u.port))[1] for _ in range(c)]
    count = 0
    end = time.monotonic() + seconds

    async def worker(conn: _Conn) -> None:
        nonlocal count
        while time.monotonic() < end:
            await conn.request(raw)
            count += 1

    await asyncio.gather(*(worker(k) for k in conns))
    for conn in conns:
        conn.transport.close()
    return count


def _benchbox(url: str, c: int, seconds: float, processes: int) -> tuple[int, float]:
    from benchbox import model as model_mod
    from benchbox.remote import session as remote
    from benchbox.remote.generator import LoadPlan, RemoteDriver
    from benchbox.schema import replace

    session = replace(remote.connect(url.rsplit("/infer", 1)[0]), wire="json")
    feeds = model_mod.synthesize_inputs(session.model, 1, pool_size=1)[0]
    plan = LoadPlan("closed", c)
    driver = RemoteDriver(remote.prepare(session, [feeds]), plan, 1, processes)
    driver.start()
    time.sleep(seconds)
    driver.stop()
    # the generators' own loop CPU (children's too), not the imports and probes before them
    return sum(len(r.end_ns) for r in driver.recorders), sum(s.cpu_s for s in driver.loop_stats)


def client(name: str, url: str, body: bytes, c: int, seconds: float, core: int) -> None:
    os.sched_setaffinity(0, {core})
    kind, _, variant = name.partition("-")
    if kind.startswith("benchbox"):
        if variant == "uvloop":
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # asyncio.run then uses it
        n, cpu_s = _benchbox(url, c, seconds, int(variant) if variant.isdigit() else 1)
    else:
        import aiohttp  # noqa: F401  (imports before the CPU clock starts)
        import httpx  # noqa: F401
        import uvloop

        run = {"aiohttp": _aiohttp, "httpx": _httpx, "protocol": _protocol,
               "llhttp": lambda *a: _protocol(*a, conn=_Parsed)}[kind]  # fmt: skip
        cpu0 = time.process_time()
        if variant == "uvloop":
            n = uvloop.run(run(url, body, c, seconds))
        else:
            n = asyncio.run(run(url, body, c, seconds))
        cpu_s = time.process_time() - cpu0
    print(json.dumps({"requests": n, "seconds": seconds, "cpu_s": cpu_s}))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), int(sys.argv[3]))
    else:
        _, _, name, url, body_path, c, seconds, core = sys.argv
        with open(body_path, "rb") as f:
            client(name, url, f.read(), int(c), float(seconds), int(core))
