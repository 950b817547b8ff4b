"""A ruler in every run: the reference workload, stored per round, and compare corrected by it."""

from __future__ import annotations

import math
import os
import subprocess
import sys

from test_compare_trials import with_trials

from benchbox.compare import compare_reports
from benchbox.measure import ruler
from benchbox.schema import Ruler, replace, report_from_json, report_to_json
from benchbox.store import load_report


def _ruled(report, seconds):
    return replace(report, host=replace(report.host, ruler=Ruler(ruler.RULER_KIND, tuple(seconds))))


def test_the_ruler_is_a_fraction_of_a_second_and_positive():
    s = ruler.time_ruler()
    assert 0 < s and math.isfinite(s)


def test_correction_divides_the_ratio_and_adds_the_rulers_uncertainty():
    ratio, lo, hi = ruler.corrected(1.2, 1.1, 1.3, 1.1, 1.05, 1.15)
    assert math.isclose(ratio, 1.2 / 1.1)
    assert math.log(hi / lo) > math.log(1.3 / 1.1)  # wider than the cell's own
    assert ruler.moved_beyond(1.07, 1.2) and not ruler.moved_beyond(0.97, 1.08)


def test_a_report_without_a_ruler_loads_and_compares_as_before_with_a_warning():
    base, cand = with_trials(4, seed=1), with_trials(4, seed=2)
    assert report_from_json(report_to_json(base)).host.ruler is None
    cmp = compare_reports([base, cand], mode="versions", labels=["a", "b"])
    assert any("has no ruler" in w and "ab" in w for w in cmp.noise_warnings)
    assert all(d.ruler_ratio is None for d in cmp.cells)


def test_a_machine_that_moved_alike_for_ruler_and_cells_is_corrected_or_confounded():
    # The machine got 3% slower (ruler and every cell alike), and the candidate 30% on top.
    base = _ruled(with_trials(5, seed=1), [1.0, 1.01, 0.99, 1.0])
    cand = _ruled(with_trials(5, seed=2, slowdown=1.03 * 1.3), [1.03, 1.04, 1.02, 1.03])
    cmp = compare_reports([base, cand], mode="versions", labels=["a", "b"])
    assert any("the machine moved 1.030x" in w for w in cmp.noise_warnings)
    assert not any("confounded" in w for w in cmp.noise_warnings)
    for d in cmp.cells:
        assert math.isclose(d.ruler_ratio, 1.03, rel_tol=1e-3)
        assert d.verdict == "slower" and d.ratio < 1.3 * 1.1
    # The machine itself 25% slower: the runs are confounded, no cell is called.
    moved = _ruled(with_trials(5, seed=2, slowdown=1.25), [1.25, 1.26, 1.24, 1.25])
    cmp = compare_reports([base, moved], mode="versions", labels=["a", "b"])
    assert any("confounded" in w and "benchbox ab" in w for w in cmp.noise_warnings)
    assert all(d.verdict == "not significant" for d in cmp.cells)
    assert round(report_from_json(report_to_json(moved)).host.ruler.per_round_s[0], 2) == 1.25


def test_a_real_sweep_stores_one_ruler_reading_per_trial_round(tmp_path):
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchbox",
            "sweep",
            "mlp",
            "-b",
            "1",
            "-c",
            "1,2",
            "-t",
            "1",
            "--trials",
            "2",
            "--duration",
            "0.2s",
            "--warmup",
            "0.05s",
            "--window",
            "0.05s",
            "--profile",
            "none",
            "--out",
            str(tmp_path),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )
    assert p.returncode == 0, p.stderr
    (path,) = tmp_path.glob("*.json")
    report = load_report(path)
    assert report.host.ruler is not None and report.host.ruler.kind == ruler.RULER_KIND
    assert len(report.host.ruler.per_round_s) == 2  # before the rounds, and in the one round
