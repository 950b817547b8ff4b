"""`--data SOURCE` from the command line: real sweeps, runs, ab, verify and resume on the user's
samples (a real onnxruntime session in a worker process, or the small real OIP server on
127.0.0.1), the data recorded in the report, and bad data refused before anything is measured."""

from __future__ import annotations

import json
import os
import pathlib
import sqlite3
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from servers import oip_small
from servers.oip_small import serving
from servers.process import free_ports

ROOT = pathlib.Path(__file__).resolve().parents[1]
QUICK = ["--duration", "0.3s", "--warmup", "0.1s", "--window", "0.1s", "--trials", "1"]
GRID = ["--concurrency", "1", "--threads", "1", "--search", "grid"]
VALUES = (7.0, 8.0, 9.0)  # each sample's x is one of these, filled in


def cli(*args: str, cwd: pathlib.Path, timeout: float = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "benchbox", *args],
        capture_output=True, text=True, env=env, timeout=timeout, cwd=cwd,
    )  # fmt: skip


@pytest.fixture(scope="module")
def x4(tmp_path_factory) -> pathlib.Path:
    """x FP32 [N, 4] -> y FP32 [N, 2], the inputs and outputs of oip_small's models."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 2], [0.25] * 8)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "x4", [x], [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("x4") / "x4.onnx"
    onnx.save(model, path)
    return path


def write_npz(path: pathlib.Path, n: int = 30) -> pathlib.Path:
    x = np.stack([np.full(4, VALUES[i % len(VALUES)], np.float32) for i in range(n)])
    np.savez(path, x=x)
    return path


def one_report(out: pathlib.Path, pattern: str = "*.json") -> tuple[pathlib.Path, dict]:
    (path,) = out.glob(pattern)
    return path, json.loads(path.read_text())


def test_a_sweep_on_npz_records_its_data_and_measures_every_cell(x4, tmp_path):
    data = write_npz(tmp_path / "requests.npz")
    out = tmp_path / "out"
    done = cli("sweep", str(x4), "--data", str(data), "--batch", "1,2", *GRID, *QUICK,
               "--out", str(out), "--json", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    _, saved = one_report(out)
    assert printed["data"] == saved["data"]
    info = saved["data"]
    assert info["kind"] == "npz" and info["source"] == str(data)
    assert info["samples_read"] == info["samples_used"] == 30 and not info["sampled"]
    assert len(info["sha256"]) == 64
    assert len(saved["cells"]) == 2
    assert all(c["status"] in ("ok", "unstable") for c in saved["cells"])


def test_a_sqlite_table_feeds_a_run_and_a_column_is_mapped_to_its_input(x4, tmp_path):
    db = tmp_path / "log.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE requests (features TEXT)")
        conn.executemany(
            "INSERT INTO requests VALUES (?)", [(json.dumps([v] * 4),) for v in VALUES * 5]
        )
    out = tmp_path / "out"
    done = cli("run", str(x4), "--data", f"sqlite:{db}?table=requests", "--data-map",
               "features=x", *QUICK, "--out", str(out), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    _, report = one_report(out)
    assert report["data"]["kind"] == "sqlite" and report["data"]["table"] == "requests"
    assert report["data"]["data_map"] == {"features": "x"}
    assert report["data"]["samples_used"] == 15


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--data", "nosuch.npz"], "--data nosuch.npz: no such file or folder"),
        (["--data-map", "a=x"], "--data-map needs --data SOURCE"),
        (["--data", "{npz}", "--data-limit", "lots"], "--data-limit lots: not a size"),
        (["--data", "{wrong}"], "'x'"),
    ],
)
def test_bad_data_is_one_line_exit_2_and_no_report(x4, tmp_path, args, says):
    write_npz(tmp_path / "good.npz")
    np.savez(tmp_path / "wrong.npz", x=np.ones((5, 3), np.float32))  # 3 features, not 4
    args = [a.format(npz="good.npz", wrong="wrong.npz") for a in args]
    out = tmp_path / "out"
    done = cli("sweep", str(x4), *args, *GRID, *QUICK, "--out", str(out), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert says in done.stderr.splitlines()[0]
    assert not out.exists() or not list(out.glob("*.json"))


def test_run_on_jsonl_logs_records_latency_per_length_bucket(bert_path, tmp_path):
    lengths = [6, 12, 40, 7, 70, 20, 9, 100]
    log = tmp_path / "log.jsonl"
    log.write_text(
        "".join(
            json.dumps({"input_ids": [1 + i % 50 for i in range(n)], "attention_mask": [1] * n})
            + "\n"
            for n in lengths
        )
    )
    out = tmp_path / "out"
    done = cli("run", str(bert_path), "--data", str(log), *QUICK, "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    _, report = one_report(out)
    assert report["data"]["length_dim"] == "seq"
    assert report["data"]["length_counts"] == {str(n): 1 for n in sorted(lengths)}
    (cell,) = report["cells"]
    uppers = [b["upper"] for b in cell["result"]["buckets"]]
    assert uppers == sorted({1 << (n - 1).bit_length() for n in lengths})
    assert f"Data:             {log}" in done.stdout  # the detail names the data and its buckets
    assert "seq ≤" in done.stdout


def test_ab_measures_both_sides_on_the_same_samples(x4, tmp_path):
    data = write_npz(tmp_path / "requests.npz")
    out = tmp_path / "out"
    done = cli("ab", str(x4), str(x4), "--data", str(data), *QUICK, "--out", str(out),
               "--json", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    reports = [json.loads(p.read_text()) for p in sorted(out.glob("ab-*.json"))]
    assert len(reports) == 2
    assert reports[0]["data"]["sha256"] == reports[1]["data"]["sha256"]


def test_a_fleet_checks_its_data_before_it_reaches_for_the_cluster(x4, tmp_path):
    """Bad data is one line, exit 2, before any connection (nothing listens at port 1)."""
    bad = tmp_path / "requests.npz"
    np.savez(bad, y=np.zeros((3, 4), np.float32))
    done = cli("fleet", str(x4), "--data", str(bad), "--group", "a=aws-c7i-2xlarge",
               "--ray", "127.0.0.1:1", "--out", str(tmp_path / "fleet"), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2, done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.strip()][:1]
    assert "input 'x'" in line and "its columns: y" in line and "Ray" not in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "fleet").exists()


def test_resume_reads_the_same_data_again_and_refuses_changed_data(x4, tmp_path):
    data = write_npz(tmp_path / "requests.npz")
    out = tmp_path / "out"
    done = cli("sweep", str(x4), "--data", str(data), "--batch", "1,2", *GRID,
               *QUICK, "--out", str(out), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    path, report = one_report(out)
    report["cells"][1].update(status="pending", result=None, warnings=[])
    report["recommendation"] = None
    path.write_text(json.dumps(report))
    resumed = cli("sweep", "--resume", str(path), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    again = json.loads(path.read_text())
    assert again["cells"][1]["status"] in ("ok", "unstable")
    assert again["data"] == report["data"]
    # the data change under the report: resuming would mix two workloads
    again["cells"][1].update(status="pending", result=None, warnings=[])
    path.write_text(json.dumps(again))
    write_npz(data, n=31)
    refused = cli("sweep", "--resume", str(path), cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert "holds other samples" in refused.stderr
    assert json.loads(path.read_text()) == again  # the report is left as it was


@pytest.fixture(scope="module")
def server():
    (port,) = free_ports(1)
    with serving(port):
        yield f"127.0.0.1:{port}"


def test_a_remote_run_sends_the_samples_of_its_data(server, tmp_path):
    data = write_npz(tmp_path / "requests.npz")
    oip_small.SEEN.clear()
    out = tmp_path / "out"
    done = cli("run", "--target", f"http://{server}/v2/models/ok", "--data", str(data),
               *QUICK, "--out", str(out), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    _, report = one_report(out)
    assert report["data"]["samples_used"] == 30
    assert oip_small.SEEN == set(VALUES)  # every request came from the data


def test_verify_sends_the_reports_own_data_by_default_and_says_so(x4, server, tmp_path):
    data = write_npz(tmp_path / "requests.npz")
    out = tmp_path / "out"
    done = cli("sweep", str(x4), "--data", str(data), "--batch", "1", *GRID, *QUICK, "--out",
               str(out), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    path, _ = one_report(out)
    oip_small.SEEN.clear()
    checked = cli("verify", str(path), "--target", f"http://{server}/v2/models/ok",
                  "--latency-target", "p99=5000ms", "--duration", "0.5s", "--warmup", "0.1s",
                  "--json", cwd=tmp_path)  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    doc = json.loads(checked.stdout)
    assert any("the report's data" in n for n in doc["notes"])
    assert oip_small.SEEN == set(VALUES)
    # other data than the report's is measured, and the verdict says the workload differs
    other = tmp_path / "other.npz"
    np.savez(other, x=np.full((12, 4), 3.0, np.float32))
    checked = cli("verify", str(path), "--target", f"http://{server}/v2/models/ok",
                  "--latency-target", "p99=5000ms", "--duration", "0.5s", "--warmup", "0.1s",
                  "--data", str(other), cwd=tmp_path)  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert "the data differ from the report's" in checked.stdout


def flags_model(path: pathlib.Path) -> pathlib.Path:
    """y = (x + float(flags)) @ w: an integer input that synthetic values cannot stand for."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    flags = helper.make_tensor_value_info("flags", TensorProto.INT64, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 2], [0.25, -0.5, 1, 0.75, -1, 0.5, 0.125, 2])
    nodes = [
        helper.make_node("Cast", ["flags"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["x", "f"], ["s"]),
        helper.make_node("MatMul", ["s", "w"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "flags", [x, flags], [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_int8_static_calibrates_and_is_judged_on_the_data(tmp_path):
    """A model synthetic calibration cannot serve is refused without --data; with it, the variant
    is calibrated on the data and its accuracy is measured on the data's samples (a relative
    model path, as users type it)."""
    flags_model(tmp_path / "flags.onnx")
    rng = np.random.default_rng(0)
    x, flags = rng.standard_normal((24, 4)).astype("f"), rng.integers(0, 3, (24, 4))
    np.savez(tmp_path / "flags.npz", x=x, flags=flags)
    args = ("run", "flags.onnx", "--precision", "int8-static", *QUICK)
    refused = cli(*args, "--out", "none", cwd=tmp_path)
    assert refused.returncode == 2 and "int8-static needs calibration data" in refused.stderr
    assert not (tmp_path / "none").exists()
    done = cli(*args, "--data", "flags.npz", "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    _, report = one_report(tmp_path / "out")
    (variant,) = report["variants"]
    assert variant["error"] is None and variant["calibration"] == "flags.npz (24 samples)"
    (cell,) = report["cells"]
    acc = cell["accuracy"]
    assert acc["samples"] == 24 and acc["source"].startswith("flags.npz;")
    # on the data's own flags the int8 model agrees; on synthetic int64 values it would not
    (out,) = acc["outputs"]
    assert out["top1_agree"] == out["top1_count"] == 24 and out["cosine"] > 0.99


def test_a_remote_run_keeps_its_latency_target(server, tmp_path):
    out = tmp_path / "out"
    done = cli("run", "--target", f"http://{server}/v2/models/ok", "--latency-target", "p99=10s",
               *QUICK, "--out", str(out), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    _, report = one_report(out)
    assert report["settings"]["latency_target"] == "p99=10000ms"
    assert report["recommendation"] is not None


def test_a_label_column_gives_label_accuracy_and_the_bound_judges_it(mlp_path, tmp_path):
    """--data-label: each sample's class travels with it (through the seeded sample too), and
    the accuracy check counts argmax == label. Half the labels are the fp32 model's own answer
    and half are wrong, so label accuracy is exactly 50%: label>=40% is met, label>=90% is not."""
    import onnxruntime as ort

    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, 64)).astype(np.float32)
    sess = ort.InferenceSession(str(mlp_path), providers=["CPUExecutionProvider"])
    answer = np.argmax(sess.run(None, {"x": x})[0], axis=-1)
    y = np.where(np.arange(40) % 2 == 0, answer, (answer + 1) % 10)
    np.savez(tmp_path / "labelled.npz", x=x, y=y)
    common = ("run", str(mlp_path), "--data", "labelled.npz", "--data-label", "y",
              "--accuracy-samples", "40", "--latency-target", "p99=10s", *QUICK)  # fmt: skip
    met = cli(*common, "--accuracy", "label>=40%", "--out", "met", "--json", cwd=tmp_path)
    assert met.returncode == 0, met.stderr
    _, report = one_report(tmp_path / "met")
    assert report["data"]["label_column"] == "y"
    (out,) = report["cells"][0]["accuracy"]["outputs"]
    assert (out["label_correct"], out["label_count"]) == (20, 40)
    assert report["recommendation"] is not None
    missed = cli(*common, "--accuracy", "label>=90%", "--out", "missed", cwd=tmp_path)
    assert missed.returncode == 0, missed.stderr
    _, report = one_report(tmp_path / "missed")
    rec = report["recommendation"]
    assert rec["winner"] is None
    (why,) = rec["rejected"].values()
    assert why.startswith("logits: label 20/40 = 50.00%") and "(label>=90%)" in why
    # Fast enough: the note names the constraint it broke, not the latency target.
    assert rec["note"].startswith("No configuration meets every constraint.") and why in rec["note"]
    bad = cli("run", str(mlp_path), "--data", "labelled.npz", "--data-label", "z", *QUICK,
              "--out", "bad", cwd=tmp_path)  # fmt: skip
    assert bad.returncode == 2 and "--data-label z, sample 0: no column" in bad.stderr
    alone = cli("run", str(mlp_path), "--data-label", "y", *QUICK, cwd=tmp_path)
    assert alone.returncode == 2 and "--data-label needs --data SOURCE" in alone.stderr
