"""The trial phase decides on the pooled intervals, with verdict.py's rule for out of target."""

from __future__ import annotations

import math

import numpy as np

from benchbox import verdict
from benchbox.measure import stats
from benchbox.measure import trials as tstats
from benchbox.parse import parse_target
from benchbox.schema import Cell, Load, Result, ServingConfig, cell_id, replace
from benchbox.sweep import trials as sweep_trials
from benchbox.sweep.schedule import TrialPolicy


def _cell(batch: int, conc: int) -> Cell:
    cfg = ServingConfig(batch_size=batch)
    load = Load("closed", concurrency=conc)
    return Cell(id=cell_id(cfg, load), config=cfg, load=load)


CELLS = [_cell(b, c) for b in (1, 2, 4, 8) for c in (1, 2, 4, 8)]


class QuietRunner:
    """Each trial: 2000 lognormal latencies (sigma 0.05) around the cell's median, the whole
    trial shifted by a lognormal factor (sigma `shift`, 2%: a quiet machine); throughput is
    batch / mean latency."""

    def __init__(self, seed: int = 0, shift: float = 0.02):
        self.rng = np.random.default_rng(seed)
        self.shift = shift
        self.calls: list[str] = []

    def __call__(self, cell: Cell) -> Cell:
        self.calls.append(cell.id)
        median = 2.0 * cell.config.batch_size * (cell.load.concurrency or 1)
        scale = median * float(np.exp(self.rng.normal(0.0, self.shift)))
        a = np.sort(scale * np.exp(self.rng.normal(0.0, 0.05, 2000)))
        seconds = float(a.sum() / 1000.0)
        result = Result(
            requests=a.size,
            inferences=a.size * cell.config.batch_size,
            duration_s=seconds,
            throughput_ips=a.size * cell.config.batch_size / seconds,
            requests_per_s=a.size / seconds,
            latency_ms=stats.summarize(a),
            latency_ci_ms=stats.latency_cis(a),
            confidence=0.95,
            histogram=stats.histogram_from_samples(a),
            windows=3,
        )
        return replace(cell, status="ok", result=result)


def own_interval(cell: Cell) -> Cell:
    """The cell combined from its trials again, on its own spread only (no pool)."""
    return sweep_trials.combine_cell(sweep_trials.earlier_log(cell), 0.95)


POLICY = TrialPolicy(trials=None, max_trials=10, precision=0.06, min_trials=2, seed=1)


def test_quiet_cells_stop_near_their_minimum_on_the_pooled_variance():
    """16 cells: a 2-trial cell's own interval has t = 12.7, the pool's has the sweep's df, so
    most cells stop at 2 trials and none is sent to 10 (seeded; judged on their own intervals,
    only 1 to 6 of the 16 cells stopped at 2, over ten seeds of this runner)."""
    runner = QuietRunner(seed=3)
    first = [runner(c) for c in CELLS]
    out = sweep_trials.run_trials(first, runner, POLICY, None, 0.95)
    trials = [c.result.trials for c in out]
    assert trials.count(2) >= 12 and max(trials) <= 4
    own, pooled = [], []
    for c in out:
        if c.result.trials == 2:
            assert c.result.ci_df["throughput"] > 2  # more than the cell's own 1 df
        pooled.append(tstats.relative_half_width(sweep_trials.decision_estimate(c, None)))
        alone = sweep_trials.decision_estimate(own_interval(c), None)
        own.append(tstats.relative_half_width(alone))
    assert np.median(own) > 2 * np.median(pooled)


def test_a_resumed_sweep_judges_its_saved_cells_on_the_pool_too():
    runner = QuietRunner(seed=4)
    logs = [
        sweep_trials.TrialLog([runner(c), runner(c)], [i, i + len(CELLS)], [])
        for i, c in enumerate(CELLS)
    ]
    saved = [sweep_trials.combine_cell(g, 0.95) for g in logs]  # as an interrupted run saves them
    alone = [
        c for c in saved if not tstats.precise_enough(sweep_trials.decision_estimate(c, None), 0.06)
    ]
    assert len(alone) >= 8  # on their own 2-trial intervals, most would get a third trial
    short = sweep_trials.short_of_trials(saved, POLICY, None)
    assert len(short) <= len(alone) // 2


def test_out_of_the_target_is_verdicts_break_rule_on_between_trial_cells():
    runner = QuietRunner(seed=5)
    logs = [sweep_trials.TrialLog([runner(c) for _ in range(3)], [0, 1, 2], []) for c in CELLS]
    cells = sweep_trials.pool_cells([sweep_trials.combine_cell(g, 0.95) for g in logs], 0.95)
    p99s = sorted(c.result.latency_ms.p99 for c in cells)
    for bound in (p99s[2] * 0.99, p99s[4] * 1.01, p99s[6] * 0.97):
        target = parse_target(f"p99={bound:.4f}ms")
        out = sweep_trials.out_of_play(cells, target)
        above = {cid for cid, why in out.items() if "above the target" in why}
        assert above == {c.id for c in cells if verdict.breaks_target(c, target)}
        assert above  # some cells are above every one of these targets


def test_a_single_trial_is_out_only_past_the_margin_and_a_nan_bound_falls_back_to_the_point():
    runner = QuietRunner(seed=6)
    cell = runner(CELLS[0])  # p99 about 2.3 ms, one trial
    p99 = cell.result.latency_ms.p99
    lo = verdict.lower_bound(cell.result, "p99").value_ms
    margin = 1.0 + sweep_trials.SINGLE_TRIAL_MARGIN
    assert sweep_trials.out_of_play([cell], parse_target(f"p99={lo / margin * 0.99:.6f}ms"))
    assert not sweep_trials.out_of_play([cell], parse_target(f"p99={lo / margin * 1.01:.6f}ms"))
    # A bound that is not a number: the point value stands in (verdict.py), the cell is still
    # judged, not kept in play by a comparison with NaN that is never true.
    nan = replace(cell, result=replace(cell.result, latency_ci_ms={"p99": [math.nan, math.nan]}))
    why = sweep_trials.out_of_play([nan], parse_target(f"p99={p99 / margin * 0.99:.6f}ms"))
    assert "above the target" in why[nan.id] and "single-trial margin" in why[nan.id]
