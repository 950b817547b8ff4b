"""A dense latency histogram for recording in one process and merging exactly in another.

The buckets are the report's (`stats.HIST_LOWEST_MS`, `stats.HIST_GROWTH`: log buckets 2% wide
from 1 µs, so a percentile read from one is within 1% of the raw nearest-rank value), held as a
fixed numpy int64 array up to `HIGHEST_MS`, so that recording is one `np.add.at` and merging is
adding counts: k histograms merged are the histogram of the pooled values, bucket for bucket.
Percentiles, CIs and the plain form are `stats`' own, read from `to_histogram()` (the report's
`Histogram`): one percentile rule for merged and pooled figures.

Values below the lowest bucket share bucket 0 (as in `stats`); values above `HIGHEST_MS` are
counted in the top bucket and in `over_range`, and the exact max is kept, so no value is lost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchbox.measure import stats
from benchbox.schema import Histogram, from_dict, to_dict

HIGHEST_MS = 3_600_000.0  # one hour: a request's timeout is far below it
BUCKETS = (
    int(math.floor(math.log(HIGHEST_MS / stats.HIST_LOWEST_MS) / math.log(stats.HIST_GROWTH))) + 1
)
RELATIVE_ERROR = stats.HIST_RELATIVE_ERROR


@dataclass
class LatencyHistogram:
    """Counts per bucket (dense int64), exact count, min and max, and values past the range."""

    counts: np.ndarray
    min_ms: float = math.inf
    max_ms: float = -math.inf
    over_range: int = 0

    @classmethod
    def empty(cls) -> LatencyHistogram:
        return cls(np.zeros(BUCKETS, dtype=np.int64))

    @property
    def count(self) -> int:
        return int(self.counts.sum())

    def record_ms(self, values_ms: Any) -> None:
        """Add latencies (ms, finite, >= 0)."""
        a = np.asarray(values_ms, dtype=np.float64).ravel()
        if a.size == 0:
            return
        if not np.all(np.isfinite(a)) or float(a.min()) < 0:
            raise ValueError("latencies must be finite and non-negative")
        idx = stats.bucket_indices(a, stats.HIST_LOWEST_MS, stats.HIST_GROWTH)
        self.over_range += int(np.count_nonzero(idx >= BUCKETS))
        np.add.at(self.counts, np.minimum(idx, BUCKETS - 1), 1)
        self.min_ms = min(self.min_ms, float(a.min()))
        self.max_ms = max(self.max_ms, float(a.max()))

    def record_ns(self, values_ns: Any) -> None:
        """Add latencies given in integer nanoseconds (negative ones, a clock's jitter, are 0)."""
        a = np.asarray(values_ns, dtype=np.int64).ravel()
        self.record_ms(np.maximum(a, 0) / 1e6)

    def to_histogram(self) -> Histogram:
        """The report's sparse Histogram of the same counts."""
        if self.count == 0:
            return Histogram(stats.HIST_LOWEST_MS, stats.HIST_GROWTH, (), 0, 0.0, 0.0)
        (idx,) = np.nonzero(self.counts)
        buckets = tuple(zip(idx.tolist(), self.counts[idx].tolist(), strict=True))
        return Histogram(
            stats.HIST_LOWEST_MS, stats.HIST_GROWTH, buckets, self.count, self.min_ms, self.max_ms
        )

    def share_above_ms(self, bound_ms: float) -> float:
        """The share of values in buckets wholly above `bound_ms` (at bucket precision: a
        value within RELATIVE_ERROR of the bound may be left out); 0 when empty."""
        total = self.count
        if total == 0:
            return 0.0
        first = int(stats.bucket_indices(np.asarray([bound_ms]), stats.HIST_LOWEST_MS,
                                         stats.HIST_GROWTH)[0]) + 1  # fmt: skip
        return float(self.counts[min(first, BUCKETS) :].sum()) / total

    def percentile_ms(self, q: float) -> float:
        """The nearest-rank q-th percentile (stats' rule), within RELATIVE_ERROR of the raw one
        for values in range; ValueError when empty."""
        return stats.histogram_quantile(self.to_histogram(), q)


def merge(histograms: list[LatencyHistogram]) -> LatencyHistogram:
    """The histogram of all their values together (exact: counts add)."""
    out = LatencyHistogram.empty()
    for h in histograms:
        out.counts += h.counts
        out.min_ms = min(out.min_ms, h.min_ms)
        out.max_ms = max(out.max_ms, h.max_ms)
        out.over_range += h.over_range
    return out


def to_plain(h: LatencyHistogram) -> dict[str, Any]:
    """A compact plain form (the report's histogram plus `over_range`), for shipping."""
    return {"histogram": to_dict(h.to_histogram()), "over_range": h.over_range}


def from_plain(data: Any) -> LatencyHistogram:
    """The histogram of a `to_plain` form; BadInput when the form is malformed."""
    sparse = from_dict(Histogram, data["histogram"], "latency histogram")
    if sparse.lowest_ms != stats.HIST_LOWEST_MS or sparse.growth != stats.HIST_GROWTH:
        raise ValueError("the histogram's buckets are not benchbox's")
    out = LatencyHistogram.empty()
    for i, c in sparse.buckets:
        out.counts[min(i, BUCKETS - 1)] += c
    if sparse.count:
        out.min_ms, out.max_ms = sparse.min_ms, sparse.max_ms
    out.over_range = int(data.get("over_range", 0))
    return out
