"""Latency statistics: nearest-rank percentiles, distribution-free CIs, HDR-style histograms,
window stability and A/B comparison. Pure functions over numpy arrays and frozen dataclasses.

Conventions
- Percentiles are nearest-rank on the raw samples (MLPerf LoadGen, onnxruntime_perf_test):
  the q-th percentile of n sorted values is the value at 1-based rank ceil(q/100 * n).
- Confidence intervals of a percentile come from order statistics and the binomial distribution,
  so they hold for any continuous latency distribution (no normality assumption).
- Histograms use log buckets of constant relative width (growth 1.02 from 1 µs upward), so any
  quantile read from one is within 1% of the raw nearest-rank value, and two histograms merge
  exactly (counts add).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from benchbox.schema import PERCENTILE_KEYS, Histogram, LatencyStats, from_dict, to_dict


def _scipy_stats() -> Any:
    """scipy.stats, imported on first use (it costs about a second at start-up): only the A/B
    comparison's Mann-Whitney test needs it."""
    from scipy import stats

    return stats


# The percentile each key of LatencyStats / latency_ci_ms stands for.
PERCENTILES: dict[str, float] = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p99_9": 99.9}
assert tuple(PERCENTILES) == PERCENTILE_KEYS

# ---------------------------------------------------------------- percentiles and summary


def _as_samples(samples_ms: Any, what: str = "samples_ms") -> np.ndarray:
    a = np.asarray(samples_ms, dtype=np.float64).ravel()
    if a.size == 0:
        raise ValueError(f"{what} is empty")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what} contains NaN or infinite values")
    return a


def _check_q(q: float) -> float:
    q = float(q)
    if not 0.0 < q <= 100.0:
        raise ValueError(f"percentile q must be in (0, 100], got {q}")
    return q


def nearest_rank(n: int, q: float) -> int:
    """The 1-based nearest rank ceil(q/100 * n) of the q-th percentile of n values."""
    # Rounding first keeps 90 * 10 / 100 at rank 9, not 10 through a stray ulp.
    return min(n, max(1, math.ceil(round(q * n / 100.0, 9))))


def _percentile_sorted(a: np.ndarray, q: float) -> float:
    return float(a[nearest_rank(a.size, q) - 1])


def percentile(sorted_ms: np.ndarray, q: float) -> float:
    """Nearest-rank q-th percentile (q in (0, 100]) of samples sorted ascending."""
    a = _as_samples(sorted_ms, "sorted_ms")
    q = _check_q(q)
    if a.size > 1 and np.any(a[1:] < a[:-1]):
        raise ValueError("sorted_ms must be sorted ascending (use np.sort first)")
    return _percentile_sorted(a, q)


def summarize(samples_ms: np.ndarray) -> LatencyStats:
    """Mean, sample std (ddof=1; 0 for one sample), min, nearest-rank percentiles and max."""
    a = np.sort(_as_samples(samples_ms))
    std = float(np.std(a, ddof=1)) if a.size > 1 else 0.0
    pct = {key: _percentile_sorted(a, q) for key, q in PERCENTILES.items()}
    return LatencyStats(mean=float(np.mean(a)), std=std, min=float(a[0]), max=float(a[-1]), **pct)


def coefficient_of_variation(samples_ms: np.ndarray) -> float:
    """Sample std (ddof=1) over the mean; 0 for a single sample."""
    a = _as_samples(samples_ms)
    if a.size < 2:
        return 0.0
    mean = float(np.mean(a))
    std = float(np.std(a, ddof=1))
    if mean == 0.0:
        return 0.0 if std == 0.0 else math.inf
    return std / abs(mean)


# ---------------------------------------------------------------- confidence intervals


def _check_confidence(confidence: float) -> float:
    confidence = float(confidence)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return confidence


# The binomial tail, without scipy.stats (whose import costs about a second at start-up): the
# pmf by Loader's saddle-point expansion (as R's dbinom does, accurate to rounding for any n),
# the CDF by summing the pmf outward from k into the nearer tail.


def _stirlerr(n: float) -> float:
    """log(n!) - log(sqrt(2 pi n) (n/e)^n) (Loader 2000)."""
    if n <= 15.0:
        return math.lgamma(n + 1.0) - (n + 0.5) * math.log(n) + n - 0.5 * math.log(2.0 * math.pi)
    nn = n * n
    s0, s1, s2, s3, s4 = 1 / 12, 1 / 360, 1 / 1260, 1 / 1680, 1 / 1188
    if n > 500:
        return (s0 - s1 / nn) / n
    if n > 80:
        return (s0 - (s1 - s2 / nn) / nn) / n
    if n > 35:
        return (s0 - (s1 - (s2 - s3 / nn) / nn) / nn) / n
    return (s0 - (s1 - (s2 - (s3 - s4 / nn) / nn) / nn) / nn) / n


def _bd0(x: float, m: float) -> float:
    """x log(x/m) + m - x, without cancellation when x is near m (Loader 2000)."""
    if abs(x - m) < 0.1 * (x + m):
        v = (x - m) / (x + m)
        s = (x - m) * v
        ej = 2.0 * x * v
        for j in range(1, 1000):
            ej *= v * v
            s1 = s + ej / (2 * j + 1)
            if s1 == s:
                break
            s = s1
        return s
    return x * math.log(x / m) + m - x


def _binom_pmf(k: int, n: int, p: float) -> float:
    """P(Bin(n, p) = k)."""
    q = 1.0 - p
    if k == 0:
        return math.exp(n * math.log1p(-p))
    if k == n:
        return math.exp(n * math.log(p))
    lc = (
        _stirlerr(n)
        - _stirlerr(k)
        - _stirlerr(n - k)
        - _bd0(float(k), n * p)
        - _bd0(float(n - k), n * q)
    )
    lf = math.log(2.0 * math.pi) + math.log(k) + math.log1p(-k / n)
    return math.exp(lc - 0.5 * lf)


_TAIL_CHUNK = 4096


def _tail_sum(k: int, n: int, p: float, down: bool) -> float:
    """P(B <= k) (down) or P(B >= k) (up), summed from k outward while terms still count."""
    first = _binom_pmf(k, n, p)
    total, last, i = first, first, k
    odds = p / (1.0 - p)
    while last > total * 1e-17:
        if down:
            if i == 0:
                break
            js = np.arange(i, max(i - _TAIL_CHUNK, 0), -1, dtype=np.float64)
            ratios = js / (n - js + 1.0) / odds  # pmf(j - 1) / pmf(j)
        else:
            if i == n:
                break
            js = np.arange(i, min(i + _TAIL_CHUNK, n), dtype=np.float64)
            ratios = (n - js) / (js + 1.0) * odds  # pmf(j + 1) / pmf(j)
        terms = last * np.cumprod(ratios)
        total += float(terms.sum())
        last = float(terms[-1])
        i = i - js.size if down else i + js.size
    return min(total, 1.0)


def _binom_cdf(k: int, n: int, p: float) -> float:
    """P(Bin(n, p) <= k), from the nearer tail."""
    if k < 0:
        return 0.0
    if k >= n or p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    if k < n * p:
        return _tail_sum(k, n, p, down=True)
    return max(0.0, 1.0 - _tail_sum(k + 1, n, p, down=False))


def _binom_guess(a: float, n: int, p: float) -> float:
    """Roughly the smallest k with P(Bin(n, p) <= k) >= a (the normal approximation)."""
    sd = math.sqrt(n * p * (1.0 - p))
    return n * p + NormalDist().inv_cdf(a) * sd - 0.5


def _largest_k_cdf_le(n: int, p: float, a: float) -> int:
    """Largest k in [0, n] with P(Bin(n, p) <= k) <= a, or -1 if there is none.

    The CDF rises with k: from a guess (the normal approximation), step out until the answer is
    bracketed, then bisect (O(log distance) CDF values).
    """
    if not _binom_cdf(0, n, p) <= a:
        return -1
    guess = _binom_guess(a, n, p)
    k = min(max(int(guess), 0), n) if math.isfinite(guess) else 0
    step = 1
    if _binom_cdf(k, n, p) <= a:  # the answer is at k or above
        lo, hi = k, k + 1
        while hi <= n and _binom_cdf(hi, n, p) <= a:
            lo, hi, step = hi, hi + step, step * 2
        hi = min(hi, n + 1)  # cdf(n) = 1 > a
    else:  # the answer is below k
        lo, hi = k - 1, k
        while lo > 0 and not _binom_cdf(lo, n, p) <= a:
            hi, lo, step = lo, lo - step, step * 2
        lo = max(lo, 0)  # cdf(0) <= a
    while hi - lo > 1:  # cdf(lo) <= a < cdf(hi)
        mid = (lo + hi) // 2
        if _binom_cdf(mid, n, p) <= a:
            lo = mid
        else:
            hi = mid
    return lo


def quantile_ci_ranks(n: int, q: float, confidence: float = 0.95) -> tuple[int, int] | None:
    """1-based order-statistic ranks (l, u) bounding the q-th percentile; None if n is too small.

    B ~ Binomial(n, q/100) counts the samples below the true quantile, and
    P(X_(l) <= quantile <= X_(u)) >= P(l <= B < u). Each tail gets at most (1 - confidence) / 2:
    l is the largest rank with P(B < l) <= alpha/2 and u the smallest with P(B >= u) <= alpha/2.
    """
    q = _check_q(q)
    alpha_half = (1.0 - _check_confidence(confidence)) / 2.0
    if n < 1:
        return None
    p = q / 100.0
    if p >= 1.0:
        return None  # the maximum has no distribution-free upper bound
    k_low = _largest_k_cdf_le(n, p, alpha_half)
    k_up = _largest_k_cdf_le(n, 1.0 - p, alpha_half)  # n - B ~ Binomial(n, 1 - p)
    if k_low < 0 or k_up < 0:
        return None
    rank = nearest_rank(n, q)
    return min(k_low + 1, rank), max(n - k_up, rank)


_CHECKED_SAMPLES_MAX = 2**40  # above it, min_samples_for_ci trusts the closed form


def min_samples_for_ci(q: float, confidence: float = 0.95) -> int:
    """The fewest samples for which quantile_ci gives a two-sided interval at q."""
    q = _check_q(q)
    alpha_half = (1.0 - _check_confidence(confidence)) / 2.0
    p = q / 100.0
    if p >= 1.0:
        raise ValueError("the 100th percentile (the maximum) has no distribution-free upper bound")

    def has_ci(n: int) -> bool:
        return n >= 1 and quantile_ci_ranks(n, q, confidence) is not None

    # Both tails need a rank: (1-p)^n <= alpha/2 for l = 1 and p^n <= alpha/2 for u = n, so the
    # answer is the closed form up to rounding; a CI exists for every n from it on. Bracket it,
    # then bisect (a handful of rank searches whatever q is).
    if max(p, 1.0 - p) == 1.0:
        raise ValueError(f"percentile q={q} is too close to 0 for a distribution-free CI")
    n = max(1, math.ceil(math.log(alpha_half) / math.log(max(p, 1.0 - p))))
    if n > _CHECKED_SAMPLES_MAX:
        return n  # q within ~1e-10 of 0 or 100: the binomial tails are beyond float precision
    lo = max(0, n - 3)
    while has_ci(lo):
        lo //= 2
    hi = n
    while not has_ci(hi):
        hi *= 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if has_ci(mid):
            hi = mid
        else:
            lo = mid
    return hi


def quantile_ci(
    sorted_ms: np.ndarray, q: float, confidence: float = 0.95
) -> tuple[float, float] | None:
    """Distribution-free two-sided CI of the q-th percentile; None when the sample is too small."""
    a = _as_samples(sorted_ms, "sorted_ms")
    if a.size > 1 and np.any(a[1:] < a[:-1]):
        raise ValueError("sorted_ms must be sorted ascending (use np.sort first)")
    ranks = quantile_ci_ranks(a.size, q, confidence)
    if ranks is None:
        return None
    return float(a[ranks[0] - 1]), float(a[ranks[1] - 1])


def latency_cis(samples_ms: np.ndarray, confidence: float = 0.95) -> dict[str, list[float] | None]:
    """CIs for p50, p90, p95, p99 and p99_9 as {key: [lo, hi] or None (too few samples)}."""
    a = np.sort(_as_samples(samples_ms))
    out: dict[str, list[float] | None] = {}
    for key, q in PERCENTILES.items():
        ranks = quantile_ci_ranks(a.size, q, confidence)
        out[key] = None if ranks is None else [float(a[ranks[0] - 1]), float(a[ranks[1] - 1])]
    return out


# ---------------------------------------------------------------- stability


@dataclass(frozen=True)
class WindowStat:
    """One measurement window: its throughput, its p99 latency and how many requests it holds."""

    throughput_ips: float
    p99_ms: float
    count: int


def _within(values: list[float], tolerance: float) -> bool:
    arr = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        return False
    mean = float(np.mean(arr))
    if mean == 0.0:
        return bool(np.all(arr == 0.0))
    return float(np.max(np.abs(arr - mean))) / abs(mean) <= tolerance + 1e-12


def windows_stable(windows: list[WindowStat], tolerance: float = 0.10, last: int = 3) -> bool:
    """True when the last `last` windows agree on throughput and p99 (perf_analyzer's rule).

    For each metric, with m the mean of those windows: max(x) / m - 1 <= tolerance and
    1 - min(x) / m <= tolerance. Fewer than `last` windows, or an empty window, is not stable.
    """
    if last < 1:
        raise ValueError(f"last must be at least 1, got {last}")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    if len(windows) < last:
        return False
    tail = windows[-last:]
    if any(w.count <= 0 for w in tail):
        return False
    return _within([w.throughput_ips for w in tail], tolerance) and _within(
        [w.p99_ms for w in tail], tolerance
    )


# ---------------------------------------------------------------- histogram

HIST_LOWEST_MS = 0.001  # 1 µs: values below it share bucket 0
HIST_GROWTH = 1.02  # bucket i is [lowest * g**i, lowest * g**(i+1)): 2% wide
# A quantile read at a bucket's geometric midpoint is within sqrt(1.02) - 1 (< 1%) of any value
# in the bucket. Buckets are stored sparsely: at most log(max/min) / log(1.02) + 1 of them, e.g.
# ~120 for a 10x spread of latencies, ~350 for 1000x, ~1100 for the whole 1 µs .. 1 h range.
HIST_RELATIVE_ERROR = math.sqrt(HIST_GROWTH) - 1.0


def bucket_indices(a: np.ndarray, lowest_ms: float, growth: float) -> np.ndarray:
    """Each value's histogram bucket (ms): 0 up to `lowest_ms`, then one per factor `growth`."""
    ratio = np.maximum(a, lowest_ms) / lowest_ms
    return np.floor(np.log(ratio) / math.log(growth)).astype(np.int64)


def _check_layout(lowest_ms: float, growth: float) -> None:
    if not (math.isfinite(lowest_ms) and lowest_ms > 0):
        raise ValueError(f"lowest_ms must be a positive number, got {lowest_ms}")
    if not (math.isfinite(growth) and growth > 1.0):
        raise ValueError(f"growth must be greater than 1, got {growth}")


def histogram_from_samples(
    samples_ms: np.ndarray, lowest_ms: float = HIST_LOWEST_MS, growth: float = HIST_GROWTH
) -> Histogram:
    """A histogram of latency samples (ms >= 0); an empty input gives an empty histogram."""
    _check_layout(lowest_ms, growth)
    a = np.asarray(samples_ms, dtype=np.float64).ravel()
    if a.size == 0:
        return Histogram(lowest_ms, growth, (), 0, 0.0, 0.0)
    a = _as_samples(a)
    if float(a.min()) < 0:
        raise ValueError("latency samples must not be negative")
    idx, counts = np.unique(bucket_indices(a, lowest_ms, growth), return_counts=True)
    buckets = tuple(zip(idx.tolist(), counts.tolist(), strict=True))
    return Histogram(lowest_ms, growth, buckets, int(a.size), float(a.min()), float(a.max()))


def merge_histograms(a: Histogram, b: Histogram) -> Histogram:
    """The histogram of the union of both sample sets (exact; associative and commutative)."""
    if a.lowest_ms != b.lowest_ms or a.growth != b.growth:
        raise ValueError(
            f"cannot merge histograms with different buckets "
            f"(lowest {a.lowest_ms} vs {b.lowest_ms} ms, growth {a.growth} vs {b.growth})"
        )
    if b.count == 0:
        return a
    if a.count == 0:
        return b
    merged: dict[int, int] = dict(a.buckets)
    for i, c in b.buckets:
        merged[i] = merged.get(i, 0) + c
    buckets = tuple(sorted(merged.items()))
    return Histogram(
        a.lowest_ms,
        a.growth,
        buckets,
        a.count + b.count,
        min(a.min_ms, b.min_ms),
        max(a.max_ms, b.max_ms),
    )


def histogram_count(h: Histogram) -> int:
    """How many samples the histogram holds."""
    return h.count


def _bucket_arrays(h: Histogram) -> tuple[np.ndarray, np.ndarray]:
    if not h.buckets:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    arr = np.asarray(h.buckets, dtype=np.int64)
    return arr[:, 0], arr[:, 1]


def _representatives(h: Histogram, idx: np.ndarray) -> np.ndarray:
    """Geometric bucket midpoints, clamped to the exact [min, max] of the samples."""
    mid = h.lowest_ms * np.power(h.growth, idx.astype(np.float64) + 0.5)
    return np.clip(mid, h.min_ms, h.max_ms)


def histogram_quantile(h: Histogram, q: float) -> float:
    """Nearest-rank q-th percentile read from the histogram (within 1% of the raw value)."""
    q = _check_q(q)
    if h.count == 0:
        raise ValueError("the histogram is empty")
    if q == 100.0:
        return h.max_ms
    rank = nearest_rank(h.count, q)
    if rank == 1:
        return h.min_ms
    idx, counts = _bucket_arrays(h)
    pos = int(np.searchsorted(np.cumsum(counts), rank, side="left"))
    return float(_representatives(h, idx[pos : pos + 1])[0])


def histogram_cdf(h: Histogram) -> list[tuple[float, float]]:
    """(latency_ms, fraction of samples <= it) at each non-empty bucket's upper edge."""
    if h.count == 0:
        return []
    idx, counts = _bucket_arrays(h)
    upper = h.lowest_ms * np.power(h.growth, idx.astype(np.float64) + 1.0)
    upper = np.clip(upper, h.min_ms, h.max_ms)
    upper[-1] = h.max_ms
    frac = np.cumsum(counts) / h.count
    return [(float(x), float(f)) for x, f in zip(upper, frac, strict=True)]


def histogram_values(h: Histogram) -> np.ndarray:
    """A representative sample: bucket midpoints (clamped to [min, max]) repeated by count."""
    idx, counts = _bucket_arrays(h)
    return np.repeat(_representatives(h, idx), counts)


def histogram_latency_cis(h: Histogram, confidence: float = 0.95) -> dict[str, list[float] | None]:
    """`latency_cis` read from a histogram: each bound is its bucket's outer edge.

    The order statistic at rank l lies somewhere in its bucket, so the lower bound is that
    bucket's lower edge and the upper bound (rank u) its bucket's upper edge, clamped to the
    exact [min, max]. Reading bucket midpoints instead gives a zero-width interval whenever
    both ranks fall in one 2%-wide bucket (a steady p50 over a few hundred requests).
    """
    out: dict[str, list[float] | None] = {}
    idx, counts = _bucket_arrays(h)
    cum = np.cumsum(counts)
    for key, q in PERCENTILES.items():
        ranks = quantile_ci_ranks(h.count, q, confidence) if h.count else None
        if ranks is None:
            out[key] = None
            continue
        lo_b = idx[int(np.searchsorted(cum, ranks[0], side="left"))]
        hi_b = idx[int(np.searchsorted(cum, ranks[1], side="left"))]
        lo = h.min_ms
        if ranks[0] > 1 and lo_b > 0:
            lo = max(h.lowest_ms * h.growth ** float(lo_b), h.min_ms)
        hi = min(h.lowest_ms * h.growth ** float(hi_b + 1), h.max_ms)
        out[key] = [float(min(lo, hi)), float(hi)]
    return out


def histogram_to_dict(h: Histogram) -> dict[str, Any]:
    """The compact JSON form that `Result.histogram` takes in a report."""
    return to_dict(h)


def histogram_from_dict(d: Any) -> Histogram:
    """Parse `histogram_to_dict` output, checking it; BadInput when it is malformed."""
    return from_dict(Histogram, d, "latency histogram")


# ---------------------------------------------------------------- comparison


@dataclass(frozen=True)
class Comparison:
    """Candidate vs baseline: ratio of median latencies (>1: candidate slower) with its CI."""

    ratio: float
    ratio_lo: float
    ratio_hi: float
    p_value: float
    verdict: str  # "faster" | "slower" | "not significant"


BOOTSTRAP_RESAMPLES = 4000
MWU_MAX_SAMPLES = 200_000  # larger inputs are subsampled (seeded) for the rank test


def _bootstrap_medians(sorted_a: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Nearest-rank medians of n_boot bootstrap resamples of a sorted sample, without resampling.

    A resample of size n is x_(ceil(n U_i)) for uniforms U_i, and the map is monotone, so its
    j-th order statistic is x_(ceil(n U_(j))) with U_(j) ~ Beta(j, n - j + 1).
    """
    n = sorted_a.size
    j = nearest_rank(n, 50.0)
    u = rng.beta(j, n - j + 1, size=n_boot)
    ranks = np.clip(np.ceil(u * n).astype(np.int64), 1, n)
    return sorted_a[ranks - 1]


def compare_samples(
    baseline_ms: np.ndarray,
    candidate_ms: np.ndarray,
    confidence: float = 0.95,
    threshold: float = 0.0,
    seed: int = 0,
) -> Comparison:
    """Compare two latency samples: Mann–Whitney U p-value and a bootstrap CI of the median ratio.

    ratio = median(candidate) / median(baseline) (nearest-rank medians). With alpha = 1 -
    confidence, the verdict is "slower" when ratio_lo > 1 + threshold and p < alpha, "faster"
    when ratio_hi < 1 - threshold and p < alpha, else "not significant". `threshold` is the
    smallest relative change that counts (0.05: 5%). The bootstrap is seeded, so results repeat.
    """
    base = np.sort(_as_samples(baseline_ms, "baseline_ms"))
    cand = np.sort(_as_samples(candidate_ms, "candidate_ms"))
    confidence = _check_confidence(confidence)
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold must be in [0, 1), got {threshold}")
    if float(base[0]) < 0 or float(cand[0]) < 0:
        raise ValueError("latency samples must not be negative")
    base_median = _percentile_sorted(base, 50.0)
    if base_median <= 0:
        raise ValueError("the baseline median latency is 0; a ratio is undefined")
    ratio = _percentile_sorted(cand, 50.0) / base_median

    rng = np.random.default_rng(seed)
    boot_base = _bootstrap_medians(base, BOOTSTRAP_RESAMPLES, rng)
    boot_cand = _bootstrap_medians(cand, BOOTSTRAP_RESAMPLES, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = boot_cand / boot_base
    ratios = np.where(np.isnan(ratios), np.inf, ratios)
    alpha = 1.0 - confidence
    lo, hi = np.quantile(ratios, [alpha / 2, 1 - alpha / 2], method="inverted_cdf")
    ratio_lo, ratio_hi = float(min(lo, ratio)), float(max(hi, ratio))

    mwu_base = _subsample(base, MWU_MAX_SAMPLES, rng)
    mwu_cand = _subsample(cand, MWU_MAX_SAMPLES, rng)
    p_value = float(_scipy_stats().mannwhitneyu(mwu_cand, mwu_base, alternative="two-sided").pvalue)
    if not math.isfinite(p_value):
        p_value = 1.0  # all values tied (e.g. two identical constants): no evidence of a shift

    if ratio_lo > 1.0 + threshold and p_value < alpha:
        verdict = "slower"
    elif ratio_hi < 1.0 - threshold and p_value < alpha:
        verdict = "faster"
    else:
        verdict = "not significant"
    return Comparison(ratio, ratio_lo, ratio_hi, p_value, verdict)


def _subsample(a: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    if a.size <= limit:
        return a
    return a[rng.choice(a.size, size=limit, replace=False)]


def compare_histograms(
    baseline: Histogram,
    candidate: Histogram,
    confidence: float = 0.95,
    threshold: float = 0.0,
    seed: int = 0,
) -> Comparison:
    """compare_samples on the histograms' representative values (medians within 1%)."""
    if baseline.count == 0 or candidate.count == 0:
        raise ValueError("cannot compare an empty histogram")
    return compare_samples(
        histogram_values(baseline), histogram_values(candidate), confidence, threshold, seed
    )
