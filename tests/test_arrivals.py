"""Arrival processes of the open loop: gamma gaps of a given coefficient of variation (bursty
traffic), their grammar, and a real open-loop run that measures and records them."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from benchbox.errors import BadInput
from benchbox.load.issuer import schedule_offsets_ns
from benchbox.parse import arrival_cv, parse_arrival

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("text, cv", [("gamma:cv=2", 2.0), ("gamma:cv=0.5", 0.5),
                                      ("poisson", 1.0), ("constant", 0.0)])  # fmt: skip
def test_the_gaps_have_the_mean_of_the_rate_and_the_cv_asked_for(text, cv):
    dist = parse_arrival(text)
    assert arrival_cv(dist) == cv
    offsets = schedule_offsets_ns(200.0, 20_000, dist, seed=3)
    gaps = np.diff(np.concatenate([[0], offsets])).astype(float)
    assert np.all(gaps >= 0) and np.all(np.diff(offsets) >= 0)
    assert gaps.mean() == pytest.approx(1e9 / 200, rel=0.05)  # mean gap = 1/rate
    assert gaps.std() / gaps.mean() == pytest.approx(cv, abs=0.06 * max(cv, 1))
    again = schedule_offsets_ns(200.0, 20_000, dist, seed=3)
    assert np.array_equal(offsets, again)  # seeded: the same schedule every time


def test_gamma_with_cv_above_one_is_burstier_than_poisson():
    """A share of gaps far below the mean (a burst) grows with the cv."""

    def short_share(dist: str) -> float:
        gaps = np.diff(schedule_offsets_ns(100.0, 10_000, dist, seed=1)).astype(float)
        return float(np.mean(gaps < 0.1 * gaps.mean()))

    assert short_share("gamma:cv=3") > short_share("poisson") > short_share("gamma:cv=0.5")


@pytest.mark.parametrize(
    "bad, says",
    [("gamma", "gamma needs cv=N"), ("gamma:cv=0", "gamma needs cv=N"),
     ("gamma:cv=-1", "above 0"), ("gamma:k=2", "gamma needs cv=N"),
     ("gamma:cv=nan", "gamma needs cv=N"), ("pareto", "unknown arrival distribution")],
)  # fmt: skip
def test_bad_arrivals_are_refused_in_one_line(bad, says):
    with pytest.raises(BadInput, match=says):
        parse_arrival(bad)


def cli(*args: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "benchbox", *args], capture_output=True,
                          text=True, env=env, timeout=180, cwd=cwd)  # fmt: skip


def test_a_bursty_open_loop_run_measures_and_records_its_arrivals(tmp_path):
    quick = ["--duration", "0.5s", "--warmup", "0.1s", "--window", "0.1s", "--trials", "1"]
    done = cli("run", "mlp", "--load", "open", "--rate", "200", "--arrival", "Gamma:CV=2",
               *quick, "--out", "out", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (path,) = (tmp_path / "out").glob("*.json")
    report = json.loads(path.read_text())
    assert report["settings"]["spec"]["arrival"] == "gamma:cv=2"
    (cell,) = report["cells"]
    assert cell["load"]["distribution"] == "gamma:cv=2"
    assert cell["status"] in ("ok", "unstable") and cell["result"]["requests"] > 0
    bad = cli("run", "mlp", "--load", "open", "--rate", "200", "--arrival", "gamma:cv=0",
              *quick, "--out", "none", cwd=tmp_path)  # fmt: skip
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "gamma needs cv=N" in bad.stderr and not (tmp_path / "none").exists()
