"""compare's cells are one family: calls and the regression gate hold after Holm over the cells."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from fixtures_reports import make_report, make_result
from scipy import stats as sps

from benchbox import store
from benchbox.cli import main
from benchbox.compare import compare_reports, regressions, run_prior
from benchbox.measure import moderate, stats
from benchbox.measure import trials as tstats
from benchbox.schema import replace

NS = "not significant"
GRID8 = {
    "devices": ("cpu",),
    "batches": (1, 8),
    "concurrencies": (1, 2, 4, 8),
    "include_failed": False,
    "target_ms": None,
    "keep_samples": True,
}
SPREAD = 0.05  # each side's trials: the cell's requests scaled by exp(SPREAD * (-1, 0, 1))


def trial_report(shifts: list[list[float]], seed: int = 0):
    """8 cells of real summarised requests; cell g's trial k is its requests times
    exp(shifts[g][k]), so each trial's p50 is the cell's p50 times that factor exactly."""
    base = make_report(seed=seed, **GRID8)
    cells = []
    for cell, logs in zip(base.cells, shifts, strict=True):
        a = np.asarray(cell.result.samples_ms)
        results = [
            make_result(
                a * math.exp(x), cell.config.batch_size, cell.load.concurrency, None, 2.5, True
            )
            for x in logs
        ]
        cells.append(replace(cell, result=tstats.combine(results)))
    return replace(base, cells=tuple(cells))


PATTERN = [-SPREAD, 0.0, SPREAD]


def shift_for(p: float) -> float:
    """The log shift of 3 against 3 trials (SPREAD apart) whose two-sided Welch p is `p`, each
    side's variance moderated toward its report's pool (compare.run_prior): every cell of both
    reports has the variance SPREAD^2, so both sides have the same moderated variance and df."""
    mod = moderate.moderate(SPREAD**2, 2.0, run_prior(trial_report([PATTERN] * 8)))
    se = math.sqrt(2.0 * mod.var / 3.0)  # 3 trials a side
    return float(sps.t.isf(p / 2.0, 2.0 * mod.df)) * se  # Welch's df of two equal sides


def pair(p_by_cell: list[float]):
    pattern = PATTERN
    base = trial_report([pattern] * 8)
    cand = trial_report([[shift_for(p) + x for x in pattern] for p in p_by_cell])
    return base, cand


def test_eight_cells_each_just_under_5_percent_alone_are_none_called_after_holm():
    base, cand = pair([0.045] * 8)
    cmp = compare_reports([base, cand], labels=["base.json", "cand.json"])
    for d in cmp.cells:
        assert d.p_value == pytest.approx(0.045, rel=1e-6)
        assert d.own_verdict == "slower" and d.ratio_lo > 1.0  # each alone: called
        assert d.verdict == NS  # the family: 8 x 0.045 = 0.36
        assert d.p_holm == pytest.approx(0.36, rel=1e-6)
    assert regressions(cmp, 0.0) == []
    assert cmp.verdict.startswith("verdict: no difference of 8 cells at 95% after Holm")
    assert not any("every matched cell" in w for w in cmp.noise_warnings)


def test_one_very_small_p_is_called_and_the_others_are_not():
    ps = [0.045] * 8
    ps[5] = 1e-5
    base, cand = pair(ps)
    cmp = compare_reports([base, cand])
    called = [d for d in cmp.cells if d.verdict != NS]
    assert [d.cell_id for d in called] == [base.cells[5].id]
    assert called[0].p_holm == pytest.approx(8e-5, rel=1e-3)
    others = [d for d in cmp.cells if d.verdict == NS]
    assert all(d.p_holm == pytest.approx(7 * 0.045, rel=1e-6) for d in others)
    assert [d.cell_id for d in regressions(cmp, 0.0)] == [base.cells[5].id]
    assert cmp.verdict.startswith("verdict: 1 slower, 0 faster of 8 cells at 95% after Holm")


def test_holm_steps_down_so_a_second_small_p_is_called_too():
    ps = [0.3] * 8
    ps[1], ps[6] = 0.004, 0.02  # 8 x 0.004 = 0.032; then 7 x 0.02 = 0.14: only the first
    base, cand = pair(ps)
    cmp = compare_reports([base, cand])
    assert [d.verdict != NS for d in cmp.cells] == [i == 1 for i in range(8)]
    ps[6] = 0.007  # 7 x 0.007 = 0.049: called too
    base, cand = pair(ps)
    cmp = compare_reports([base, cand])
    assert [d.verdict != NS for d in cmp.cells] == [i in (1, 6) for i in range(8)]


def _cli(args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["benchbox", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_gate_and_the_table_follow_the_family(tmp_path, monkeypatch, capsys):
    base, cand = pair([0.045] * 8)
    b = store.save_report(base, tmp_path / "base.json")
    c = store.save_report(cand, tmp_path / "cand.json")
    code, out, err = _cli(
        ["compare", str(b), str(c), "--fail-on-regression", "0%"], monkeypatch, capsys
    )
    assert code == 0, err  # each cell alone would trip the gate; the family does not
    assert out.count("(slower alone)") == 8
    assert "0 slower, 0 faster, 8 not significant after Holm over the 8 cells" in out
    assert "p50 (median) ratio decides" in out and "at 95% after Holm" in out
    ps = [0.045] * 8
    ps[2] = 1e-5
    c = store.save_report(pair(ps)[1], tmp_path / "cand.json")
    code, out, err = _cli(
        ["compare", str(b), str(c), "--fail-on-regression", "0%"], monkeypatch, capsys
    )
    assert code == 1
    assert "1 cell(s) regressed by more than 0%" in err and base.cells[2].id in err
    assert out.count("(slower alone)") == 7


def test_a_a_compares_call_a_difference_in_at_most_5_percent_of_pairs_not_per_cell():
    """Seeded, fixed work: 60 A/A pairs of 8 cells with 3 trials a side, each cell's trials
    shifted by its own lognormal noise (10%)."""
    rng = np.random.default_rng(23)
    any_family = any_alone = 0
    for _ in range(60):
        a = trial_report((0.10 * rng.standard_normal((8, 3))).tolist())
        b = trial_report((0.10 * rng.standard_normal((8, 3))).tolist())
        cmp = compare_reports([a, b])
        any_family += any(d.verdict != NS for d in cmp.cells)
        any_alone += any(d.own_verdict != NS for d in cmp.cells)
    print(
        f"\nA/A pairs calling any cell: after Holm {any_family}/60, each cell alone {any_alone}/60"
    )
    assert any_family <= 3
    assert any_alone >= 10  # uncorrected, 8 cells at 5% each call something in ~1 pair in 3


def test_a_within_trial_call_needs_the_rank_test_and_the_interval_past_the_threshold():
    """One trial a side, 8% slower against a 10% threshold: the rank test alone finds the
    shift (its p is tiny), but the interval does not pass 1.10, so the cell's p is not small."""
    base = make_report(seed=1, **GRID8)
    cand = make_report(seed=2, slowdown=1.08, **GRID8)
    cmp = compare_reports([base, cand], threshold=0.10)
    by_id = {c.id: c for c in cand.cells}
    rank_small = 0
    for d in cmp.cells:
        b = next(c for c in base.cells if c.id == d.cell_id)
        alone = stats.compare_samples(
            np.asarray(b.result.samples_ms), np.asarray(by_id[d.cell_id].result.samples_ms)
        )
        rank_small += alone.p_value < 0.05
        assert d.p_value >= alone.p_value
        if d.ratio_lo <= 1.10:
            assert d.own_verdict == NS and d.p_value >= 0.05, d
    assert rank_small >= 6
    assert all(d.verdict == NS for d in cmp.cells)
