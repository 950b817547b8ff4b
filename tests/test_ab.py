"""`benchbox ab`: two real models in randomized interleaved trials of one cell."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchbox import zoo
from benchbox.store import load_report

QUICK = ["--duration", "0.25s", "--warmup", "0.05s", "--window", "0.05s"]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchbox", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )


def test_ab_interleaves_trials_and_finds_a_much_heavier_candidate_slower(tmp_path, zoo_cache):
    base = str(zoo.path_for("mlp", cache=zoo_cache))
    heavy = str(zoo.path_for("mlp", cache=zoo_cache, hidden=2048))
    p = cli("ab", base, heavy, "--trials", "3", "--seed", "5", *QUICK, "--out", str(tmp_path),
            "--json")  # fmt: skip
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert data["trials"] == 3 and data["cell"] == "cpu/t1/i1/b1/closed-c1"
    rounds = [data["order"][i : i + 2] for i in range(0, 6, 2)]
    assert all(sorted(r) == ["baseline", "candidate"] for r in rounds)
    for name in ("p50", "p99"):
        f = data["ratios"][name]
        assert f["level"] == "between-trial" and f["lo"] <= f["ratio"] <= f["hi"]
    assert data["ratios"]["p50"]["verdict"] == "slower" and data["ratios"]["p50"]["lo"] > 2.0
    assert data["ratios"]["throughput"]["verdict"] == "slower"
    summary = data["ratios"]["p50"]["summary"]
    assert summary.startswith(f"{Path(heavy).stem} ran ")
    assert summary.endswith(f"times slower than {Path(base).stem} (p50)")
    assert data["regressed"]  # not a gate without --fail-on-regression: exit 0 above
    for path, model in zip(data["reports"], (base, heavy), strict=True):
        report = load_report(path)
        (cell,) = report.cells
        assert report.model.path == model and cell.result.trials == 3
        assert [t.order for t in cell.result.per_trial] == [
            i for i, side in enumerate(data["order"]) if path.find(f"ab-{side}-") >= 0
        ]


def test_ab_fails_on_regression_with_exit_1_and_a_readable_line(tmp_path, zoo_cache):
    base = str(zoo.path_for("mlp", cache=zoo_cache))
    heavy = str(zoo.path_for("mlp", cache=zoo_cache, hidden=2048))
    p = cli("ab", base, heavy, "--trials", "3", *QUICK, "--out", str(tmp_path),
            "--fail-on-regression", "5%")  # fmt: skip
    assert p.returncode == 1, p.stderr
    assert "regressed by more than 5%" in p.stderr and "p50" in p.stderr
    assert "times slower than" in p.stdout and "3 trials each" in p.stdout


def test_ab_refuses_bad_input_in_one_line(tmp_path):
    p = cli("ab", "mlp", str(tmp_path / "missing.onnx"), "--trials", "2", "--out", str(tmp_path))
    assert p.returncode == 2 and "Traceback" not in p.stderr
    p = cli("ab", "mlp", "mlp", "--trials", "zero", "--out", str(tmp_path))
    assert p.returncode == 2 and "--trials 'zero' is not a count" in p.stderr


def test_ab_with_one_trial_gives_a_real_within_trial_ci_and_a_warning(tmp_path, zoo_cache):
    """issue 24: `ab --trials 1` of a model with itself printed p50 1.010x (CI 1.010–1.010)."""
    base = str(zoo.path_for("mlp", cache=zoo_cache))
    p = cli("ab", base, base, "--trials", "1", *QUICK, "--out", str(tmp_path), "--json",
            "--fail-on-regression", "1%")  # fmt: skip
    assert p.returncode in (0, 1), p.stderr
    data = json.loads(p.stdout)
    for name in ("p50", "p99"):
        f = data["ratios"][name]
        assert f["level"] == "within-trial" and f["lo"] < f["ratio"] < f["hi"]
    assert data["ratios"]["throughput"]["hi"] is None  # no interval from one trial
    assert data["ratios"]["throughput"]["verdict"] == "not significant"
    assert data["warnings"] and "one trial a side" in data["warnings"][0]
    assert data["decides"] in data["ratios"] and data["verdict"].startswith("verdict: ")


def test_ab_states_one_verdict_and_which_figure_decides(tmp_path, zoo_cache):
    base = str(zoo.path_for("mlp", cache=zoo_cache))
    heavy = str(zoo.path_for("mlp", cache=zoo_cache, hidden=2048))
    p = cli("ab", base, heavy, "--trials", "2", *QUICK, "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr
    assert "verdict: " in p.stdout and "Holm" in p.stdout
    assert "the other figures are supporting detail" in p.stdout
