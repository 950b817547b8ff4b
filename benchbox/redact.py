"""Secrets out of what is saved or printed: a URL's userinfo and its token-like query values."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SECRET_PARAMS = frozenset(
    {"token", "key", "api_key", "apikey", "access_token", "sig", "signature", "password",
     "passwd", "pwd", "secret", "client_secret", "auth", "credential", "credentials"}
)  # fmt: skip
REDACTED = "REDACTED"


def _secret_param(name: str) -> bool:
    low = name.lower()
    return low in SECRET_PARAMS or low.startswith("x-amz-") or low.endswith(("_token", "_secret"))


def redact_url(url: str) -> tuple[str, bool]:
    """(the URL without userinfo and with token-like query values replaced, whether any was)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return url, False
    netloc, changed = parts.netloc, False
    if "@" in parts.netloc and host is not None:
        shown = f"[{host}]" if ":" in host else host
        netloc, changed = shown + (f":{port}" if port is not None else ""), True
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_secret_param(k) for k, _ in pairs):
            safe = [(k, REDACTED if _secret_param(k) else v) for k, v in pairs]
            query, changed = urlencode(safe, safe="/:"), True
    if not changed:
        return url, False
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)), True
