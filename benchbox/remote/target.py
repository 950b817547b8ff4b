"""Target URLs: `http://HOST:PORT/v2/models/NAME[/versions/V]` and `grpc://HOST:PORT/NAME[/V]`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from benchbox.errors import BadInput

Protocol = Literal["http", "grpc"]
_REST_PATH = re.compile(r"^/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?/?$")
_GRPC_PATH = re.compile(r"^/(?P<name>[^/]+)(?:/(?:versions/)?(?P<version>[^/]+))?/?$")
REMOTE_DEVICE = "remote"  # the device of every cell measured on a server
FORMS = "http://HOST:PORT/v2/models/NAME[/versions/V] or grpc://HOST:PORT/NAME"


@dataclass(frozen=True)
class Target:
    """One model on one server, as named by a --target URL."""

    url: str
    protocol: Protocol
    host: str
    port: int
    model: str
    version: str = ""
    tls: bool = False

    @property
    def base_url(self) -> str:
        """`http(s)://HOST:PORT`, the REST root."""
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def model_path(self) -> str:
        """`/v2/models/NAME[/versions/V]`, the REST model root."""
        tail = f"/versions/{self.version}" if self.version else ""
        return f"/v2/models/{self.model}{tail}"

    @property
    def authority(self) -> str:
        """`HOST:PORT`, what a gRPC channel dials."""
        return f"{self.host}:{self.port}"


def parse_url(text: str) -> Target:
    """The target a --target URL names; BadInput with the accepted forms when it names none."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError as exc:
        raise BadInput(f"--target {text!r}: {exc}", f"write it as {FORMS}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https", "grpc", "grpcs") or not parts.hostname:
        raise BadInput(f"--target {text!r} is not a server URL", f"write it as {FORMS}")
    tls = scheme in ("https", "grpcs")
    if port is None:
        port = {"http": 80, "https": 443, "grpc": 8001, "grpcs": 443}[scheme]
    pattern = _GRPC_PATH if scheme.startswith("grpc") else _REST_PATH
    match = pattern.match(parts.path)
    if not match:
        raise BadInput(f"--target {text!r}: the path does not name a model", f"write it as {FORMS}")
    return Target(
        url=text.strip(),
        protocol="grpc" if scheme.startswith("grpc") else "http",
        host=parts.hostname,
        port=port,
        model=match["name"],
        version=match["version"] or "",
        tls=tls,
    )


def parse_headers(items: list[str] | None) -> tuple[tuple[str, str], ...]:
    """['triton-access-token=abc', 'Authorization=Bearer x'] -> ((key, value), ...)."""
    out: list[tuple[str, str]] = []
    for item in items or []:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise BadInput(
                f"--header {item!r} is not KEY=VALUE", "e.g. --header triton-access-token=SECRET"
            )
        out.append((key.strip(), value))
    return tuple(out)
