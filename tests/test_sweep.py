"""`benchbox sweep`, `run` and `devices` end to end: the real CLI, real onnxruntime, tiny cells."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from benchbox import zoo
from benchbox.store import load_report

RUN_QUICK = ["--duration", "0.3s", "--warmup", "0.1s", "--window", "0.1s"]
# Sweeps here take one trial a cell (the trial phase has tests/test_sweep_trials.py); `run`
# keeps its default (auto) trials.
QUICK = [*RUN_QUICK, "--search", "grid", "--trials", "1"]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchbox", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=240,
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("models")
    out = {}
    for name in ("mlp", "mlp_fixed", "bert", "mixed"):
        params = {"layers": 1} if name == "bert" else {}
        path = d / f"{name}.onnx"
        onnx.save(zoo.build(name, **params), path)
        out[name] = str(path)
    return out


def test_sweep_writes_a_report_with_the_documented_keys(models, tmp_path):
    # --profile none: the figures pricing fills are present as null in an unpriced report
    p = cli(
        "sweep",
        models["mlp"],
        "--profile",
        "none",
        "--batch",
        "1,4",
        "--concurrency",
        "1,2",
        "--threads",
        "1",
        "--out",
        str(tmp_path),
        *QUICK,
        "--json",
    )
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)  # stdout holds the JSON and nothing else
    assert data["schema"] == "benchbox.report/2"
    assert set(data) == {
        "schema",
        "benchbox_version",
        "created",
        "host",
        "model",
        "profile",
        "settings",
        "cells",
        "recommendation",
    }
    assert {
        "hostname",
        "os",
        "cpu_model",
        "cpu_cores_logical",
        "cpu_cores_physical",
        "memory_gb",
        "python",
        "onnxruntime",
        "providers",
        "gpus",
    } <= set(data["host"])
    assert len(data["model"]["sha256"]) == 64
    assert data["model"]["inputs"][0]["shape"][0] == "batch"
    assert [c["id"] for c in data["cells"]] == [
        "cpu/t1/i1/b1/closed-c1",
        "cpu/t1/i1/b1/closed-c2",
        "cpu/t1/i1/b4/closed-c1",
        "cpu/t1/i1/b4/closed-c2",
    ]
    for cell in data["cells"]:
        assert cell["status"] == "ok"
        assert cell["load"] == {"kind": "closed", "concurrency": cell["load"]["concurrency"]}
        assert set(cell["config"]) >= {"device", "intra_op_threads", "instances", "batch_size"}
        r = cell["result"]
        assert set(r["latency_ms"]) == {
            "mean",
            "std",
            "min",
            "p50",
            "p90",
            "p95",
            "p99",
            "p99_9",
            "max",
        }
        assert r["inferences"] == r["requests"] * cell["config"]["batch_size"]
        assert r["throughput_ips"] == pytest.approx(r["inferences"] / r["duration_s"], rel=1e-6)
        for later in ("power_w", "cost_usd_per_million", "energy_j_per_inference"):
            assert later in r and r[later] is None
    saved = list(tmp_path.glob("*.json"))
    assert len(saved) == 1
    assert load_report(saved[0]).cells[0].id == "cpu/t1/i1/b1/closed-c1"


def test_fixed_batch_model_skips_other_batch_sizes(models, tmp_path):
    p = cli(
        "sweep",
        models["mlp_fixed"],
        "--batch",
        "1,8",
        "--concurrency",
        "1",
        "--threads",
        "1",
        "--out",
        str(tmp_path),
        *QUICK,
    )
    assert p.returncode == 0, p.stderr
    report = load_report(next(tmp_path.glob("*.json")))
    by_batch = {c.config.batch_size: c for c in report.cells}
    assert by_batch[1].status == "ok"
    assert by_batch[8].status == "skipped"
    assert "fixed batch" in by_batch[8].reason
    assert "skipped" in p.stdout


def test_sweep_runs_models_with_int_and_mixed_dtype_inputs(models, tmp_path):
    for name, extra in (("bert", ["--shape", "seq=16"]), ("mixed", [])):
        out = str(tmp_path / name)
        one = ["--batch", "2", "--concurrency", "1", "--threads", "1"]
        p = cli("sweep", models[name], *one, *extra, "--out", out, *QUICK)
        assert p.returncode == 0, p.stderr
        report = load_report(next((tmp_path / name).glob("*.json")))
        assert [c.status for c in report.cells] == ["ok"]
    bert = load_report(next((tmp_path / "bert").glob("*.json")))
    assert bert.model.dims["seq"] == 16
    assert "seq" not in bert.model.dims_defaulted


def test_run_prints_every_percentile_and_a_histogram(models, tmp_path):
    p = cli(
        "run",
        models["mlp"],
        "--batch",
        "2",
        "--concurrency",
        "2",
        "--out",
        str(tmp_path),
        *RUN_QUICK,
    )
    assert p.returncode == 0, p.stderr
    for word in ("p50", "p90", "p95", "p99", "p99.9", "Range (min … max)", "inferences/s", "█"):
        assert word in p.stdout


def test_devices_json_lists_cpu_and_providers():
    p = cli("devices", "--json")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert "CPUExecutionProvider" in data["host"]["providers"]
    assert data["devices"][0]["device"] == "cpu" and data["devices"][0]["usable"]
    assert data["gpus"] == [] or all("name" in g for g in data["gpus"])


@pytest.mark.parametrize(
    "args, needle",
    [
        (["sweep", "/no/such/model.onnx"], "does not exist"),
        (["sweep", "--batch", "1,,2"], "not a valid list"),
        (["sweep", "--duration", "fast"], "not a duration"),
        (["sweep", "--device", "tpu"], "unknown device"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, needle, tmp_path):
    p = cli(*args, "--out", str(tmp_path))
    assert p.returncode == 2
    assert needle in p.stderr
    assert "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) <= 2


def test_offline_warmup_auto_and_saved_samples(models, tmp_path):
    p = cli("sweep", models["mlp"], "--load", "offline", "--concurrency", "2", "--batch", "4",
            "--threads", "1", "--warmup", "auto", "--window", "0.1s", "--min-duration", "0.3s",
            "--max-duration", "1s", "--save-samples", "--search", "grid", "--out", str(tmp_path),
            "--json")  # fmt: skip
    assert p.returncode == 0, p.stderr
    cell = json.loads(p.stdout)["cells"][0]
    assert cell["id"] == "cpu/t1/i1/b4/offline-c2"
    assert cell["load"] == {"kind": "offline", "concurrency": 2}
    r = cell["result"]
    assert len(r["samples_ms"]) == r["requests"]  # every request's latency, kept on request
    assert min(r["samples_ms"]) == pytest.approx(r["latency_ms"]["min"], rel=1e-4)
    assert r["histogram"]["count"] == r["requests"]
