"""Target URLs: `http://HOST:PORT/v2/models/NAME[/versions/V]` and `grpc://HOST:PORT/NAME[/V]`."""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

from benchbox.errors import BadInput
from benchbox.redact import redact_url

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
    query: str = ""  # sent with every REST call; may hold a token, so never saved
    username: str | None = None  # from `user:pass@` (sent as Basic auth), never saved
    password: str | None = None
    ca_cert: str | None = None  # --ca-cert: a PEM file of CAs to trust besides the system's
    insecure: bool = False  # --insecure: TLS without verifying the server's certificate

    @property
    def safe_url(self) -> str:
        """The URL as saved and printed: no userinfo, token-like query values replaced."""
        return redact_url(self.url)[0]

    @property
    def redacted(self) -> bool:
        """Whether the URL carried a secret that `safe_url` leaves out."""
        return redact_url(self.url)[1]

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
    shown = redact_url(text.strip())[0]
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError as exc:
        raise BadInput(f"--target {shown!r}: {exc}", f"write it as {FORMS}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https", "grpc", "grpcs") or not parts.hostname:
        raise BadInput(f"--target {shown!r} is not a server URL", f"write it as {FORMS}")
    tls = scheme in ("https", "grpcs")
    if port is None:
        port = {"http": 80, "https": 443, "grpc": 8001, "grpcs": 443}[scheme]
    pattern = _GRPC_PATH if scheme.startswith("grpc") else _REST_PATH
    match = pattern.match(parts.path)
    if not match:
        raise BadInput(
            f"--target {shown!r}: the path does not name a model", f"write it as {FORMS}"
        )
    return Target(
        url=text.strip(),
        protocol="grpc" if scheme.startswith("grpc") else "http",
        host=parts.hostname,
        port=port,
        model=match["name"],
        version=match["version"] or "",
        tls=tls,
        query=parts.query,
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


# An HTTP header name is a token (RFC 9110 5.6.2); a value is sent as visible ASCII, space and
# tab (HTTP/1.1 encodes headers as latin-1 and gRPC metadata takes printable ASCII only).
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def parse_headers(items: list[str] | None) -> tuple[tuple[str, str], ...]:
    """['triton-access-token=abc', 'Authorization=Bearer x'] -> ((key, value), ...)."""
    out: list[tuple[str, str]] = []
    for item in items or []:
        raw_key, sep, value = str(item).partition("=")
        key = raw_key.strip()
        if not sep or not key:
            raise BadInput(
                f"--header {item!r} is not KEY=VALUE", "e.g. --header triton-access-token=SECRET"
            )
        if any(c in item for c in "\r\n\0"):  # a header cannot hold a line break
            where = "name" if any(c in raw_key for c in "\r\n\0") else "value"
            raise BadInput(
                f"--header {key!r}: the {where} holds a line break or NUL",
                "give the header on one line",
            )
        if not set(key) <= _TOKEN:
            raise BadInput(
                f"--header {key!r}: a header name is letters, digits and !#$%&'*+-.^_`|~ only",
                "e.g. --header triton-access-token=SECRET",
            )
        odd = next((c for c in value if not (" " <= c <= "~" or c == "\t")), None)
        if odd is not None:  # the value itself is a secret: name the character, not the value
            raise BadInput(
                f"--header {key!r}: the value holds {odd!r}, which a header cannot carry",
                "headers carry printable ASCII only; encode the value (e.g. base64)",
            )
        out.append((key, value))
    return tuple(out)


def ssl_context(ca_cert: str | None, insecure: bool) -> ssl.SSLContext:
    """The TLS context of a client: the system's CAs, plus --ca-cert; none checked if insecure."""
    ctx = ssl.create_default_context()
    if ca_cert:
        try:
            ctx.load_verify_locations(cafile=ca_cert)
        except (OSError, ssl.SSLError) as exc:
            raise BadInput(f"--ca-cert {ca_cert}: cannot read a PEM certificate ({exc})") from None
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx
