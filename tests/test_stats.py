"""Tests of benchbox.measure.stats: percentiles, CIs and their coverage, histograms, stability,
comparison."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from benchbox.errors import BadInput
from benchbox.measure import stats as S
from benchbox.schema import PERCENTILE_KEYS, LatencyStats

# ---------------------------------------------------------------- percentiles and summary


def test_percentile_is_nearest_rank_on_raw_samples():
    a = np.arange(1.0, 11.0)  # 1..10
    assert S.percentile(a, 90) == 9.0  # rank ceil(9.0) = 9, not 10 through a stray ulp
    assert S.percentile(a, 90.01) == 10.0
    assert S.percentile(a, 50) == 5.0
    assert S.percentile(a, 10) == 1.0
    assert S.percentile(a, 0.001) == 1.0
    assert S.percentile(a, 100) == 10.0
    b = np.arange(1.0, 1001.0)
    assert S.percentile(b, 99.9) == 999.0
    assert S.percentile(b, 99) == 990.0
    assert S.percentile(np.array([4.2]), 99.9) == 4.2


def test_nearest_rank_matches_exact_rational_arithmetic():
    from fractions import Fraction

    for n in (1, 7, 10, 100, 333, 1000, 12345):
        for q in (50, 90, 95, 99, 99.9, 12.5, 33.3):
            exact = math.ceil(Fraction(str(q)) * n / 100)
            assert S.nearest_rank(n, q) == max(1, exact), (n, q)


def test_percentile_rejects_unsorted_empty_and_bad_q():
    with pytest.raises(ValueError, match="sorted"):
        S.percentile(np.array([3.0, 1.0, 2.0]), 50)
    with pytest.raises(ValueError, match="empty"):
        S.percentile(np.array([]), 50)
    for q in (0, -1, 100.5):
        with pytest.raises(ValueError, match="q"):
            S.percentile(np.array([1.0, 2.0]), q)


def test_summarize_gives_sample_std_and_nearest_rank_percentiles():
    a = np.array([4.0, 1.0, 3.0, 2.0])  # unsorted on purpose
    s = S.summarize(a)
    assert isinstance(s, LatencyStats)
    assert s.mean == 2.5
    assert s.std == pytest.approx(math.sqrt(5 / 3))  # ddof=1, not sqrt(1.25)
    assert (s.min, s.max) == (1.0, 4.0)
    assert s.p50 == 2.0  # rank ceil(2.0) = 2
    assert s.p90 == s.p95 == s.p99 == s.p99_9 == 4.0


def test_summarize_of_one_sample_has_zero_std():
    s = S.summarize(np.array([7.5]))
    assert s.std == 0.0
    assert s.min == s.p50 == s.p99_9 == s.max == s.mean == 7.5


def test_summarize_rejects_empty_and_nan():
    with pytest.raises(ValueError, match="empty"):
        S.summarize(np.array([]))
    with pytest.raises(ValueError, match="NaN"):
        S.summarize(np.array([1.0, np.nan]))


def test_summarize_percentiles_on_a_large_sample():
    a = np.random.default_rng(0).permutation(np.arange(1.0, 100_001.0))
    s = S.summarize(a)
    assert (s.p50, s.p90, s.p95, s.p99, s.p99_9) == (50_000, 90_000, 95_000, 99_000, 99_900)


def test_coefficient_of_variation():
    assert S.coefficient_of_variation(np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(
        math.sqrt(5 / 3) / 2.5
    )
    assert S.coefficient_of_variation(np.array([5.0])) == 0.0
    assert S.coefficient_of_variation(np.array([2.0, 2.0, 2.0])) == 0.0
    with pytest.raises(ValueError):
        S.coefficient_of_variation(np.array([]))


# ---------------------------------------------------------------- confidence intervals


def _reference_ranks(n: int, q: float, confidence: float) -> tuple[int, int] | None:
    """The CI ranks straight from the definition, scanning every rank (slow but obvious)."""
    p, a = q / 100, (1 - confidence) / 2
    ks = np.arange(n + 1)
    cdf = sps.binom.cdf(ks, n, p)  # P(B <= k)
    sf = sps.binom.sf(ks - 1, n, p)  # P(B >= k)
    lows = [k for k in range(1, n + 1) if cdf[k - 1] <= a]
    ups = [k for k in range(1, n + 1) if sf[k] <= a]
    if not lows or not ups:
        return None
    return lows[-1], ups[0]


@pytest.mark.parametrize("q", [50, 90, 95, 99, 99.9])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_ci_ranks_match_the_definition(q, confidence):
    for n in (1, 2, 5, 6, 10, 37, 100, 367, 368, 500, 1000, 3687, 3688, 5000):
        ref = _reference_ranks(n, q, confidence)
        got = S.quantile_ci_ranks(n, q, confidence)
        if ref is None:
            assert got is None, (n, q)
        else:
            r = S.nearest_rank(n, q)
            assert got == (min(ref[0], r), max(ref[1], r)), (n, q)


@pytest.mark.parametrize("bad_guess", ["zero", "n"])
def test_ci_ranks_survive_a_wrong_binomial_guess(monkeypatch, bad_guess):
    # The rank search starts from a normal-approximation guess; a guess far off must still give
    # the exact ranks.
    expected = {(n, q): _reference_ranks(n, q, 0.95) for n in (6, 50, 400, 2000) for q in (50, 99)}
    monkeypatch.setattr(S, "_binom_guess", lambda a, n, p: 0 if bad_guess == "zero" else n)
    for (n, q), ref in expected.items():
        got = S.quantile_ci_ranks(n, q, 0.95)
        if ref is None:
            assert got is None
        else:
            r = S.nearest_rank(n, q)
            assert got == (min(ref[0], r), max(ref[1], r)), (n, q)


@pytest.mark.parametrize("q", [50, 90, 99, 99.9])
def test_ci_exact_coverage_is_at_least_the_confidence(q):
    for n in (400, 1000, 5000, 20_000):
        ranks = S.quantile_ci_ranks(n, q, 0.95)
        if ranks is None:
            continue
        lo, hi = ranks
        p = q / 100
        coverage = sps.binom.cdf(hi - 1, n, p) - sps.binom.cdf(lo - 1, n, p)
        assert coverage >= 0.95
        assert coverage <= 0.99  # equal tails, not wildly conservative


def test_min_samples_for_ci_is_the_boundary():
    assert S.min_samples_for_ci(50) == 6  # 0.5^6 = 0.0156 <= 0.025 < 0.5^5
    assert S.min_samples_for_ci(99) == 368
    assert S.min_samples_for_ci(99.9) == 3688
    for q in (50, 90, 95, 99, 99.9):
        for conf in (0.9, 0.95, 0.99):
            n = S.min_samples_for_ci(q, conf)
            assert S.quantile_ci_ranks(n, q, conf) is not None
            assert S.quantile_ci_ranks(n - 1, q, conf) is None
    with pytest.raises(ValueError):
        S.min_samples_for_ci(100)


def test_quantile_ci_returns_order_statistics_around_the_estimate():
    a = np.arange(1.0, 1001.0)
    lo, hi = S.quantile_ci(a, 50)
    ref = _reference_ranks(1000, 50, 0.95)
    assert (lo, hi) == (float(ref[0]), float(ref[1]))
    assert lo < S.percentile(a, 50) < hi
    assert S.quantile_ci(a[:100], 99) is None  # 100 samples bound no p99 from above


def test_quantile_ci_on_a_million_samples_is_tight():
    a = np.sort(np.random.default_rng(3).exponential(1.0, 1_000_000))
    lo, hi = S.quantile_ci(a, 99)
    true_p99 = -math.log(0.01)
    assert lo <= S.percentile(a, 99) <= hi
    assert hi - lo < 0.02 * true_p99
    assert lo < true_p99 * 1.01 and hi > true_p99 * 0.99


def test_latency_cis_keys_and_none_for_small_samples():
    a = np.random.default_rng(1).lognormal(0, 0.5, 500)
    cis = S.latency_cis(a)
    assert tuple(cis) == PERCENTILE_KEYS
    assert cis["p99_9"] is None  # needs 3688 samples
    s = S.summarize(a)
    for key in ("p50", "p90", "p95", "p99"):
        lo, hi = cis[key]
        assert lo <= getattr(s, key) <= hi
    assert S.latency_cis(a[:5]) == dict.fromkeys(PERCENTILE_KEYS)


def test_quantile_ci_rejects_bad_confidence():
    for conf in (0, 1, 1.5):
        with pytest.raises(ValueError, match="confidence"):
            S.quantile_ci(np.arange(10.0), 50, conf)


_TRUE_QUANTILES = {
    "exponential": (lambda rng, size: rng.exponential(2.0, size), lambda p: -2.0 * math.log(1 - p)),
    "lognormal": (
        lambda rng, size: rng.lognormal(1.0, 0.8, size),
        lambda p: math.exp(1.0 + 0.8 * sps.norm.ppf(p)),
    ),
    "uniform": (lambda rng, size: rng.uniform(5.0, 9.0, size), lambda p: 5.0 + 4.0 * p),
}


@pytest.mark.parametrize("dist", sorted(_TRUE_QUANTILES))
def test_ci_empirical_coverage_on_known_distributions(dist):
    draw, true_quantile = _TRUE_QUANTILES[dist]
    rng = np.random.default_rng(20240601)
    trials, n = 2000, 400
    samples = np.sort(draw(rng, (trials, n)), axis=1)
    for q in (50, 90, 99):
        lo_rank, hi_rank = S.quantile_ci_ranks(n, q, 0.95)
        truth = true_quantile(q / 100)
        covered = (samples[:, lo_rank - 1] <= truth) & (truth <= samples[:, hi_rank - 1])
        coverage = covered.mean()
        assert coverage >= 0.93, (dist, q, coverage)
        assert coverage <= 0.995, (dist, q, coverage)
        # the public function agrees with the ranks on one trial
        assert S.quantile_ci(samples[0], q) == (
            samples[0, lo_rank - 1],
            samples[0, hi_rank - 1],
        )


# ---------------------------------------------------------------- stability


def _w(tp: float, p99: float, count: int = 100) -> S.WindowStat:
    return S.WindowStat(throughput_ips=tp, p99_ms=p99, count=count)


def test_windows_stable_at_the_tolerance_edge():
    # mean 100: deviations +10% and -10% are exactly the tolerance
    assert S.windows_stable([_w(100, 5), _w(110, 5), _w(90, 5)], tolerance=0.10)
    assert not S.windows_stable([_w(100, 5), _w(112, 5), _w(88, 5)], tolerance=0.10)
    assert S.windows_stable([_w(100, 5), _w(112, 5), _w(88, 5)], tolerance=0.12)


def test_windows_unstable_when_p99_drifts_even_if_throughput_is_flat():
    assert not S.windows_stable([_w(100, 5.0), _w(100, 6.0), _w(100, 7.0)])  # 7/6 - 1 = 16.7%


def test_windows_stable_looks_only_at_the_last_windows():
    warmup = [_w(10, 50), _w(50, 20)]
    steady = [_w(100, 5.0), _w(101, 5.1), _w(99, 4.9)]
    assert S.windows_stable(warmup + steady)
    assert not S.windows_stable(steady[:2])  # fewer than `last`
    assert not S.windows_stable(warmup + steady, last=4)
    assert S.windows_stable(steady[1:], last=2, tolerance=0.021)  # p99 5.1 vs mean 5.0
    assert not S.windows_stable(steady[1:], last=2, tolerance=0.019)


def test_windows_with_no_requests_are_never_stable():
    assert not S.windows_stable([_w(0, 0, 0), _w(0, 0, 0), _w(0, 0, 0)])
    assert not S.windows_stable([_w(100, 5), _w(100, 5), _w(100, 5, 0)])


def test_windows_stable_rejects_bad_arguments():
    with pytest.raises(ValueError):
        S.windows_stable([_w(1, 1)], last=0)
    with pytest.raises(ValueError):
        S.windows_stable([_w(1, 1)], tolerance=-0.1)


# ---------------------------------------------------------------- histogram


def _raw_percentile(a: np.ndarray, q: float) -> float:
    return S.percentile(np.sort(a), q)


@pytest.mark.parametrize(
    "draw",
    [
        lambda rng: rng.exponential(3.0, 20_000),
        lambda rng: rng.lognormal(0.0, 1.5, 20_000),
        lambda rng: rng.uniform(0.2, 0.25, 20_000),
        lambda rng: np.concatenate([rng.normal(2.0, 0.05, 15_000), rng.normal(40, 2, 5_000)]),
    ],
)
def test_histogram_quantile_within_bucket_precision_of_raw_percentile(draw):
    a = np.abs(draw(np.random.default_rng(11))) + S.HIST_LOWEST_MS
    h = S.histogram_from_samples(a)
    for q in (0.1, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100):
        raw = _raw_percentile(a, q)
        got = S.histogram_quantile(h, q)
        assert abs(got - raw) <= S.HIST_RELATIVE_ERROR * raw * (1 + 1e-9), (q, got, raw)
    assert S.histogram_quantile(h, 100) == a.max()
    assert S.histogram_quantile(h, 1e-6) == a.min()


def test_histogram_precision_constant_is_one_percent():
    assert S.HIST_GROWTH == 1.02
    assert 0.0099 < S.HIST_RELATIVE_ERROR < 0.01


def test_histogram_merge_equals_histogram_of_union():
    rng = np.random.default_rng(5)
    a, b, c = rng.exponential(1, 3000), rng.lognormal(2, 1, 5000), rng.uniform(0, 1e-3, 50)
    ha, hb, hc = map(S.histogram_from_samples, (a, b, c))
    union = S.histogram_from_samples(np.concatenate([a, b, c]))
    assert S.merge_histograms(S.merge_histograms(ha, hb), hc) == union
    assert S.merge_histograms(ha, S.merge_histograms(hb, hc)) == union
    assert S.merge_histograms(hc, S.merge_histograms(hb, ha)) == union
    assert S.histogram_count(union) == 8050


def test_empty_histogram_is_the_merge_identity():
    h = S.histogram_from_samples(np.array([1.0, 2.0, 3.0]))
    empty = S.histogram_from_samples(np.array([]))
    assert S.histogram_count(empty) == 0
    assert S.merge_histograms(empty, h) == h == S.merge_histograms(h, empty)
    with pytest.raises(ValueError, match="empty"):
        S.histogram_quantile(empty, 50)
    assert S.histogram_cdf(empty) == []
    assert S.histogram_values(empty).size == 0


def test_histograms_with_different_buckets_do_not_merge():
    a = S.histogram_from_samples(np.array([1.0]))
    b = S.histogram_from_samples(np.array([1.0]), growth=1.05)
    with pytest.raises(ValueError, match="different buckets"):
        S.merge_histograms(a, b)


def test_histogram_size_is_bounded_by_range_over_precision():
    # 1 µs .. 1 h, densely covered: one bucket per 2% step and no more
    a = np.geomspace(S.HIST_LOWEST_MS, 3_600_000.0, 200_000)
    h = S.histogram_from_samples(a)
    bound = math.log(3_600_000.0 / S.HIST_LOWEST_MS) / math.log(S.HIST_GROWTH) + 1
    assert len(h.buckets) <= bound
    assert len(h.buckets) >= bound - 2
    # a typical cell (latencies within a 10x spread) needs about 120 buckets
    typical = S.histogram_from_samples(np.random.default_rng(0).uniform(2.0, 20.0, 100_000))
    assert len(typical.buckets) <= math.log(10) / math.log(1.02) + 2


def test_histogram_dict_round_trips_exactly_through_json():
    a = np.random.default_rng(9).lognormal(1, 1, 5000)
    h = S.histogram_from_samples(a)
    d = S.histogram_to_dict(h)
    assert set(d) == {"unit", "lowest_ms", "growth", "buckets", "count", "min_ms", "max_ms"}
    assert d["unit"] == "ms" and d["count"] == 5000
    text = json.dumps(d, separators=(",", ":"))
    assert S.histogram_from_dict(json.loads(text)) == h
    assert len(text) < 20 * len(h.buckets) + 200  # compact: a few bytes per bucket
    assert S.histogram_from_dict(S.histogram_to_dict(S.histogram_from_samples([]))).count == 0


@pytest.mark.parametrize(
    "change",
    [
        {"unit": "s"},
        {"count": 1},
        {"buckets": [[3, 2], [1, 2]]},
        {"buckets": [[1, 0]]},
        {"buckets": "nope"},
        {"growth": 1.0},
        {"lowest_ms": "x"},
        {"min_ms": None},
    ],
)
def test_malformed_histogram_dict_is_bad_input(change):
    d = S.histogram_to_dict(S.histogram_from_samples(np.array([1.0, 1.5, 2.0, 9.0])))
    d.update(change)
    with pytest.raises(BadInput, match="histogram"):
        S.histogram_from_dict(d)
    d = S.histogram_to_dict(S.histogram_from_samples(np.array([1.0])))
    del d["buckets"]
    with pytest.raises(BadInput, match="missing key 'buckets'"):
        S.histogram_from_dict(d)


def test_histogram_cdf_is_monotone_and_ends_at_max():
    a = np.random.default_rng(2).exponential(5, 10_000)
    h = S.histogram_from_samples(a)
    cdf = S.histogram_cdf(h)
    xs, fs = zip(*cdf, strict=True)
    assert list(xs) == sorted(xs) and list(fs) == sorted(fs)
    assert cdf[-1] == (a.max(), 1.0)
    # fraction at a bucket edge matches the raw empirical CDF within one bucket's mass
    x, f = cdf[len(cdf) // 2]
    assert abs(f - np.mean(a <= x)) < 0.01


def test_histogram_values_reproduce_the_sample_shape():
    a = np.random.default_rng(4).lognormal(0, 1, 8000)
    v = S.histogram_values(S.histogram_from_samples(a))
    assert v.size == 8000
    assert np.all(np.diff(v) >= 0)
    assert v.min() == a.min() and v.max() == a.max()
    for q in (50, 90, 99):
        raw = _raw_percentile(a, q)
        assert abs(S.percentile(v, q) - raw) <= S.HIST_RELATIVE_ERROR * raw * (1 + 1e-9)


def test_histogram_puts_sub_microsecond_values_in_the_first_bucket():
    h = S.histogram_from_samples(np.array([0.0, 1e-4, 5e-4]))
    assert h.buckets == ((0, 3),)
    assert S.histogram_quantile(h, 100) == 5e-4
    with pytest.raises(ValueError, match="negative"):
        S.histogram_from_samples(np.array([-1.0]))


# ---------------------------------------------------------------- comparison


def test_bootstrap_medians_match_brute_force_resampling():
    rng = np.random.default_rng(8)
    a = np.sort(rng.lognormal(0, 1, 301))
    fast = S._bootstrap_medians(a, 20_000, np.random.default_rng(1))
    idx = np.random.default_rng(2).integers(0, a.size, size=(20_000, a.size))
    slow = np.sort(a[idx], axis=1)[:, S.nearest_rank(a.size, 50) - 1]
    for q in (0.025, 0.25, 0.5, 0.75, 0.975):
        assert np.quantile(fast, q) == pytest.approx(np.quantile(slow, q), rel=0.02)


def test_twenty_percent_slowdown_is_detected():
    rng = np.random.default_rng(12)
    base = rng.lognormal(1.0, 0.3, 3000)
    cand = rng.lognormal(1.0, 0.3, 3000) * 1.2
    c = S.compare_samples(base, cand, threshold=0.05)
    assert c.verdict == "slower"
    assert c.ratio_lo > 1.05 and c.ratio_lo <= c.ratio <= c.ratio_hi
    assert c.ratio == pytest.approx(1.2, rel=0.05)
    assert c.p_value < 1e-6
    back = S.compare_samples(cand, base, threshold=0.05)
    assert back.verdict == "faster"
    assert back.ratio_hi < 0.95
    assert back.ratio == pytest.approx(1 / c.ratio)


def test_ratio_is_candidate_median_over_baseline_median():
    base = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    cand = np.array([2.0, 4.0, 6.0, 8.0, 9.0])
    c = S.compare_samples(base, cand)
    assert c.ratio == 2.0  # nearest-rank medians 3 and 6


def test_identical_distributions_are_mostly_not_significant():
    verdicts = []
    for seed in range(40):
        rng = np.random.default_rng(1000 + seed)
        base, cand = rng.exponential(4, 2000), rng.exponential(4, 2000)
        verdicts.append(S.compare_samples(base, cand, seed=seed).verdict)
    assert verdicts.count("not significant") >= 36  # nominal false-positive rate is 5%


def test_threshold_hides_a_real_but_small_change():
    rng = np.random.default_rng(13)
    base = rng.normal(10, 0.5, 20_000)
    cand = rng.normal(10.3, 0.5, 20_000)  # 3% slower, clearly significant
    assert S.compare_samples(base, cand).verdict == "slower"
    assert S.compare_samples(base, cand, threshold=0.10).verdict == "not significant"


def test_comparison_is_deterministic_for_a_seed():
    rng = np.random.default_rng(14)
    base, cand = rng.exponential(1, 500), rng.exponential(1.1, 500)
    assert S.compare_samples(base, cand, seed=3) == S.compare_samples(base, cand, seed=3)


def test_comparing_constants_is_not_significant():
    c = S.compare_samples(np.full(50, 2.0), np.full(50, 2.0))
    assert (c.ratio, c.ratio_lo, c.ratio_hi, c.p_value, c.verdict) == (
        1.0,
        1.0,
        1.0,
        1.0,
        "not significant",
    )


def test_compare_samples_rejects_bad_input():
    with pytest.raises(ValueError, match="empty"):
        S.compare_samples(np.array([]), np.array([1.0]))
    with pytest.raises(ValueError, match="threshold"):
        S.compare_samples(np.array([1.0]), np.array([1.0]), threshold=-0.1)
    with pytest.raises(ValueError, match="baseline median"):
        S.compare_samples(np.zeros(5), np.ones(5))


def test_compare_histograms_agrees_with_raw_samples():
    rng = np.random.default_rng(15)
    base = rng.lognormal(0.5, 0.4, 4000)
    cand = rng.lognormal(0.5, 0.4, 4000) * 1.2
    hb, hc = S.histogram_from_samples(base), S.histogram_from_samples(cand)
    from_hist = S.compare_histograms(hb, hc, threshold=0.05)
    from_raw = S.compare_samples(base, cand, threshold=0.05)
    assert from_hist.verdict == from_raw.verdict == "slower"
    assert from_hist.ratio == pytest.approx(from_raw.ratio, rel=0.021)
    same = S.compare_histograms(hb, S.histogram_from_samples(rng.lognormal(0.5, 0.4, 4000)))
    assert same.verdict == "not significant"
    with pytest.raises(ValueError, match="empty"):
        S.compare_histograms(hb, S.histogram_from_samples([]))


@pytest.mark.parametrize("n", [1, 7, 368, 5000, 200_000])
@pytest.mark.parametrize("p", [0.001, 0.05, 0.5, 0.99, 0.999])
def test_binomial_cdf_matches_scipy(n, p):
    # benchbox's own binomial tail (no scipy.stats import on the measuring path) agrees with
    # scipy's to rounding wherever a CI rank could be decided (CDF below one half).
    ks = np.unique(np.linspace(0, n, 200).astype(int))
    for k in ks:
        ref = float(sps.binom.cdf(k, n, p))
        got = S._binom_cdf(int(k), n, p)
        if ref < 0.5:
            assert got == pytest.approx(ref, rel=1e-9, abs=1e-300), (k, n, p)
        else:
            assert got == pytest.approx(ref, rel=1e-9), (k, n, p)
