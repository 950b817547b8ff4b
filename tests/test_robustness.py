"""Crash isolation and reports that survive: real worker deaths, hung cells, killed writers."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from benchbox import model as model_mod
from benchbox.errors import BadInput
from benchbox.measure.cell import MeasureSettings
from benchbox.schema import Cell, Load, ServingConfig, cell_id, replace
from benchbox.store import load_report, save_report
from benchbox.sweep.runner import CellContext
from benchbox.sweep.worker import FAULT_ENV, ProcessWorker, default_cell_timeout_s, exit_reason

QUICK = ["--duration", "0.2s", "--warmup", "0.05s", "--window", "0.1s", "--search", "grid"]
QUICK += ["--trials", "1"]  # one trial a cell: isolation is what is tested here


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchbox", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **(env or {})},
    )


def cell(batch: int, threads: int = 1) -> Cell:
    config, load = ServingConfig("cpu", threads, 1, batch), Load("closed", 1)
    return Cell(cell_id(config, load), config, load)


def saved_report(folder: Path):
    (path,) = folder.glob("*.json")
    return load_report(path)


def test_worker_killed_by_pid_while_measuring_fails_its_cell_and_a_fresh_worker_goes_on(mlp_path):
    info = model_mod.inspect_model(mlp_path)
    long = MeasureSettings(warmup_s=0.05, duration_s=60.0, window_s=0.2)
    worker = ProcessWorker(CellContext(str(mlp_path), info, long))
    out: list[Cell] = []
    thread = threading.Thread(target=lambda: out.append(worker.measure(cell(1))))
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while worker.pid is None and time.monotonic() < deadline:
            time.sleep(0.05)
        victim = worker.pid
        time.sleep(3.0)  # spawned, imported, and into its 60 s cell
        os.kill(victim, signal.SIGKILL)
        thread.join(30)
        assert not thread.is_alive()
        (first,) = out
        assert first.status == "failed" and first.result is None
        assert "killed by SIGKILL (signal 9)" in first.reason
        assert "OOM" in first.reason
        # The next cell gets a new process (short cells from here on).
        worker.ctx = replace(worker.ctx, settings=replace(long, duration_s=0.2))
        second = worker.measure(cell(2))
        assert second.status in ("ok", "unstable") and second.result.requests > 0
        assert worker.pid not in (None, victim)
        assert worker.processes_started == 2
    finally:
        worker.close()
    assert worker.pid is None


def test_a_segfault_fails_only_its_cell_and_the_sweep_goes_on_in_every_group(mlp_path, tmp_path):
    crash = cell(1, threads=1).id
    p = cli(
        "sweep",
        str(mlp_path),
        "--batch",
        "1,2",
        "--threads",
        "1,2",
        "--concurrency",
        "1",
        "--out",
        str(tmp_path),
        *QUICK,
        env={FAULT_ENV: f"segv:{crash}"},
    )
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    by_id = {c.id: c for c in saved_report(tmp_path).cells}
    assert by_id[crash].status == "failed"
    assert "killed by SIGSEGV (signal 11)" in by_id[crash].reason
    # the same group's next cell ran in a fresh worker; the other group never noticed
    for other in (cell(2, 1), cell(1, 2), cell(2, 2)):
        assert by_id[other.id].status in ("ok", "unstable"), by_id[other.id].reason
        assert by_id[other.id].result.requests > 0


def test_a_worker_that_exits_and_a_hung_cell_are_failed_with_their_reasons(mlp_path, tmp_path):
    info = model_mod.inspect_model(mlp_path)
    quick = MeasureSettings(warmup_s=0.05, duration_s=0.2, window_s=0.1)
    worker = ProcessWorker(CellContext(str(mlp_path), info, quick), cell_timeout_s=2.0)
    old = os.environ.get(FAULT_ENV)
    try:
        os.environ[FAULT_ENV] = f"exit:{cell(1).id}"
        exited = worker.measure(cell(1))
        os.environ[FAULT_ENV] = f"hang:{cell(2).id}"  # read by the fresh child spawned next
        hung = worker.measure(cell(2))
        fine = worker.measure(cell(4))
    finally:
        worker.close()
        if old is None:
            os.environ.pop(FAULT_ENV, None)
        else:
            os.environ[FAULT_ENV] = old
    assert exited.status == "failed" and "exited with code 3" in exited.reason
    assert hung.status == "failed" and "timed out after 2s (--cell-timeout)" in hung.reason
    assert fine.status in ("ok", "unstable") and fine.result.requests > 0
    assert worker.processes_started == 3


def test_default_cell_timeout_covers_warmup_and_the_longest_measurement():
    fixed = MeasureSettings(warmup_s=1.0, duration_s=10.0)
    adaptive = MeasureSettings(warmup_s=None, duration_s=None, max_duration_s=30.0)
    assert default_cell_timeout_s(fixed) == pytest.approx(2 * 11.0 + 120.0)
    assert default_cell_timeout_s(adaptive) == pytest.approx(2 * (10.0 + 30.0) + 120.0)


def test_exit_reasons_name_the_signal_or_the_code():
    assert exit_reason(-11) == "the worker process was killed by SIGSEGV (signal 11)"
    assert exit_reason(-6).startswith("the worker process was killed by SIGABRT")
    assert exit_reason(7) == "the worker process exited with code 7"


WRITER = """
import sys
from benchbox.store import atomic_write_text
path, a, b = sys.argv[1], open(sys.argv[2]).read(), open(sys.argv[3]).read()
print("ready", flush=True)
while True:
    atomic_write_text(path, a)
    atomic_write_text(path, b)
"""


def big_report(mlp_path, n: int, requests: int):
    """A valid report of n cells with raw samples, a few MB of JSON."""
    from benchbox.devices import host_info
    from benchbox.schema import LatencyStats, Report, Result

    stats = LatencyStats(1, 0.1, 0.5, 1, 1.2, 1.3, 1.5, 2, 3)
    result = Result(requests, requests, 1.0, requests, requests, stats, samples_ms=[1.25] * 2000)
    cells = tuple(replace(cell(b), status="ok", result=result) for b in range(1, n + 1))
    info = model_mod.inspect_model(mlp_path)
    return Report(host_info(), info, cells, created="2026-01-01T00:00:00+00:00")


def test_killing_a_writer_mid_write_leaves_the_old_report_intact(mlp_path, tmp_path):
    from benchbox.schema import report_to_json
    from benchbox.store import atomic_write_text

    texts = {}
    for name, requests in (("a", 111), ("b", 222)):
        texts[name] = report_to_json(big_report(mlp_path, 100, requests))
        (tmp_path / f"{name}.txt").write_text(texts[name])
    target = tmp_path / "report.json"
    atomic_write_text(target, texts["a"])
    kills_mid_write = 0
    for attempt in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(target), str(tmp_path / "a.txt")]
            + [str(tmp_path / "b.txt")],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.1 * attempt)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # kill as soon as a temp file is being written
            if any(name.endswith(".tmp") for name in os.listdir(tmp_path)):
                break
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
        strays = list(tmp_path.glob(".report.json.*.tmp"))
        kills_mid_write += bool(strays)
        for stray in strays:
            stray.unlink()
        # whole, loadable, and one of the two versions, never a mix
        assert target.read_text() in (texts["a"], texts["b"])
        assert load_report(target).cells[0].result.requests in (111, 222)
    assert kills_mid_write >= 1  # at least one kill landed while a temp file was being written


def test_a_newer_major_schema_names_the_version_needed(tmp_path, mlp_path):
    path = tmp_path / "future.json"
    data = json.loads(save_report(big_report(mlp_path, 1, 5), path).read_text())
    path.write_text(json.dumps(dict(data, schema="benchbox.report/3.3")))
    with pytest.raises(BadInput) as err:
        load_report(path)
    assert "benchbox.report/3" in err.value.message
    assert "this benchbox reads benchbox.report/2" in err.value.message
    assert "writes benchbox.report/3" in err.value.hint


def test_a_newer_minor_schema_loads_and_ignores_unknown_keys(tmp_path, mlp_path):
    path = tmp_path / "minor.json"
    data = json.loads(save_report(big_report(mlp_path, 1, 5), path).read_text())
    data = dict(data, schema="benchbox.report/2.7", added_later={"x": 1})
    path.write_text(json.dumps(data))
    assert load_report(path).cells[0].result.requests == 5


def test_truncated_and_hand_edited_reports_point_at_the_problem(tmp_path, mlp_path):
    path = tmp_path / "r.json"
    text = save_report(big_report(mlp_path, 2, 5), path).read_text()
    path.write_text(text[:700])
    with pytest.raises(BadInput) as err:
        load_report(path)
    line = text[:700].count("\n") + 1
    assert f"is not valid JSON (line {line}, column" in err.value.message
    assert "truncated or hand-edited" in err.value.hint
    data = json.loads(text)
    data["cells"][1]["result"]["requests"] = "many"
    path.write_text(json.dumps(data))
    with pytest.raises(BadInput, match=r"cells\[1\]\.result\.requests: expected an integer"):
        load_report(path)


def test_reports_are_written_with_the_umask_not_owner_only(tmp_path, mlp_path):
    path = save_report(big_report(mlp_path, 1, 5), tmp_path / "r.json")
    mask = os.umask(0o022)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
    path.chmod(0o640)
    save_report(big_report(mlp_path, 1, 6), path)  # a rewrite keeps the file's permissions
    assert path.stat().st_mode & 0o777 == 0o640


def test_children_killed_by_a_signal_leave_no_resource_tracker_warning(mlp_path, tmp_path):
    hang = cell(1).id
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchbox", "sweep", str(mlp_path), "--batch", "1,2"]
        + ["--concurrency", "1", "--threads", "1", "--out", str(tmp_path), *QUICK],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, FAULT_ENV: f"hang:{hang}"},
    )
    try:
        deadline, children = time.monotonic() + 60, []
        while not children and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            children = psutil.Process(proc.pid).children(recursive=True)
        assert children, "the sweep started no worker process"
        # The worker process starts with the command; the sweep hands it the first (hanging)
        # cell once the report is saved.
        while not list(tmp_path.glob("*.json")) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2.0)  # the worker has taken the hanging cell
        # Everything the sweep started dies, as when the OOM killer or `kill -9` hits them.
        for child in psutil.Process(proc.pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                child.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "resource_tracker" not in err and "Traceback" not in err
    by_id = {c.id: c for c in saved_report(tmp_path).cells}
    assert "killed by SIGKILL" in by_id[hang].reason
    assert by_id[cell(2).id].status in ("ok", "unstable")  # a fresh worker went on
