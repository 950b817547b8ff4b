"""KServe v2 REST: blocking metadata and statistics calls (urllib). The async sender that the
load generator drives is `benchbox.remote.http1`."""

from __future__ import annotations

import json
import socket
import ssl
import urllib.error
import urllib.request
from typing import Any

from benchbox.errors import BadInput
from benchbox.remote.target import Target, ssl_context
from benchbox.remote.wire import ServerInfo, error_text, server_info

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


def infer_url(target: Target) -> str:
    """The REST inference URL of the target's model."""
    tail = f"?{target.query}" if target.query else ""
    return target.base_url + target.model_path + "/infer" + tail
