"""--trials and its rules hold for a remote target as for a local model: against a small real
OIP server (tests/servers/oip_small.py) on 127.0.0.1."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest
from servers.oip_small import serving
from servers.process import free_ports

ROOT = pathlib.Path(__file__).resolve().parents[1]
QUICK = ["--duration", "0.5s", "--warmup", "0.2s", "--batch", "3"]


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "benchbox", *args],
        capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT,
    )  # fmt: skip


@pytest.fixture(scope="module")
def url():
    (port,) = free_ports(1)
    with serving(port):
        yield f"http://127.0.0.1:{port}/v2/models/ok"


def one_report(out: pathlib.Path) -> dict:
    (path,) = out.glob("*.json")
    return json.loads(path.read_text())


def test_run_on_a_target_measures_the_trials_given_and_records_them(url, tmp_path):
    done = cli("run", "--target", url, "--trials", "1", "--concurrency", "1", *QUICK,
               "--out", str(tmp_path))  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = one_report(tmp_path)
    assert report["settings"]["trials"]["trials"] == 1
    (cell,) = report["cells"]
    assert cell["result"]["trials"] == 1 and len(cell["result"]["per_trial"]) == 1


def test_sweep_on_a_target_gives_every_cell_the_trials_given(url, tmp_path):
    done = cli("sweep", "--target", url, "--trials", "2", "--concurrency", "1,2", *QUICK,
               "--out", str(tmp_path))  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = one_report(tmp_path)
    assert report["settings"]["trials"]["trials"] == 2
    assert [c["result"]["trials"] for c in report["cells"]] == [2, 2]


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_trials_above_max_trials_is_refused_for_a_target(url, tmp_path, command):
    done = cli(command, "--target", url, "--trials", "3", "--max-trials", "2", *QUICK,
               "--out", str(tmp_path))  # fmt: skip
    assert done.returncode == 2
    assert "--trials 3 is above --max-trials 2" in done.stderr
    assert "Traceback" not in done.stderr and not list(tmp_path.glob("*.json"))
