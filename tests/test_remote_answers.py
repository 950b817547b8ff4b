"""Answers are checked, failures named, TLS trusted only as told, URL secrets kept out of reports:
against a small real OIP server (tests/servers/oip_small.py) on 127.0.0.1."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import pathlib
import ssl
import subprocess
import sys

import pytest
from servers.oip_small import serving
from servers.process import free_ports

ROOT = pathlib.Path(__file__).resolve().parents[1]
QUICK = ["--duration", "1s", "--warmup", "0.3s", "--concurrency", "1", "--batch", "3"]
SECRET = "s3cr3tpass"


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "benchbox", *args],
        capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT,
    )  # fmt: skip


@pytest.fixture(scope="module")
def server():
    (port,) = free_ports(1)
    with serving(port):
        yield f"127.0.0.1:{port}"


def one_report(out: pathlib.Path) -> dict:
    (path,) = out.glob("*.json")
    return json.loads(path.read_text())


@pytest.mark.parametrize(
    ("model", "kind"),
    [
        ("truncated", "malformed answer: not JSON"),
        ("wrongshape", "malformed answer: output 'y' has shape [4, 2], expected [3, 2]"),
        ("hangup", "connection closed mid-answer"),
        ("slow", "timed out after 1s"),
    ],
)
def test_a_bad_answer_fails_the_cell_with_its_kind_named(server, tmp_path, model, kind):
    url = f"http://{server}/v2/models/{model}"
    done = cli("run", "--target", url, "--request-timeout", "1s", *QUICK, "--out", str(tmp_path))
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    (cell,) = one_report(tmp_path)["cells"]
    assert cell["status"] == "failed" and cell["result"] is None
    assert kind in cell["reason"] and "refused" not in cell["reason"]
    assert kind in done.stderr + done.stdout


def test_a_good_answer_is_measured_and_the_request_timeout_recorded(server, tmp_path):
    url = f"http://{server}/v2/models/ok"
    done = cli("run", "--target", url, "--request-timeout", "2.5s", *QUICK, "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    report = one_report(tmp_path)
    (cell,) = report["cells"]
    assert cell["status"] in ("ok", "unstable") and cell["result"]["errors"] == 0
    assert report["target"]["request_timeout_s"] == 2.5
    assert report["target"]["insecure"] is False


def test_request_timeout_must_be_positive(server, tmp_path):
    url = f"http://{server}/v2/models/ok"
    done = cli("run", "--target", url, "--request-timeout", "0s", "--out", str(tmp_path))
    assert done.returncode == 2 and "--request-timeout" in done.stderr
    assert "Traceback" not in done.stderr and not list(tmp_path.glob("*.json"))


def test_url_secrets_stay_out_of_the_report_html_and_json(server, tmp_path):
    url = f"http://user:{SECRET}@{server}/v2/models/ok?token={SECRET}&api_key={SECRET}"
    done = cli("run", "--target", url, *QUICK, "--out", str(tmp_path), "--json")
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout and SECRET not in done.stderr
    assert done.stderr.count("credentials are used but not saved") == 1
    assert json.loads(done.stdout)["target"]["url"].startswith(f"http://{server}/v2/models/ok")
    (path,) = tmp_path.glob("*.json")
    assert SECRET not in path.read_text() and "user" not in one_report(tmp_path)["target"]["url"]
    html = tmp_path / "r.html"
    shown = cli("report", "export", str(path), "--format", "html", "--out", str(html))
    assert shown.returncode == 0, shown.stderr
    assert SECRET not in html.read_text() and SECRET not in shown.stdout + shown.stderr
    shown = cli("report", "show", str(path))
    assert shown.returncode == 0 and SECRET not in shown.stdout + shown.stderr


def _certificate(tmp: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    LOCAL = ipaddress.ip_address("127.0.0.1")  # noqa: N806
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(LOCAL)]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = _certificate(tmp)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    (port,) = free_ports(1)
    with serving(port, ssl_context=ctx):
        yield f"https://127.0.0.1:{port}/v2/models/ok", cert


def test_https_without_trust_fails_in_one_line(tls_server, tmp_path):
    url, _cert = tls_server
    done = cli("run", "--target", url, *QUICK, "--out", str(tmp_path))
    assert done.returncode == 2, done.stderr
    assert "TLS certificate is not trusted" in done.stderr and "--ca-cert" in done.stderr
    assert "Traceback" not in done.stderr and not list(tmp_path.glob("*.json"))


def test_https_with_ca_cert_is_measured(tls_server, tmp_path):
    url, cert = tls_server
    done = cli("run", "--target", url, "--ca-cert", str(cert), *QUICK, "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    report = one_report(tmp_path)
    assert report["cells"][0]["result"]["errors"] == 0
    assert report["target"]["ca_cert"] == str(cert) and report["target"]["insecure"] is False


def test_https_insecure_is_explicit_and_written_into_the_report(tls_server, tmp_path):
    url, _cert = tls_server
    done = cli("run", "--target", url, "--insecure", *QUICK, "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert one_report(tmp_path)["target"]["insecure"] is True


def test_insecure_on_plain_http_is_refused(server, tmp_path):
    url = f"http://{server}/v2/models/ok"
    done = cli("run", "--target", url, "--insecure", "--out", str(tmp_path))
    assert done.returncode == 2 and "--insecure applies to https://" in done.stderr


def test_malformed_answers_while_measuring_are_errors_not_latencies(server, tmp_path):
    url = f"http://{server}/v2/models/sometimes"
    done = cli("run", "--target", url, *QUICK, "--out", str(tmp_path))
    (cell,) = one_report(tmp_path)["cells"]
    assert cell["status"] == "failed", done.stderr
    assert "requests failed" in cell["reason"] and "malformed answer: not JSON" in cell["reason"]


def test_binary_answers_are_checked_against_the_sizes_their_header_declares():
    from benchbox.remote.wire import check_binary_answer

    def answer(shape, size, payload):
        out = {"name": "y", "datatype": "FP32", "shape": shape}
        out["parameters"] = {"binary_data_size": size}
        header = json.dumps({"outputs": [out]}).encode()
        return header + payload, str(len(header))

    want = (("y", (3, 2)),)
    assert check_binary_answer(*answer([3, 2], 24, b"\0" * 24), want) is None
    assert "24 tensor bytes, 20 came" in check_binary_answer(*answer([3, 2], 24, b"\0" * 20), want)
    assert "declares 16 bytes" in check_binary_answer(*answer([3, 2], 16, b"\0" * 16), want)
    assert "shape [2, 2]" in check_binary_answer(*answer([2, 2], 16, b"\0" * 16), want)
    body, _n = answer([3, 2], 24, b"\0" * 24)
    assert "header declared" in check_binary_answer(body, str(len(body) + 1), want)


def test_grpc_answers_are_checked_for_shape_and_raw_sizes():
    pytest.importorskip("tritonclient.grpc")
    from tritonclient.grpc import service_pb2

    from benchbox.remote.rpc import check_answer

    def answer(shape, nbytes):
        resp = service_pb2.ModelInferResponse(model_name="m")
        out = resp.outputs.add()
        out.name, out.datatype = "y", "FP32"
        out.shape.extend(shape)
        resp.raw_output_contents.append(b"\0" * nbytes)
        return resp.SerializeToString()

    want = (("y", (3, 2)),)
    assert check_answer(answer([3, 2], 24), want) is None
    assert "holds 20 bytes" in check_answer(answer([3, 2], 20), want)
    assert "shape [4, 2]" in check_answer(answer([4, 2], 32), want)
    assert check_answer(answer([3, 2], 24)[:-5], want).startswith("malformed answer")


def test_redact_url_strips_userinfo_and_token_like_query_values():
    from benchbox.redact import redact_url

    assert redact_url("http://u:p@h:8000/v2/models/m") == ("http://h:8000/v2/models/m", True)
    safe, hit = redact_url("https://h/v2/models/m?X-Amz-Signature=abc&sig=d&keep=1")
    assert hit and "abc" not in safe and "=d" not in safe and "keep=1" in safe
    assert redact_url("postgresql://me:pw@db:5432/x") == ("postgresql://db:5432/x", True)
    assert redact_url("grpc://h:8001/m") == ("grpc://h:8001/m", False)
    assert redact_url("http://[::1]:9/v2/models/m?password=z")[0] == (
        "http://[::1]:9/v2/models/m?password=REDACTED"
    )


@pytest.fixture(scope="module")
def remote_report(server, tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("remote")
    url = f"http://{server}/v2/models/ok"
    done = cli("run", "--target", url, *QUICK, "--latency-target", "p99=10s", "--out", str(out))
    assert done.returncode == 0, done.stderr
    (path,) = out.glob("*.json")
    return path


def test_recommend_export_of_a_remote_report_refuses_before_printing(remote_report, tmp_path):
    done = cli(
        "recommend", str(remote_report), "--latency-target", "p99=10s",
        "--export", "onnxruntime", "--out", str(tmp_path / "exp"),
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr
    assert "measured a server" in done.stderr and "--model" in done.stderr
    assert not (tmp_path / "exp").exists() or not list((tmp_path / "exp").iterdir())


@pytest.mark.parametrize("kind", ["triton", "kserve", "onnxruntime"])
def test_recommend_export_of_a_remote_report_refuses_before_printing_even_with_model(
    remote_report, tmp_path, mlp_path, kind
):
    # --model was the old hint; each export then failed after printing ("unknown device 'remote'").
    done = cli(
        "recommend", str(remote_report), "--latency-target", "p99=10s", "--export", kind,
        "--model", str(mlp_path), "--out", str(tmp_path / "exp"),
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr
    assert "as it was configured" in done.stderr and "benchbox sweep MODEL.onnx" in done.stderr
    assert not (tmp_path / "exp").exists() or not list((tmp_path / "exp").iterdir())


def test_compare_of_a_remote_and_a_local_report_names_the_remote_model(
    remote_report, mlp_path, tmp_path
):
    done = cli(
        "run", str(mlp_path), "--device", "cpu", "--threads", "1", *QUICK, "--out", str(tmp_path)
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (local,) = tmp_path.glob("*.json")
    done = cli("compare", str(remote_report), str(local))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "remote model 'ok'" in done.stderr and "sha256 …" not in done.stderr
