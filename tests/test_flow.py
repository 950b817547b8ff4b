"""A newcomer's flow: the ETA from the planned measuring time, a line per cell in a log, the grid's
size up front, `run` with every cell option `sweep` has, `--warmup 0`, one unit per figure, and a
worker process started before the model is read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchbox import parse, worker_process
from benchbox.errors import BadInput
from benchbox.format import fmt_duration_s, fmt_ms, fmt_ms_group, fmt_ms_range
from benchbox.measure import stats
from benchbox.measure.cell import MeasureSettings
from benchbox.model import inspect_model
from benchbox.report.render import histogram_text
from benchbox.schema import Cell, Load, ServingConfig
from benchbox.sweep.eta import Eta, is_large, planned_cell_s, size_note
from benchbox.sweep.runner import CellContext
from benchbox.sweep.worker import ProcessWorkers

QUICK = ["--duration", "0.3s", "--warmup", "0", "--window", "0.1s"]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchbox", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=240,
    )


def _cell(i: int, status: str = "pending") -> Cell:
    config = ServingConfig("cpu", 1, 1, i + 1)
    return Cell(
        id=f"cpu/t1/i1/b{i + 1}/closed-c1", config=config, load=Load("closed", 1), status=status
    )


# ---------------------------------------------------------------- units


def test_a_figure_reads_in_one_unit():
    assert fmt_ms_group(0.0553, 0.345) == ("0.055 ms", "0.345 ms")  # not "55.3 µs ± 0.345 ms"
    assert fmt_ms_range(0.0575, 6.764) == "0.058 ms … 6.764 ms"
    assert fmt_ms_range(0.0073, 0.0076, " → ") == "7.3 µs → 7.6 µs"
    assert fmt_ms_group(12.0, None) == ("12.0 ms", "—")
    assert fmt_ms_group(None, None) == ("—", "—")
    assert fmt_ms(0.0553) == "55.3 µs" and fmt_ms(1500.0) == "1.50 s"


def test_the_histograms_first_bin_holds_the_minimum():
    samples = np.array([0.0575, 0.06, 0.07, 0.09, 0.2, 1.0, 6.764])
    h = stats.histogram_from_samples(samples)
    lines = histogram_text(h, bins=4).plain.splitlines()
    first_lo = lines[0].split("…")[0].strip()
    last_hi = lines[-1].split("…")[1].split()[0:2]
    assert first_lo == "0.058 ms"  # the exact minimum, 0.0575 ms, is inside the first bin
    assert float(first_lo.split()[0]) <= 0.0575 + 0.0005
    assert " ".join(last_hi) == "6.764 ms"
    for line in lines:  # each bin's two edges in one unit
        lo, hi = line.split("…")
        assert lo.split()[-1] == hi.split()[1]
    assert sum(int(line.split()[-1]) for line in lines) == len(samples)


# ---------------------------------------------------------------- ETA and the grid's size


def test_the_eta_counts_planned_measuring_time_not_cells():
    settings = MeasureSettings(warmup_s=0.5, duration_s=1.0)
    assert planned_cell_s(settings) == 1.5
    adaptive = MeasureSettings(warmup_s=None, window_s=0.5, min_duration_s=1.5)
    assert planned_cell_s(adaptive) == 2.5
    eta = Eta(planned_cell_s(settings))
    eta.plan([_cell(0), _cell(1), _cell(2), _cell(3, status="ok")])  # the ok one is done
    assert eta.planned_s == 4.5
    eta.start(100.0)
    assert eta.seconds_left(100.5) == 4.0  # the running cell has 1 s of its 1.5 s left
    assert eta.seconds_left(110.0) == 3.0  # a cell running long takes no more than planned off
    eta.finish(_cell(0).id)
    assert eta.seconds_left(110.0) == 3.0
    eta.skip({_cell(1).id})
    assert eta.seconds_left(110.0) == 1.5


def test_a_large_sweep_says_its_size_first():
    assert not is_large(8, 12.0)
    assert is_large(8, 90.0) and is_large(64, 10.0)
    note = size_note(64, 96.0, adaptive=True)
    assert note.startswith("64 cells planned, about 1m36s of measuring at most")
    assert fmt_duration_s(45) == "45s" and fmt_duration_s(3725) == "1h02m"


def test_a_log_gets_a_line_per_finished_cell_with_the_eta(tmp_path, mlp_path):
    done = cli(
        "sweep", str(mlp_path), "--batch", "1,2", "--concurrency", "1", "--threads", "1",
        "--search", "grid", *QUICK, "--out", str(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == "2 cells planned, about 1s of measuring"
    cells = [line for line in lines if line.startswith("[")]
    assert [line.split()[0] for line in cells] == ["[1/2]", "[2/2]"]
    assert all(" ok " in line and " inf/s  p99 " in line and "  ETA " in line for line in cells)
    assert cells[-1].endswith("ETA 0s")


# ---------------------------------------------------------------- --warmup 0


def test_warmup_zero_turns_warm_up_off():
    assert parse.parse_warmup_s("0") == 0.0
    assert parse.parse_warmup_s("0ms") == 0.0
    assert parse.parse_warmup_s("auto") is None
    assert parse.parse_warmup_s("250ms") == 0.25
    with pytest.raises(BadInput):
        parse.parse_warmup_s("-1s")


def test_a_run_with_warmup_zero_measures_from_the_first_request(tmp_path, mlp_path):
    done = cli("run", str(mlp_path), *QUICK, "--out", str(tmp_path), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["settings"]["measure"]["warmup_s"] == 0.0
    (cell,) = report["cells"]
    assert cell["status"] in ("ok", "unstable")
    assert cell["result"]["requests"] > 0


# ---------------------------------------------------------------- run takes sweep's cell options


def test_run_takes_dynamic_batching_and_a_rate(tmp_path, mlp_path):
    done = cli(
        "run", str(mlp_path), "--load", "open", "--rate", "300",
        "--dynamic-batching", "max_batch=8,delay=1ms", *QUICK, "--out", str(tmp_path), "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (cell,) = json.loads(done.stdout)["cells"]
    assert cell["config"]["dynamic_batching"]["max_batch"] == 8
    assert cell["load"]["rate_rps"] == 300


def test_run_searches_the_peak_rate_without_a_rate(tmp_path, mlp_path):
    done = cli(
        "run", str(mlp_path), "--load", "open", "--latency-target", "p99=50ms",
        *QUICK, "--out", str(tmp_path), "--json",
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    (cell,) = json.loads(done.stdout)["cells"]
    assert "peak" in cell["id"]
    assert cell["result"]["peak_rate_rps"] > 0


def test_run_refuses_a_batching_grid_in_one_line(tmp_path, mlp_path):
    done = cli(
        "run", str(mlp_path), "--load", "open", "--dynamic-batching", "auto",
        "--latency-target", "p99=5ms", "--out", str(tmp_path),
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("error: --dynamic-batching 'auto' gives ")
    assert lines[0].endswith("`benchbox run` measures one") and lines[1].startswith("hint: ")
    assert not list(tmp_path.iterdir())  # nothing measured, no report


# ---------------------------------------------------------------- the early worker process


def test_the_first_worker_takes_the_process_started_early(mlp_path):
    info = inspect_model(mlp_path)
    ctx = CellContext(str(mlp_path), info, MeasureSettings(warmup_s=0.0, duration_s=0.2))
    factory = ProcessWorkers(warm=True)
    early = factory.spare
    assert early is not None and early.proc.poll() is None
    factory.settle()
    assert early.ready  # it imported what it measures with, and said so
    worker = factory(ctx, None)
    assert factory.spare is None
    try:
        done = worker.measure(_cell(0))
        assert done.status in ("ok", "unstable"), done.reason
        assert worker.pid == early.proc.pid and worker.processes_started == 1
    finally:
        worker.close()
    assert early.proc.poll() is not None


def test_an_early_process_nobody_took_is_stopped():
    factory = ProcessWorkers(warm=True)
    early = factory.spare
    factory.close()
    assert early is not None and early.proc.poll() is not None
    assert factory.spare is None


def test_the_command_lines_early_process_goes_to_the_sweep_or_is_stopped():
    worker_process.start_early()
    early = worker_process._early[0]
    factory = ProcessWorkers(warm=True)
    assert factory.spare is early  # the sweep's first worker takes it
    assert worker_process.take_early() is None
    factory.close()
    assert early.proc.poll() is not None
    worker_process.start_early()
    unused = worker_process._early[0]
    worker_process.discard_early()  # bad input, --help: nobody took it
    assert unused.proc.poll() is not None and worker_process._early == []


@pytest.mark.parametrize(
    ("argv", "starts"),
    [
        (["sweep", "mlp"], True),
        (["run", "mlp", "--batch", "4"], True),
        (["sweep", "--help"], False),
        (["sweep", "mlp", "--no-isolation"], False),
        (["compare", "a.json", "b.json"], False),
        ([], False),
    ],
)
def test_only_a_measuring_command_starts_a_worker_early(argv, starts, monkeypatch):
    from benchbox.cli import _measures

    monkeypatch.delenv("BENCHBOX_NO_ISOLATION", raising=False)
    assert _measures(argv) is starts
    monkeypatch.setenv("BENCHBOX_NO_ISOLATION", "1")
    assert _measures(argv) is False
