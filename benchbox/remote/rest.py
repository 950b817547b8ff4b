"""KServe v2 REST: blocking metadata and statistics calls (urllib), and the async sender (aiohttp).

aiohttp is the sender because it is the most used asyncio HTTP/1.1 client, keeps connections
alive in a bounded pool, and sends a prepared `bytes` body without copying it per request.
"""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.error
import urllib.request
from typing import Any

import aiohttp
from multidict import CIMultiDict

from benchbox.errors import BadInput
from benchbox.remote.target import Target
from benchbox.remote.wire import HEADER_LENGTH, Prepared, ServerInfo, error_text, server_info

PROBE_TIMEOUT_S = 10.0


def _get(target: Target, path: str, headers: tuple[tuple[str, str], ...]) -> tuple[int, bytes]:
    """GET a path on the server: (status, body); OSError when the server cannot be reached."""
    req = urllib.request.Request(target.base_url + path, headers=dict(headers), method="GET")
    try:
        with urllib.request.urlopen(req, timeout=PROBE_TIMEOUT_S) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _unreachable(target: Target, exc: BaseException) -> BadInput:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, ConnectionRefusedError):
        why = "connection refused"
    elif isinstance(reason, socket.timeout | TimeoutError):
        why = f"no answer within {PROBE_TIMEOUT_S:g}s"
    else:
        why = str(reason)
    return BadInput(
        f"cannot reach the server at {target.base_url}: {why}",
        "check that it is running and that HOST:PORT is its HTTP port",
    )


def probe(target: Target, headers: tuple[tuple[str, str], ...]) -> ServerInfo:
    """Server and model metadata; BadInput (before any load) when either cannot be read."""
    try:
        status, body = _get(target, "/v2", headers)
        if status != 200:
            raise BadInput(
                f"{target.base_url}/v2 answered {error_text(status, body)}",
                "is this a KServe v2 / Open Inference Protocol server? (--header passes auth)",
            )
        server = _json(body, f"{target.base_url}/v2")
        status, body = _get(target, target.model_path, headers)
    except OSError as exc:
        raise _unreachable(target, exc) from None
    if status != 200:
        raise BadInput(
            f"the server at {target.base_url} has no model '{target.model}'"
            + (f" version {target.version}" if target.version else "")
            + f" ({error_text(status, body)})",
            "check the model name in the URL (the server's model repository lists them)",
        )
    return server_info(server, _json(body, target.base_url + target.model_path))


def _json(body: bytes, where: str) -> dict:
    try:
        data = json.loads(body)
    except ValueError:
        raise BadInput(f"{where} did not answer JSON") from None
    if not isinstance(data, dict):
        raise BadInput(f"{where} did not answer a JSON object")
    return data


def statistics(target: Target, headers: tuple[tuple[str, str], ...]) -> tuple[Any, str | None]:
    """The model's statistics (`GET .../stats`) as JSON, or (None, why they are unavailable)."""
    try:
        status, body = _get(target, target.model_path + "/stats", headers)
    except OSError as exc:
        return None, f"the statistics endpoint could not be reached ({exc})"
    if status != 200:
        return None, f"the statistics endpoint answered {error_text(status, body)}"
    try:
        return json.loads(body), None
    except ValueError:
        return None, "the statistics endpoint did not answer JSON"


def infer_url(target: Target) -> str:
    """The REST inference URL of the target's model."""
    return target.base_url + target.model_path + "/infer"


class Sender:
    """Sends the prepared REST requests over a pool of kept-alive connections."""

    def __init__(self, prepared: Prepared, connections: int) -> None:
        self.prepared = prepared
        self.connections = max(1, connections)
        self.session: aiohttp.ClientSession | None = None
        base = dict(prepared.headers)
        self.headers = []
        for k in range(len(prepared.bodies)):
            h = dict(base)
            n = prepared.header_lengths[k] if prepared.header_lengths else None
            if n is not None:
                h[HEADER_LENGTH] = str(n)
                h["Content-Type"] = "application/octet-stream"
            else:
                h["Content-Type"] = "application/json"
            self.headers.append(CIMultiDict(h))

    async def open(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.connections, ttl_dns_cache=None)
        timeout = aiohttp.ClientTimeout(total=self.prepared.timeout_s)
        # Nothing per request that a benchmark does not need: no cookies, no decompression, and
        # no Accept-Encoding: Triton compresses answers for clients that accept gzip.
        self.session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
        )

    async def send(self, i: int) -> str | None:
        """Send request i; None when the server answered 200, else the error's one line."""
        k = i % len(self.prepared.bodies)
        assert self.session is not None
        try:
            async with self.session.post(
                self.prepared.address, data=self.prepared.bodies[k], headers=self.headers[k]
            ) as resp:
                body = await resp.read()
                if resp.status != 200:
                    return error_text(resp.status, body)
                return None
        except TimeoutError:
            return f"timed out after {self.prepared.timeout_s:g}s"
        except aiohttp.ClientError as exc:
            return f"{type(exc).__name__}: {exc}"[:300]

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            await asyncio.sleep(0)
