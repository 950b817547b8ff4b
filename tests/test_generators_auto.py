"""`--generators auto`: the growth rule on synthetic probe figures (no timing), the count and
busy shares it records against a real PyTriton server, and bad counts as one line, exit 2."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from fixtures_reports import make_report, make_result

from benchbox import recommend, schema
from benchbox.errors import BadInput
from benchbox.measure.cell import MeasureSettings
from benchbox.parse import LatencyTarget, parse_generators
from benchbox.remote import session as remote
from benchbox.remote.auto import ProbeStep, choose, limited, next_count, probe_text
from benchbox.schema import Cell, GeneratorStats, Load, ServingConfig, cell_id, replace
from benchbox.warning_kinds import WarningKind

ROOT = pathlib.Path(__file__).resolve().parents[1]


def step(n: int, rate: float, busy: float) -> ProbeStep:
    return ProbeStep(n, rate, (busy,) * n)


# ---------------------------------------------------------------- the rule, as pure functions


def test_an_open_loop_grows_while_short_of_its_rate_and_the_generator_is_busy():
    assert next_count((step(1, 600, 0.9),), 1000, cap=4) == 2
    # it reached the intended rate: one process carries it
    assert next_count((step(1, 990, 0.9),), 1000, cap=4) is None
    # short, but the generator is idle: the server is the slow side
    assert next_count((step(1, 600, 0.1),), 1000, cap=4) is None


def test_growth_stops_when_a_process_added_did_not_raise_the_rate():
    rising = (step(1, 600, 0.9), step(2, 900, 0.8))
    assert next_count(rising, 2000, cap=4) == 3
    flat = (step(1, 600, 0.9), step(2, 610, 0.8))
    assert next_count(flat, 2000, cap=4) is None
    assert choose(flat).processes == 1  # two processes bought nothing: one is measured


def test_growth_never_passes_the_cap():
    assert next_count((step(1, 600, 0.9), step(2, 1000, 0.9)), 5000, cap=2) is None
    assert next_count((step(1, 600, 0.9),), 5000, cap=1) is None


def test_a_closed_loop_grows_while_busy_and_the_rate_rises():
    assert next_count((step(1, 5000, 0.6),), None, cap=4) == 2
    assert next_count((step(1, 5000, 0.6), step(2, 8000, 0.5)), None, cap=4) == 3
    assert next_count((step(1, 5000, 0.6), step(2, 5100, 0.5)), None, cap=4) is None
    assert choose((step(1, 5000, 0.6), step(2, 8000, 0.5), step(3, 8100, 0.4))).processes == 2


def test_generators_at_their_cap_that_still_helped_are_the_limit():
    steps = (step(1, 600, 0.9), step(2, 1000, 0.6))
    assert limited(steps, step(2, 1000, 0.6), 5000, cap=2)  # short, at the cap, still rising
    assert not limited(steps, step(2, 4990, 0.6), 5000, cap=2)  # reached its rate
    # below the cap: the probe tried one more, it did not help, so the server is the limit
    assert not limited((step(1, 600, 0.9), step(2, 610, 0.9)), step(1, 600, 0.9), 5000, cap=2)
    # a fixed count (cap = the count itself) busy past 85%: the limit, with no probe to ask
    assert limited((), step(1, 3000, 0.9), None, cap=1)
    assert not limited((), step(1, 3000, 0.5), None, cap=1)


def test_the_probe_note_names_each_count_tried_and_the_choice():
    text = probe_text((step(1, 600, 0.9), step(2, 1000, 0.6)), 2)
    assert (
        text
        == "--generators auto tried 1: 600/s at 90% busy, 2: 1,000/s at 60% busy; measured with 2"
    )


def test_a_client_limited_cell_is_never_recommended_and_says_why():
    samples = np.random.default_rng(0).lognormal(np.log(5.0), 0.2, 2000)
    r = make_result(samples, 1, 8, None, None, keep_samples=False)
    config = ServingConfig(device="remote", batch_size=1)
    load = Load("closed", 8)
    ok = Cell(cell_id(config, load), config, load, status="ok", result=r)
    free = replace(r, generator=GeneratorStats(1, 0.5, (0.5,), auto=True, limited=False))
    bound = replace(r, generator=GeneratorStats(2, 0.9, (0.9, 0.8), auto=True, limited=True))
    assert recommend.judgeable(replace(ok, result=free))
    limited_cell = replace(ok, result=bound)
    assert not recommend.judgeable(limited_cell)
    report = replace(make_report(), cells=[limited_cell])
    rec = recommend.recommend(report, LatencyTarget("p99", 500.0))
    assert rec.winner is None
    assert "generators were the limit" in rec.rejected[limited_cell.id]


def test_an_older_report_s_generator_loads_with_no_shares_and_not_limited():
    old = {"processes": 2, "busy_share": 0.4}
    gen = schema._build(GeneratorStats, old, "result.generator")
    assert gen == GeneratorStats(2, 0.4) and gen.busy_shares == () and not gen.limited


@pytest.mark.parametrize("text", ["0", "-1", "abc", "1.5", ""])
def test_a_bad_generator_count_is_bad_input(text):
    with pytest.raises(BadInput, match="give a count of at least 1, or auto"):
        parse_generators(text)


def test_auto_and_counts_parse():
    assert parse_generators("auto") is None and parse_generators("AUTO") is None
    assert parse_generators("3") == 3


# ---------------------------------------------------------------- the CLI and a real server


def cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "benchbox", *args], capture_output=True,
                          text=True, env=env, timeout=300, cwd=ROOT)  # fmt: skip


@pytest.mark.parametrize("count", ["0", "-1", "abc"])
def test_generators_0_fails_in_one_line_with_exit_2(count):
    done = cli("sweep", "--target", "http://127.0.0.1:9/v2/models/m", f"--generators={count}")
    assert done.returncode == 2, done.stderr
    lines = [x for x in done.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and f"--generators {count}" in lines[0], done.stderr


def test_auto_records_the_count_and_each_generators_busy_share(pytriton):
    session = remote.connect(pytriton.http("mlp"))
    config = ServingConfig(device="remote", batch_size=1)
    load = Load("closed", 8)
    cell = Cell(cell_id(config, load), config, load)
    settings = MeasureSettings(warmup_s=0.3, duration_s=1.0)
    done = remote.measure_cell(session, cell, settings, generators=None)
    assert done.status in ("ok", "unstable"), done.reason
    gen = done.result.generator
    assert gen.auto and 1 <= gen.processes <= min(8, len(os.sched_getaffinity(0)))
    assert len(gen.busy_shares) == gen.processes
    assert all(0.0 <= b <= 1.0 for b in gen.busy_shares) and gen.busy_share == max(gen.busy_shares)
    kinds = [w.kind for w in done.warnings]
    if len(os.sched_getaffinity(0)) > 1:  # a probe ran: its note names what it tried
        assert WarningKind.GENERATORS_AUTO in kinds
    assert (WarningKind.GENERATOR_LIMIT in kinds) == gen.limited


def test_a_sweep_report_keeps_auto_and_the_busy_shares(pytriton, tmp_path):
    done = cli("sweep", "--target", pytriton.http("mlp"), "--concurrency", "4",
               "--duration", "1s", "--warmup", "0.3s", "--out", str(tmp_path))  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    (path,) = tmp_path.glob("*.json")
    gen = json.loads(path.read_text())["cells"][0]["result"]["generator"]
    assert gen["auto"] is True and len(gen["busy_shares"]) == gen["processes"] >= 1
