"""Between-trial statistics and the trial order, checked by simulation with a fake runner.

The fake runner draws each trial's service times from a lognormal whose scale gets a random
multiplicative shift per trial (lognormal, sigma 10%): the run-to-run noise of a shared machine.
The simulations are pure numpy with fixed sizes and a fixed seed, so they take the same time on
every run.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchbox.errors import BadInput
from benchbox.measure import stats, trials
from benchbox.sweep import schedule

SIMULATIONS = 500
TRIALS = 3
REQUESTS = 400  # per trial
TRUE_MEDIAN_MS = 10.0
TRIAL_SIGMA = 0.10  # the per-trial multiplicative shift (run-to-run noise)
REQUEST_SIGMA = 0.25  # the spread of requests within a trial


def fake_runner(
    rng: np.random.Generator, sims: int, n_trials: int, n: int, trial_sigma: float = TRIAL_SIGMA
) -> np.ndarray:
    """Latencies (sims, trials, requests), sorted per trial; the true median is TRUE_MEDIAN_MS."""
    shift = np.exp(rng.normal(0.0, trial_sigma, size=(sims, n_trials, 1)))
    noise = np.exp(rng.normal(0.0, REQUEST_SIGMA, size=(sims, n_trials, n)))
    return np.sort(TRUE_MEDIAN_MS * shift * noise, axis=-1)


def _nearest(sorted_ms: np.ndarray, q: float) -> np.ndarray:
    return sorted_ms[..., stats.nearest_rank(sorted_ms.shape[-1], q) - 1]


def _within_ci(sorted_ms: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = stats.quantile_ci_ranks(sorted_ms.shape[-1], q, 0.95)
    return sorted_ms[..., lo - 1], sorted_ms[..., hi - 1]


def _coverage(los: np.ndarray, his: np.ndarray, truth: float) -> float:
    return float(np.mean((los <= truth) & (truth <= his)))


def test_between_trial_ci_of_the_median_covers_the_true_value():
    rng = np.random.default_rng(12)
    lat = fake_runner(rng, SIMULATIONS, TRIALS, REQUESTS)
    per_trial = _nearest(lat, 50.0)  # (sims, trials)
    pooled = np.sort(lat.reshape(SIMULATIONS, -1), axis=-1)
    pooled_lo, pooled_hi = _within_ci(pooled, 50.0)
    ests = [
        trials.estimate(per_trial[i], 0.95, (pooled_lo[i], pooled_hi[i]))
        for i in range(SIMULATIONS)
    ]
    between = _coverage(
        np.array([e.lo for e in ests]), np.array([e.hi for e in ests]), TRUE_MEDIAN_MS
    )
    one_lo, one_hi = _within_ci(lat[:, 0, :], 50.0)
    within_one = _coverage(one_lo, one_hi, TRUE_MEDIAN_MS)
    within_pooled = _coverage(pooled_lo, pooled_hi, TRUE_MEDIAN_MS)
    print(
        f"\ncoverage of the true median at 95% ({SIMULATIONS} runs of {TRIALS} trials x "
        f"{REQUESTS} requests, trial sigma {TRIAL_SIGMA:.0%}): between-trial {between:.1%}, "
        f"within-run (one trial) {within_one:.1%}, within-run (pooled trials) {within_pooled:.1%}"
    )
    assert all(e.level == "between-trial" and e.trials == TRIALS for e in ests)
    assert between >= 0.93, f"between-trial coverage {between:.1%}"
    # The within-run interval ignores the run-to-run level: it is precise and wrong.
    assert within_one < 0.6 and within_pooled < 0.6


def test_bootstrap_over_three_trials_under_covers_where_t_on_logs_does_not():
    """Why t on logs and not a bootstrap over the top level: with 3 trials it under-covers."""
    rng = np.random.default_rng(7)
    lat = fake_runner(rng, SIMULATIONS, TRIALS, REQUESTS)
    logs = np.log(_nearest(lat, 50.0))
    # Percentile bootstrap over the trials (the top level), 200 resamples per simulation.
    pick = rng.integers(0, TRIALS, size=(SIMULATIONS, 200, TRIALS))
    boot = np.take_along_axis(logs[:, None, :].repeat(200, axis=1), pick, axis=-1).mean(-1)
    lo, hi = np.exp(np.quantile(boot, 0.025, axis=1)), np.exp(np.quantile(boot, 0.975, axis=1))
    boot_cov = _coverage(lo, hi, TRUE_MEDIAN_MS)
    t_cov = np.mean(
        [
            trials.estimate(np.exp(row)).lo <= TRUE_MEDIAN_MS <= trials.estimate(np.exp(row)).hi
            for row in logs
        ]
    )
    print(f"\n3 trials at 95%: t on logs covers {t_cov:.1%}, bootstrap over trials {boot_cov:.1%}")
    assert boot_cov < 0.85 < 0.93 <= t_cov


def test_between_trial_ci_of_p99_and_throughput_cover_too():
    rng = np.random.default_rng(99)
    lat = fake_runner(rng, SIMULATIONS, 5, REQUESTS)
    p99 = _nearest(lat, 99.0)
    true_p99 = TRUE_MEDIAN_MS * math.exp(REQUEST_SIGMA * 2.3263478740408408)
    # Throughput of a closed loop with one worker: requests per second of busy time.
    tput = 1000.0 / lat.mean(axis=-1)
    true_tput = 1000.0 / (TRUE_MEDIAN_MS * math.exp(REQUEST_SIGMA**2 / 2))
    cov99 = np.mean([_covers(trials.estimate(row), true_p99) for row in p99])
    covt = np.mean([_covers(trials.estimate(row), true_tput) for row in tput])
    print(f"\n5 trials at 95%: p99 coverage {cov99:.1%}, throughput coverage {covt:.1%}")
    assert cov99 >= 0.90 and covt >= 0.93


def _covers(e: trials.Estimate, truth: float) -> bool:
    return e.lo <= truth <= e.hi


def test_one_trial_falls_back_to_the_within_trial_ci_labelled_as_such():
    e = trials.estimate([12.0], 0.95, (11.0, 13.5))
    assert (e.point, e.lo, e.hi, e.level, e.trials) == (12.0, 11.0, 13.5, "within-trial", 1)
    assert trials.estimate([12.0]).ci is None
    assert trials.relative_half_width(trials.estimate([12.0])) == math.inf


def test_estimate_is_the_geometric_mean_with_a_t_interval_on_logs():
    e = trials.estimate([8.0, 10.0, 12.5], 0.95)
    logs = np.log([8.0, 10.0, 12.5])
    half = 4.302652729911275 * logs.std(ddof=1) / math.sqrt(3)  # t(0.975, 2)
    assert e.point == pytest.approx(10.0)
    assert e.lo == pytest.approx(math.exp(logs.mean() - half))
    assert e.hi == pytest.approx(math.exp(logs.mean() + half))
    # The within-trial CI widens an interval that chance made too narrow, never narrows one.
    assert trials.estimate([10.0, 10.0, 10.0], 0.95, (9.5, 10.6)).ci == (9.5, 10.6)
    assert trials.estimate([8.0, 10.0, 12.5], 0.95, (9.9, 10.1)).ci == e.ci


def test_bad_per_trial_values_are_refused():
    for bad in ([], [1.0, -2.0], [1.0, float("nan")], [0.0, 1.0]):
        with pytest.raises(ValueError):
            trials.estimate(bad)


# ---------------------------------------------------------------- ratios


def test_ratio_is_welch_on_logs_and_says_how_many_trials():
    r = trials.ratio([10.0, 10.4, 9.7], [11.0, 11.5, 11.2, 10.9])
    assert r.ratio == pytest.approx(
        math.exp(np.mean(np.log([11.0, 11.5, 11.2, 10.9])) - np.mean(np.log([10.0, 10.4, 9.7])))
    )
    assert r.lo < r.ratio < r.hi and r.level == "between-trial"
    assert (r.baseline_trials, r.candidate_trials) == (3, 4)
    assert 2.0 < r.df < 5.0
    assert trials.verdict(r) == "slower"
    assert trials.verdict(r, threshold=0.2) == "not significant"
    # Throughput: a larger figure is faster.
    assert trials.verdict(r, higher_is_slower=False) == "faster"


def test_ratio_with_one_trial_on_a_side_is_within_trial():
    r = trials.ratio([10.0], [12.0, 12.1], within_ci=(1.15, 1.25))
    assert r.level == "within-trial" and (r.lo, r.hi) == (1.15, 1.25) and r.df is None


def test_a_a_ratios_are_called_different_at_about_the_nominal_rate():
    rng = np.random.default_rng(5)
    lat_a = fake_runner(rng, SIMULATIONS, TRIALS, REQUESTS)
    lat_b = fake_runner(rng, SIMULATIONS, TRIALS, REQUESTS)
    ma, mb = _nearest(lat_a, 50.0), _nearest(lat_b, 50.0)
    calls = [trials.verdict(trials.ratio(ma[i], mb[i])) != "not significant" for i in range(500)]
    share = float(np.mean(calls))
    print(f"\nA/A with {TRIALS} trials each: {share:.1%} called slower or faster at 95%")
    assert share <= 0.07


def test_sentence_reads_like_hyperfine():
    r = trials.Ratio(1.12, 1.09, 1.15, "between-trial", 5, 5, 8.0)
    assert trials.ratio_sentence(r, "p50") == (
        "candidate ran 1.12 ± 0.03 times slower than baseline (p50)"
    )
    f = trials.Ratio(0.8, 0.78, 0.82, "between-trial", 5, 5, 8.0)
    assert trials.ratio_sentence(f, "p99").startswith("candidate ran 1.25 ± 0.03 times faster")
    one = trials.Ratio(1.01, 1.01, math.inf, "between-trial", 1, 1, 0.0)  # one trial a side
    assert trials.ratio_sentence(one, "p50") == (
        "candidate ran 1.01 times slower than baseline (p50; no interval)"
    )


# ---------------------------------------------------------------- the trial order


def test_each_round_is_a_seeded_permutation_of_the_cells():
    ids = [f"c{i}" for i in range(6)]
    order = schedule.interleaved(ids, 4, seed=3)
    assert order == schedule.interleaved(ids, 4, seed=3)
    assert order != schedule.interleaved(ids, 4, seed=4)
    rounds = [order[i : i + 6] for i in range(0, 24, 6)]
    assert all(sorted(r) == ids for r in rounds)
    assert len({tuple(r) for r in rounds}) > 1  # the order changes from round to round


def test_interleaving_removes_a_drift_that_a_sequential_order_turns_into_a_difference():
    """Two identical cells, 5 trials each, on a machine that slows down 2% per trial slot."""
    rng = np.random.default_rng(21)
    n_trials, sims, drift = 5, 200, 0.02
    ids = ["a", "b"]
    false_seq = false_int = 0
    for s in range(sims):
        noise = np.exp(rng.normal(0.0, 0.02, size=2 * n_trials))
        for order, is_seq in (
            (schedule.sequential(ids, n_trials), True),
            (schedule.interleaved(ids, n_trials, seed=s), False),
        ):
            values: dict[str, list[float]] = {"a": [], "b": []}
            for slot, cid in enumerate(order):
                values[cid].append(TRUE_MEDIAN_MS * (1.0 + drift * slot) * noise[slot])
            called = trials.verdict(trials.ratio(values["a"], values["b"])) != "not significant"
            false_seq += called and is_seq
            false_int += called and not is_seq
    print(
        f"\nidentical cells under a {drift:.0%}/trial drift: sequential order called a "
        f"difference in {false_seq / sims:.0%}, interleaved in {false_int / sims:.0%}"
    )
    assert false_seq / sims >= 0.95
    assert false_int / sims <= 0.08


def test_auto_trials_stop_when_precise_and_fixed_counts_are_kept():
    auto = schedule.TrialPolicy(trials=None, max_trials=6, precision=0.05)
    tight = trials.estimate([10.0, 10.1, 9.9])
    loose = trials.estimate([8.0, 10.0, 12.5])
    assert schedule.needs_trial(auto, 1, None)
    assert schedule.needs_trial(auto, 2, tight)  # at least three
    assert not schedule.needs_trial(auto, 3, tight)
    assert schedule.needs_trial(auto, 3, loose)
    assert not schedule.needs_trial(auto, 6, loose)  # --max-trials
    assert not schedule.needs_trial(auto, 1, None, in_play=False)  # clearly out: no more
    fixed = schedule.TrialPolicy(trials=4)
    assert schedule.needs_trial(fixed, 3, tight) and not schedule.needs_trial(fixed, 4, loose)
    assert schedule.needs_trial(fixed, 1, None, in_play=False)


def test_trial_options_are_checked():
    assert schedule.parse_trials("auto") is None and schedule.parse_trials(" 5 ") == 5
    for bad in ("0", "x", "1000"):
        with pytest.raises(BadInput):
            schedule.parse_trials(bad)
    with pytest.raises(BadInput):
        schedule.trial_policy("auto", 2, 0.05, 0)
    with pytest.raises(BadInput):
        schedule.trial_policy("3", 10, 1.5, 0)
    p = schedule.trial_policy("auto", 8, 0.03, 9)
    assert (p.trials, p.max_trials, p.precision, p.seed, p.most) == (None, 8, 0.03, 9, 8)


# ---------------------------------------------------------------- a cell's trials combined


def _trial_result(samples_ms: np.ndarray, seconds: float = 2.0, power_w: float | None = None):
    from benchbox.schema import Result

    a = np.sort(samples_ms)
    return Result(
        requests=a.size,
        inferences=2 * a.size,
        duration_s=seconds,
        throughput_ips=2 * a.size / seconds,
        requests_per_s=a.size / seconds,
        latency_ms=stats.summarize(a),
        latency_ci_ms=stats.latency_cis(a),
        confidence=0.95,
        histogram=stats.histogram_from_samples(a),
        windows=4,
        rss_mb=100.0 + a.size / 100,
        power_w=power_w,
        batch_size_counts={2: a.size // 2},
    )


def test_combine_pools_each_shape_bucket_over_the_trials_that_met_it():
    """A bucket's figures follow the cell's between-trial rule (requests add up, percentiles are
    geometric means over the trials), not the median trial's alone."""
    from benchbox.schema import BucketStat, replace

    rng = np.random.default_rng(5)
    results = []
    for i in range(3):
        short, long = rng.gamma(4.0, 0.5, 200) + i, rng.gamma(4.0, 3.0, 50 + 10 * i) + i
        found = [BucketStat("seq", 32, 200, stats.summarize(np.sort(short)))]
        if i != 1:  # the middle trial drew no long request
            found.append(BucketStat("seq", 256, long.size, stats.summarize(np.sort(long))))
        results.append(replace(_trial_result(np.concatenate([short, long])), buckets=tuple(found)))
    c = trials.combine(results, 0.95)
    by = {b.upper: b for b in c.buckets}
    assert sorted(by) == [32, 256]
    assert by[32].requests == 600 and by[256].requests == 50 + 70
    met = [r.buckets[-1] for r in results if len(r.buckets) == 2]
    assert by[256].latency_ms.p99 == pytest.approx(
        trials.geometric_mean([b.latency_ms.p99 for b in met])
    )
    assert by[256].latency_ms.max == max(b.latency_ms.max for b in met)
    assert by[32].latency_ms.min == min(r.buckets[0].latency_ms.min for r in results)


def test_combine_keeps_each_trial_and_gives_between_trial_figures():
    rng = np.random.default_rng(3)
    lat = fake_runner(rng, 1, 4, REQUESTS)[0]
    results = [_trial_result(lat[i], 2.0 + 0.1 * i, power_w=50.0 + i) for i in range(4)]
    c = trials.combine(results, 0.95, ["ok", "unstable", "ok", "ok"], [0, 5, 9, 13])
    assert c.trials == 4 and c.ci_level == "between-trial"
    assert [t.order for t in c.per_trial] == [0, 5, 9, 13]
    assert [t.status for t in c.per_trial] == ["ok", "unstable", "ok", "ok"]
    assert [t.latency_ms.p99 for t in c.per_trial] == [r.latency_ms.p99 for r in results]
    per_p50 = [r.latency_ms.p50 for r in results]
    assert c.latency_ms.p50 == pytest.approx(trials.geometric_mean(per_p50))
    est = trials.estimate(per_p50, 0.95, c.within_trial_ci_ms["p50"])
    assert c.latency_ci_ms["p50"] == [est.lo, est.hi]
    # The between-trial interval is at least as wide as the pooled requests' one.
    for key in ("p50", "p99"):
        lo, hi = c.latency_ci_ms[key]
        wlo, whi = c.within_trial_ci_ms[key]
        assert lo <= wlo and hi >= whi
    tput = [r.throughput_ips for r in results]
    assert c.throughput_ips == pytest.approx(c.inferences / c.duration_s)
    assert min(tput) < c.throughput_ips < max(tput)
    assert c.throughput_ci_ips[0] < c.throughput_ips < c.throughput_ci_ips[1]
    assert c.requests == 4 * REQUESTS and c.duration_s == pytest.approx(8.6)
    assert c.histogram.count == 4 * REQUESTS and c.windows == 16
    assert c.power_w == pytest.approx(51.5)
    assert c.energy_j_per_inference == pytest.approx(51.5 / c.throughput_ips)
    assert c.batch_size_counts == {2: 4 * (REQUESTS // 2)}
    assert c.latency_ms.min == min(r.latency_ms.min for r in results)


def test_combine_of_one_trial_is_that_trial_labelled_within_trial():
    r = _trial_result(np.linspace(1.0, 3.0, 300))
    c = trials.combine([r])
    assert c.trials == 1 and c.ci_level == "within-trial" and len(c.per_trial) == 1
    assert c.latency_ms == r.latency_ms and c.latency_ci_ms == r.latency_ci_ms
    assert c.within_trial_ci_ms == r.latency_ci_ms and c.throughput_ci_ips is None
