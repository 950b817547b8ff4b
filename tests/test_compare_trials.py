"""Comparing versions with trials: ratio of medians with a between-trial CI, hyperfine's line."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures_reports import make_report

from benchbox.compare import compare_reports
from benchbox.errors import BadInput
from benchbox.measure import trials
from benchbox.schema import replace

GRID = {"devices": ("cpu",), "batches": (1,), "concurrencies": (1, 2, 4), "target_ms": None}


def with_trials(n: int, seed: int, slowdown: float = 1.0, sigma: float = 0.08, **kw):
    """A report whose cells each hold n trials: n fixture reports, each shifted by a lognormal
    factor (run-to-run noise), combined cell by cell."""
    rng = np.random.default_rng(seed)
    runs = [
        make_report(
            seed=seed * 100 + k,
            slowdown=slowdown * float(np.exp(rng.normal(0.0, sigma))),
            include_failed=False,
            **GRID,
            **kw,
        )
        for k in range(n)
    ]
    cells = []
    for i, cell in enumerate(runs[0].cells):
        combined = trials.combine([r.cells[i].result for r in runs])
        cells.append(replace(cell, result=combined))
    return replace(runs[0], cells=tuple(cells))


def test_a_real_slowdown_is_called_slower_with_a_hyperfine_line():
    # 35%, not 25%: at 25% each cell's own p is 0.02-0.03, called alone but not after Holm over
    # the three cells (0.065), which is the family correction working (test_compare_family.py).
    base = with_trials(5, seed=1)
    cand = with_trials(5, seed=2, slowdown=1.35)
    cmp = compare_reports([base, cand], mode="versions", labels=["base.json", "cand.json"])
    assert not any("single trial" in w for w in cmp.noise_warnings)
    for d in cmp.cells:
        assert d.level == "between-trial" and d.method == "trials"
        assert (d.baseline_trials, d.candidate_trials) == (5, 5)
        assert d.verdict == "slower" and d.ratio_lo > 1.0
        assert d.summary.startswith("cand.json ran 1.")
        assert "times slower than base.json (p50)" in d.summary


def test_run_to_run_noise_is_not_called_a_change_when_trials_see_it():
    """Identical code, runs shifted by 8% each: the within-run test calls most cells different,
    the between-trial one does not."""
    called_between = called_within = total = 0
    for k in range(6):
        a = with_trials(4, seed=10 + 2 * k)
        b = with_trials(4, seed=11 + 2 * k)
        between = compare_reports([a, b], mode="versions")
        # The same runs, each cell's figures as one run would see them (its first trial).
        one_a = replace(a, cells=tuple(replace(c, result=_one(c.result)) for c in a.cells))
        one_b = replace(b, cells=tuple(replace(c, result=_one(c.result)) for c in b.cells))
        within = compare_reports([one_a, one_b], mode="versions")
        assert any("single trial" in w and "--trials 3" in w for w in within.noise_warnings)
        total += len(between.cells)
        called_between += sum(d.verdict != "not significant" for d in between.cells)
        called_within += sum(d.verdict != "not significant" for d in within.cells)
    print(f"\nA/A: between-trial called {called_between}/{total}, within {called_within}/{total}")
    assert called_between <= 1
    assert called_within >= total // 2


def _one(result):
    """A combined result cut back to a single run of its requests (no per-trial list)."""
    return replace(result, per_trial=result.per_trial[:1], trials=1, ci_level="within-trial")


def test_different_models_are_refused_unless_allowed():
    a = with_trials(3, seed=1)
    b = with_trials(3, seed=2, sha256="ee" * 32)
    with pytest.raises(BadInput, match="different models"):
        compare_reports([a, b], mode="versions")
    cmp = compare_reports([a, b], mode="versions", allow_different_models=True)
    assert any("different model files" in w for w in cmp.warnings)
    with pytest.raises(BadInput, match="compared as versions"):
        compare_reports([a, b], mode="machines", allow_different_models=True)


def test_a_shift_of_every_cell_says_the_machine_may_have_changed():
    base = with_trials(4, seed=1)
    cand = with_trials(4, seed=2, slowdown=1.3)
    cmp = compare_reports([base, cand], mode="versions")
    assert all(d.verdict == "slower" for d in cmp.cells)
    noise = cmp.noise_warnings
    assert any("every matched cell is slower" in w and "benchbox ab" in w for w in noise)
