"""A catalogue of bad input: each case runs the real CLI and expects a one- or two-line message
that says what to do, the documented exit code, and no traceback.

The cases run as subprocesses, a few at a time, once for the module; each test checks one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from benchbox import zoo
from benchbox.errors import BadInput
from benchbox.format import reason_line
from benchbox.load.closed import ClosedDriver
from benchbox.measure.cell import MIN_MEASURED_REQUESTS, MeasureSettings, drive, summarize
from benchbox.parse import parse_input_values, parse_shapes, parse_target
from benchbox.schema import LatencyStats, Result, replace, report_from_json
from benchbox.store import load_report
from benchbox.sweep import SweepRequest, run_sweep, search
from benchbox.sweep.plan import SweepSpec, grid
from benchbox.sweep.runner import failure_reason

# One trial a cell: these tests are about input checks, not trials (tests/test_sweep_trials.py).
QUICK = ["--duration", "0.2s", "--warmup", "0.05s", "--window", "0.1s", "--trials", "1"]
ONE = ["--batch", "1", "--concurrency", "1", "--threads", "1", "--search", "grid"]


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]  # {dir} is the fixture folder
    exit_code: int
    says: str  # a regex the error (and hint) lines must match: what is wrong and what to do
    extra: tuple[str, ...] = field(default=())


def sweep(*args: str) -> tuple[str, ...]:
    return ("sweep", *args, *QUICK, "--out", "{dir}/reports")


def swept(model: str, *args: str) -> tuple[str, ...]:
    return ("sweep", "{dir}/" + model, *ONE, *QUICK, "--out", "{dir}/reports", *args)


CASES = [
    Case("missing model", sweep("{dir}/nope.onnx"), 2, r"does not exist.*\n.*benchbox models"),
    Case("a directory", sweep("{dir}"), 2, r"is a directory, not an ONNX file"),
    Case("a text file", sweep("{dir}/text.onnx"), 2, r"not a valid ONNX model.*\n.*export it"),
    Case("truncated onnx", sweep("{dir}/trunc.onnx"), 2, r"truncated.*\n.*copied completely"),
    Case(
        "string inputs",
        swept("strings.onnx"),
        3,
        r"no cell could be measured.*\n.*skipped: string inputs are not supported",
    ),
    Case("unknown device", swept("mlp.onnx", "--device", "tpu"), 2, r"unknown device 'tpu'"),
    Case(
        "device not here",
        swept("mlp.onnx", "--device", "dml"),
        2,
        r"device dml:0 cannot run here.*\n.*pip install onnxruntime-directml",
    ),
    Case("zero batch", swept("mlp.onnx", "--batch", "0"), 2, r"--batch '0'.*minimum of 1"),
    Case(
        "negative concurrency",
        swept("mlp.onnx", "--concurrency", "-2"),
        2,
        r"--concurrency '-2'.*minimum of 1",
    ),
    Case("zero threads", swept("mlp.onnx", "--threads", "0"), 2, r"--threads '0'.*minimum of 1"),
    Case(
        "negative rate",
        swept("mlp.onnx", "--load", "open", "--rate", "-5"),
        2,
        r"--rate '-5'.*positive number",
    ),
    Case(
        "zero rate",
        swept("mlp.onnx", "--load", "open", "--rate", "100,0"),
        2,
        r"--rate '100,0'.*positive number",
    ),
    Case(
        "open load without rate",
        swept("mlp.onnx", "--load", "open"),
        2,
        r"needs --rate.*\n.*--rate 100",
    ),
    Case(
        "malformed list",
        swept("mlp.onnx", "--batch", "1,,4"),
        2,
        r"not a valid list.*\n.*comma-separated",
    ),
    Case(
        "list of words",
        swept("mlp.onnx", "--batch", "1,four"),
        2,
        r"'four' is not an integer.*\n.*--batch 1,2,4",
    ),
    Case(
        "malformed duration",
        swept("mlp.onnx", "--duration", "5parsecs"),
        2,
        r"not a duration.*\n.*500ms, 2s or 1m",
    ),
    Case(
        "malformed cell timeout",
        swept("mlp.onnx", "--cell-timeout", "never"),
        2,
        r"--cell-timeout 'never' is not a duration",
    ),
    Case(
        "percentile out of range",
        swept("mlp.onnx", "--latency-target", "p101=5ms"),
        2,
        r"'p101=5ms' is not valid.*\n.*p99=20ms",
    ),
    Case(
        "target that is not a time",
        swept("mlp.onnx", "--latency-target", "p99=fast"),
        2,
        r"'fast' is not a duration.*\n.*p99=20ms",
    ),
    Case(
        "unknown profile",
        swept("mlp.onnx", "--profile", "nosuch"),
        2,
        r"unknown profile 'nosuch'.*\n.*aws-c7i-2xlarge",
    ),
    Case(
        "malformed profile toml",
        swept("mlp.onnx", "--profile", "{dir}/bad.toml"),
        2,
        r"bad\.toml: not valid TOML.*\n.*expected layout",
    ),
    Case(
        "report from another major schema",
        ("report", "show", "{dir}/v3.json"),
        2,
        r"uses report schema benchbox\.report/3.*\n.*writes benchbox\.report/3",
    ),
    Case(
        "truncated report",
        ("recommend", "{dir}/trunc.json", "--latency-target", "p99=5ms"),
        2,
        r"not valid JSON \(line \d+, column \d+.*\n.*truncated or hand-edited",
    ),
    Case(
        "missing report",
        ("report", "show", "{dir}/none.json"),
        2,
        r"report .*none\.json does not exist",
    ),
    Case(
        "comparing different models",
        ("compare", "{dir}/good.json", "{dir}/other.json"),
        2,
        r"different models.*\n.*same ONNX file",
    ),
    Case(
        "recommending when no cell is ok",
        ("recommend", "{dir}/allfailed.json", "--latency-target", "p99=5ms"),
        3,
        r"no cell of this report was measured.*\n.*--resume",
    ),
    Case(
        "report folder under a file",
        swept("mlp.onnx", "--out", "{dir}/blocker/reports"),
        2,
        r"blocker is a file, not a folder.*\n.*--out",
    ),
    Case(
        "report folder in /proc",
        swept("mlp.onnx", "--out", "/proc/benchbox-reports"),
        2,
        r"cannot write reports to /proc/benchbox-reports.*\n.*--out",
    ),
    Case(
        "export folder under a file",
        (
            "recommend",
            "{dir}/good.json",
            "--latency-target",
            "p99=10s",
            "--export",
            "triton",
            "--out",
            "{dir}/blocker/deploy",
        ),
        2,
        r"cannot write.*blocker.*\n.*folder",
    ),
    Case(
        "report export onto a folder",
        ("report", "export", "{dir}/good.json", "--format", "csv", "--out", "{dir}"),
        2,
        r"is a folder.*\n.*give a file name",
    ),
    Case(
        "resume with a changed model",
        ("sweep", "--resume", "{dir}/changed.json"),
        2,
        r"changed\.onnx changed since the sweep \(sha256 .*\n.*original model file",
    ),
    Case(
        "resume a missing report",
        ("sweep", "--resume", "{dir}/none.json"),
        2,
        r"does not exist",
    ),
    Case(
        "fixed trials above --max-trials",
        ("run", "{dir}/mlp.onnx", "--duration", "0.2s", "--trials", "3", "--max-trials", "2"),
        2,
        r"--trials 3 is above --max-trials 2.*\n.*--max-trials 3 or more",
    ),
    Case(
        "run --dynamic-batching on a server",
        (
            "run",
            "--target",
            "http://127.0.0.1:9/v2/models/m",
            "--dynamic-batching",
            "max_batch=4",
            *QUICK,
            "--out",
            "{dir}/reports",
        ),
        2,
        r"--dynamic-batching does not apply to a remote target.*\n.*leave --dynamic-batching out",
    ),
    Case(
        "a header value holding a line break",
        (
            "sweep",
            "--target",
            "http://127.0.0.1:9/v2/models/m",
            "--header",
            "x-token=abc\r\nInjected: 1",
            *QUICK,
            "--out",
            "{dir}/reports",
        ),
        2,
        r"--header 'x-token': the value holds a line break.*\n.*one line",
    ),
    Case(
        "a header value a header cannot carry (it was exit 3, 'report it')",
        (
            "run",
            "--target",
            "http://127.0.0.1:9/v2/models/m",
            "--header",
            "x-token=p\u00e4ss",
            *QUICK,
            "--out",
            "{dir}/reports",
        ),  # fmt: skip
        2,
        r"--header 'x-token': the value holds '\u00e4', which a header cannot carry.*\n.*ASCII",
    ),
    Case(
        "a header name that is not a token",
        (
            "run",
            "--target",
            "http://127.0.0.1:9/v2/models/m",
            "--header",
            "x token=abc",
            *QUICK,
            "--out",
            "{dir}/reports",
        ),  # fmt: skip
        2,
        r"--header 'x token': a header name is letters, digits",
    ),
]


def _string_model() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("text", TensorProto.STRING, ["batch"])
    y = helper.make_tensor_value_info("out", TensorProto.STRING, ["batch"])
    graph = helper.make_graph([helper.make_node("Identity", ["text"], ["out"])], "s", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _quick_report(model: Path, out: Path, name: str) -> Path:
    req = SweepRequest(
        model_path=str(model),
        spec=SweepSpec(),
        settings=MeasureSettings(warmup_s=0.05, duration_s=0.2, window_s=0.1),
        out_dir=str(out / "made"),
        search="grid",
        isolate=False,
    )
    _, path = run_sweep(req)
    return Path(shutil.move(path, out / name))


@pytest.fixture(scope="module")
def results(tmp_path_factory, mlp_path) -> dict[str, subprocess.CompletedProcess]:
    d = tmp_path_factory.mktemp("bad")
    shutil.copy(mlp_path, d / "mlp.onnx")
    data = (d / "mlp.onnx").read_bytes()
    (d / "trunc.onnx").write_bytes(data[: len(data) // 2])
    (d / "text.onnx").write_text("this is a text file, not a model\n")
    onnx.save(_string_model(), d / "strings.onnx")
    (d / "bad.toml").write_text("name = 'x'\nprice_per_hour_usd = [\n")
    (d / "blocker").write_text("a file where a folder is expected\n")
    good = _quick_report(d / "mlp.onnx", d, "good.json")
    onnx.save(zoo.build("mlp", hidden=32), d / "other.onnx")
    _quick_report(d / "other.onnx", d, "other.json")
    shutil.copy(mlp_path, d / "changed.onnx")
    _quick_report(d / "changed.onnx", d, "changed.json")
    onnx.save(zoo.build("mlp", hidden=32), d / "changed.onnx")  # the model changed since
    text = good.read_text()
    (d / "trunc.json").write_text(text[: len(text) // 2])
    doc = json.loads(text)
    (d / "v3.json").write_text(json.dumps(dict(doc, schema="benchbox.report/3")))
    for cell in doc["cells"]:
        cell.update(status="failed", reason="the worker process was killed by SIGKILL", result=None)
    (d / "allfailed.json").write_text(json.dumps(doc))

    def run(case: Case) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "benchbox", *(a.replace("{dir}", str(d)) for a in case.args)],
            capture_output=True,
            text=True,
            timeout=180,
            cwd=d,
            env={**os.environ, "COLUMNS": "200"},
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        done = dict(zip([c.name for c in CASES], pool.map(run, CASES), strict=True))
    done["_dir"] = d
    return done


def test_the_catalogue_has_at_least_twenty_cases():
    assert len(CASES) >= 20
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_a_short_message_and_the_documented_exit_code(case, results):
    p = results[case.name]
    assert "Traceback" not in p.stderr + p.stdout
    assert p.returncode == case.exit_code, p.stderr
    lines = p.stderr.rstrip("\n").splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("error:")]
    assert len(errors) == 1, p.stderr
    message = lines[errors[0] :]
    # the message closes stderr: "error: ..." alone, or followed by one "hint: ..."
    assert len(message) == 1 or (len(message) == 2 and message[1].startswith("hint:")), p.stderr
    assert re.search(case.says, "\n".join(message)), "\n".join(message)


def test_a_model_with_string_inputs_has_its_cells_skipped_with_the_reason(results):
    reports = list((results["_dir"] / "reports").glob("strings-*.json"))
    assert len(reports) == 1
    (cell,) = load_report(reports[0]).cells
    assert cell.status == "skipped"
    assert cell.reason == "string inputs are not supported (input 'text')"


def test_nothing_is_written_where_a_case_was_refused(results):
    d = results["_dir"]
    assert (d / "blocker").read_text().startswith("a file")
    assert not any(p.name.endswith(".tmp") for p in d.rglob("*"))
    # only the string-model sweep got as far as saving a report
    assert [p.name.split("-")[0] for p in (d / "reports").glob("*.json")] == ["strings"]


# ================================================================ money: profiles and exports
# Issue 13 ("Money first", and exports that must ship the model measured). Each case runs the
# real CLI with its own environment and checks the exit code, a one-line message (plus at most
# one hint) and that every report in the folder is byte for byte what it was.


@dataclass(frozen=True)
class MoneyCase:
    name: str
    args: tuple[str, ...]  # {dir} is the fixture folder
    exit_code: int
    says: str
    env: tuple[tuple[str, str], ...] = ()
    not_written: tuple[str, ...] = ()  # paths under {dir} that must not exist afterwards


MONEY_CASES = [
    MoneyCase(
        "profiles folder that does not exist",
        swept("mlp.onnx"),
        2,
        r"BENCHBOX_PROFILES names .*no-such-folder, which does not exist\nhint: create the folder",
        env=(("BENCHBOX_PROFILES", "{dir}/no-such-folder"),),
    ),
    MoneyCase(
        "profiles folder that is a file",
        ("run", "{dir}/mlp.onnx", *QUICK, "--out", "{dir}/reports"),
        2,
        r"BENCHBOX_PROFILES names .*bad\.toml, which is a file, not a folder",
        env=(("BENCHBOX_PROFILES", "{dir}/bad.toml"),),
    ),
    MoneyCase(
        "profiles folder missing when listing them",
        ("profiles", "list"),
        2,
        r"BENCHBOX_PROFILES names .*gone, which does not exist",
        env=(("BENCHBOX_PROFILES", "{dir}/gone"),),
    ),
    MoneyCase(
        "empty profile name", swept("mlp.onnx", "--profile", ""), 2, r"profile name is empty"
    ),
    MoneyCase(
        "unknown profile on run",
        ("run", "{dir}/mlp.onnx", *QUICK, "--out", "{dir}/reports", "--profile", "nosuch"),
        2,
        r"unknown profile 'nosuch'.*\n.*aws-c7a-large",
    ),
    MoneyCase(
        "export of a model file that changed since the sweep",
        (
            "recommend",
            "{dir}/exported.json",
            "--latency-target",
            "p99=10s",
            "--export",
            "triton",
            "--out",
            "{dir}/deploy-changed",
        ),
        2,
        r"exported\.onnx is not the model this report measured: its sha256 is [0-9a-f]{12}…, "
        r"the report's is [0-9a-f]{12}…\nhint: pass the file that was measured with --model",
        not_written=("deploy-changed/exported/1/model.onnx",),
    ),
    MoneyCase(
        "export with --model naming another model",
        (
            "recommend",
            "{dir}/good.json",
            "--latency-target",
            "p99=10s",
            "--export",
            "triton",
            "--out",
            "{dir}/deploy-other",
            "--model",
            "{dir}/other.onnx",
        ),
        2,
        r"other\.onnx is not the model this report measured",
        not_written=("deploy-other/other/1/model.onnx",),
    ),
]


def _reports_digest(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*.json"))}


@pytest.fixture(scope="module")
def money_results(results) -> dict[str, tuple[subprocess.CompletedProcess, dict, dict]]:
    d = results["_dir"]
    shutil.copy(d / "mlp.onnx", d / "exported.onnx")
    _quick_report(d / "exported.onnx", d, "exported.json")
    onnx.save(zoo.build("mlp", hidden=32), d / "exported.onnx")  # a real, different model

    def run(case: MoneyCase) -> tuple[subprocess.CompletedProcess, dict, dict]:
        before = _reports_digest(d)
        env = {**os.environ, "COLUMNS": "200"}
        env.pop("BENCHBOX_PROFILES", None)
        env.update({k: v.replace("{dir}", str(d)) for k, v in case.env})
        p = subprocess.run(
            [sys.executable, "-m", "benchbox", *(a.replace("{dir}", str(d)) for a in case.args)],
            capture_output=True,
            text=True,
            timeout=180,
            cwd=d,
            env=env,
        )
        return p, before, _reports_digest(d)

    # one at a time: each case checks that no report in the shared folder changed
    return {c.name: run(c) for c in MONEY_CASES}


@pytest.mark.parametrize("case", MONEY_CASES, ids=[c.name for c in MONEY_CASES])
def test_money_bad_input_gets_one_line_the_exit_code_and_keeps_reports(case, money_results):
    p, before, after = money_results[case.name]
    assert "Traceback" not in p.stderr + p.stdout
    assert p.returncode == case.exit_code, p.stderr
    lines = p.stderr.rstrip("\n").splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("error:")]
    assert len(errors) == 1, p.stderr
    message = lines[errors[0] :]
    assert len(message) == 1 or (len(message) == 2 and message[1].startswith("hint:")), p.stderr
    assert re.search(case.says, "\n".join(message)), "\n".join(message)
    assert after == before  # no report was lost, changed or added


def test_money_refused_exports_ship_no_model(money_results, results):
    d = results["_dir"]
    shipped = [rel for c in MONEY_CASES for rel in c.not_written if (d / rel).exists()]
    assert shipped == []
    assert sum(len(c.not_written) for c in MONEY_CASES) == 2


# ---------------------------------------------------------------- issue 13: inputs that must not
# lie, hang or crash. Each case runs the real CLI in its own folder of fixtures, and no report
# there may be lost or changed by it.

DEEP = '{"schema": "benchbox.report/1.1", "host": ' + "[" * 100_000 + "]" * 100_000 + "}"
LONG = "a" * 300
VAD_RUN = ("sweep", "{dir}/vad.onnx", "--batch", "2", *ONE[2:], *QUICK, "--out", "{dir}/reports")


def _vad_model() -> onnx.ModelProto:
    """A Silero-VAD-like model: a scalar `sr` that must be 16000 and a state whose second dim
    (its own symbol) must agree with the batch."""

    def const(name: str, values: list[int], shape: list[int] | None = None) -> onnx.NodeProto:
        dims = [len(values)] if shape is None else shape
        tensor = helper.make_tensor(name + "_v", TensorProto.INT64, dims, values)
        return helper.make_node("Constant", [], [name], value=tensor)

    nodes = [
        const("zero", [0], []),
        const("k", [16000 - 64], []),
        const("m1", [-1]),
        const("s0", [0]),
        const("s16", [16]),
        const("a1", [1]),
        helper.make_node("Sub", ["sr", "k"], ["w"]),
        helper.make_node("Unsqueeze", ["w", "s0"], ["w1"]),
        helper.make_node("Concat", ["m1", "w1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["input", "shape"], ["xr"]),  # fails unless sr == 16000
        helper.make_node("Slice", ["xr", "s0", "s16", "a1"], ["xs"]),
        helper.make_node("Gather", ["state", "zero"], ["st0"], axis=0),
        helper.make_node("Concat", ["st0", "xs"], ["out"], axis=1),  # state_batch == batch
        helper.make_node("Identity", ["state"], ["state_out"]),
    ]
    inputs = [
        helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 64]),
        helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, "state_batch", 16]),
        helper.make_tensor_value_info("sr", TensorProto.INT64, []),
    ]
    outputs = [
        helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 32]),
        helper.make_tensor_value_info("state_out", TensorProto.FLOAT, [2, "state_batch", 16]),
    ]
    graph = helper.make_graph(nodes, "vad", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _edited(doc: dict, edit) -> str:
    copy = json.loads(json.dumps(doc))
    edit(copy)
    return json.dumps(copy)


def _result(doc: dict) -> dict:
    return doc["cells"][0]["result"]


EDITS = {
    "nan.json": lambda d: _result(d)["latency_ms"].update(p99=float("nan")),
    "negative.json": lambda d: _result(d)["latency_ms"].update(p50=-1.0),
    "inverted.json": lambda d: _result(d)["latency_ci_ms"].update(p50=[20.0, 5.0]),
    "outside.json": lambda d: _result(d)["latency_ci_ms"].update(p50=[1000.0, 2000.0]),
    "duplicate.json": lambda d: d["cells"].append(d["cells"][0]),
    "negcount.json": lambda d: _result(d).update(requests=-3),
    "negduration.json": lambda d: _result(d).update(duration_s=-1.0),
    "negthroughput.json": lambda d: _result(d).update(throughput_ips=-5.0),
}

INPUT_CASES = [
    Case("report: NaN latency", ("report", "show", "{dir}/nan.json"), 2, r"p99: .*finite"),
    Case(
        "report: negative latency",
        ("recommend", "{dir}/negative.json", "--latency-target", "p99=1s"),
        2,
        r"latency_ms\.p50: a measured figure cannot be negative",
    ),
    Case(
        "report: inverted CI",
        ("recommend", "{dir}/inverted.json", "--latency-target", "p99=1s"),
        2,
        r"latency_ci_ms\.p50: the interval is inverted",
    ),
    Case(
        "report: point outside its CI",
        ("report", "show", "{dir}/outside.json"),
        2,
        r"latency_ci_ms\.p50: \[1000, 2000\] does not contain p50",
    ),
    Case(
        "report: duplicate cell ids",
        ("compare", "{dir}/good.json", "{dir}/duplicate.json"),
        2,
        r"cells\[1\]\.id: duplicate cell id",
    ),
    Case("report: negative count", ("report", "show", "{dir}/negcount.json"), 2, r"requests: a"),
    Case(
        "report: negative duration",
        ("report", "export", "{dir}/negduration.json", "--format", "csv", "--out", "{dir}/x.csv"),
        2,
        r"duration_s: a measured figure cannot be negative",
    ),
    Case(
        "report: negative throughput",
        ("report", "show", "{dir}/negthroughput.json"),
        2,
        r"throughput_ips: a measured figure",
    ),
    Case("report: nested too deeply", ("report", "show", "{dir}/deep.json"), 2, r"nested too"),
    Case("report: a FIFO", ("report", "show", "{dir}/fifo.json"), 2, r"is a FIFO .*regular file"),
    Case("model: a FIFO", swept("fifo.onnx"), 2, r"model file .*fifo\.onnx is a FIFO"),
    Case("model: a character device", sweep("/dev/zero"), 2, r"is a character device"),
    Case(
        "profile: a FIFO",
        swept("mlp.onnx", "--profile", "{dir}/fifo.toml"),
        2,
        r"profile .*fifo\.toml is a FIFO",
    ),
    Case(
        "duration of 1us",
        ("run", "{dir}/mlp.onnx", "--duration", "1us", "--out", "{dir}/reports"),
        2,
        r"--duration 1us is too short.*\n.*at least 10ms",
    ),
    Case("window of 1us", swept("mlp.onnx", "--window", "1us"), 2, r"--window 1us is too short"),
    Case(
        "concurrency 1000",
        swept("mlp.onnx", "--concurrency", "1000"),
        2,
        r"--concurrency 1000 is above the limit of 256.*\n.*thread",
    ),
    Case(
        "concurrency 10000 in run",
        ("run", "{dir}/mlp.onnx", "--concurrency", "10000", "--out", "{dir}/reports"),
        2,
        r"--concurrency 10000 is above the limit of 256",
    ),
    Case(
        "instances 100000",
        swept("mlp.onnx", "--instances", "100000"),
        2,
        r"--instances 100000 is above the limit of 256.*\n.*session",
    ),
    Case(
        "threads 100000 in run",
        ("run", "{dir}/mlp.onnx", "--threads", "100000", "--out", "{dir}/reports"),
        2,
        r"--threads 100000 is above the limit of 256",
    ),
    Case("negative seed", swept("mlp.onnx", "--seed", "-1"), 2, r"--seed -1 is out of range"),
    Case(
        "over-long report folder",
        swept("mlp.onnx", "--out", "{dir}/" + LONG),
        2,
        r"cannot write reports to .*too long",
    ),
    Case("over-long model name", sweep("{dir}/" + LONG + ".onnx"), 2, r"cannot use .*too long"),
    Case(
        "over-long report name",
        ("report", "show", "{dir}/" + LONG + ".json"),
        2,
        r"cannot read report .*too long",
    ),
    Case(
        "zoo model too large",
        ("models", "build", "mlp", "--out", "{dir}/big.onnx", "--param", "hidden=10000000"),
        2,
        r"too large to build.*\n.*smaller parameters",
    ),
    Case(
        "zoo model absurdly large",
        ("models", "build", "mlp", "--out", "{dir}/big.onnx", "--param", "hidden=" + "9" * 30),
        2,
        r"too large to build",
    ),
    Case("empty --device", swept("mlp.onnx", "--device", ""), 2, r"--device is empty.*\n.*cpu,"),
    Case(
        "trailing comma in --device",
        swept("mlp.onnx", "--device", "cpu,"),
        2,
        r"not a valid list.*\n.*--device cpu,openvino",
    ),
    Case("empty --batch", swept("mlp.onnx", "--batch", ""), 2, r"--batch is empty.*\n.*1,2,4"),
    Case("empty --threads", swept("mlp.onnx", "--threads", ""), 2, r"--threads is empty"),
    Case(
        "empty --rate",
        swept("mlp.onnx", "--load", "open", "--rate", ""),
        2,
        r"--rate is empty.*\n.*--rate 100,200",
    ),
    Case(
        "garbage --dynamic-batching",
        swept("mlp.onnx", "--load", "open", "--rate", "10", "--dynamic-batching", "garbage"),
        2,
        r"'garbage' is not KEY=VALUE.*\n.*max_batch=16",
    ),
    Case(
        "unknown --dynamic-batching key",
        swept("mlp.onnx", "--load", "open", "--rate", "10", "--dynamic-batching", "size=4"),
        2,
        r"unknown key 'size' \(the keys are max_batch, delay and preferred\)",
    ),
    Case(
        "zero latency target",
        swept("mlp.onnx", "--latency-target", "p99=0ms"),
        2,
        r"'0ms' must be greater than zero|p99=0ms.*greater than zero",
    ),
    Case(
        "regression threshold without %",
        ("compare", "{dir}/good.json", "{dir}/good.json", "--fail-on-regression", "5"),
        2,
        r"'5' is a bare number.*\n.*--fail-on-regression 5%",
    ),
    Case(
        "stability without %",
        swept("mlp.onnx", "--stability", "10"),
        2,
        r"--stability '10' is a bare number.*\n.*10%",
    ),
    Case(
        "zero memory bound",
        ("recommend", "{dir}/good.json", "--latency-target", "p99=1s", "--max-memory-mb", "0"),
        2,
        r"--max-memory-mb 0 must be a positive number",
    ),
    Case(
        "negative throughput bound",
        ("recommend", "{dir}/good.json", "--latency-target", "p99=1s", "--min-throughput", "-1"),
        2,
        r"--min-throughput -1 must be a positive number",
    ),
    Case(
        "a batch whose inputs cannot fit in memory",
        swept("mlp.onnx", "--batch", "1000000000"),
        2,
        r"batch 1000000000 needs .* GiB of inputs.*\n.*smaller --batch",
    ),
    Case(
        "an open-loop rate no generator can send",
        swept("mlp.onnx", "--load", "open", "--rate", "1e9"),
        2,
        r"--rate 1e\+09 is above the limit of 1,000,000 requests/s",
    ),
    Case(
        "--input values file that is a FIFO",
        (*VAD_RUN, "--input", "@{dir}/fifo.json"),
        2,
        r"input values file .*fifo\.json is a FIFO",
    ),
    Case("resume a FIFO", ("sweep", "--resume", "{dir}/fifo.json"), 2, r"is a FIFO"),
    Case(
        "--input of no input",
        (*VAD_RUN, "--input", "nope=1"),
        2,
        r"--input nope: the model has no input of that name.*\n.*input, state, sr",
    ),
    Case("--input not a number", (*VAD_RUN, "--input", "sr=x"), 2, r"'x' is not a number"),
    Case(
        "--input of the wrong shape",
        (*VAD_RUN, "--input", "sr=[1,2]"),
        2,
        r"--input sr: a value of shape \[2\] does not fit the input's shape \[\]",
    ),
    Case(
        "--shape tie to a typo",
        (*VAD_RUN, "--shape", "state_batch=batches"),
        2,
        r"'batches' is not an integer \(or 'batch'\)",
    ),
    Case(
        "a model whose inputs need values",
        VAD_RUN,
        3,
        r"no cell could be measured.*\n.*A dimension cannot be less than -1",
    ),
    Case(
        "a model whose inputs need values, --json",
        (*VAD_RUN, "--json"),
        3,
        r"no cell could be measured",
    ),
]


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


@pytest.fixture(scope="module")
def input_results(tmp_path_factory, mlp_path) -> dict:
    d = tmp_path_factory.mktemp("bad13")
    shutil.copy(mlp_path, d / "mlp.onnx")
    onnx.save(_vad_model(), d / "vad.onnx")
    good = _quick_report(d / "mlp.onnx", d, "good.json")
    doc = json.loads(good.read_text())
    for name, edit in EDITS.items():
        (d / name).write_text(_edited(doc, edit))
    (d / "deep.json").write_text(DEEP)
    for fifo in ("fifo.json", "fifo.onnx", "fifo.toml"):
        os.mkfifo(d / fifo)
    before = _digests(d)

    def run(case: Case) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "benchbox", *(a.replace("{dir}", str(d)) for a in case.args)],
            capture_output=True,
            text=True,
            timeout=180,
            cwd=d,
            env={**os.environ, "COLUMNS": "200"},
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        done = dict(zip([c.name for c in INPUT_CASES], pool.map(run, INPUT_CASES), strict=True))
    return {"runs": done, "dir": d, "before": before}


@pytest.mark.parametrize("case", INPUT_CASES, ids=[c.name for c in INPUT_CASES])
def test_issue13_input_gets_a_short_message_and_the_documented_exit_code(case, input_results):
    test_bad_input_gets_a_short_message_and_the_documented_exit_code(case, input_results["runs"])
    p = input_results["runs"][case.name]
    assert "\x1b[" not in p.stderr and "[E:onnxruntime" not in p.stderr  # no runtime log lines


def test_no_report_is_lost_or_changed_by_a_refused_input(input_results):
    d, before = input_results["dir"], input_results["before"]
    after = _digests(d)
    assert {k: after.get(k) for k in before} == before
    new = sorted(set(after) - set(before))
    # only the two sweeps of the VAD model that ran (and failed every cell) saved a report
    assert [n.split("/")[-1].split("-")[0] for n in new] == ["vad", "vad"], new
    assert not any(n.endswith(".tmp") for n in new)


def test_when_every_cell_fails_stdout_shows_the_model_header_with_its_defaulted_dims(
    input_results,
):
    p = input_results["runs"]["a model whose inputs need values"]
    assert p.stdout.startswith("model ")
    assert "dims state_batch=1 (defaults: state_batch)" in p.stdout
    # the reason is kept whole in the report
    reports = sorted((input_results["dir"] / "reports").glob("vad-*.json"))
    reasons = {c.reason for r in reports for c in load_report(r).cells}
    assert all("A dimension cannot be less than -1, got -15" in r for r in reasons), reasons


def test_json_prints_the_report_even_when_nothing_was_measured(input_results):
    p = input_results["runs"]["a model whose inputs need values, --json"]
    doc = json.loads(p.stdout)
    assert doc["schema"].startswith("benchbox.report/")
    assert [c["status"] for c in doc["cells"]] == ["failed"]
    assert "closest cell above" not in p.stderr


def test_input_values_and_a_dim_tied_to_the_batch_make_the_model_run(tmp_path):
    onnx.save(_vad_model(), tmp_path / "vad.onnx")
    (tmp_path / "values.json").write_text('{"sr": 16000}')
    assert parse_input_values(["@" + str(tmp_path / "values.json")]) == {"sr": 16000.0}
    req = SweepRequest(
        model_path=str(tmp_path / "vad.onnx"),
        spec=SweepSpec(batch_sizes=(1, 3)),
        settings=MeasureSettings(warmup_s=0.05, duration_s=0.2, window_s=0.1),
        shapes=parse_shapes(["state_batch=batch"]),
        input_values=parse_input_values(["sr=16000"]),
        out_dir=str(tmp_path / "reports"),
        isolate=False,
    )
    report, path = run_sweep(req)
    assert [c.status for c in report.cells] == ["ok", "ok"], [c.reason for c in report.cells]
    loaded = load_report(path)
    assert loaded.model.batch_dims == ("state_batch",)
    assert loaded.model.input_values == {"sr": 16000.0}
    assert loaded.settings.shapes == {"state_batch": "batch"}


def test_a_fixed_duration_too_short_for_its_requests_measures_on_to_the_minimum():
    def slow(feeds):
        time.sleep(0.01)

    s = MeasureSettings(warmup_s=0.02, duration_s=0.01, window_s=0.01, max_duration_s=5.0)
    m = drive(ClosedDriver([slow], [{}], 1, 1), s)
    assert m.extended and m.requests >= MIN_MEASURED_REQUESTS
    r, warnings = summarize(m, s)
    # throughput from the requests inside the measured interval: about 100/s, not thousands
    assert r.throughput_ips == pytest.approx(m.requests / m.duration_s)
    assert r.throughput_ips < 150
    assert any(w.kind == "duration-extended" for w in warnings)


def test_a_runtime_reason_shows_its_cause_not_its_source_location():
    reason = (
        "OpenVINO could not compile the model for CPU: Exception from "
        "src/inference/src/cpp/core.cpp:84:\nException from src/frontends/onnx/frontend.cpp:9:\n"
        "Model wasn't fully converted. Failed operations detailed log:\n-- Foo-1"
    )
    assert reason_line(reason) == (
        "OpenVINO could not compile the model for CPU: Model wasn't fully converted. "
        "Failed operations detailed log:"
    )
    assert reason_line("ValueError: plain") == "ValueError: plain"
    try:
        raise RuntimeError("first line\nthe cause, on the second")
    except RuntimeError as exc:
        assert "the cause, on the second" in failure_reason(exc)


def test_every_measured_number_of_a_result_is_checked_for_sign_and_finiteness(input_results):
    """The rule is generic over fields: each numeric field of a result, negative or NaN, is
    refused at load with its path, so fields added later are checked as well."""
    doc = json.loads((input_results["dir"] / "good.json").read_text())
    result = _result(doc)
    numeric = [k for k, v in result.items() if isinstance(v, int | float) and v > 0]
    assert {"requests", "duration_s", "throughput_ips"} <= set(numeric)
    for key in numeric:
        for bad in (-1, float("nan")):
            text = _edited(doc, lambda d, k=key, b=bad: _result(d).update({k: b}))
            with pytest.raises(BadInput, match=rf"cells\[0\]\.result\.{key}: "):
                report_from_json(text, "r.json")


def _ladder_cell(cell, p99: float, ci: list[float] | None):
    lat = LatencyStats(p99, 0.1, p99, p99, p99, p99, p99, p99, p99)
    result = Result(100, 100, 1.0, 100.0, 100.0, lat, {"p99": ci})
    return replace(cell, status="ok", result=result)


@pytest.mark.parametrize(
    ("ci", "says"),
    [
        (None, "broken by its point estimate (30 ms; too few samples for a CI) at c=1"),
        ([28.0, 32.0], "broken with confidence at c=1"),
    ],
)
def test_the_adaptive_search_says_whether_a_ci_or_the_point_estimate_broke_the_target(ci, says):
    spec = SweepSpec(batch_sizes=(1,), concurrencies=(1, 2, 4), threads=(1,))
    outcome = search.run_ladder(
        grid(spec), lambda c: _ladder_cell(c, 30.0, ci), parse_target("p99=20ms"), 0.05
    )
    skipped = [c.reason for c in outcome.cells.values() if c.status == "skipped"]
    assert skipped and all(says in r for r in skipped), skipped


def test_paths_that_look_like_markup_are_printed_as_they_are(tmp_path, mlp_path):
    """A report folder named like a rich tag ('[/]') once ended a finished sweep in exit 3."""
    odd = tmp_path / "[/]"
    args = ["sweep", str(mlp_path), *ONE, *QUICK, "--out", str(odd)]
    p = subprocess.run(
        [sys.executable, "-m", "benchbox", *args], capture_output=True, text=True, timeout=180
    )
    assert p.returncode == 0, p.stderr
    (saved,) = odd.glob("*.json")
    assert f"reportsaved:{saved}" in "".join(p.stdout.split())  # wrapping aside
