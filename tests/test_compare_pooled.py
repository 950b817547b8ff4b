"""compare's between-trial test pools each report's trial-to-trial noise over its cells (the
moderated t of measure/moderate.py, as the sweep's own intervals are): with 2 or 3 trials a side,
a cell's own variance has 1 or 2 df, and the pool of its report's cells gives it more."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from rich.console import Console
from test_compare_family import PATTERN, trial_report

from benchbox.compare import compare_reports, run_prior
from benchbox.measure import moderate
from benchbox.measure import trials as tstats
from benchbox.report.compare_view import render_versions

CELLS = 8
SIMS = 200


def simulated(n: int, seed: int) -> tuple[float, float, float]:
    """A/A pairs of runs of CELLS heterogeneous cells (each cell's trials shifted by lognormal
    noise of 5-20%, the same cell alike in both runs), n trials a side: the coverage of the true
    ratio 1 by the pooled intervals, by the cells' own, and the median width pooled / own."""
    rng = np.random.default_rng(seed)
    covered = own_covered = total = 0
    widths, own_widths = [], []
    for _ in range(SIMS):
        sigma = rng.uniform(0.05, 0.20, CELLS)
        mu = rng.uniform(1.0, 10.0, CELLS)
        runs = [[mu[g] * np.exp(rng.normal(0.0, sigma[g], n)) for g in range(CELLS)]]
        runs.append([mu[g] * np.exp(rng.normal(0.0, sigma[g], n)) for g in range(CELLS)])
        priors = tuple(
            moderate.fit_prior([float(np.var(np.log(x), ddof=1)) for x in run], [n - 1.0] * CELLS)
            for run in runs
        )
        for a, b in zip(*runs, strict=True):
            pooled, own = tstats.ratio(a, b, priors=priors), tstats.ratio(a, b)
            assert not own.pooled  # (a pooled side may keep its own spread: `moderate`)
            covered += pooled.lo <= 1.0 <= pooled.hi
            own_covered += own.lo <= 1.0 <= own.hi
            total += 1
            widths.append(math.log(pooled.hi / pooled.lo))
            own_widths.append(math.log(own.hi / own.lo))
    return covered / total, own_covered / total, float(np.median(widths) / np.median(own_widths))


def test_pooled_intervals_keep_their_coverage_and_are_narrower_with_few_trials():
    """Fixed seeds and counts (the same work on every run); 1,600 intervals per trial count."""
    for n, narrower in ((2, 0.6), (3, 0.85), (5, 0.95)):
        coverage, own_coverage, width = simulated(n, seed=n)
        assert coverage >= 0.92, (n, coverage)
        assert own_coverage >= 0.93, (n, own_coverage)  # Welch alone: conservative, and wide
        assert width < narrower, (n, width)


def test_a_cell_far_noisier_than_its_report_keeps_its_own_interval():
    shifts = [PATTERN] * 7 + [[8.0 * x for x in PATTERN]]
    base, cand = trial_report(shifts), trial_report(shifts)
    cmp = compare_reports([base, cand], labels=["a.json", "b.json"])
    *alike, noisy = cmp.cells
    own = tstats.ratio([math.exp(8.0 * x) for x in PATTERN], [math.exp(8.0 * x) for x in PATTERN])
    assert not noisy.pooled and noisy.df == own.df == 4.0
    assert (noisy.ratio_lo, noisy.ratio_hi) == pytest.approx((own.lo, own.hi), rel=1e-12)
    assert all(d.pooled and d.df > 4.0 for d in alike)
    assert all(d.verdict == "not significant" for d in cmp.cells)


def test_compare_pools_each_reports_noise_and_says_so():
    base, cand = trial_report([PATTERN] * 8), trial_report([PATTERN] * 8, seed=1)
    prior = run_prior(base)
    assert prior is not None and prior.cells == 8
    cmp = compare_reports([base, cand], labels=["a.json", "b.json"])
    own = tstats.ratio([math.exp(x) for x in PATTERN], [math.exp(x) for x in PATTERN])
    for d in cmp.cells:
        assert d.pooled and d.df > own.df  # 2 df a side alone; d0 + 2 pooled
        assert d.ratio_hi / d.ratio_lo < own.hi / own.lo
    out = io.StringIO()
    render_versions(cmp, Console(file=out, width=400))
    text = " ".join(out.getvalue().split())
    assert "8 of the CIs pool each report's trial-to-trial noise over its cells" in text


def test_two_cells_are_too_few_to_pool():
    base = trial_report([PATTERN] * 8)
    from benchbox.schema import replace

    two = replace(base, cells=base.cells[:2])
    assert run_prior(two) is None
    cmp = compare_reports([two, two], labels=["a.json", "b.json"])
    assert not any(d.pooled for d in cmp.cells)
    assert all(d.df == 4.0 for d in cmp.cells)
