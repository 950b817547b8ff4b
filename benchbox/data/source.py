"""The SOURCE grammar of `--data`, and the text a report may show of it (credentials stripped).

    FILE.npz                        one array per input, first axis = samples
    FILE.jsonl | FILE.ndjson        one JSON object a line: {"input_ids": [...], ...}
    FILE.parquet | FOLDER           Parquet: a file, or a folder of *.parquet files (recursive)
    FOLDER with test_data_set_*     the ONNX test-data layout (test_data_set_*/input_*.pb)
    sqlite:PATH?table=NAME          a table of a SQLite database, opened read-only
    sqlite:PATH?query=SELECT ...    the rows of a query (URL-encode '&', '#', '?' in it)

`sqlite:///abs/path.db` and `sqlite:rel/path.db` both work: a leading `//` is dropped, so three
slashes give an absolute path, as in SQLAlchemy's `sqlite:///` (`sqlite:////x.db` is `//x.db`).
A SQLite column holding a tensor stores it as JSON text (`[101, 2023, 102]`). Other query keys:
`timeout=SECONDS` (how long to wait for a locked database, default 5).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from benchbox.errors import BadInput

KINDS = ("npz", "jsonl", "parquet", "sqlite", "onnx-test-data")
_JSONL_SUFFIXES = (".jsonl", ".ndjson")
_SECRET_KEYS = re.compile(r"pass|pwd|secret|token|key|auth|credential|signature", re.I)
DEFAULT_SQLITE_TIMEOUT_S = 5.0
SOURCE_HELP = (
    "FILE.npz, FILE.jsonl, a Parquet file or folder, a folder of test_data_set_*/input_*.pb, "
    "or sqlite:PATH?table=NAME / sqlite:PATH?query=SELECT..."
)


@dataclass(frozen=True)
class DataSource:
    """A parsed `--data SOURCE`: its kind, the file or folder, and for SQL the table or query."""

    kind: str
    path: str
    table: str | None = None
    query: str | None = None
    timeout_s: float = DEFAULT_SQLITE_TIMEOUT_S
    shown: str = ""  # the source as a report shows it: no user, password or secret parameter


def redact(text: str) -> str:
    """A URL without its user:password part nor the values of secret-looking query keys."""
    if "://" not in text and not text.startswith("sqlite:"):
        return text  # a plain path
    parts = urlsplit(text)
    netloc = parts.netloc.rpartition("@")[2]
    kept = []
    for raw in parts.query.split("&") if parts.query else ():
        key = raw.partition("=")[0]
        kept.append(f"{key}=***" if _SECRET_KEYS.search(key) else raw)
    query = "&".join(kept)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def parse_source(text: str) -> DataSource:
    """The DataSource for `--data TEXT`; BadInput for a kind benchbox cannot read."""
    if not text or not text.strip():
        raise BadInput("--data: empty source", f"give one of: {SOURCE_HELP}")
    if text.startswith("sqlite:"):
        return _parse_sqlite(text)
    if "://" in text:
        raise BadInput(f"--data {redact(text)}: unknown scheme", f"benchbox reads {SOURCE_HELP}")
    path = Path(text)
    if not path.exists():
        raise BadInput(f"--data {text}: no such file or folder", f"give one of: {SOURCE_HELP}")
    kind = _kind_of(path)
    return DataSource(kind=kind, path=str(path), shown=str(path))


def _kind_of(path: Path) -> str:
    if path.is_dir():
        if any(path.glob("test_data_set_*")):
            return "onnx-test-data"
        if any(path.rglob("*.parquet")):
            return "parquet"
        raise BadInput(
            f"--data {path}: the folder holds neither test_data_set_* folders nor .parquet files",
            f"give one of: {SOURCE_HELP}",
        )
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return "npz"
    if suffix in _JSONL_SUFFIXES:
        return "jsonl"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise BadInput(
        f"--data {path}: benchbox cannot tell the format from the suffix '{suffix}'",
        "name the file .npz, .jsonl or .parquet",
    )


def _parse_sqlite(text: str) -> DataSource:
    rest = text[len("sqlite:") :]
    path_part, _, query_part = rest.partition("?")
    path = unquote(path_part[2:] if path_part.startswith("//") else path_part)
    params = dict(parse_qsl(query_part, keep_blank_values=True))
    shown = redact(text)
    if not path:
        raise BadInput(
            f"--data {shown}: no database path", "e.g. sqlite:///data/requests.db?table=t"
        )
    table, query = params.pop("table", None), params.pop("query", None)
    timeout = params.pop("timeout", None)
    if (table is None) == (query is None):
        raise BadInput(
            f"--data {shown}: give exactly one of ?table=NAME or ?query=SELECT...",
            "e.g. sqlite:///data/requests.db?table=requests",
        )
    if params:
        raise BadInput(f"--data {shown}: unknown key(s) {', '.join(sorted(params))}")
    try:
        timeout_s = DEFAULT_SQLITE_TIMEOUT_S if timeout is None else float(timeout)
    except ValueError:
        raise BadInput(f"--data {shown}: timeout={timeout} is not a number of seconds") from None
    if query is not None and not query.strip():
        raise BadInput(f"--data {shown}: the query is empty")
    return DataSource("sqlite", path, table=table, query=query, timeout_s=timeout_s, shown=shown)
