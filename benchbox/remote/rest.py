"""KServe v2 REST: blocking metadata and statistics calls (urllib), and the async sender (aiohttp).

aiohttp is the sender because it is the most used asyncio HTTP/1.1 client, keeps connections
alive in a bounded pool, and sends a prepared `bytes` body without copying it per request.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import urllib.error
import urllib.request
from typing import Any

import aiohttp
from multidict import CIMultiDict

from benchbox.errors import BadInput
from benchbox.remote.target import Target, ssl_context
from benchbox.remote.wire import (
    HEADER_LENGTH,
    Prepared,
    ServerInfo,
    check_binary_answer,
    error_text,
    server_info,
)

PROBE_TIMEOUT_S = 10.0


def _get(target: Target, path: str, headers: tuple[tuple[str, str], ...]) -> tuple[int, bytes]:
    """GET a path on the server: (status, body); OSError when the server cannot be reached."""
    url = target.base_url + path + (f"?{target.query}" if target.query else "")
    req = urllib.request.Request(url, headers=dict(headers), method="GET")
    try:
        ctx = ssl_context(target.ca_cert, target.insecure) if target.tls else None
        with urllib.request.urlopen(req, timeout=PROBE_TIMEOUT_S, context=ctx) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _unreachable(target: Target, exc: BaseException) -> BadInput:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, ConnectionRefusedError):
        why = "connection refused"
    elif isinstance(reason, ssl.SSLCertVerificationError):
        return BadInput(
            f"cannot reach the server at {target.base_url}: its TLS certificate is not trusted "
            f"({reason.verify_message})",
            "pass --ca-cert FILE with the CA that signed it (or --insecure to skip the check)",
        )
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


def _one_line(x: Any) -> str:
    return " ".join(str(x).split())[:300] or type(x).__name__


def infer_url(target: Target) -> str:
    """The REST inference URL of the target's model."""
    tail = f"?{target.query}" if target.query else ""
    return target.base_url + target.model_path + "/infer" + tail


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
        tls = self.prepared.address.startswith("https:")
        ctx = ssl_context(self.prepared.ca_cert, self.prepared.insecure) if tls else None
        connector = aiohttp.TCPConnector(
            limit=self.connections, ttl_dns_cache=None, ssl=ctx if ctx is not None else True
        )
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

    async def send(self, i: int) -> tuple[str | None, Any]:
        """Send request i: (None, the answer) when the server answered 200, else (its one line,
        None). The answer is checked by `check`, after its time is taken."""
        k = i % len(self.prepared.bodies)
        assert self.session is not None
        try:
            async with self.session.post(
                self.prepared.address, data=self.prepared.bodies[k], headers=self.headers[k]
            ) as resp:
                body = await resp.read()
                if resp.status != 200:
                    return error_text(resp.status, body), None
                return None, (body, resp.headers.get(HEADER_LENGTH))
        except TimeoutError:
            return f"timed out after {self.prepared.timeout_s:g}s", None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
            return f"connection closed mid-answer ({_one_line(exc)})", None
        except aiohttp.ClientConnectorCertificateError as exc:
            return f"TLS certificate not trusted ({_one_line(exc.certificate_error)})", None
        except aiohttp.ClientConnectorError as exc:
            return f"cannot connect ({_one_line(exc.os_error)})", None
        except aiohttp.ClientResponseError as exc:
            return f"malformed answer: {_one_line(exc.message)}", None
        except aiohttp.ClientError as exc:
            return f"{type(exc).__name__}: {_one_line(exc)}", None

    def check(self, i: int, answer: Any) -> str | None:
        """What is wrong with request i's answer ('malformed answer: ...'), or None."""
        body, header_length = answer
        return check_binary_answer(body, header_length, self.prepared.expected)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            await asyncio.sleep(0)
