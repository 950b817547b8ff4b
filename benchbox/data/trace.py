"""The arrival times `--load trace` replays: a file of offsets (`--trace FILE`) or a timestamp
column of the `--data` source (`--trace-column NAME[:UNIT]`), read and checked before measuring.

A file holds one offset in seconds per line (blank lines and `#` comments skipped), or JSON: a
list of seconds, or {"offsets_s": [...]}. A column holds numbers in UNIT (s, ms, us or ns):
epoch times or offsets alike. Either way the times must not decrease, and the replay starts at
the first: the trace's offsets are its times less the first one.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from benchbox.data.pool import MAX_POOL_REQUESTS
from benchbox.data.readers import read_rows
from benchbox.data.samples import SampleSet
from benchbox.data.source import parse_source
from benchbox.errors import BadInput
from benchbox.files import require_regular_file
from benchbox.parse import TRACE_UNITS
from benchbox.schema import Load, Trace

# Fewer requests than this cannot give a figure (measure.cell's MIN_MEASURED_REQUESTS).
MIN_TRACE_REQUESTS = 30
MAX_TRACE_FILE_BYTES = 256 << 20


def file_offsets_s(path: str) -> np.ndarray:
    """The offsets (seconds from the first) of a trace file; BadInput naming the bad line."""
    p = require_regular_file(path, "--trace file")
    if p.stat().st_size > MAX_TRACE_FILE_BYTES:
        raise BadInput(f"--trace {path}: the file is over 256 MiB")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"--trace {path}: not a readable text file ({exc})") from None
    if text.lstrip()[:1] in ("[", "{"):
        values = [(f"item {i}", v) for i, v in enumerate(_json_offsets(text, path))]
    else:
        values = [
            (f"line {n}", line.split("#", 1)[0].strip())
            for n, line in enumerate(text.splitlines(), 1)
            if line.split("#", 1)[0].strip()
        ]
    times = np.empty(len(values), dtype=np.float64)
    for k, (where, value) in enumerate(values):
        times[k] = _number(value, f"--trace {path}, {where}")
        if times[k] < 0:
            raise BadInput(
                f"--trace {path}, {where}: the offset {value} is negative",
                "offsets are seconds from the start, 0 or more",
            )
        if k and times[k] < times[k - 1]:
            raise BadInput(
                f"--trace {path}, {where}: {value} comes before the offset above it",
                "sort the offsets in time order",
            )
    return _checked(times, f"--trace {path}")


def _json_offsets(text: str, path: str) -> list:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadInput(f"--trace {path}: not valid JSON ({exc})") from None
    if isinstance(data, dict):
        data = data.get("offsets_s")
    if not isinstance(data, list):
        raise BadInput(f'--trace {path}: JSON must be a list of seconds or {{"offsets_s": [...]}}')
    return data


def _number(value: object, where: str) -> float:
    if isinstance(value, bool):
        value = None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise BadInput(f"{where}: {value!r} is not a number of seconds")
    return number


def column_offsets_s(source: str, column: str, unit: str) -> np.ndarray:
    """The offsets (seconds from the first) of a --data source's timestamp column, row by row."""
    src = parse_source(source)
    scale = TRACE_UNITS[unit]
    values: list[int | float] = []
    where = f"--trace-column {column}"
    for row_number, row in enumerate(read_rows(src, [], split=False)):
        if column not in row:
            names = ", ".join(sorted(row)) or "none"
            raise BadInput(f"{where}: no column '{column}' in {src.shown} (its columns: {names})")
        arr = row[column]
        if arr.size != 1 or arr.dtype.kind not in "iuf":
            raise BadInput(
                f"{where}, row {row_number}: {_shown(arr)} is not a number",
                "the column must hold one number a row: a time or an offset",
            )
        value = arr.reshape(()).item()  # an int stays exact (epoch nanoseconds need 61 bits)
        if not math.isfinite(value):
            raise BadInput(f"{where}, row {row_number}: {value} is not a finite number")
        if values and value < values[-1]:
            raise BadInput(
                f"{where}, row {row_number}: {value:g} comes before the row above it",
                "the trace replays rows in order: sort them by time",
            )
        values.append(value)
    # Less the first before scaling, so that epoch times keep their precision as offsets.
    first = values[0] if values else 0
    offsets = np.asarray([(v - first) * scale for v in values], dtype=np.float64)
    return _checked(offsets, where)


def _shown(arr: np.ndarray) -> str:
    text = np.array2string(arr, threshold=4)
    return text if len(text) <= 40 else text[:37] + "..."


def _checked(times: np.ndarray, where: str) -> np.ndarray:
    if len(times) < MIN_TRACE_REQUESTS:
        raise BadInput(
            f"{where}: {len(times)} request(s), fewer than {MIN_TRACE_REQUESTS}",
            "a trace needs enough requests to measure; give a longer one",
        )
    offsets = times - times[0]
    if not offsets[-1] > 0:
        raise BadInput(f"{where}: every request is at the same time (the trace spans 0s)")
    return offsets


def trace_info(
    file: str | None, column: str | None, unit: str, speed: float, data_source: str | None
) -> Trace:
    """The Trace a cell replays (read and checked now, before anything is measured)."""
    if file is not None:
        offsets = file_offsets_s(file)
        source = f"file:{Path(file).resolve()}"
    else:
        if data_source is None:
            raise BadInput("--trace-column needs --data SOURCE", "e.g. --data requests.jsonl")
        offsets = column_offsets_s(data_source, str(column), unit)
        source = f"column:{column}:{unit}"
    return Trace(source, len(offsets), float(offsets[-1]), speed)


@lru_cache(maxsize=4)
def _cached(source: str, data_source: str | None) -> np.ndarray:
    kind, _, rest = source.partition(":")
    if kind == "file":
        return file_offsets_s(rest)
    column, _, unit = rest.rpartition(":")
    return column_offsets_s(str(data_source), column, unit)


def trace_offsets(trace: Trace, data_source: str | None = None) -> np.ndarray:
    """A recorded trace's offsets (seconds from the first), read again where the cell runs
    (cached: every trial of a worker reads it once)."""
    offsets = _cached(trace.source, data_source)
    if len(offsets) != trace.requests:
        raise BadInput(
            f"the trace {trace.source} changed since the sweep began: "
            f"{len(offsets)} requests, not {trace.requests}"
        )
    return offsets


def cell_trace_offsets(load: Load, data: SampleSet | None) -> np.ndarray | None:
    """The offsets a trace cell replays (read again where it runs), None for other loads."""
    if load.kind != "trace" or load.trace is None:
        return None
    return trace_offsets(load.trace, data.info.source if data is not None else None)


def from_data(trace: Trace | None) -> bool:
    """Whether a trace's times are a column of the data (request i then uses sample i)."""
    return trace is not None and trace.source.startswith("column:")


def check_pairing(trace: Trace | None, samples: SampleSet | None) -> None:
    """BadInput unless request i of a data-column trace can send sample i of the data."""
    if not from_data(trace) or trace is None:
        return
    if samples is None:
        raise BadInput("--trace-column needs --data SOURCE", "e.g. --data requests.jsonl")
    info = samples.info
    if info.sampled:
        raise BadInput(
            f"--trace-column pairs each row's time with its inputs, but --data-limit kept "
            f"{info.samples_used} of the {info.samples_read} rows",
            "raise --data-limit so that every row fits",
        )
    if len(samples.samples) != trace.requests:
        raise BadInput(
            f"--trace-column: {trace.requests} times but {len(samples.samples)} samples",
            "one row, one request: the ONNX test-data layout has no time column",
        )
    if trace.requests > MAX_POOL_REQUESTS:
        raise BadInput(
            f"--trace-column: {trace.requests} rows, above {MAX_POOL_REQUESTS} a replay "
            "can pair with their inputs",
            "replay a shorter stretch of the trace",
        )
