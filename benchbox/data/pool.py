"""The request pool of a run on `--data`: each request takes `batch` consecutive samples, padded
to its longest member, and belongs to the power-of-two bucket of its padded length.

Padding follows tokenizers and Triton's padded batching: every symbolic dim of a batch is padded
to the batch's largest size with 0 (an attention mask's 0 marks the padding, an id of 0 is the
usual [PAD]). Inputs set with `--input NAME=VALUE` are filled with the value at the padded shape.
The pool and its buckets are built before the load starts: nothing of this runs while timing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from benchbox import model as model_mod
from benchbox.data.samples import SampleSet, sample_length, sample_spec
from benchbox.errors import BadInput
from benchbox.schema import ModelInfo

MAX_POOL_REQUESTS = 1 << 16


@dataclass(frozen=True)
class RequestPool:
    """Feeds a load cycles through, each request's padded length and its bucket's upper bound."""

    feeds: list[dict[str, np.ndarray]]
    lengths: np.ndarray  # int64, one per feed (1 when the model has no symbolic dim)
    buckets: np.ndarray  # int64, one per feed: the power of two at or above the length
    dim: str | None


def bucket_of(length: int) -> int:
    """The power-of-two bucket a length falls in: (upper/2, upper]."""
    return 1 << max(0, math.ceil(math.log2(max(1, length))))


def build_pool(data: SampleSet, info: ModelInfo, batch_size: int) -> RequestPool:
    """One feed per `batch_size` samples (the last wraps around to the first samples)."""
    samples = data.samples
    if not samples:
        raise BadInput("--data: no samples to make requests from")
    if info.batch is None and batch_size != 1:
        raise BadInput(
            f"--data: the model has no batch dimension, so batch {batch_size} cannot run"
        )
    count = min(MAX_POOL_REQUESTS, max(1, math.ceil(len(samples) / batch_size)))
    dim = data.info.length_dim
    feeds, lengths = [], []
    for r in range(count):
        members = [samples[(r * batch_size + k) % len(samples)] for k in range(batch_size)]
        feeds.append(pad_batch(members, info, batch_size))
        lengths.append(max(sample_length(s, info, dim) for s in members) if dim else 1)
    lengths_arr = np.asarray(lengths, dtype=np.int64)
    buckets = np.asarray([bucket_of(n) for n in lengths], dtype=np.int64)
    return RequestPool(feeds, lengths_arr, buckets, dim)


def one_each(data: SampleSet, info: ModelInfo) -> list[dict[str, np.ndarray]]:
    """Every sample as a request of its own (batch 1, its own length): for calibration and the
    accuracy check, which run outside the timed path."""
    return build_pool(data, info, 1).feeds


def pad_batch(
    members: list[dict[str, np.ndarray]], info: ModelInfo, batch_size: int
) -> dict[str, np.ndarray]:
    """The feed of one request: its samples stacked on the batch axis, padded with 0."""
    feed: dict[str, np.ndarray] = {}
    sizes: dict[str, int] = {}
    for spec in info.inputs:
        dims = sample_spec(info, spec)
        for s in members:
            if spec.name in s:
                for d, n in zip(dims, s[spec.name].shape, strict=True):
                    if isinstance(d, str):
                        sizes[d] = max(sizes.get(d, 0), n)
    for spec in info.inputs:
        dims = sample_spec(info, spec)
        shape = tuple(d if isinstance(d, int) else sizes.get(d, 1) for d in dims)
        dtype = model_mod._NUMPY[spec.dtype]
        if spec.name in info.input_values:
            value = np.asarray(info.input_values[spec.name], dtype=dtype)
            full = (batch_size, *shape) if info.batch is not None else shape
            feed[spec.name] = np.array(np.broadcast_to(value, full))
            continue
        if info.batch is None:
            feed[spec.name] = members[0][spec.name]
            continue
        if batch_size == 1:  # nothing to pad: the sample itself, seen with a batch axis
            feed[spec.name] = np.asarray(members[0][spec.name], dtype=dtype)[np.newaxis]
            continue
        out = np.zeros((batch_size, *shape), dtype=dtype)
        for k, s in enumerate(members):
            arr = s[spec.name]
            out[(k, *(slice(0, n) for n in arr.shape))] = arr
        feed[spec.name] = out
    return feed
