"""One verdict per comparison: a family of tests, Holm-corrected, and which figure decides."""

from __future__ import annotations

import numpy as np
from test_compare_trials import with_trials

from benchbox.compare import compare_reports, family_called
from benchbox.measure import trials as t


def test_a_a_families_of_three_figures_call_a_difference_in_at_most_5_percent():
    """Seeded, fixed work: 400 A/A runs of 5 trials a side, three correlated figures."""
    rng = np.random.default_rng(11)
    called = 0
    for _ in range(400):
        shared = 0.08 * rng.standard_normal((2, 5))  # trial shifts hit every figure
        p = {}
        for f in ("p50", "p99", "throughput"):
            own = 0.05 * rng.standard_normal((2, 5))
            a, b = np.exp(shared[0] + own[0]), np.exp(shared[1] + own[1])
            p[f] = t.ratio_p_value(t.ratio(a, b), 0.0)
        called += min(t.holm(p).values()) < 0.05
    assert called / 400 <= 0.05


def test_compare_states_one_holm_verdict_and_keeps_per_cell_detail():
    base, cand = with_trials(5, seed=1), with_trials(5, seed=2, slowdown=1.6)
    cmp = compare_reports([base, cand], mode="versions")
    assert cmp.verdict.startswith("verdict: 3 slower, 0 faster of 3 cells at 95% after Holm")
    assert all(d.p_holm is not None and d.p_holm >= d.p_value for d in cmp.cells)
    same = compare_reports([with_trials(4, seed=3), with_trials(4, seed=4)], mode="versions")
    assert not any(family_called(d, 0.95) for d in same.cells)
    assert same.verdict.startswith("verdict: no difference of 3 cells")
