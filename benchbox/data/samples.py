"""From a source's rows to checked samples: columns matched to inputs, dtypes, ranks and fixed
dims checked, a memory limit kept by seeded reservoir sampling, and a sha256 of what was read.

A sample is one item of a request: each input's tensor without the batch axis. Every mismatch
is a BadInput naming the input, the sample and what was expected, raised before measuring.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from benchbox import model as model_mod
from benchbox.data.readers import Row, read_rows
from benchbox.data.source import DataSource, parse_source
from benchbox.errors import BadInput
from benchbox.options import DataOptions
from benchbox.schema import DataInfo, ModelInfo, TensorSpec, replace

DEFAULT_LIMIT_SHARE = 0.25  # of the memory available when no --data-limit is given
FALLBACK_LIMIT_BYTES = 1 << 30
# What a kept sample costs beyond its tensors' bytes: the dict, and per array its header and the
# allocator's rounding (measured: 184 + 112 + 16 bytes for one input).
ROW_OVERHEAD_BYTES = 200
ARRAY_OVERHEAD_BYTES = 130
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 1 << 10}
_UNITS |= {"mib": 1 << 20, "gib": 1 << 30, "k": 10**3, "m": 10**6, "g": 10**9}


@dataclass(frozen=True)
class SampleSet:
    """The samples a run draws its requests from, and what the report says about them."""

    samples: tuple[dict[str, np.ndarray], ...]
    info: DataInfo
    labels: tuple[int, ...] | None = None  # --data-label: sample i's class (None: no column)


def parse_bytes(text: str, option: str = "--data-limit") -> int:
    """'512MB', '2GiB' or a number of bytes, as bytes."""
    raw = text.strip().lower().replace(" ", "")
    number = raw.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = raw[len(number) :]
    try:
        value = float(number) * _UNITS[unit]
    except (ValueError, KeyError):
        raise BadInput(f"{option} {text}: not a size", "e.g. 512MB, 2GiB") from None
    if value < 1:
        raise BadInput(f"{option} {text}: the size must be positive")
    return int(value)


def default_limit_bytes() -> int:
    """A share of the memory available now (Linux /proc/meminfo), else 1 GiB."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(int(line.split()[1]) * 1024 * DEFAULT_LIMIT_SHARE)
    except (OSError, ValueError, IndexError):
        pass
    pages = getattr(os, "sysconf", lambda _: -1)
    try:
        return int(pages("SC_AVPHYS_PAGES") * pages("SC_PAGE_SIZE") * DEFAULT_LIMIT_SHARE)
    except (ValueError, OSError):
        return FALLBACK_LIMIT_BYTES


def parse_data_map(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`--data-map column=input` items as {column: input}."""
    out: dict[str, str] = {}
    for item in items:
        column, eq, name = item.partition("=")
        if not eq or not column or not name:
            raise BadInput(f"--data-map {item}: expected COLUMN=INPUT", "e.g. ids=input_ids")
        out[column] = name
    return out


def sample_spec(info: ModelInfo, spec: TensorSpec) -> tuple[int | str, ...]:
    """An input's dims per sample: without the batch axis when the model has one."""
    return spec.shape[1:] if info.batch is not None and spec.shape else spec.shape


def load_samples(
    text: str,
    info: ModelInfo,
    data_map: dict[str, str] | None = None,
    limit_bytes: int | None = None,
    seed: int = 0,
    label: str | None = None,
) -> SampleSet:
    """Read, check and (past the limit) sample a `--data` source for a model; with `label`,
    each sample's class is read from that column and kept with it."""
    src = parse_source(text)
    data_map = dict(data_map or {})
    _check_map(data_map, info)
    limit = limit_bytes if limit_bytes is not None else default_limit_bytes()
    needed = [s for s in info.inputs if s.name not in info.input_values]
    rows = read_rows(src, [s.name for s in info.inputs], split=info.batch is not None)
    if label is not None:
        rows = _with_label(rows, label, src)
    checked = _checked(rows, info, needed, data_map, src)
    kept, read, digest, nbytes = _reservoir(checked, limit, seed)
    if read == 0:
        raise BadInput(f"--data {src.shown}: no samples in it (an empty table or file)")
    labels = tuple(int(s.pop(LABEL_KEY)) for s in kept) if label is not None else None
    data = _info(src, info, kept, read, digest, limit, seed, data_map)
    return SampleSet(tuple(kept), replace(data, label_column=label), labels)


# Where a sample carries its label between the reader and the reservoir (a key no check reads:
# `_checked` keeps only the model's inputs, and this one, which it passes through).
LABEL_KEY = "\x00label"


def _with_label(rows: Iterator[Row], column: str, src: DataSource) -> Iterator[Row]:
    """The rows with their label column checked (one integer a row) and moved to LABEL_KEY."""
    for index, row in enumerate(rows):
        if column not in row:
            names = ", ".join(sorted(row)) or "none"
            raise BadInput(
                f"--data-label {column}, sample {index}: no column of that name in {src.shown} "
                f"(its columns: {names})"
            )
        value = np.asarray(row.pop(column))
        if value.size != 1 or value.dtype.kind not in "iub" and not _whole(value):
            raise BadInput(
                f"--data-label {column}, sample {index}: {value.ravel()[:4]} is not one class",
                "the label column holds one integer class a sample",
            )
        row[LABEL_KEY] = np.asarray(int(value.reshape(())), dtype=np.int64)
        yield row


def _whole(value: np.ndarray) -> bool:
    return value.dtype.kind == "f" and bool(np.all(np.isfinite(value) & (value == np.round(value))))


def _check_map(data_map: dict[str, str], info: ModelInfo) -> None:
    names = {s.name for s in info.inputs}
    for column, name in data_map.items():
        if name not in names:
            raise BadInput(
                f"--data-map {column}={name}: the model has no input '{name}'",
                f"its inputs: {', '.join(sorted(names))}",
            )


def _checked(
    rows: Iterator[Row],
    info: ModelInfo,
    needed: list[TensorSpec],
    data_map: dict[str, str],
    src: DataSource,
) -> Iterator[dict[str, np.ndarray]]:
    limits = model_mod._limits_for(info)
    for index, row in enumerate(rows):
        named = {data_map.get(k, k): v for k, v in row.items()}
        sample: dict[str, np.ndarray] = {}
        sizes: dict[str, tuple[int, str]] = {}
        for spec in needed:
            if spec.name not in named:
                columns = ", ".join(sorted(row)) or "none"
                raise BadInput(
                    f"input '{spec.name}', sample {index}: no column of that name in"
                    f" {src.shown} (its columns: {columns})",
                    "name the column after the input, or map it: --data-map COLUMN=INPUT",
                )
            arr = _typed(named[spec.name], spec, index, limits.get(spec.name))
            _check_dims(arr, sample_spec(info, spec), spec.name, index, sizes)
            sample[spec.name] = arr
        if LABEL_KEY in row:
            sample[LABEL_KEY] = row[LABEL_KEY]
        yield sample


def _typed(arr: np.ndarray, spec: TensorSpec, index: int, limit: int | None) -> np.ndarray:
    """The array in the input's dtype, when its values fit it without loss."""
    where = f"input '{spec.name}', sample {index}"
    if spec.dtype not in model_mod._NUMPY:
        raise BadInput(f"{where}: {spec.dtype} inputs are not supported")
    want = model_mod._NUMPY[spec.dtype]
    have = arr.dtype
    if want.kind == "f":
        if have.kind not in "fiub":
            raise BadInput(f"{where}: expected {spec.dtype}, got {have} values")
        return np.ascontiguousarray(arr, dtype=want)
    if have.kind == "f":
        if arr.size and np.isnan(arr).any():
            raise BadInput(f"{where}: NaN in an integer input (expected {spec.dtype} values)")
        raise BadInput(f"{where}: expected {spec.dtype}, got {have} values")
    if have.kind not in "iub":
        raise BadInput(f"{where}: expected {spec.dtype}, got {have} values")
    if arr.size:
        low, high = int(arr.min()), int(arr.max())
        info = np.iinfo(want) if want.kind != "b" else None
        if info is not None and (low < info.min or high > info.max):
            raise BadInput(f"{where}: values {low}..{high} do not fit {spec.dtype}")
        if want.kind == "b" and (low < 0 or high > 1):
            raise BadInput(f"{where}: expected bool values (0 or 1), got {low}..{high}")
        if limit is not None and (high >= limit or low < 0):
            raise BadInput(
                f"{where}: ids {low}..{high} fall outside the model's embedding table"
                f" (0..{limit - 1})"
            )
    return np.ascontiguousarray(arr, dtype=want)


def _check_dims(
    arr: np.ndarray,
    dims: tuple[int | str, ...],
    name: str,
    index: int,
    sizes: dict[str, tuple[int, str]],
) -> None:
    """Rank and fixed dims as the model says; a symbolic dim the same in every input."""
    where = f"input '{name}', sample {index}"
    if arr.ndim != len(dims):
        raise BadInput(
            f"{where}: expected rank {len(dims)} per sample {list(dims)}, got shape"
            f" {list(arr.shape)}"
        )
    for axis, (want, got) in enumerate(zip(dims, arr.shape, strict=True)):
        if isinstance(want, int) and got != want:
            raise BadInput(
                f"{where}: dim {axis} is {got}, expected {want} (the model's fixed size;"
                f" shape per sample {list(dims)})",
                "a ragged column the model cannot take: only symbolic dims may vary",
            )
        if isinstance(want, str):
            seen = sizes.setdefault(want, (got, name))
            if seen[0] != got:
                raise BadInput(
                    f"{where}: dim '{want}' is {got}, but input '{seen[1]}' has {seen[0]}",
                    "inputs that share a dim must have the same size in each sample",
                )


def _nbytes(sample: dict[str, np.ndarray]) -> int:
    return ROW_OVERHEAD_BYTES + sum(ARRAY_OVERHEAD_BYTES + a.nbytes for a in sample.values())


def _owned(sample: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The sample with arrays of its own: a reader's view into its batch (a Parquet row group,
    an npz array) would keep the whole batch alive as long as the sample is kept."""
    return {k: a.copy() if a.base is not None else a for k, a in sample.items()}


def _reservoir(
    samples: Iterator[dict[str, np.ndarray]], limit: int, seed: int
) -> tuple[list[dict[str, np.ndarray]], int, str, int]:
    """All samples while they fit in `limit` bytes, then a uniform sample (Algorithm R, seeded);
    with the count read, the sha256 of every sample read, and the bytes kept."""
    digest = hashlib.sha256()
    kept: list[dict[str, np.ndarray]] = []
    rng = np.random.default_rng(seed)
    total, capacity, read = 0, None, 0
    for i, sample in enumerate(samples):
        read = i + 1
        for name in sorted(sample):
            arr = sample[name]
            digest.update(f"{name}:{arr.dtype.str}:{arr.shape};".encode())
            digest.update(arr.tobytes())
        size = _nbytes(sample)
        if capacity is None and total + size <= limit:
            kept.append(_owned(sample))
            total += size
            continue
        if capacity is None:
            if not kept:
                raise BadInput(
                    f"--data-limit {limit} bytes: sample 0 alone is {size} bytes",
                    "raise --data-limit",
                )
            capacity = len(kept)
        j = int(rng.integers(0, i + 1))
        if j < capacity and total - _nbytes(kept[j]) + size <= limit:
            total += size - _nbytes(kept[j])
            kept[j] = _owned(sample)
    return kept, read, digest.hexdigest(), total


def length_dim(info: ModelInfo) -> str | None:
    """The dim whose size buckets requests: the first symbolic non-batch dim of the inputs."""
    for spec in info.inputs:
        for d in sample_spec(info, spec):
            if isinstance(d, str) and d not in info.batch_dims:
                return d
    return None


def sample_length(sample: dict[str, np.ndarray], info: ModelInfo, dim: str) -> int:
    """A sample's size along the length dim."""
    for spec in info.inputs:
        dims = sample_spec(info, spec)
        if spec.name in sample and dim in dims:
            return int(sample[spec.name].shape[dims.index(dim)])
    return 1


def _info(
    src: DataSource,
    info: ModelInfo,
    kept: list[dict[str, np.ndarray]],
    read: int,
    digest: str,
    limit: int,
    seed: int,
    data_map: dict[str, str],
) -> DataInfo:
    dim = length_dim(info)
    counts: dict[int, int] = {}
    if dim is not None:
        for sample in kept:
            n = sample_length(sample, info, dim)
            counts[n] = counts.get(n, 0) + 1
    return DataInfo(
        kind=src.kind,
        source=src.shown,
        sha256=digest,
        samples_read=read,
        samples_used=len(kept),
        sampled=len(kept) < read,
        limit_bytes=limit,
        seed=seed,
        table=src.table,
        query=src.query,
        data_map=data_map,
        length_dim=dim,
        length_counts=dict(sorted(counts.items())),
    )


def check_options(opts: DataOptions) -> None:
    """BadInput now, before a model is read, for a source, map or limit that cannot be used."""
    if opts.source is None:
        if opts.data_map or opts.limit is not None or opts.label is not None:
            flag = (
                "--data-map"
                if opts.data_map
                else "--data-limit"
                if opts.limit is not None
                else "--data-label"
            )
            raise BadInput(f"{flag} needs --data SOURCE", "e.g. --data requests.jsonl")
        return
    parse_source(opts.source)
    parse_data_map(opts.data_map)
    if opts.limit is not None:
        parse_bytes(opts.limit)


def samples_for(opts: DataOptions, info: ModelInfo, seed: int = 0) -> SampleSet | None:
    """The checked samples of `--data` for a model (None: synthetic inputs)."""
    if opts.source is None:
        return None
    limit = parse_bytes(opts.limit) if opts.limit is not None else None
    return load_samples(opts.source, info, parse_data_map(opts.data_map), limit, seed, opts.label)


def options_of(info: DataInfo) -> DataOptions:
    """The options that read a report's data again (`--resume`)."""
    limit = str(info.limit_bytes) if info.limit_bytes is not None else None
    mapped = tuple(f"{column}={name}" for column, name in info.data_map.items())
    return DataOptions(info.source, mapped, limit, info.label_column)
