"""The trial phase: which cells get more trials, in which order, and what the cell says after."""

from __future__ import annotations

import numpy as np

from benchbox.measure import stats
from benchbox.measure.cell import MeasureSettings
from benchbox.parse import parse_target
from benchbox.schema import Cell, CellWarning, Load, Result, ServingConfig, cell_id, replace
from benchbox.store import load_report
from benchbox.sweep import SweepRequest, make_in_process_worker, run_sweep
from benchbox.sweep import trials as sweep_trials
from benchbox.sweep.plan import SweepSpec
from benchbox.sweep.schedule import TrialPolicy


def _cell(batch: int, conc: int) -> Cell:
    cfg = ServingConfig(batch_size=batch)
    load = Load("closed", concurrency=conc)
    return Cell(id=cell_id(cfg, load), config=cfg, load=load)


class FakeRunner:
    """Each trial: 300 lognormal latencies around the cell's median, shifted per trial (10%)."""

    def __init__(self, medians_ms: dict[str, float], seed: int = 0, fail: set[str] = ()):
        self.medians = medians_ms
        self.rng = np.random.default_rng(seed)
        self.calls: list[str] = []
        self.fail = set(fail)

    def __call__(self, cell: Cell) -> Cell:
        self.calls.append(cell.id)
        if cell.id in self.fail and self.calls.count(cell.id) > 1:
            return replace(cell, status="failed", result=None, reason="the worker died")
        shift = float(np.exp(self.rng.normal(0.0, 0.10)))
        a = np.sort(self.medians[cell.id] * shift * np.exp(self.rng.normal(0.0, 0.2, 300)))
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
        label = CellWarning("io-binding", "off")
        return replace(cell, status="ok", result=result, warnings=(label,))


CELLS = [_cell(1, 1), _cell(1, 2), _cell(4, 1), _cell(4, 2)]
MEDIANS = {CELLS[0].id: 5.0, CELLS[1].id: 9.0, CELLS[2].id: 15.0, CELLS[3].id: 80.0}


def _first(runner: FakeRunner) -> list[Cell]:
    return [runner(c) for c in CELLS]


def test_a_fixed_count_gives_every_measured_cell_its_trials_interleaved():
    runner = FakeRunner(MEDIANS)
    first = _first(runner)
    policy = TrialPolicy(trials=3, seed=4)
    out = sweep_trials.run_trials(first, runner, policy, None, 0.95)
    assert [c.result.trials for c in out] == [3, 3, 3, 3]
    later = runner.calls[4:]
    rounds = [later[:4], later[4:]]
    assert all(sorted(r) == sorted(MEDIANS) for r in rounds)
    assert later != [c.id for c in CELLS] * 2  # a shuffled order, not the grid's
    orders = sorted(o for c in out for o in (t.order for t in c.result.per_trial))
    assert orders == list(range(12))
    assert all(c.result.ci_level == "between-trial" for c in out)
    assert all(len(c.warnings) == 1 for c in out)  # the trials' labels, once


def test_auto_spends_trials_on_contenders_not_on_cells_clearly_out():
    runner = FakeRunner(MEDIANS, seed=1)
    first = _first(runner)
    target = parse_target("p99=40ms")
    policy = TrialPolicy(trials=None, max_trials=5, precision=0.05, seed=0)
    saved: list[str] = []
    out = sweep_trials.run_trials(
        first, runner, policy, target, 0.95, emit=lambda c: saved.append(c.id)
    )
    by_id = {c.id: c for c in out}
    out_cell = by_id[CELLS[3].id]  # p99 ~130 ms against a 40 ms target
    assert out_cell.result.trials == 1
    assert any("few-trials" in str(w) and "above the target" in str(w) for w in out_cell.warnings)
    for c in CELLS[:3]:
        if c.id == CELLS[1].id:
            # b1/c2 (~110 inf/s) cannot reach b4/c1's throughput (~260, under the target): on
            # the pooled intervals that is clear after its 2nd trial (on its own 2-trial t
            # interval, t = 12.7, it was not, for this seed; for seeds 2 and 5 it was).
            cell = by_id[c.id]
            assert cell.result.trials == 2
            assert any("few-trials" in str(w) and "cannot reach" in str(w) for w in cell.warnings)
            continue
        assert 3 <= by_id[c.id].result.trials <= 5
    assert set(saved) >= {c.id for c in CELLS[:3]}


def test_a_failed_trial_keeps_the_earlier_ones_and_says_so():
    runner = FakeRunner(MEDIANS, fail={CELLS[0].id})
    first = _first(runner)
    out = sweep_trials.run_trials(first, runner, TrialPolicy(trials=3), None, 0.95)
    c = out[0]
    assert c.status == "ok" and c.result.trials == 1 and c.result.ci_level == "within-trial"
    assert any("trial-failed" in str(w) and "the worker died" in str(w) for w in c.warnings)
    assert out[1].result.trials == 3


def test_an_unsettled_trial_makes_the_cell_unstable_but_it_keeps_its_figures():
    runner = FakeRunner(MEDIANS)
    first = _first(runner)
    calls = {"n": 0}

    def flaky(cell: Cell) -> Cell:
        calls["n"] += 1
        done = runner(cell)
        return replace(done, status="unstable") if calls["n"] == 1 else done

    out = sweep_trials.run_trials(first, flaky, TrialPolicy(trials=3), None, 0.95)
    unstable = [c for c in out if c.status == "unstable"]
    assert len(unstable) == 1 and unstable[0].result.trials == 3
    assert any("unstable-trials: 1 of 3" in str(w) for w in unstable[0].warnings)
    assert sweep_trials.trials_summary(out) == "3 trials for 4 cells"


# ---------------------------------------------------------------- a real sweep


def test_a_real_sweep_gives_each_cell_trials_in_fresh_workers_interleaved(mlp_path, tmp_path):
    made: list[int] = []

    def counting(ctx, abort):
        made.append(1)
        return make_in_process_worker(ctx, abort)

    req = SweepRequest(
        model_path=str(mlp_path),
        spec=SweepSpec(batch_sizes=(1, 2), concurrencies=(1, 2)),
        settings=MeasureSettings(warmup_s=0.05, duration_s=0.2, window_s=0.1),
        out_dir=str(tmp_path),
        trials=TrialPolicy(trials=3, seed=11),
    )
    report, path = run_sweep(req, make_worker=counting)
    cells = [c for c in report.cells if c.result is not None]
    assert len(cells) == 4 and all(c.status in ("ok", "unstable") for c in cells)
    assert all(c.result.trials == 3 and c.result.ci_level == "between-trial" for c in cells)
    # One worker for the search's group, then a fresh one (a new session) per later trial.
    assert len(made) == 1 + 4 * 2
    orders = {c.id: [t.order for t in c.result.per_trial] for c in cells}
    assert sorted(o for v in orders.values() for o in v) == list(range(12))
    assert sorted(v[0] for v in orders.values()) == [0, 1, 2, 3]  # the search's round
    for r in (1, 2):  # each later round holds one trial of every cell
        assert sorted(v[r] for v in orders.values()) == [4 * r + k for k in range(4)]
    assert report.settings.trials.trials == 3
    saved = [c for c in load_report(path).cells if c.result is not None]
    assert [c.result.trials for c in saved] == [3, 3, 3, 3]


def test_without_a_target_no_cell_is_out_so_every_cell_gets_its_trials():
    runner = FakeRunner(MEDIANS, seed=2)
    first = _first(runner)
    policy = TrialPolicy(trials=None, max_trials=4, precision=0.05)
    out = sweep_trials.run_trials(first, runner, policy, None, 0.95)
    assert all(3 <= c.result.trials <= 4 for c in out)
    assert not any(w.kind == "few-trials" for c in out for w in c.warnings)
