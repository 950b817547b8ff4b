"""The sweep's pool: moderated between-trial variances (limma's empirical Bayes) and coherence."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from benchbox.measure import moderate
from benchbox.measure.trials import t_quantile
from benchbox.schema import PERCENTILE_KEYS
from benchbox.store import load_report
from benchbox.sweep.trials import pool_cells

REAL = Path(__file__).parent / "data" / "real-sweep-2-trials.json"


def test_prior_recovers_a_known_pool_from_many_cells():
    rng = np.random.default_rng(1)
    d0, s0 = 6.0, 0.01
    true = d0 * s0 / rng.chisquare(d0, 4000)  # scaled inverse chi-square
    dfs = rng.integers(1, 5, 4000).astype(float)
    s2 = true * rng.chisquare(dfs) / dfs
    prior = moderate.fit_prior(s2, dfs)
    assert prior is not None
    assert 4.5 < prior.df < 8.0
    assert 0.8 * s0 < prior.var < 1.25 * s0


def test_equal_variances_give_an_infinite_prior_and_too_few_cells_none():
    rng = np.random.default_rng(2)
    dfs = np.full(200, 2.0)
    prior = moderate.fit_prior(0.04 * rng.chisquare(2, 200) / 2, dfs)
    assert prior is not None and prior.df >= 50
    assert moderate.fit_prior([0.1, 0.2], [1.0, 1.0]) is None


def test_posterior_is_the_df_weighted_mean_and_carries_pooled_df():
    prior = moderate.Prior(df=8.0, var=0.01, cells=10)
    mod = moderate.moderate(0.02, 2.0, prior)
    assert not mod.own
    assert math.isclose(mod.var, (8 * 0.01 + 2 * 0.02) / 10)
    assert mod.df == 10.0
    lo, hi = moderate.log_interval(0.0, 3, mod, 0.95)
    half = t_quantile(0.95, 10.0) * math.sqrt(mod.var / 3)
    assert math.isclose(math.log(hi), half) and math.isclose(math.log(lo), -half)


def test_a_cell_far_noisier_than_the_pool_keeps_its_own():
    prior = moderate.Prior(df=20.0, var=0.0025, cells=10)
    mod = moderate.moderate(0.25, 2.0, prior)  # 10x the pool's sd
    assert mod.own and mod.var == 0.25 and mod.df == 2.0
    assert moderate.moderate(0.003, 2.0, None) == moderate.Moderated(0.003, 2.0, False)


def test_coherent_raises_lower_bounds_to_lower_percentiles_and_clips_to_requests():
    points = {"p50": 10.0, "p90": 14.0, "p99": 20.0}
    cis = {"p50": [8.0, 12.0], "p90": [9.0, 30.0], "p99": [2.0, 90.0]}
    out = moderate.coherent(points, cis, ("p50", "p90", "p99"), floor=9.0, ceiling=25.0)
    assert out == {"p50": [9.0, 12.0], "p90": [10.0, 25.0], "p99": [14.0, 25.0]}


def test_moderated_coverage_over_heterogeneous_simulated_sweeps():
    """Seeded, fixed work: 120 sweeps of 8 cells, trial sigma 5-20%, 2-5 trials each."""
    rng = np.random.default_rng(7)
    covered = total = 0
    widths = []
    for _ in range(120):
        sigma = rng.uniform(0.05, 0.20, 8)
        n = rng.integers(2, 6, 8)
        x = [s * rng.standard_normal(k) for s, k in zip(sigma, n, strict=True)]
        var = [float(np.var(v, ddof=1)) for v in x]
        prior = moderate.fit_prior(var, [k - 1.0 for k in n])
        for v, s2, k in zip(x, var, n, strict=True):
            mod = moderate.moderate(s2, k - 1.0, prior)
            lo, hi = moderate.log_interval(float(np.mean(v)), int(k), mod, 0.95)
            covered += math.log(lo) <= 0.0 <= math.log(hi)
            total += 1
            plain = 2 * t_quantile(0.95, k - 1) * math.sqrt(s2 / k)
            widths.append((math.log(hi) - math.log(lo)) / plain if plain > 0 else 1.0)
    assert covered / total >= 0.92  # benchmarks/coverage.py measures it on more sweeps
    assert float(np.median(widths)) < 0.9


def test_real_two_trial_sweep_had_incoherent_intervals_and_the_pool_fixes_them():
    """A real sweep (4 cells of the demo model, 2 trials each, saved as measured)."""
    report = load_report(REAL)
    keys = list(PERCENTILE_KEYS)

    def incoherent(cell) -> bool:
        r = cell.result
        for i, key in enumerate(keys[1:], 1):
            ci = r.latency_ci_ms[key]
            if ci and ci[0] < getattr(r.latency_ms, keys[i - 1]):
                return True
        return False

    assert any(incoherent(c) for c in report.cells)  # the old intervals, as saved
    pooled = pool_cells(list(report.cells), 0.95)
    assert not any(incoherent(c) for c in pooled)
    for old, new in zip(report.cells, pooled, strict=True):
        r = new.result
        assert r.ci_df is not None
        for key in keys:
            lo, hi = r.latency_ci_ms[key]
            assert lo <= getattr(r.latency_ms, key) <= hi
            assert hi <= r.latency_ms.max and lo >= r.latency_ms.min
        assert r.latency_ci_ms["p99"][1] <= old.result.latency_ci_ms["p99"][1]


def test_a_steady_p50_over_330_histogrammed_requests_has_a_ci_of_nonzero_width():
    """issue 24: pooled trials read back from histograms gave p50 8.774 … 8.774 ms."""
    from benchbox.measure import stats

    rng = np.random.default_rng(3)
    raw = 8.77 * np.exp(0.002 * rng.standard_normal(330))  # all within one 2% bucket
    hist = stats.histogram_from_samples(raw)
    old = stats.latency_cis(stats.histogram_values(hist), 0.95)["p50"]
    assert old[0] == old[1]  # what the midpoints gave
    new = stats.histogram_latency_cis(hist, 0.95)
    exact = stats.latency_cis(raw, 0.95)
    for key, ci in new.items():
        if ci is None:
            assert exact[key] is None
            continue
        assert ci[0] < ci[1]
        assert ci[0] <= exact[key][0] and exact[key][1] <= ci[1]


def test_holm_adjusts_step_down_and_p_values_match_the_verdict():
    from benchbox.measure import trials as t

    assert t.holm({"a": 0.01, "b": 0.04, "c": 0.03}) == {
        "a": 0.03,
        "c": pytest.approx(0.06),
        "b": pytest.approx(0.06),
    }
    rng = np.random.default_rng(5)
    for _ in range(50):
        a, b = np.exp(0.1 * rng.standard_normal(4)), np.exp(0.1 * rng.standard_normal(5) + 0.1)
        r = t.ratio(a, b)
        p = t.ratio_p_value(r, 0.02)
        assert (p < 0.05) == (t.verdict(r, 0.02) != "not significant")
