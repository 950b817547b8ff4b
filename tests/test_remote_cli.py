"""`benchbox verify` (and the remote options of the CLI) against a real PyTriton server."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest
from servers.process import free_ports

ROOT = pathlib.Path(__file__).resolve().parents[1]
QUICK = ["--duration", "1s", "--warmup", "0.3s"]


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "benchbox", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def in_process_report(mlp_path, tmp_path_factory) -> pathlib.Path:
    """A one-cell in-process sweep of the MLP with a recommendation (p99 <= 500 ms)."""
    out = tmp_path_factory.mktemp("reports")
    done = cli(
        "sweep", str(mlp_path), "--device", "cpu", "--batch", "1", "--concurrency", "2",
        "--threads", "1", "--latency-target", "p99=500ms", "--out", str(out), *QUICK,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (report,) = out.glob("*.json")
    return report


def test_verify_prints_prediction_beside_measurement_and_split(pytriton, in_process_report):
    done = cli("verify", str(in_process_report), "--target", pytriton.http("mlp"), *QUICK)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "predicted p99 ≤" in text and "measured" in text and "on triton 2." in text
    assert "meets the target (p99 ≤ 500 ms" in text
    assert "server side, mean per request: queue" in text and "batches formed" in text


def test_verify_json_exits_1_when_the_server_misses_the_target(pytriton, in_process_report):
    done = cli(
        "verify", str(in_process_report), "--target", pytriton.grpc("mlp"),
        "--latency-target", "p99=0.001ms", "--json", *QUICK,
    )  # fmt: skip
    assert done.returncode == 1
    doc = json.loads(done.stdout)
    assert doc["meets_target"] is False
    assert doc["target"] == {"percentile": "p99", "value_ms": 0.001}
    assert doc["predicted"]["bound_ms"] > 0 and doc["measured"]["value_ms"] > 0.001
    assert doc["measured"]["server_split"]["requests"] > 0
    assert doc["gap_ms"] == pytest.approx(
        doc["measured"]["value_ms"] - doc["predicted"]["bound_ms"]
    )
    assert "does not meet p99=0.001ms" in done.stderr


def test_verify_refused_connection_is_one_line_exit_2(in_process_report):
    (port,) = free_ports(1)
    done = cli("verify", str(in_process_report), "--target", f"http://127.0.0.1:{port}/v2/models/m")
    assert done.returncode == 2
    assert done.stderr.startswith("error: cannot reach the server at")
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_verify_unknown_cell_is_bad_input(pytriton, in_process_report):
    done = cli("verify", str(in_process_report), "--target", pytriton.http("mlp"), "--cell", "x")
    assert done.returncode == 2 and "has no cell 'x'" in done.stderr


def test_run_target_writes_a_report_of_the_server(pytriton, tmp_path):
    done = cli(
        "run", "--target", pytriton.http("mlp"), "-c", "2", "--out", str(tmp_path), "--json",
        *QUICK,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["schema"] == "benchbox.report/2"
    t = doc["target"]
    assert (t["url"], t["protocol"], t["server_name"], t["wire"]) == (
        pytriton.http("mlp"),
        "http",
        "triton",
        "binary",
    )
    assert "binary_tensor_data" in t["extensions"] and t["server_version"].startswith("2.")
    assert doc["host"]["hostname"]  # the client
    (cell,) = doc["cells"]
    assert cell["config"]["device"] == "remote" and cell["status"] == "ok"
    r = cell["result"]
    assert r["errors"] == 0 and r["server_split"]["requests"] > 0
    assert r["generator"]["processes"] == 1
    # the client's hardware does not price the server: `--profile auto` (the default) does not
    assert doc["profile"] is None and r["cost_usd_per_million"] is None


def test_sweep_target_over_grpc_recommends_and_resumes(pytriton, tmp_path):
    out = tmp_path / "reports"
    done = cli(
        "sweep", "--target", pytriton.grpc("mlp"), "--batch", "1,2", "-c", "1,2",
        "--search", "grid", "--latency-target", "p99=1s", "--out", str(out),
        "--profile", "aws-c7i-2xlarge", *QUICK,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "server triton 2." in done.stdout and "grpc (raw_input_contents)" in done.stdout
    (path,) = out.glob("*.json")
    doc = json.loads(path.read_text())
    assert len(doc["cells"]) == 4 and doc["recommendation"]["winner"].startswith("remote/")
    assert doc["profile"]["name"] == "aws-c7i-2xlarge"  # a profile named for the server prices it
    assert all(c["result"]["cost_usd_per_million"] > 0 for c in doc["cells"])
    # an interrupted remote sweep resumes on the same server
    doc["cells"][0]["status"], doc["cells"][0]["result"] = "pending", None
    path.write_text(json.dumps(doc))
    done = cli("sweep", "--resume", str(path))
    assert done.returncode == 0, done.stderr
    again = json.loads(path.read_text())
    assert again["cells"][0]["status"] == "ok" and again["cells"][0]["result"]["requests"] > 0


def test_server_side_axes_are_refused_for_a_target(tmp_path):
    for flag, value in (("--threads", "2"), ("--instances", "2"), ("--device", "cpu")):
        done = cli("sweep", "--target", "http://127.0.0.1:1/v2/models/m", flag, value)
        assert done.returncode == 2, (flag, done.stderr)
        assert f"{flag} does not apply to a remote target" in done.stderr
    done = cli("sweep", "--target", "http://127.0.0.1:1/models/m")
    assert done.returncode == 2 and "the path does not name a model" in done.stderr


def test_unreachable_target_fails_before_any_report(tmp_path):
    (port,) = free_ports(1)
    done = cli("run", "--target", f"grpc://127.0.0.1:{port}/m", "--out", str(tmp_path))
    assert done.returncode == 2 and done.stderr.startswith("error: cannot reach the gRPC server")
    assert list(tmp_path.iterdir()) == []


def test_a_remote_target_without_the_remote_extra_says_what_to_install(tmp_path):
    """The REST probe needs only the standard library, the generator's sender httptools: its
    absence is one line and exit 2 before anything is sent, not a failed cell."""
    code = (
        "import sys; sys.modules['httptools'] = None\n"
        "sys.argv = ['benchbox', 'run', '--target', 'http://127.0.0.1:9/v2/models/m']\n"
        "from benchbox.cli import main; main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[0] == (
        "error: remote targets need a library that is not installed (httptools)"
    )
    assert "pip install 'benchbox[remote]'" in done.stderr and "Traceback" not in done.stderr
