"""Latency per shape bucket, computed after a cell from each request's pool index."""

from __future__ import annotations

import numpy as np

from benchbox.measure import stats
from benchbox.schema import BucketStat


def bucket_stats(
    latency_ns: np.ndarray, items: np.ndarray, buckets: np.ndarray, dim: str | None
) -> tuple[BucketStat, ...]:
    """One BucketStat per bucket met: request i used feed items[i] % len(buckets)."""
    if dim is None or not len(items) or not len(buckets):
        return ()
    of_request = buckets[np.asarray(items, dtype=np.int64) % len(buckets)]
    out = []
    for upper in np.unique(of_request):
        chosen = np.asarray(latency_ns)[of_request == upper] / 1e6
        out.append(BucketStat(dim, int(upper), int(chosen.size), stats.summarize(chosen)))
    return tuple(out)
