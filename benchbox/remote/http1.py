"""The REST sender: kept-alive HTTP/1.1 connections as bare asyncio protocols, each request
pre-serialized to bytes, the answers read by httptools (llhttp, the parser under uvicorn).

It replaced aiohttp's ClientSession as the generator's sender because the generator then
spends a sixth to an eighth of the CPU per request (issue 26; `benchmarks/remote.py`'s clients
part and the README have the figures):
one `transport.write` of prepared bytes, and a C parser calling back per answer, with no
request object, header multidict or response wrapper in between. The caller bounds how many
sends are in flight (the plan's concurrency); each in-flight send holds one connection, so the
pool never grows past that. A connection the server closes, or that answers with
`Connection: close`, is dropped and a fresh one opened on the next send.

Two costs per request are shared instead (they were a third of the loop's CPU in a profile):
the request timeout is one watchdog task checking every connection's deadline each WATCH_S
(a timeout fires up to WATCH_S late) rather than a timer per request; and an answer's check
is remembered for answers byte-identical to one already found good (a deterministic model
answers each of the pool's few bodies the same way), up to KNOWN_GOOD answers of at most
KNOWN_GOOD_BYTES each.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any
from urllib.parse import urlsplit

import httptools

from benchbox.remote.target import ssl_context
from benchbox.remote.wire import HEADER_LENGTH, Prepared, check_binary_answer, error_text

_HEADER_LENGTH = HEADER_LENGTH.lower().encode()
WATCH_S = 0.05
KNOWN_GOOD = 64
KNOWN_GOOD_BYTES = 65536


class Closed(Exception):
    """The server closed the connection before its answer was complete."""


class _Connection(asyncio.Protocol):
    """One kept-alive connection: write a request's bytes, get (status, body, header length)."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future | None = None
        self.chunks: list[bytes] = []
        self.header_length: str | None = None
        self.reusable = True
        self.deadline = 0.0  # the loop time its answer is due by

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.reusable = False
            self._finish(exc=ValueError(f"malformed answer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self._finish(exc=Closed(str(exc) if exc else "the server closed the connection"))

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == _HEADER_LENGTH:
            self.header_length = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if not self.parser.should_keep_alive():
            self.reusable = False
        body = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        self._finish((self.parser.get_status_code(), body, self.header_length))

    def _finish(self, result: Any = None, exc: BaseException | None = None) -> None:
        waiter, self.waiter = self.waiter, None
        self.chunks, self.header_length = [], None
        if waiter is None or waiter.done():
            return
        if exc is None:
            waiter.set_result(result)
        else:
            waiter.set_exception(exc)

    def request(self, raw: bytes, deadline: float) -> asyncio.Future:
        """Send one request's bytes; the future answers (status, body, header length)."""
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.deadline = deadline
        self.transport.write(raw)
        return self.waiter

    def expire(self, now: float) -> None:
        """Fail the request in flight with TimeoutError once its deadline has passed."""
        if self.waiter is not None and now > self.deadline:
            self.reusable = False
            self._finish(exc=TimeoutError())

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()


def request_bytes(prepared: Prepared) -> list[bytes]:
    """Each prepared body as a whole HTTP/1.1 POST: request line, headers and body."""
    url = urlsplit(prepared.address)
    target = url.path + (f"?{url.query}" if url.query else "")
    base = [f"POST {target} HTTP/1.1", f"Host: {url.netloc}"]
    base += [f"{k}: {v}" for k, v in prepared.headers]
    out = []
    for k, body in enumerate(prepared.bodies):
        n = prepared.header_lengths[k] if prepared.header_lengths else None
        lines = list(base)
        if n is not None:
            lines += [f"{HEADER_LENGTH}: {n}", "Content-Type: application/octet-stream"]
        else:
            lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
        out.append(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    return out


def _one_line(x: Any) -> str:
    return " ".join(str(x).split())[:300] or type(x).__name__


class Sender:
    """Sends the prepared REST requests over kept-alive HTTP/1.1 connections."""

    def __init__(self, prepared: Prepared, connections: int) -> None:
        self.prepared = prepared
        self.connections = max(1, connections)
        self.raw = request_bytes(prepared)
        url = urlsplit(prepared.address)
        self.tls = url.scheme == "https"
        self.host, self.port = url.hostname or "127.0.0.1", url.port or (443 if self.tls else 80)
        self.ssl: ssl.SSLContext | None = None
        self.idle: list[_Connection] = []  # kept alive, none in flight
        self.opened: set[_Connection] = set()  # every open one, closed by `close`
        self.loop: asyncio.AbstractEventLoop | None = None
        self.watchdog: asyncio.Task | None = None
        self.known_good: set[bytes] = set()

    async def open(self) -> None:
        self.loop = asyncio.get_running_loop()
        if self.tls:
            self.ssl = ssl_context(self.prepared.ca_cert, self.prepared.insecure)
        self.watchdog = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        assert self.loop is not None
        while True:
            await asyncio.sleep(WATCH_S)
            now = self.loop.time()
            for conn in list(self.opened):
                conn.expire(now)

    async def _connect(self) -> _Connection:
        assert self.loop is not None
        _, conn = await self.loop.create_connection(_Connection, self.host, self.port, ssl=self.ssl)
        self.opened.add(conn)
        return conn

    async def _take(self) -> _Connection:
        while self.idle:
            conn = self.idle.pop()
            if conn.reusable:  # else the server closed it while it was idle
                return conn
            self.opened.discard(conn)
        return await self._connect()

    async def send(self, i: int) -> tuple[str | None, Any]:
        """Send request i: (None, the answer) when the server answered 200, else (its one line,
        None). The answer is checked by `check`, after its time is taken."""
        try:
            conn = await self._take()
        except ssl.SSLCertVerificationError as exc:
            return f"TLS certificate not trusted ({_one_line(exc.verify_message)})", None
        except OSError as exc:
            return f"cannot connect ({_one_line(exc)})", None
        deadline = self.loop.time() + self.prepared.timeout_s
        try:
            status, body, header_length = await conn.request(self.raw[i % len(self.raw)], deadline)
        except TimeoutError:
            conn.close()
            return f"timed out after {self.prepared.timeout_s:g}s", None
        except Closed as exc:
            return f"connection closed mid-answer ({_one_line(exc)})", None
        except ValueError as exc:
            conn.close()
            return _one_line(exc), None
        if conn.reusable:
            self.idle.append(conn)
        else:
            conn.close()
            self.opened.discard(conn)
        if status != 200:
            return error_text(status, body), None
        return None, (body, header_length)

    def check(self, i: int, answer: Any) -> str | None:
        """What is wrong with request i's answer ('malformed answer: ...'), or None."""
        body, header_length = answer
        if header_length is None and body in self.known_good:
            return None
        why = check_binary_answer(body, header_length, self.prepared.expected)
        if why is None and header_length is None and len(body) <= KNOWN_GOOD_BYTES:
            if len(self.known_good) < KNOWN_GOOD:
                self.known_good.add(body)
        return why

    async def close(self) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()
            await asyncio.gather(self.watchdog, return_exceptions=True)
        for conn in self.opened:  # in-flight ones too: a cancelled send leaves its connection
            conn.close()
        self.idle, self.opened = [], set()
        await asyncio.sleep(0)
