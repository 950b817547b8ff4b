"""Reading rows out of each source kind, one row at a time: a row maps column names to arrays.

Nothing here holds more than one unit of the source at once: a Parquet record batch, a SQLite
cursor's fetch, a JSON line, an ONNX test set (an .npz file's arrays are read one by one, each
whole: numpy cannot stream them). Rows come out in the source's order; `samples` sizes them.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from benchbox.data.source import DataSource
from benchbox.errors import BadInput

Row = dict[str, np.ndarray]
PARQUET_BATCH_ROWS = 1024
SQL_FETCH_ROWS = 512


def read_rows(src: DataSource, input_names: list[str], split: bool = False) -> Iterator[Row]:
    """The rows of a source, in order; `input_names` names ONNX test tensors saved unnamed,
    and `split` cuts each ONNX test set (a whole request) into samples along its first axis."""
    readers = {
        "npz": _npz_rows,
        "jsonl": _jsonl_rows,
        "parquet": _parquet_rows,
        "sqlite": _sqlite_rows,
    }
    if src.kind == "onnx-test-data":
        return _onnx_rows(src, input_names, split)
    return readers[src.kind](src)


def as_array(value: Any, column: str, row: int) -> np.ndarray:
    """A row's value as an array; BadInput for nulls, strings and ragged nested lists."""
    if isinstance(value, np.ndarray):
        return value
    if value is None:
        raise BadInput(f"column '{column}', sample {row}: the value is null (missing)")
    try:
        arr = np.asarray(value)
    except ValueError:
        arr = None
    if arr is None or arr.dtype == object:
        raise BadInput(
            f"column '{column}', sample {row}: a ragged nested list (inner lists of different"
            " lengths) or nulls inside it",
            "each sample's tensor must be rectangular; pad it, or split it into samples",
        )
    if arr.dtype.kind in "US":
        raise BadInput(f"column '{column}', sample {row}: text values, expected numbers")
    return arr


# ---------------------------------------------------------------- npz and JSON Lines


def _npz_rows(src: DataSource) -> Iterator[Row]:
    try:
        archive = np.load(src.path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise BadInput(f"--data {src.shown}: not a readable .npz file ({exc})") from None
    with archive:
        columns = {}
        for name in archive.files:
            try:
                columns[name] = archive[name]
            except ValueError:
                raise BadInput(
                    f"--data {src.shown}: array '{name}' is an object array (ragged?)",
                    "save one rectangular array per input, first axis = samples",
                ) from None
            except Exception as exc:  # zipfile.BadZipFile, truncated members
                raise BadInput(
                    f"--data {src.shown}: array '{name}' is unreadable ({exc})"
                ) from None
    counts = {name: (arr.shape[0] if arr.ndim else None) for name, arr in columns.items()}
    if any(c is None for c in counts.values()) or len(set(counts.values())) > 1:
        shown = ", ".join(f"{n}: {c}" for n, c in counts.items())
        raise BadInput(
            f"--data {src.shown}: every array needs the same first axis (samples); got {shown}"
        )
    for i in range(next(iter(counts.values()), 0)):
        yield {name: arr[i] for name, arr in columns.items()}


def _jsonl_rows(src: DataSource) -> Iterator[Row]:
    try:
        f = open(src.path, encoding="utf-8")  # noqa: SIM115 - closed below, the generator's
    except OSError as exc:
        raise BadInput(f"--data {src.shown}: cannot open ({exc.strerror})") from None
    with f:
        sample = 0
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise BadInput(f"--data {src.shown}: line {lineno} is not JSON ({exc})") from None
            if not isinstance(obj, dict):
                raise BadInput(
                    f"--data {src.shown}: line {lineno} is not a JSON object",
                    'write one request per line: {"input_ids": [...], "attention_mask": [...]}',
                )
            yield {k: as_array(v, k, sample) for k, v in obj.items()}
            sample += 1


# ---------------------------------------------------------------- Parquet


def _parquet_files(src: DataSource) -> list[Path]:
    path = Path(src.path)
    return sorted(path.rglob("*.parquet")) if path.is_dir() else [path]


def _parquet_rows(src: DataSource) -> Iterator[Row]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise BadInput(
            "--data: reading Parquet needs pyarrow", "pip install 'benchbox[parquet]'"
        ) from None
    sample = 0
    for file in _parquet_files(src):
        try:
            # One row group at a time, on this thread: pre-buffering and arrow's thread pools
            # cost ~50 MiB of resident memory on a lake that is sampled down to a few MiB.
            handle = pq.ParquetFile(str(file), pre_buffer=False)
            batches = handle.iter_batches(batch_size=PARQUET_BATCH_ROWS, use_threads=False)
            for batch in batches:
                columns = {
                    name: _arrow_column(col, name)
                    for name, col in zip(batch.schema.names, batch.columns, strict=True)
                }
                for i in range(batch.num_rows):
                    yield {name: col(i, sample + i) for name, col in columns.items()}
                sample += batch.num_rows
        except BadInput:
            raise
        except Exception as exc:  # pyarrow's ArrowInvalid / OSError on a truncated file
            raise BadInput(
                f"--data {file}: not a readable Parquet file ({str(exc).splitlines()[0]})",
                "a truncated or partly written file? write it again",
            ) from None


def _arrow_column(col: Any, name: str):
    """A function of (row in batch, sample number) giving that row's array, without
    converting the whole batch to Python objects for flat list columns."""
    import pyarrow as pa

    kind = col.type
    if col.null_count:
        first = next(i for i, v in enumerate(col.is_null().to_pylist()) if v)
        raise BadInput(f"column '{name}', sample {first}: the value is null (missing)")
    if (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and _flat(kind.value_type):
        values = col.values.to_numpy(zero_copy_only=False)
        offsets = col.offsets.to_numpy()
        return lambda i, _s: values[offsets[i] : offsets[i + 1]]
    if _flat(kind):
        values = col.to_numpy(zero_copy_only=False)
        return lambda i, _s: np.asarray(values[i])
    rows = col.to_pylist()
    return lambda i, s: as_array(rows[i], name, s)


def _flat(kind: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)


# ---------------------------------------------------------------- SQLite


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _sqlite_rows(src: DataSource) -> Iterator[Row]:
    if not Path(src.path).is_file():
        raise BadInput(f"--data {src.shown}: no database file '{src.path}'")
    uri = "file:" + Path(src.path).resolve().as_posix().replace("?", "%3f") + "?mode=ro"
    sql = src.query if src.query is not None else f"SELECT * FROM {_quote(src.table or '')}"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=src.timeout_s)
    except sqlite3.Error as exc:
        raise BadInput(f"--data {src.shown}: cannot open the database ({exc})") from None
    try:
        cur = _execute(conn, sql, src)
        names = [d[0] for d in cur.description or ()]
        sample = 0
        while True:
            try:
                fetched = cur.fetchmany(SQL_FETCH_ROWS)
            except sqlite3.Error as exc:
                raise _sql_error(src, exc) from None
            if not fetched:
                return
            for values in fetched:
                yield {n: _sql_value(v, n, sample) for n, v in zip(names, values, strict=True)}
                sample += 1
    finally:
        conn.close()


def _execute(conn: sqlite3.Connection, sql: str, src: DataSource) -> sqlite3.Cursor:
    try:
        return conn.execute(sql)
    except sqlite3.Error as exc:
        raise _sql_error(src, exc) from None


def _sql_error(src: DataSource, exc: sqlite3.Error) -> BadInput:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return BadInput(
            f"--data {src.shown}: the database is locked (waited {src.timeout_s:g} s)",
            "wait for the writer to finish, or raise ?timeout=SECONDS",
        )
    if "not a database" in text or "malformed" in text:
        return BadInput(f"--data {src.shown}: not a readable SQLite database ({text})")
    what = "the query failed" if src.query is not None else f"cannot read table '{src.table}'"
    return BadInput(f"--data {src.shown}: {what}: {text}")


def _sql_value(value: Any, column: str, row: int) -> np.ndarray:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise BadInput(
                f"column '{column}', sample {row}: text that is not a JSON number or array",
                "store tensors as JSON text, e.g. [101, 2023, 102]",
            ) from None
    elif isinstance(value, bytes):
        raise BadInput(
            f"column '{column}', sample {row}: a BLOB; benchbox reads tensors stored as JSON text"
        )
    elif isinstance(value, float) and math.isnan(value):
        return np.asarray(value)
    return as_array(value, column, row)


# ---------------------------------------------------------------- ONNX test-data layout


def _onnx_rows(src: DataSource, input_names: list[str], split: bool) -> Iterator[Row]:
    import onnx
    from onnx import numpy_helper

    sets = sorted(Path(src.path).glob("test_data_set_*"), key=lambda p: _set_number(p.name))
    for folder in sets:
        row: Row = {}
        files = sorted(folder.glob("input_*.pb"), key=lambda p: _set_number(p.stem))
        for position, file in enumerate(files):
            tensor = onnx.TensorProto()
            try:
                tensor.ParseFromString(file.read_bytes())
                array = numpy_helper.to_array(tensor)
            except Exception as exc:
                raise BadInput(f"--data {file}: not a readable TensorProto ({exc})") from None
            fallback = input_names[position] if position < len(input_names) else file.stem
            row[tensor.name or fallback] = array
        if not row:
            raise BadInput(f"--data {folder}: no input_*.pb files in it")
        if not split:
            yield row
            continue
        counts = {a.shape[0] if a.ndim else None for a in row.values()}
        if len(counts) != 1 or None in counts:
            raise BadInput(f"--data {folder}: the inputs' first (batch) dims differ")
        for i in range(counts.pop()):
            yield {name: a[i] for name, a in row.items()}


def _set_number(name: str) -> int:
    tail = name.rpartition("_")[2]
    return int(tail) if tail.isdigit() else 0
