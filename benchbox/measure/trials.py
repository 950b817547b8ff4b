"""Between-trial statistics: a cell's figures and CIs from its independent trials.

Variance has two levels (Kalibera & Jones 2013): the requests within a trial, and the trials
themselves (process and thread placement, frequency, neighbours, allocator state). A CI built from
the requests of one run covers only the first level; on a shared machine the second is often the
larger one. Here each trial contributes one value per figure (its p50, its p99, its throughput),
and the CI comes from the spread of those values, so it covers both levels: within-trial noise
shows up in that spread too.

Method (pure functions, coverage checked in tests/test_trials.py by simulation):
- point estimate: the geometric mean of the per-trial values (latency and throughput are ratios
  scale-wise; a multiplicative shift per trial is the usual shape of run-to-run noise);
- CI: the Student-t interval on the logs of the per-trial values, back-transformed; with 3 to 5
  trials a bootstrap over the trials under-covers (there are only n^n resamples and their spread
  is biased low), while t on logs is exact for lognormal trial effects;
- the interval is widened to contain the within-trial (order-statistic) CI of the pooled
  requests when one is given, so a few trials that agree by chance cannot give an interval
  narrower than the requests alone allow;
- one trial: the within-trial CI, labelled `within-trial` (run-to-run noise is not covered).

Comparing two cells (or two models): the ratio of geometric means, with a Welch interval on the
difference of mean logs (unequal variances, Welch–Satterthwaite degrees of freedom).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from benchbox.measure import stats
from benchbox.schema import (
    PERCENTILE_KEYS,
    BucketStat,
    Histogram,
    LatencyStats,
    Result,
    Status,
    TrialSummary,
    replace,
)

Level = Literal["between-trial", "within-trial"]
Verdict = Literal["slower", "faster", "not significant"]
MIN_AUTO_TRIALS = 3


def _scipy_stats() -> Any:
    """scipy.stats, imported on first use (it costs about a second at start-up)."""
    from scipy import stats

    return stats


def t_quantile(confidence: float, df: float) -> float:
    """The two-sided Student-t critical value for `confidence` with `df` degrees of freedom."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if not df > 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    return float(_scipy_stats().t.ppf(0.5 + confidence / 2.0, df))


def _logs(values: Sequence[float], what: str) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64).ravel()
    if a.size == 0:
        raise ValueError(f"{what}: no trials")
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(f"{what}: per-trial values must be positive and finite")
    return np.log(a)


@dataclass(frozen=True)
class Estimate:
    """A figure estimated from a cell's trials: point, CI (None when there is none), level."""

    point: float
    lo: float | None
    hi: float | None
    level: Level
    trials: int

    @property
    def ci(self) -> tuple[float, float] | None:
        return None if self.lo is None or self.hi is None else (self.lo, self.hi)


def geometric_mean(values: Sequence[float]) -> float:
    """exp(mean(log x)) of positive values."""
    return float(np.exp(np.mean(_logs(values, "geometric_mean"))))


def estimate(
    values: Sequence[float],
    confidence: float = 0.95,
    within_ci: tuple[float, float] | Sequence[float] | None = None,
) -> Estimate:
    """The between-trial estimate of one figure from its per-trial values.

    Two or more trials: geometric mean and the t interval on logs, widened to contain
    `within_ci` (the order-statistic CI of the pooled requests) when given. One trial: its value
    and `within_ci`, labelled within-trial.
    """
    logs = _logs(values, "estimate")
    n = logs.size
    point = float(np.exp(np.mean(logs)))
    within = _pair(within_ci)
    if n == 1:
        lo, hi = within if within is not None else (None, None)
        if lo is not None:
            lo, hi = min(lo, point), max(hi, point)
        return Estimate(point, lo, hi, "within-trial", 1)
    half = t_quantile(confidence, n - 1) * float(np.std(logs, ddof=1)) / math.sqrt(n)
    lo, hi = float(np.exp(np.mean(logs) - half)), float(np.exp(np.mean(logs) + half))
    if within is not None:
        lo, hi = min(lo, within[0]), max(hi, within[1])
    return Estimate(point, lo, hi, "between-trial", n)


def _pair(ci: Any) -> tuple[float, float] | None:
    if ci is None:
        return None
    lo, hi = float(ci[0]), float(ci[1])
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return lo, hi


def relative_half_width(est: Estimate) -> float:
    """Half the CI's width over the point estimate; inf without a CI (or a zero point)."""
    if est.ci is None or not est.point > 0:
        return math.inf
    return (est.ci[1] - est.ci[0]) / (2.0 * est.point)


def precise_enough(est: Estimate, precision: float) -> bool:
    """True when the estimate is between-trial and its relative half-width is within precision."""
    return est.level == "between-trial" and relative_half_width(est) <= precision


# ---------------------------------------------------------------- ratios


@dataclass(frozen=True)
class Ratio:
    """candidate / baseline of one figure with its CI (> 1: the candidate's figure is larger)."""

    ratio: float
    lo: float
    hi: float
    level: Level
    baseline_trials: int
    candidate_trials: int
    df: float | None  # Welch's degrees of freedom (None: within-trial fallback)
    # True when both sides' variances were moderated toward their runs' pools (`priors`)
    pooled: bool = False

    @property
    def plus_minus(self) -> float:
        """The CI's half-width, for a hyperfine-style `1.12 ± 0.03`."""
        return (self.hi - self.lo) / 2.0


def ratio(
    baseline: Sequence[float],
    candidate: Sequence[float],
    confidence: float = 0.95,
    within_ci: tuple[float, float] | None = None,
    priors: tuple[Any, Any] | None = None,
) -> Ratio:
    """Ratio of geometric means with a Welch interval on the logs (each side needs 2+ trials).

    `within_ci` is a within-trial CI of the same ratio (e.g. a bootstrap over pooled requests):
    the interval is widened to contain it, and it is the whole answer when either side has a
    single trial (level `within-trial`; without it the CI is the point).

    `priors` (baseline's, candidate's; `figure_prior` of each side's run, either may be None)
    moderate each side's variance toward its own run's pool of cells, as the sweep's intervals
    are (measure/moderate.py): Welch's df then adds up the moderated dfs, d0 + n - 1 a side,
    not n - 1. A side whose spread is far above its pool keeps its own variance and df.
    """
    from benchbox.measure import moderate

    la, lb = _logs(baseline, "baseline"), _logs(candidate, "candidate")
    d = float(np.mean(lb) - np.mean(la))
    point = math.exp(d)
    within = _pair(within_ci)
    if la.size < 2 or lb.size < 2:
        lo, hi = within if within is not None else (point, point)
        return Ratio(point, min(lo, point), max(hi, point), "within-trial", la.size, lb.size, None)
    prior_a, prior_b = priors if priors is not None else (None, None)
    ma = moderate.moderate(float(np.var(la, ddof=1)), la.size - 1.0, prior_a)
    mb = moderate.moderate(float(np.var(lb, ddof=1)), lb.size - 1.0, prior_b)
    pooled = prior_a is not None and prior_b is not None and not (ma.own or mb.own)
    va, vb = ma.var / la.size, mb.var / lb.size
    se = math.sqrt(va + vb)
    if se > 0:
        df = (va + vb) ** 2 / (va**2 / ma.df + vb**2 / mb.df)
        half = t_quantile(confidence, df) * se
    else:
        df, half = float(la.size + lb.size - 2), 0.0
    lo, hi = math.exp(d - half), math.exp(d + half)
    if within is not None:
        lo, hi = min(lo, within[0]), max(hi, within[1])
    return Ratio(point, lo, hi, "between-trial", la.size, lb.size, df, pooled)


def verdict(r: Ratio, threshold: float = 0.0, higher_is_slower: bool = True) -> Verdict:
    """'slower' / 'faster' only when the CI excludes 1 ± threshold, else 'not significant'.

    For latency a ratio above 1 is slower; for throughput (`higher_is_slower=False`) below 1 is.
    """
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold must be in [0, 1), got {threshold}")
    up = r.lo > 1.0 + threshold
    down = r.hi < 1.0 - threshold
    if up:
        return "slower" if higher_is_slower else "faster"
    if down:
        return "faster" if higher_is_slower else "slower"
    return "not significant"


def ratio_p_value(r: Ratio, threshold: float = 0.0, confidence: float = 0.95) -> float:
    """The two-sided p-value of `r` against the nearest edge of 1 ± threshold.

    The standard error is read back from the CI on the log scale (t with the ratio's df, the
    normal where it has none), so `p < 1 - confidence` exactly when `verdict` calls it.
    """
    if not (r.lo > 0 and math.isfinite(r.hi)) or r.hi <= r.lo:
        return 1.0
    df = r.df if r.df is not None and r.df > 0 else math.inf
    crit = float(_scipy_stats().t.ppf(0.5 + confidence / 2.0, df))
    d = math.log(r.ratio)
    up, down = math.log(1.0 + threshold), math.log(1.0 - threshold)
    if r.lo > 1.0 + threshold:
        se, gap = (d - math.log(r.lo)) / crit, d - up
    elif r.hi < 1.0 - threshold:
        se, gap = (math.log(r.hi) - d) / crit, down - d
    else:
        se = (math.log(r.hi) - math.log(r.lo)) / (2.0 * crit)
        gap = max(d - up, down - d, 0.0)
    if se <= 0:
        return 0.0 if gap > 0 else 1.0
    return float(min(1.0, 2.0 * _scipy_stats().t.sf(gap / se, df)))


def holm(p_values: dict[str, float]) -> dict[str, float]:
    """Holm's step-down adjusted p-values of a family (each <= 1; ties keep their order)."""
    order = sorted(p_values, key=lambda k: p_values[k])
    m, running, out = len(order), 0.0, {}
    for i, key in enumerate(order):
        running = max(running, min(1.0, (m - i) * p_values[key]))
        out[key] = running
    return out


def ratio_sentence(
    r: Ratio, what: str, candidate: str = "candidate", base: str = "baseline"
) -> str:
    """hyperfine's closing line: 'candidate ran 1.12 ± 0.03 times slower than baseline (p50)'.

    The ratio is of latencies (what is the figure's name, e.g. 'p50'); below 1 it is turned
    around, so the factor read is always >= 1 ("1.10 ± 0.02 times faster").
    """
    if r.ratio >= 1.0:
        factor, pm, word = r.ratio, r.plus_minus, "slower"
    else:
        factor, word = 1.0 / r.ratio, "faster"
        pm = (1.0 / r.lo - 1.0 / r.hi) / 2.0 if r.lo > 0 else math.inf
    if not math.isfinite(pm):  # one trial a side: no between-trial interval to quote
        return f"{candidate} ran {factor:.2f} times {word} than {base} ({what}; no interval)"
    return f"{candidate} ran {factor:.2f} ± {pm:.2f} times {word} than {base} ({what})"


# ---------------------------------------------------------------- a cell's trials combined


def summary(result: Result, status: Status = "ok", order: int | None = None) -> TrialSummary:
    """One trial's figures, as the report keeps them."""
    return TrialSummary(
        throughput_ips=result.throughput_ips,
        latency_ms=result.latency_ms,
        requests=result.requests,
        duration_s=result.duration_s,
        status=status,
        order=order,
    )


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def _max(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def _pooled_latency(results: list[Result]) -> LatencyStats:
    """Between-trial percentiles (geometric means of the trials'); mean, std, min, max pooled."""
    return _pooled_stats([(r.requests, r.latency_ms) for r in results])


def _pooled_stats(trials: list[tuple[int, LatencyStats]]) -> LatencyStats:
    """The between-trial summary of (requests, latency) pairs, one per trial."""
    n = np.array([k for k, _ in trials], dtype=np.float64)
    means = np.array([s.mean for _, s in trials])
    stds = np.array([s.std for _, s in trials])
    mean = float(np.sum(n * means) / np.sum(n))
    var = float(np.sum(n * (stds**2 + (means - mean) ** 2)) / np.sum(n))
    pct = {k: geometric_mean([getattr(s, k) for _, s in trials]) for k in PERCENTILE_KEYS}
    return LatencyStats(
        mean=mean,
        std=math.sqrt(var),
        min=min(s.min for _, s in trials),
        max=max(s.max for _, s in trials),
        **pct,
    )


def _pooled_buckets(results: list[Result]) -> tuple[BucketStat, ...]:
    """Each shape bucket over the trials that met it, by the cell's own between-trial rule."""
    met: dict[tuple[str, int], list[BucketStat]] = {}
    for r in results:
        for b in r.buckets:
            met.setdefault((b.dim, b.upper), []).append(b)
    return tuple(
        BucketStat(
            dim,
            upper,
            sum(b.requests for b in found),
            _pooled_stats([(b.requests, b.latency_ms) for b in found]),
        )
        for (dim, upper), found in sorted(met.items(), key=lambda kv: kv[0][1])
    )


def _pooled_histogram(results: list[Result]) -> Histogram | None:
    hists = [r.histogram for r in results]
    if any(h is None for h in hists):
        return None
    merged = hists[0]
    for h in hists[1:]:
        merged = stats.merge_histograms(merged, h)
    return merged


def _within_cis(
    results: list[Result], hist: Histogram | None, confidence: float
) -> dict[str, list[float] | None] | None:
    """Order-statistic CIs of the pooled requests (raw samples when kept, else the histogram)."""
    if all(r.samples_ms for r in results):
        return stats.latency_cis(np.concatenate([r.samples_ms for r in results]), confidence)
    if hist is not None and hist.count:
        return stats.histogram_latency_cis(hist, confidence)
    return None


def _median_trial(results: list[Result]) -> Result:
    """The trial whose p50 is the median of the trials' (lower median for an even count)."""
    order = sorted(range(len(results)), key=lambda i: results[i].latency_ms.p50)
    return results[order[(len(order) - 1) // 2]]


def combine(
    results: list[Result],
    confidence: float = 0.95,
    statuses: list[Status] | None = None,
    orders: list[int | None] | None = None,
) -> Result:
    """One Result from a cell's trials: between-trial figures and CIs, each trial kept.

    Percentiles are the geometric means of the trials' values, with the t interval on logs
    widened to the pooled within-trial CI (`estimate`); the within-trial CIs are kept in
    `within_trial_ci_ms`. Throughput is the trials' inferences over their time, with the
    between-trial CI of the per-trial throughputs. Counts and durations add up, histograms
    merge, resource and power figures are averaged (memory: the largest), and the spreads that
    have no between-trial form (issue delay, queue, compute) are the median trial's.
    """
    if not results:
        raise ValueError("combine: no trials")
    statuses = statuses or ["ok"] * len(results)
    orders = orders or [None] * len(results)
    if single := len(results) == 1:
        r = results[0]
        within = r.latency_ci_ms
        hist = None
    else:
        hist = _pooled_histogram(results)
        within = _within_cis(results, hist, confidence)
        r = _median_trial(results)
    latency = _pooled_latency(results) if not single else r.latency_ms
    cis = coherent_cis(latency, _percentile_cis(results, within, confidence))
    requests = sum(t.requests for t in results)
    inferences = sum(t.inferences for t in results)
    duration_s = sum(t.duration_s for t in results)
    tput = _throughput(results, inferences, duration_s, confidence)
    power = _mean([t.power_w for t in results])
    counts = _batch_size_counts(results)
    return replace(
        r,
        requests=requests,
        inferences=inferences,
        duration_s=duration_s,
        throughput_ips=tput.point,
        requests_per_s=requests / duration_s if duration_s > 0 else 0.0,
        latency_ms=latency,
        latency_ci_ms=cis,
        confidence=confidence,
        achieved_rate_rps=_mean([t.achieved_rate_rps for t in results]),
        cpu_util_pct=_mean([t.cpu_util_pct for t in results]),
        rss_mb=_max([t.rss_mb for t in results]),
        session_rss_mb=_max([t.session_rss_mb for t in results]),
        gpu_mem_mb=_max([t.gpu_mem_mb for t in results]),
        gpu_util_pct=_mean([t.gpu_util_pct for t in results]),
        power_w=power,
        power_above_idle_w=_mean([t.power_above_idle_w for t in results]),
        energy_j_per_inference=power / tput.point if power is not None and tput.point else None,
        histogram=r.histogram if hist is None else hist,
        windows=sum(t.windows or 0 for t in results) or None,
        batch_size_counts=counts if not single else r.batch_size_counts,
        buckets=r.buckets if single else _pooled_buckets(results),
        repeat_check=next((t.repeat_check for t in results if t.repeat_check), None),
        samples_ms=[x for t in results for x in t.samples_ms]
        if all(t.samples_ms for t in results)
        else None,
        trials=len(results),
        per_trial=tuple(
            summary(t, s, o) for t, s, o in zip(results, statuses, orders, strict=True)
        ),
        ci_level="within-trial" if single else "between-trial",
        within_trial_ci_ms=within,
        throughput_ci_ips=[tput.lo, tput.hi] if tput.ci is not None else None,
        generator=_generator(r.generator, results),
    )


def _generator(median: Any, results: list[Result]) -> Any:
    """The median trial's generator figures, limited when any trial's generators were."""
    if median is None or median.limited:
        return median
    if any(t.generator is not None and t.generator.limited for t in results):
        return replace(median, limited=True)
    return median


def _percentile_cis(
    results: list[Result], within: dict[str, Any] | None, confidence: float
) -> dict[str, list[float] | None]:
    """Each percentile's between-trial CI, widened to the pooled within-trial one (`estimate`)."""
    cis: dict[str, list[float] | None] = {}
    for key in PERCENTILE_KEYS:
        est = estimate(
            [getattr(t.latency_ms, key) for t in results], confidence, (within or {}).get(key)
        )
        cis[key] = [est.lo, est.hi] if est.ci is not None else None
    return cis


def _throughput(
    results: list[Result], inferences: int, duration_s: float, confidence: float
) -> Estimate:
    """Throughput is all the trials' inferences over their measured time (so it stays
    inferences / duration_s); its CI is the between-trial one, widened to hold that point."""
    tput_point = inferences / duration_s if duration_s > 0 else 0.0
    tput = estimate([t.throughput_ips for t in results], confidence)
    if tput.ci is not None:
        return Estimate(
            tput_point, min(tput.lo, tput_point), max(tput.hi, tput_point), tput.level, tput.trials
        )
    return Estimate(tput_point, None, None, tput.level, tput.trials)


def _batch_size_counts(results: list[Result]) -> dict[int, int] | None:
    """The trials' batch sizes counted together (None: a trial has none)."""
    if not all(t.batch_size_counts for t in results):
        return None
    counts: dict[int, int] = {}
    for t in results:
        for b, c in (t.batch_size_counts or {}).items():
            counts[b] = counts.get(b, 0) + c
    return counts


# ---------------------------------------------------------------- coherence and the sweep's pool


def coherent_cis(
    latency: LatencyStats, cis: dict[str, list[float] | None]
) -> dict[str, list[float] | None]:
    """`moderate.coherent` for a cell: floor the fastest request, ceiling the slowest."""
    from benchbox.measure import moderate

    points = {k: float(getattr(latency, k)) for k in PERCENTILE_KEYS}
    return moderate.coherent(points, cis, PERCENTILE_KEYS, latency.min, latency.max)


TRIAL_FIGURES = (*PERCENTILE_KEYS, "throughput")


def trial_logs(result: Result, figure: str) -> np.ndarray | None:
    """The logs of a combined result's per-trial values of one figure (None: under 2 trials)."""
    if result.ci_level != "between-trial" or len(result.per_trial) < 2:
        return None
    if figure == "throughput":
        values = [t.throughput_ips for t in result.per_trial]
    else:
        values = [getattr(t.latency_ms, figure) for t in result.per_trial]
    if not all(math.isfinite(v) and v > 0 for v in values):
        return None
    return np.log(np.asarray(values, dtype=np.float64))


@dataclass(frozen=True)
class Pooled:
    """A result with its intervals moderated, and the figures that kept their own spread."""

    result: Result
    own_spread: tuple[str, ...]


def figure_prior(results: Sequence[Result], figure: str) -> Any:
    """The pool's prior (measure/moderate.py) of one figure over the results with 2+ trials
    (None: too few of them)."""
    from benchbox.measure import moderate

    logs = [trial_logs(r, figure) for r in results]
    pairs = [(float(np.var(x, ddof=1)), x.size - 1.0) for x in logs if x is not None]
    return moderate.fit_prior([v for v, _ in pairs], [d for _, d in pairs])


def _moderated_ci(
    r: Result, figure: str, prior: Any, confidence: float
) -> tuple[list[float], float, bool] | None:
    """(interval, df, kept its own) of one figure, from the pool's prior."""
    from benchbox.measure import moderate

    x = trial_logs(r, figure)
    if x is None or prior is None:
        return None
    mod = moderate.moderate(float(np.var(x, ddof=1)), x.size - 1.0, prior)
    lo, hi = moderate.log_interval(float(np.mean(x)), x.size, mod, confidence)
    if figure == "throughput":
        point = r.throughput_ips
        return [min(lo, point), max(hi, point)], mod.df, mod.own
    point = float(getattr(r.latency_ms, figure))
    within = _pair((r.within_trial_ci_ms or {}).get(figure))
    if within is not None:
        lo, hi = min(lo, within[0]), max(hi, within[1])
    return [min(lo, point), max(hi, point)], mod.df, mod.own


def moderate_results(results: Sequence[Result], confidence: float = 0.95) -> list[Pooled]:
    """The results with between-trial CIs shrunk toward the pool of all of them (`moderate`).

    Each figure (every percentile, throughput) has its own prior, fitted over the results with
    two or more trials. A result's CI is then the moderated t interval, widened to its pooled
    within-trial CI and made coherent (`coherent_cis`); `ci_df` records each figure's degrees
    of freedom. A figure whose spread is far above the pool's keeps its own interval (and is
    named in `own_spread`). Without a prior (fewer than 3 such results) results are unchanged.
    """
    priors = {f: figure_prior(results, f) for f in TRIAL_FIGURES}
    out: list[Pooled] = []
    for r in results:
        cis = dict(r.latency_ci_ms or {})
        tput = r.throughput_ci_ips
        dfs: dict[str, float] = {}
        own: list[str] = []
        for figure in TRIAL_FIGURES:
            got = _moderated_ci(r, figure, priors[figure], confidence)
            if got is None:
                continue
            ci, df, kept = got
            if kept:
                own.append(figure)
                dfs[figure] = df
                continue
            dfs[figure] = df
            if figure == "throughput":
                tput = ci
            else:
                cis[figure] = ci
        if not dfs:
            out.append(Pooled(r, ()))
            continue
        cis = coherent_cis(r.latency_ms, cis)
        out.append(
            Pooled(replace(r, latency_ci_ms=cis, throughput_ci_ips=tput, ci_df=dfs), tuple(own))
        )
    return out
