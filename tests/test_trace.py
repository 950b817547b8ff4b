"""Arrivals from a shape of traffic (issue 22): rate profiles of steps and ramps, drawn exactly by
time-rescaling, and trace replay (a file of offsets or a timestamp column of --data, at a
speed), on the punctual issuer; their grammar, their schedules, the report, and bad input."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

from benchbox.data.trace import column_offsets_s, file_offsets_s
from benchbox.errors import BadInput
from benchbox.load.open import OpenDriver
from benchbox.load.schedule import (
    profile_offsets_ns,
    profile_schedule_ns,
    trace_schedule_ns,
)
from benchbox.parse import (
    parse_rate_profile,
    parse_speed,
    parse_trace_column,
    profile_mean_rps,
    profile_text,
)
from benchbox.schema import Load, ServingConfig, Trace, cell_id

ROOT = pathlib.Path(__file__).resolve().parents[1]
QUICK = ["--warmup", "0.1s", "--window", "0.1s", "--trials", "1"]


# ---------------------------------------------------------------- grammar


@pytest.mark.parametrize("text, canonical, mean", [
    ("100:30s,500:30s", "100:30s,500:30s", 300.0),
    (" 100 .. 500 : 1m ", "100..500:60s", 300.0),
    ("0..200:2s,200:500ms", "0..200:2s,200:0.5s", 120.0),
    ("50:1s,0:1s", "50:1s,0:1s", 25.0),
])  # fmt: skip
def test_a_rate_profile_reads_back_in_canonical_text(text, canonical, mean):
    segments = parse_rate_profile(text)
    assert profile_text(segments) == canonical
    assert profile_text(parse_rate_profile(canonical)) == canonical
    assert profile_mean_rps(segments) == pytest.approx(mean)


@pytest.mark.parametrize("bad, says", [
    ("100:0s", "lasts 0s"), ("100:30s,abc", "'abc' has no :DURATION"),
    ("abc:3s", "is not a rate"), ("100:fast", "is not a duration"),
    ("-5:3s", "must be 0 or more"), ("0:3s", "every rate is 0"), ("100:30s,", "not a valid list"),
])  # fmt: skip
def test_bad_rate_profiles_are_refused_in_one_line(bad, says):
    with pytest.raises(BadInput, match=says):
        parse_rate_profile(bad)


def test_speeds_and_trace_columns_parse_and_bad_ones_are_refused():
    assert (parse_speed("2x"), parse_speed("0.5X"), parse_speed("2")) == (2.0, 0.5, 2.0)
    for bad in ("0", "fast", "-1x", "0x", "nanx"):
        with pytest.raises(BadInput, match="not a speed above 0"):
            parse_speed(bad)
    assert parse_trace_column("ts") == ("ts", "s")
    assert parse_trace_column("ts:ms") == ("ts", "ms")
    with pytest.raises(BadInput, match="unknown unit"):
        parse_trace_column("ts:days")


# ---------------------------------------------------------------- schedules


def test_constant_steps_put_every_request_exactly_on_its_rate():
    offsets = profile_offsets_ns(parse_rate_profile("10:1s,20:1s"), "constant") / 1e9
    expected = np.concatenate([np.arange(1, 11) / 10, 1 + np.arange(1, 21) / 20])
    np.testing.assert_allclose(offsets, expected, atol=1e-9)


def test_a_constant_ramp_follows_the_inverse_of_its_cumulative_rate():
    # rate 0 -> 100 over 10 s: Λ(t) = 5 t², so request k is due at sqrt(k / 5)
    offsets = profile_offsets_ns(parse_rate_profile("0..100:10s"), "constant") / 1e9
    k = np.arange(1, 501)
    np.testing.assert_allclose(offsets, np.sqrt(k / 5), atol=1e-9)
    down = profile_offsets_ns(parse_rate_profile("100..0:10s"), "constant") / 1e9
    np.testing.assert_allclose(down, 10 - np.sqrt(100 - k / 5), atol=1e-6)  # 100 t - 5 t² = k


@pytest.mark.parametrize("seed", range(12))
def test_poisson_steps_hold_their_counts_for_every_seed(seed):
    """Time-rescaling is exact: a step's count is Poisson(rate x length), so it stays within six
    standard deviations (a failure once in 10^9), and no request falls in a pause."""
    offsets = profile_offsets_ns(parse_rate_profile("100:3s,0:1s,500:3s"), "poisson", seed) / 1e9
    assert np.all(np.diff(offsets) >= 0) and offsets[0] > 0 and offsets[-1] <= 7.0
    for lo, hi, mean in ((0, 3, 300), (3, 4, 0), (4, 7, 1500)):
        n = int(np.count_nonzero((offsets > lo) & (offsets <= hi)))
        assert abs(n - mean) <= 6 * np.sqrt(mean), (lo, hi, n)
    again = profile_offsets_ns(parse_rate_profile("100:3s,0:1s,500:3s"), "poisson", seed)
    assert np.array_equal(again / 1e9, offsets)  # seeded: the same schedule every time


@pytest.mark.parametrize("seed", range(6))
def test_a_poisson_ramp_rises_as_its_rate_does(seed):
    offsets = profile_offsets_ns(parse_rate_profile("100..500:4s"), "poisson", seed) / 1e9
    for lo in range(4):  # ∫ over [lo, lo+1] of 100 + 100 t = 150 + 100 lo
        n = int(np.count_nonzero((offsets > lo) & (offsets <= lo + 1)))
        mean = 150 + 100 * lo
        assert abs(n - mean) <= 6 * np.sqrt(mean)


def test_gamma_arrivals_keep_the_profiles_mean_count_and_burst():
    offsets = profile_offsets_ns(parse_rate_profile("200:20s"), "gamma:cv=2", 5) / 1e9
    gaps = np.diff(offsets)
    assert len(offsets) == pytest.approx(4000, rel=0.15)
    assert gaps.std() / gaps.mean() == pytest.approx(2.0, rel=0.15)


def test_the_warmup_runs_at_the_first_rate_before_the_profile():
    offsets = profile_schedule_ns(parse_rate_profile("10:1s,20:1s"), 0.5, "constant") / 1e9
    np.testing.assert_allclose(offsets[:5], [0.1, 0.2, 0.3, 0.4, 0.5], atol=1e-9)
    np.testing.assert_allclose(offsets[5:15], 0.5 + np.arange(1, 11) / 10, atol=1e-9)
    assert len(offsets) == 5 + 30


def test_a_trace_replays_its_first_seconds_to_warm_up_then_all_of_it_at_its_speed():
    times, index = trace_schedule_ns(np.array([0.0, 0.5, 1.0, 2.0]), speed=2.0, warmup_s=0.4)
    assert times.tolist() == [0, 250_000_000, 400_000_000, 650_000_000, 900_000_000, 1_400_000_000]
    assert index.tolist() == [0, 1, 0, 1, 2, 3]  # request i of the trace, with its sample i
    slow, _ = trace_schedule_ns(np.array([0.0, 0.5, 1.0]), speed=0.5, warmup_s=0.0)
    assert slow.tolist() == [0, 1_000_000_000, 2_000_000_000]


def test_a_data_trace_sends_request_i_with_sample_i():
    """The driver sends pool[order[i]]: the inputs of each request stay paired with its time."""
    sent: list[int] = []
    pool = [{"x": np.full((1, 1), k, np.float32)} for k in range(5)]
    order = np.array([0, 1, 0, 1, 2, 3, 4])
    offsets = np.arange(len(order), dtype=np.int64) * 200_000
    driver = OpenDriver([lambda f: sent.append(int(f["x"][0, 0]))], pool, 1.0, 1, 1, 1.0,
                        record_items=True, offsets_ns=offsets, order=order)  # fmt: skip
    driver.start()
    deadline = time.monotonic() + 10
    while len(driver.recorders[0].end_ns) < len(order) and time.monotonic() < deadline:
        time.sleep(0.01)
    driver.stop()
    assert sent == order.tolist()
    assert list(driver.recorders[0].extra["item"]) == order.tolist()


# ---------------------------------------------------------------- trace sources


def test_a_trace_file_of_lines_or_json_becomes_offsets_from_its_first(tmp_path):
    lines = tmp_path / "offsets.txt"
    lines.write_text("# seconds\n" + "\n".join(f"{2 + 0.01 * k:.2f}" for k in range(40)) + "\n\n")
    np.testing.assert_allclose(file_offsets_s(str(lines)), 0.01 * np.arange(40), atol=1e-9)
    listed = tmp_path / "offsets.json"
    listed.write_text(json.dumps([0.02 * k for k in range(30)]))
    assert file_offsets_s(str(listed))[-1] == pytest.approx(0.58)
    keyed = tmp_path / "keyed.json"
    keyed.write_text(json.dumps({"offsets_s": [0.02 * k for k in range(30)]}))
    assert len(file_offsets_s(str(keyed))) == 30


@pytest.mark.parametrize("body, says", [
    ("0\n0.1\n-0.5\n", "line 3: the offset -0.5 is negative"),
    ("0\n0.2\n0.1\n", "line 3: 0.1 comes before the offset above it"),
    ("0\n0.1\nsoon\n", "line 3: 'soon' is not a number"),
    ("0\n0.1\n", "2 request\\(s\\), fewer than 30"),
    ("[0, 0.1, null]", "item 2: None is not a number"),
])  # fmt: skip
def test_bad_trace_files_name_the_line(tmp_path, body, says):
    path = tmp_path / "bad.txt"
    # 40 good offsets after the bad line, so that only the bad line is wrong
    pad = (
        "" if "fewer" in says or body.startswith("[") else "".join(f"{10 + k}\n" for k in range(40))
    )
    path.write_text(body + pad)
    with pytest.raises(BadInput, match=says):
        file_offsets_s(str(path))


def write_jsonl(path: pathlib.Path, times_ms: list[float], ts: str = "ts") -> pathlib.Path:
    rows = [{ts: t, "x": [float(i % 7)] * 64} for i, t in enumerate(times_ms)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_timestamp_column_in_epoch_milliseconds_becomes_offsets_in_seconds(tmp_path):
    epoch_ms = [1_700_000_000_000 + 20 * k for k in range(40)]
    data = write_jsonl(tmp_path / "requests.jsonl", epoch_ms)
    offsets = column_offsets_s(str(data), "ts", "ms")
    np.testing.assert_allclose(offsets, 0.02 * np.arange(40), atol=1e-6)
    with pytest.raises(BadInput, match=r"no column 'when' in .* \(its columns: ts, x\)"):
        column_offsets_s(str(data), "when", "ms")
    with pytest.raises(BadInput, match="row 0: .* is not a number"):
        column_offsets_s(str(data), "x", "s")


def test_cell_ids_tell_profiles_and_traces_apart():
    cfg = ServingConfig("cpu", 1, 1, 1)
    a = cell_id(cfg, Load("open", 1, rate_rps=300.0, profile="100:30s,500:30s"))
    b = cell_id(cfg, Load("open", 1, rate_rps=300.0, profile="100..500:60s"))
    assert a == "cpu/t1/i1/b1/open-r100:30s,500:30s-c1" and a != b
    assert cell_id(cfg, Load("open", 1, rate_rps=300.0)) == "cpu/t1/i1/b1/open-r300-c1"
    t = Load("trace", 2, rate_rps=50.0, trace=Trace("file:/t.txt", 200, 4.0, 2.0))
    assert cell_id(cfg, t) == "cpu/t1/i1/b1/trace-n200-x2-c2"


def test_loads_keep_their_old_keys_and_the_new_ones_read_back():
    from benchbox.schema import SweepSpec, from_dict, to_dict

    plain = Load("open", 1, rate_rps=100.0, distribution="poisson")
    assert to_dict(plain) == {"kind": "open", "concurrency": 1, "rate_rps": 100.0,
                              "distribution": "poisson"}  # fmt: skip
    assert "rate_profile" not in to_dict(SweepSpec()) and "trace" not in to_dict(SweepSpec())
    traced = Trace("column:ts:ms", 200, 4.0, 2.0)
    for load in (Load("open", 1, rate_rps=300.0, profile="100..500:60s"),
                 Load("trace", 2, rate_rps=50.0, trace=traced)):  # fmt: skip
        assert from_dict(Load, json.loads(json.dumps(to_dict(load)))) == load


def test_a_profile_or_trace_cell_measures_its_own_length_after_a_fixed_warmup():
    from benchbox.options import MeasureOptions
    from benchbox.schema import MeasureSettings, SweepSpec
    from benchbox.sweep.request import shaped_settings

    spec = SweepSpec(load_kind="open", rates_rps=(300.0,), rate_profile="100:30s,500:30s")
    got = shaped_settings(MeasureSettings(warmup_s=1.0), spec, MeasureOptions())
    assert (got.warmup_s, got.duration_s, got.max_duration_s) == (1.0, 60.0, 60.0)
    traced = SweepSpec(load_kind="trace", trace=Trace("file:/t", 100, 10.0, 4.0))
    assert shaped_settings(MeasureSettings(), traced, MeasureOptions()).duration_s == 2.5
    with pytest.raises(BadInput, match="needs a fixed --warmup, not auto"):
        shaped_settings(MeasureSettings(warmup_s=None), spec, MeasureOptions(warmup="auto"))


# ---------------------------------------------------------------- real runs


def cli(*args: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "benchbox", *args], capture_output=True,
                          text=True, env=env, timeout=180, cwd=cwd)  # fmt: skip


def one_report(out: pathlib.Path) -> dict:
    (path,) = out.glob("*.json")
    return json.loads(path.read_text())


def test_a_step_profile_run_measures_its_length_and_records_the_profile(tmp_path):
    done = cli("run", "mlp", "--load", "open", "--rate", "100:0.4s,300:0.4s", *QUICK,
               "--out", "out", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = one_report(tmp_path / "out")
    (cell,) = report["cells"]
    assert cell["id"] == "cpu/t1/i1/b1/open-r100:0.4s,300:0.4s-c1"
    assert cell["load"] == {"kind": "open", "concurrency": 1, "rate_rps": 200.0,
                            "distribution": "poisson", "profile": "100:0.4s,300:0.4s"}  # fmt: skip
    assert report["settings"]["spec"]["rate_profile"] == "100:0.4s,300:0.4s"
    assert cell["status"] in ("ok", "unstable")
    # The profile's length, not the adaptive default (1 s at least): at any speed, since the
    # controller never stops early and the default would measure at least 1 s more.
    assert 0.8 <= cell["result"]["duration_s"] < 1.6
    assert cell["result"]["achieved_rate_rps"] > 0 and cell["result"]["issue_delay_ms"]


def test_a_data_trace_run_replays_the_column_and_records_what_it_replayed(tmp_path):
    data = write_jsonl(tmp_path / "requests.jsonl", [1_700_000_000_000 + 10 * k for k in range(80)])
    done = cli("run", "mlp", "--load", "trace", "--data", str(data), "--trace-column", "ts:ms",
               "--speed", "2x", *QUICK, "--out", "out", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = one_report(tmp_path / "out")
    (cell,) = report["cells"]
    assert cell["id"] == "cpu/t1/i1/b1/trace-n80-x2-c1"
    assert cell["load"]["kind"] == "trace"
    assert cell["load"]["trace"] == {"source": "column:ts:ms", "requests": 80,
                                     "duration_s": 0.79, "speed": 2.0}  # fmt: skip
    assert cell["load"]["rate_rps"] == pytest.approx(80 / 0.395)
    assert report["settings"]["spec"]["trace"]["requests"] == 80
    assert 0.395 <= cell["result"]["duration_s"] < 0.79  # 0.79 s of trace at 2x
    assert 0 < cell["result"]["requests"] <= 80 + 5


def test_a_profile_sweep_resumes_its_failed_cell_with_the_same_profile(tmp_path):
    """--resume measures a profile cell again with the profile it was planned with (its
    length as the duration), into the same report."""
    from dataclasses import replace

    from benchbox.store import load_report, save_report

    done = cli("sweep", "mlp", "--load", "open", "--rate", "100:0.3s,200:0.3s", "--batch", "1",
               "--threads", "1", "--concurrency", "1", *QUICK, "--out", "out",
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (path,) = (tmp_path / "out").glob("*.json")
    before = load_report(path)
    (cell,) = before.cells
    save_report(replace(before, cells=(replace(cell, status="failed", result=None),)), path)
    again = cli("sweep", "--resume", str(path), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    (after,) = load_report(path).cells
    assert after.status in ("ok", "unstable") and after.load == cell.load
    assert after.load.profile == "100:0.3s,200:0.3s"
    assert 0.6 <= after.result.duration_s < 1.2


def test_a_data_trace_sweep_resumes_its_failed_cell_with_the_same_trace(tmp_path):
    """--resume reads the trace column again and replays it into the same report: the same
    load (source, requests, span, speed), measured over the trace's length."""
    from dataclasses import replace

    from benchbox.store import load_report, save_report

    data = write_jsonl(tmp_path / "requests.jsonl", [1_700_000_000_000 + 10 * k for k in range(60)])
    done = cli("sweep", "mlp", "--load", "trace", "--data", str(data), "--trace-column", "ts:ms",
               "--batch", "1", "--threads", "1", "--concurrency", "1", *QUICK, "--out", "out",
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (path,) = (tmp_path / "out").glob("*.json")
    before = load_report(path)
    (cell,) = before.cells
    assert cell.load.kind == "trace" and cell.load.trace.requests == 60
    save_report(replace(before, cells=(replace(cell, status="failed", result=None),)), path)
    again = cli("sweep", "--resume", str(path), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    after_report = load_report(path)
    (after,) = after_report.cells
    assert after.status in ("ok", "unstable") and after.load == cell.load
    assert after_report.data.sha256 == before.data.sha256
    assert 0.59 <= after.result.duration_s < 1.2  # 0.59 s of trace at 1x
    assert 0 < after.result.requests <= 60 + 5


def test_verify_replays_a_trace_cell_on_the_server_with_the_reports_data(tmp_path):
    """A trace cell's verification sends the report's own rows at the report's times."""
    from servers import oip_small
    from servers.oip_small import serving
    from servers.process import free_ports

    n = 50
    data = tmp_path / "requests.npz"
    x = np.repeat(np.arange(n, dtype=np.float32)[:, None], 4, axis=1)
    np.savez(data, x=x, ts=1_700_000_000.0 + 0.01 * np.arange(n))
    (port,) = free_ports(1)
    url = f"http://127.0.0.1:{port}/v2/models/ok"
    with serving(port):
        done = cli("run", "--target", url, "--load", "trace", "--data", str(data),
                   "--trace-column", "ts", *QUICK, "--out", "out", cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr
        (path,) = (tmp_path / "out").glob("*.json")
        saved = path.read_bytes()
        oip_small.SEEN.clear()
        checked = cli("verify", str(path), "--target", url, "--latency-target", "p99=10s",
                      "--warmup", "0.1s", "--json", cwd=tmp_path)  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert "Traceback" not in checked.stderr and path.read_bytes() == saved
    got = json.loads(checked.stdout)
    assert got["cell"] == "remote/t1/i1/b1/trace-n50-x1-c1"
    assert oip_small.SEEN and oip_small.SEEN <= set(range(n))  # the report's rows, none other
    assert 0 < got["measured"]["requests"] <= n + 5
    assert "requests from the report's data" in " ".join(got["notes"])


@pytest.mark.parametrize("args, says", [
    (["--load", "trace"], "--load trace needs the arrival times"),
    (["--load", "trace", "--trace", "{bad}"], "line 3: 0.1 comes before the offset above it"),
    (["--load", "trace", "--trace", "{neg}"], "line 2: the offset -1 is negative"),
    (["--load", "trace", "--trace", "{good}", "--speed", "0"], "--speed '0' is not a speed"),
    (["--load", "trace", "--trace", "{good}", "--speed", "fast"], "--speed 'fast' is not"),
    (["--load", "open", "--rate", "100:0s"], "lasts 0s"),
    (["--load", "open", "--rate", "100:30s,abc"], "'abc' has no :DURATION"),
    (["--load", "open", "--rate", "100,200"], "measures one cell, at one rate"),
    (["--load", "trace", "--data", "{data}", "--trace-column", "when"],
     "no column 'when' in .* \\(its columns: ts, x\\)"),
    (["--load", "trace", "--data", "{data}", "--trace-column", "x"], "row 0: .* is not a number"),
    (["--load", "open", "--rate", "10", "--speed", "2x"], "--speed applies to --load trace"),
    (["--load", "open", "--rate", "10:1s", "--duration", "1s"], "--duration does not apply"),
    (["--load", "trace", "--trace", "{good}", "--rate", "10"], "--rate does not apply to --load"),
    (["--load", "open", "--rate", "1000000:1h"], "above the limit of 50,000,000"),
])  # fmt: skip
def test_bad_trace_and_profile_inputs_exit_2_in_one_line(tmp_path, args, says):
    import re

    files = {
        "bad": "0\n0.2\n0.1\n" + "".join(f"{1 + k / 100}\n" for k in range(40)),
        "neg": "0\n-1\n" + "".join(f"{1 + k / 100}\n" for k in range(40)),
        "good": "".join(f"{k / 100}\n" for k in range(40)),
    }
    for name, text in files.items():
        (tmp_path / f"{name}.txt").write_text(text)
    write_jsonl(tmp_path / "data.jsonl", [10.0 * k for k in range(40)])
    given = [
        str(tmp_path / ("data.jsonl" if a == "{data}" else f"{a[1:-1]}.txt"))
        if a.startswith("{")
        else a
        for a in args
    ]
    done = cli("run", "mlp", *given, *QUICK, "--out", "none", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[0].startswith("error: ") and re.search(says, lines[0]), done.stderr
    assert all(line.startswith("hint: ") for line in lines[1:2]) and len(lines) <= 2
    assert "Traceback" not in done.stderr and not (tmp_path / "none").exists()


# ---------------------------------------------------------------- remote targets


def test_split_generators_share_a_given_schedule_and_its_samples_round_robin():
    from benchbox.remote.generator import LoadPlan, split_plan

    offsets, items = np.arange(10, dtype=np.int64) * 1000, np.arange(10, dtype=np.int64)
    plans = split_plan(LoadPlan("open", 3, 10.0, offsets_ns=offsets, items=items), 2)
    assert [p.offsets_ns.tolist() for p in plans] == [
        offsets[0::2].tolist(),
        offsets[1::2].tolist(),
    ]
    assert [p.items.tolist() for p in plans] == [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]]


def test_a_remote_trace_run_replays_the_data_on_the_server(tmp_path):
    from servers import oip_small
    from servers.oip_small import serving
    from servers.process import free_ports

    n = 60
    data = tmp_path / "requests.npz"
    x = np.repeat(np.arange(n, dtype=np.float32)[:, None], 4, axis=1)
    np.savez(data, x=x, ts=1_700_000_000.0 + 0.01 * np.arange(n))  # epoch seconds
    (port,) = free_ports(1)
    oip_small.SEEN.clear()
    with serving(port):
        done = cli("run", "--target", f"http://127.0.0.1:{port}/v2/models/ok", "--load", "trace",
                   "--data", str(data), "--trace-column", "ts", *QUICK, "--out", "out",
                   cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (cell,) = one_report(tmp_path / "out")["cells"]
    assert cell["id"] == "remote/t1/i1/b1/trace-n60-x1-c1"
    assert cell["load"]["trace"]["source"] == "column:ts:s"
    assert cell["load"]["trace"]["duration_s"] == pytest.approx(0.59)
    assert cell["result"]["requests"] > 0
    assert oip_small.SEEN and oip_small.SEEN <= set(range(n))  # the data's rows, none other
