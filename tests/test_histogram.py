"""The dense mergeable latency histogram: exact merges, percentiles within the stated error."""

from __future__ import annotations

import numpy as np
import pytest

from benchbox.measure import stats
from benchbox.measure.histogram import (
    HIGHEST_MS,
    RELATIVE_ERROR,
    LatencyHistogram,
    from_plain,
    merge,
    to_plain,
)

SEEDS = (0, 1, 2, 3, 4)


def _draw(kind: str, rng: np.random.Generator, n: int) -> np.ndarray:
    if kind == "lognormal":
        return rng.lognormal(mean=1.0, sigma=0.6, size=n)
    if kind == "bimodal":  # a fast path and a slow one, 10x apart
        return np.where(rng.random(n) < 0.9, rng.normal(2.0, 0.1, n), rng.normal(20.0, 2.0, n))
    if kind == "pareto":  # a heavy tail
        return 0.5 * (1.0 + rng.pareto(2.5, n))
    return rng.uniform(0.01, 50.0, n)


def _of(values) -> LatencyHistogram:
    h = LatencyHistogram.empty()
    h.record_ms(np.abs(values))
    return h


@pytest.mark.parametrize("seed", SEEDS)
def test_merging_k_histograms_equals_the_histogram_of_the_pooled_values(seed):
    rng = np.random.default_rng(seed)
    parts = [np.abs(_draw(k, rng, int(rng.integers(1, 3000)))) for k in ("lognormal", "bimodal")]
    parts += [np.abs(_draw("pareto", rng, 500))]
    merged = merge([_of(p) for p in parts])
    pooled = _of(np.concatenate(parts))
    assert np.array_equal(merged.counts, pooled.counts)
    assert merged.count == sum(p.size for p in parts)
    assert (merged.min_ms, merged.max_ms) == (pooled.min_ms, pooled.max_ms)
    assert merged.to_histogram() == pooled.to_histogram()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", ["lognormal", "bimodal", "pareto", "uniform"])
def test_percentiles_are_within_the_stated_error_of_the_raw_nearest_rank(seed, kind):
    rng = np.random.default_rng(seed)
    raw = np.abs(_draw(kind, rng, 20_000))
    h = _of(raw)
    ordered = np.sort(raw)
    for q in (1.0, 25.0, 50.0, 90.0, 99.0, 99.9, 100.0):
        exact = stats.percentile(ordered, q)
        assert abs(h.percentile_ms(q) - exact) <= RELATIVE_ERROR * exact + 1e-12, q


def test_merged_percentiles_equal_the_pooled_histograms_percentiles():
    rng = np.random.default_rng(7)
    parts = [rng.lognormal(1.0, 0.5, 4000) for _ in range(3)]
    merged, pooled = merge([_of(p) for p in parts]), _of(np.concatenate(parts))
    for q in (50.0, 99.0, 99.9):
        assert merged.percentile_ms(q) == pooled.percentile_ms(q)


def test_the_plain_form_round_trips_and_is_the_reports_histogram():
    h = _of(np.random.default_rng(3).lognormal(0.0, 1.0, 5000))
    back = from_plain(to_plain(h))
    assert np.array_equal(back.counts, h.counts)
    assert (back.min_ms, back.max_ms, back.count) == (h.min_ms, h.max_ms, h.count)
    assert to_plain(h)["histogram"]["count"] == 5000


def test_an_empty_histogram_has_no_percentile_and_merges_as_nothing():
    empty = LatencyHistogram.empty()
    assert empty.count == 0
    with pytest.raises(ValueError):
        empty.percentile_ms(50.0)
    one = _of([3.0])
    assert np.array_equal(merge([empty, one, empty]).counts, one.counts)
    assert from_plain(to_plain(empty)).count == 0


def test_one_value_is_every_percentile():
    h = _of([4.2])
    assert h.percentile_ms(1.0) == h.percentile_ms(99.9) == 4.2


def test_values_below_the_lowest_bucket_and_above_the_highest_are_counted_not_lost():
    h = LatencyHistogram.empty()
    h.record_ms([0.0, 1e-5, 5.0, 2 * HIGHEST_MS])
    assert h.count == 4 and h.over_range == 1
    assert h.percentile_ms(100.0) == 2 * HIGHEST_MS  # the exact max
    assert h.percentile_ms(25.0) == 0.0  # the exact min
    assert h.counts[0] == 2
    assert from_plain(to_plain(h)).over_range == 1


def test_nanoseconds_are_recorded_as_milliseconds_and_bad_values_refused():
    h = LatencyHistogram.empty()
    h.record_ns(np.array([1_000_000, 2_000_000, -5], dtype=np.int64))  # a jittered -5 ns is 0
    assert h.count == 3 and h.min_ms == 0.0 and h.max_ms == 2.0
    with pytest.raises(ValueError):
        h.record_ms([float("nan")])
    with pytest.raises(ValueError):
        h.record_ms([-1.0])


def test_the_share_above_a_bound_counts_the_buckets_wholly_above_it():
    """What the Ray cells' generator-behind rule reads: 3 of 10 sends over 1 ms late (values
    far from the bound, so bucket precision cannot move them)."""
    from benchbox.measure.histogram import LatencyHistogram

    h = LatencyHistogram.empty()
    h.record_ms([0.01] * 5 + [0.5] * 2 + [1.5, 3.0, 40.0])
    assert h.share_above_ms(1.0) == pytest.approx(0.3)
    assert h.share_above_ms(100.0) == 0.0 and LatencyHistogram.empty().share_above_ms(1.0) == 0.0
