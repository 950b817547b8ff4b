"""Property tests (hypothesis) of benchbox.measure.stats: percentiles, CIs and histograms."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from benchbox.measure import stats as S

# Latencies from 1 µs to 1 h, the range the histogram is built for.
latency = st.floats(min_value=S.HIST_LOWEST_MS, max_value=3_600_000.0, allow_nan=False)
samples = st.lists(latency, min_size=1, max_size=400).map(np.array)
quantile = st.floats(min_value=0.01, max_value=100.0, allow_nan=False)
confidence = st.floats(min_value=0.5, max_value=0.999, allow_nan=False)

fast = settings(max_examples=60, deadline=None)


@fast
@given(samples, quantile, quantile)
def test_percentile_is_monotone_in_q_and_within_min_max(a, q1, q2):
    s = np.sort(a)
    lo_q, hi_q = sorted((q1, q2))
    p_lo, p_hi = S.percentile(s, lo_q), S.percentile(s, hi_q)
    assert s[0] <= p_lo <= p_hi <= s[-1]
    assert p_lo in s  # nearest-rank returns a sample, never an interpolation


@fast
@given(samples)
def test_summary_orders_its_percentiles(a):
    s = S.summarize(a)
    assert s.min <= s.p50 <= s.p90 <= s.p95 <= s.p99 <= s.p99_9 <= s.max
    assert s.min <= s.mean * (1 + 1e-12) and s.mean <= s.max * (1 + 1e-12)
    assert s.std >= 0


@fast
@given(st.lists(latency, min_size=1, max_size=2000).map(np.array), quantile, confidence)
def test_ci_contains_the_point_estimate(a, q, conf):
    s = np.sort(a)
    ci = S.quantile_ci(s, q, conf)
    if ci is None:
        assert s.size < S.min_samples_for_ci(q, conf) if q < 100 else True
        return
    lo, hi = ci
    assert lo <= S.percentile(s, q) <= hi
    assert s[0] <= lo <= hi <= s[-1]


@fast
@given(st.integers(1, 200_000), st.sampled_from([50, 90, 95, 99, 99.9]), confidence, confidence)
def test_ci_widens_as_confidence_rises(n, q, c1, c2):
    lo_c, hi_c = sorted((c1, c2))
    narrow = S.quantile_ci_ranks(n, q, lo_c)
    wide = S.quantile_ci_ranks(n, q, hi_c)
    if wide is not None:
        assert narrow is not None
        assert narrow[0] >= wide[0] and narrow[1] <= wide[1]
        assert 1 <= wide[0] <= S.nearest_rank(n, q) <= wide[1] <= n


@fast
@given(samples, samples, samples)
def test_histogram_merge_is_associative_and_commutative(a, b, c):
    ha, hb, hc = map(S.histogram_from_samples, (a, b, c))
    left = S.merge_histograms(S.merge_histograms(ha, hb), hc)
    right = S.merge_histograms(ha, S.merge_histograms(hb, hc))
    assert left == right
    assert S.merge_histograms(ha, hb) == S.merge_histograms(hb, ha)
    assert S.histogram_count(left) == a.size + b.size + c.size
    assert left == S.histogram_from_samples(np.concatenate([a, b, c]))


@fast
@given(samples, quantile)
def test_histogram_quantile_within_precision_of_raw_percentile(a, q):
    h = S.histogram_from_samples(a)
    raw = S.percentile(np.sort(a), q)
    got = S.histogram_quantile(h, q)
    assert abs(got - raw) <= S.HIST_RELATIVE_ERROR * raw * (1 + 1e-9)


@fast
@given(samples)
def test_histogram_dict_round_trip(a):
    h = S.histogram_from_samples(a)
    assert S.histogram_from_dict(S.histogram_to_dict(h)) == h


@fast
@given(quantile.filter(lambda q: q < 100), confidence)
def test_min_samples_for_ci_is_the_boundary_for_any_quantile(q, conf):
    n = S.min_samples_for_ci(q, conf)
    if n <= 2**40:  # beyond it the closed form is returned unchecked (past float precision)
        assert S.quantile_ci_ranks(n, q, conf) is not None
        assert n == 1 or S.quantile_ci_ranks(n - 1, q, conf) is None
