"""compare warns when two reports measured different data (issue 22): real sweeps, one on
--data, one on other --data, one on synthetic inputs (a real onnxruntime session each)."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from benchbox.compare import compare_reports, data_differences
from benchbox.store import load_report

ROOT = pathlib.Path(__file__).resolve().parents[1]
QUICK = ["--duration", "0.2s", "--warmup", "0.05s", "--window", "0.1s", "--trials", "1"]
GRID = ["--batch", "1", "--concurrency", "1", "--threads", "1", "--search", "grid"]


def cli(*args: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "benchbox", *args],
        capture_output=True, text=True, env=env, timeout=180, cwd=cwd,
    )  # fmt: skip


def sweep(model: pathlib.Path, out: pathlib.Path, *data: str) -> pathlib.Path:
    done = cli("sweep", str(model), *data, *GRID, *QUICK, "--out", str(out), cwd=out.parent)
    assert done.returncode == 0, done.stderr
    (path,) = out.glob("*.json")
    return path


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, pathlib.Path]:
    """Three one-cell sweeps of x FP32 [N, 4] -> y: on a.npz, on b.npz, on synthetic inputs."""
    root = tmp_path_factory.mktemp("data-compare")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 2], [0.25] * 8)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "x4", [x], [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, root / "x4.onnx")
    np.savez(root / "a.npz", x=np.full((20, 4), 1.0, np.float32))
    np.savez(root / "b.npz", x=np.full((20, 4), 2.0, np.float32))
    return {
        "a": sweep(root / "x4.onnx", root / "out-a", "--data", str(root / "a.npz")),
        "b": sweep(root / "x4.onnx", root / "out-b", "--data", str(root / "b.npz")),
        "synthetic": sweep(root / "x4.onnx", root / "out-s"),
    }


def test_other_data_warns_once_naming_both_sources(reports):
    done = cli("compare", str(reports["a"]), str(reports["b"]), cwd=reports["a"].parent)
    assert done.returncode == 0, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if "measured different data" in ln]
    assert len(lines) == 1
    a, b = load_report(reports["a"]).data, load_report(reports["b"]).data
    assert a.sha256 != b.sha256
    assert f"--data {a.source} (npz, 20 samples, sha256 {a.sha256[:12]})" in lines[0]
    assert f"--data {b.source} (npz, 20 samples, sha256 {b.sha256[:12]})" in lines[0]
    assert lines[0].startswith("warning: ")


def test_data_against_synthetic_inputs_warns_and_the_same_data_does_not(reports, tmp_path):
    done = cli("compare", str(reports["synthetic"]), str(reports["a"]), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if "measured different data" in ln]
    assert len(lines) == 1
    name = reports["synthetic"].name
    assert f"{name} on synthetic inputs" in lines[0] and "a.npz" in lines[0]
    # The same report under another name: the same data, no warning.
    twin = shutil.copy(reports["a"], tmp_path / "twin.json")
    done = cli("compare", str(reports["a"]), str(twin), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "measured different data" not in done.stderr


def test_data_differences_are_in_the_comparison_in_both_modes(reports):
    loaded = [load_report(reports[k]) for k in ("a", "b", "synthetic")]
    labels = ["a.json", "b.json", "s.json"]
    lines = data_differences(loaded, labels)
    assert len(lines) == 2  # each candidate against the baseline
    assert lines[0].startswith("the reports measured different data: a.json on --data ")
    assert "s.json on synthetic inputs" in lines[1]
    for mode in ("versions", "machines"):
        cmp = compare_reports(loaded[:2], mode=mode, labels=labels[:2])
        assert [w for w in cmp.warnings if "different data" in w] == lines[:1]
