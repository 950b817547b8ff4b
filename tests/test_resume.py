"""Ctrl-C and SIGTERM stop a sweep promptly and save it; `--resume` finishes it in the same file."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import onnx
import pytest

from benchbox import model as model_mod
from benchbox import zoo
from benchbox.errors import BadInput
from benchbox.measure.cell import MeasureSettings
from benchbox.parse import parse_target
from benchbox.schema import PowerSpec, Profile, SweepSettings, TrialPolicy, replace
from benchbox.store import load_report, save_report
from benchbox.sweep import SweepRequest, resume_model_path, resume_sweep, run_sweep
from benchbox.sweep.plan import SweepSpec
from benchbox.sweep.worker import FAULT_ENV

QUICK = ["--duration", "0.2s", "--warmup", "0.05s", "--window", "0.1s", "--threads", "1"]
IDS = ["cpu/t1/i1/b1/closed-c1", "cpu/t1/i1/b2/closed-c1", "cpu/t1/i1/b4/closed-c1"]


def start(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "benchbox", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,  # its own process group, as a terminal's foreground job has
    )


def wait_for_report(folder: Path, until, timeout_s: float = 90.0) -> Path:
    """The report in `folder` once `until(data)` holds for its JSON."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for path in folder.glob("*.json"):
            data = json.loads(path.read_text())  # written atomically: always whole
            if until(data):
                return path
        time.sleep(0.1)
    raise AssertionError(f"no report in {folder} reached the expected state")


def statuses(path: Path) -> dict[str, str]:
    return {c.id: c.status for c in load_report(path).cells}


def test_ctrl_c_saves_the_partial_report_and_resume_measures_only_pending_and_failed(
    mlp_path, tmp_path
):
    # b1 and b2 are measured; b4 hangs in its worker until Ctrl-C
    proc = start(
        "sweep",
        str(mlp_path),
        "--batch",
        "1,2,4",
        "--concurrency",
        "1",
        "--search",
        "grid",
        "--trials",
        "1",  # each cell's duration below is one trial's
        "--out",
        str(tmp_path),
        *QUICK,
        env={FAULT_ENV: f"hang:{IDS[2]}"},
    )
    path = wait_for_report(tmp_path, lambda d: d["cells"][1]["status"] != "pending")
    time.sleep(0.5)  # b4 is in the hung worker now
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C: the whole group
    _, err = proc.communicate(timeout=15)  # a hung cell would otherwise hold it for minutes
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert f"partial report is saved in {path}" in err
    assert f"benchbox sweep --resume {path}" in err
    assert statuses(path) == {IDS[0]: "ok", IDS[1]: "ok", IDS[2]: "pending"}

    # Mark b1 failed, as a crash would have left it, then resume.
    before = load_report(path)
    failed = replace(before.cells[0], status="failed", reason="worker crashed", result=None)
    save_report(replace(before, cells=(failed, *before.cells[1:])), path)
    p = subprocess.run(
        [sys.executable, "-m", "benchbox", "sweep", "--resume", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    after = load_report(path)
    assert [c.status for c in after.cells] == ["ok", "ok", "ok"]
    assert after.cells[1] == before.cells[1]  # measured before: kept as it was
    assert after.cells[0].result.requests > 0 and after.cells[2].result.requests > 0
    assert after.settings == before.settings  # the original sweep's settings
    # Measured for the sweep's own 0.2 s, not the default adaptive rule's 1 s at least.
    assert 0.2 <= after.cells[2].result.duration_s < 1.0
    assert list(tmp_path.glob("*.json")) == [path]  # the same file, no new one
    assert json.loads(p.stdout)["cells"] == json.loads(path.read_text())["cells"]


@pytest.mark.parametrize("isolated", [True, False], ids=["worker-process", "no-isolation"])
def test_sigterm_stops_a_sweep_within_seconds_and_leaves_its_cells_pending(
    mlp_path, tmp_path, isolated
):
    if isolated:  # the cell hangs in its worker; only the parent's signal handling ends it
        extra, env = list(QUICK), {FAULT_ENV: f"hang:{IDS[0]}"}
    else:  # a 60 s cell measured in the sweep's own process
        extra, env = ["--no-isolation", "--duration", "60s", "--warmup", "0.05s"], None
    proc = start(
        "sweep",
        str(mlp_path),
        "--batch",
        "1,2",
        "--concurrency",
        "1",
        "--threads",
        "1",
        "--search",
        "grid",
        "--out",
        str(tmp_path),
        *extra,
        env=env,
    )
    path = wait_for_report(tmp_path, lambda d: True)
    time.sleep(1.5)  # into the first cell
    proc.send_signal(signal.SIGTERM)  # `kill PID`: the parent alone
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "partial report is saved" in err
    assert statuses(path) == {IDS[0]: "pending", IDS[1]: "pending"}


def without_pooled(cell):
    """The cell without the intervals the sweep's pooled variance gives it."""
    pooled = {"latency_ci_ms": None, "throughput_ci_ips": None, "ci_df": None}
    return replace(cell, result=replace(cell.result, **pooled))


def test_adaptive_resume_keeps_measured_cells_and_remeasures_the_failed_one(mlp_path, tmp_path):
    req = SweepRequest(
        model_path=str(mlp_path),
        spec=SweepSpec(batch_sizes=(1, 2), concurrencies=(1, 2)),
        settings=MeasureSettings(warmup_s=0.05, duration_s=0.2, window_s=0.1),
        out_dir=str(tmp_path),
        search="adaptive",
        latency_target=parse_target("p99=1s"),
        isolate=False,
        # A fixed count: under auto, the victim's new trials change the pooled variance, and a
        # kept cell may then rightly get one more trial (the search still keeps it).
        trials=TrialPolicy(trials=3),
    )
    report, path = run_sweep(req)
    measured = [c for c in report.cells if c.status in ("ok", "unstable")]
    assert measured
    victim = measured[0]
    cells = tuple(
        replace(c, status="failed", reason="crashed", result=None) if c.id == victim.id else c
        for c in report.cells
    )
    save_report(replace(report, cells=cells, recommendation=None), path)
    again, again_path = resume_sweep(path, isolate=False)
    assert again_path == path
    by_id = {c.id: c for c in again.cells}
    assert by_id[victim.id].status in ("ok", "unstable")
    assert by_id[victim.id].result != victim.result  # measured anew
    for c in measured[1:]:
        # kept, not measured again; its intervals are the pool's, which the victim's new trials
        # joined (measure/moderate.py), so they are derived anew
        assert without_pooled(by_id[c.id]) == without_pooled(c)
    assert again.recommendation is not None and again.recommendation.target_ms == 1000.0


def test_resume_refuses_a_model_whose_sha256_changed(mlp_path, tmp_path):
    model = tmp_path / "m.onnx"
    shutil.copy(mlp_path, model)
    info = model_mod.inspect_model(model)
    report = _report_for(info)
    assert resume_model_path(report) == str(model)
    onnx.save(zoo.build("mlp", hidden=32), model)
    with pytest.raises(BadInput) as err:
        resume_model_path(report)
    assert "changed since the sweep" in err.value.message
    assert info.sha256[:12] in err.value.message
    assert "original model file" in err.value.hint


def test_resume_finds_a_moved_model_given_on_the_command_line(mlp_path, tmp_path):
    info = replace(model_mod.inspect_model(mlp_path), path=str(tmp_path / "gone.onnx"))
    report = _report_for(info)
    with pytest.raises(BadInput, match="is not found") as err:
        resume_model_path(report)
    assert "benchbox sweep MODEL --resume REPORT" in err.value.hint
    assert resume_model_path(report, str(mlp_path)) == str(mlp_path)


def test_resume_refuses_a_report_without_sweep_settings(mlp_path, tmp_path):
    path = save_report(_report_for(model_mod.inspect_model(mlp_path)), tmp_path / "r.json")
    data = json.loads(path.read_text())
    data["settings"] = {}
    path.write_text(json.dumps(data))
    with pytest.raises(BadInput, match="does not hold the settings of a sweep"):
        resume_sweep(path, isolate=False)


def test_resume_refuses_a_hand_edited_profile_that_cannot_describe_a_machine(mlp_path, tmp_path):
    report = _report_for(model_mod.inspect_model(mlp_path))
    profile = Profile("box", "", 1.0, "test", "2026-01-01", PowerSpec(idle_w=10.0, tdp_w=100.0))
    path = save_report(replace(report, profile=profile), tmp_path / "r.json")
    data = json.loads(path.read_text())
    data["profile"]["power"]["idle_w"] = 500.0  # types fine, values impossible
    path.write_text(json.dumps(data))
    with pytest.raises(BadInput, match=r"profile: \[power\].idle_w \(500\) is above"):
        resume_sweep(path, isolate=False)


def _report_for(info):
    from benchbox.devices import host_info
    from benchbox.schema import Report
    from benchbox.sweep.plan import grid

    settings = SweepSettings(model=info.path, measure=MeasureSettings(), search="grid")
    return Report(host_info(), info, tuple(grid(SweepSpec())), settings=settings)


def test_resume_runs_the_missing_trials_of_a_sweep_interrupted_in_its_trial_phase(
    mlp_path, tmp_path
):
    # Both cells get their first trial; b2's second trial hangs in its worker until Ctrl-C, so
    # the saved report holds b2 at 1 of 2 trials. Resume must measure that trial.
    ids = IDS[:2]
    proc = start(
        "sweep",
        str(mlp_path),
        "--batch",
        "1,2",
        "--concurrency",
        "1",
        "--search",
        "grid",
        "--trials",
        "2",
        "--out",
        str(tmp_path),
        *QUICK,
        env={FAULT_ENV: f"hang-trial:{ids[1]}"},
    )
    path = wait_for_report(tmp_path, lambda d: all(c["status"] == "ok" for c in d["cells"]))
    wait_for_report(  # b1 has its second trial (before or after b2's hang), or b2 hangs first
        tmp_path,
        lambda d: d["cells"][0]["result"]["trials"] == 2 or d["cells"][1]["result"]["per_trial"],
    )
    time.sleep(3.0)  # b2's later trial is in its hung worker now
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    before = load_report(path)
    assert before.cells[1].result.trials == 1  # the hung trial never finished

    p = subprocess.run(
        [sys.executable, "-m", "benchbox", "sweep", "--resume", str(path)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert p.returncode == 0, p.stderr
    assert "0 cells planned" not in p.stderr
    after = load_report(path)
    for cell in after.cells:
        assert cell.status == "ok"
        assert cell.result.trials == 2, cell.id
        assert len(cell.result.per_trial) == 2
        assert cell.result.ci_level == "between-trial"
        first, second = cell.result.per_trial
        # the figures are those of both trials, combined again
        assert cell.result.requests == first.requests + second.requests
        assert cell.result.duration_s == pytest.approx(first.duration_s + second.duration_s)
    # b2's first trial is the one measured before the interruption
    kept, saved = after.cells[1].result.per_trial[0], before.cells[1].result
    assert (kept.requests, kept.throughput_ips) == (saved.requests, saved.throughput_ips)
