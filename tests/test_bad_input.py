"""A catalogue of bad input: each case runs the real CLI and expects a one- or two-line message
that says what to do, the documented exit code, and no traceback.

The cases run as subprocesses, a few at a time, once for the module; each test checks one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from benchbox import zoo
from benchbox.measure.cell import MeasureSettings
from benchbox.report.store import load_report
from benchbox.sweep import SweepRequest, run_sweep
from benchbox.sweep.plan import SweepSpec

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
