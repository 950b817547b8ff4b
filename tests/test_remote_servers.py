"""Remote targets against real servers on 127.0.0.1: PyTriton, KServe ModelServer, MLServer.

Each server runs from its own cached venv (tests/servers/venvs.py) and is started once per
module. Cells are short; the assertions are on what was measured, never on how fast.
"""

from __future__ import annotations

import pytest
from servers.fixtures import TOKEN
from servers.process import free_ports

from benchbox.errors import BadInput
from benchbox.measure.cell import MeasureSettings
from benchbox.remote import session as remote
from benchbox.schema import Cell, Load, ServingConfig, cell_id

SETTINGS = MeasureSettings(warmup_s=0.3, duration_s=1.0)
CLOSED = Load("closed", concurrency=4)
OPEN = Load("open", concurrency=32, rate_rps=100.0, distribution="poisson")


def cell(load: Load, batch: int = 1) -> Cell:
    config = ServingConfig(device="remote", batch_size=batch)
    return Cell(cell_id(config, load), config, load)


def measured(url: str, load: Load, headers=(), generators: int = 1) -> Cell:
    done = remote.measure_cell(remote.connect(url, headers), cell(load), SETTINGS, generators)
    return done


def assert_ok(done: Cell) -> None:
    assert done.status == "ok", (done.reason, done.warnings)
    r = done.result
    assert r.requests > 0 and r.errors == 0 and r.error_rate == 0.0
    assert 0 < r.latency_ms.p50 <= r.latency_ms.p99 <= r.latency_ms.max


def assert_errors_counted(done: Cell) -> None:
    """One call in ten fails on the `flaky` models: the cell fails, the errors are counted."""
    assert done.status == "failed"
    assert done.result.errors > 0 and done.result.error_rate > 0.01
    assert "requests failed" in done.reason and "first error:" in done.reason
    assert "flaky model" in done.reason or "HTTP 5" in done.reason


# ---------------------------------------------------------------- PyTriton


def test_pytriton_rest_uses_binary_tensors_and_reports_the_server(pytriton):
    s = remote.connect(pytriton.http("mlp"))
    info = remote.target_info(s)
    assert (info.server_name, info.protocol, info.wire) == ("triton", "http", "binary")
    assert "statistics" in info.extensions and info.statistics
    assert s.model.inputs[0].shape == ("batch", 64)


def test_pytriton_closed_and_open_cells_split_the_latency(pytriton):
    for load in (CLOSED, OPEN):
        done = measured(pytriton.http("mlp"), load)
        assert_ok(done)
        split = done.result.server_split
        assert split is not None and split.requests > 0
        assert 0 <= split.queue_ms and 0 < split.compute_ms
        # the server's part is no larger than what the client saw end to end
        assert split.queue_ms + split.compute_ms <= done.result.latency_ms.mean
        assert split.network_client_ms is not None and split.network_client_ms >= 0
        assert sum(b * n for b, n in split.batch_sizes.items()) == split.inferences
        assert done.result.batch_size_counts == split.batch_sizes
    assert done.result.issue_delay_ms is not None  # the open cell


def test_pytriton_grpc_cell_succeeds_with_split(pytriton):
    done = measured(pytriton.grpc("mlp"), CLOSED)
    assert_ok(done)
    assert done.result.server_split is not None


def test_pytriton_server_errors_are_counted(pytriton):
    assert_errors_counted(measured(pytriton.http("flaky"), CLOSED))


def test_two_generator_processes_share_the_load(pytriton):
    done = measured(pytriton.http("mlp"), CLOSED, generators=2)
    assert_ok(done)
    assert done.result.generator.processes == 2


def test_unknown_model_and_refused_connection_are_bad_input(pytriton):
    with pytest.raises(BadInput, match="no model 'nope'"):
        remote.connect(pytriton.http("nope"))
    with pytest.raises(BadInput, match="no model 'nope'"):
        remote.connect(pytriton.grpc("nope"))
    (port,) = free_ports(1)
    with pytest.raises(BadInput, match="connection refused"):
        remote.connect(f"http://127.0.0.1:{port}/v2/models/mlp")
    with pytest.raises(BadInput, match="cannot reach the gRPC server"):
        remote.connect(f"grpc://127.0.0.1:{port}/mlp")


def test_pytriton_statistics_behind_the_access_token(pytriton_token):
    url = pytriton_token.http("mlp")
    locked = remote.connect(url)
    assert not locked.statistics and "HTTP 4" in locked.statistics_reason
    done = remote.measure_cell(locked, cell(CLOSED), SETTINGS)
    assert_ok(done)
    assert done.result.server_split is None
    assert any(w.kind == "no-server-split" for w in done.warnings)
    opened = remote.connect(url, (("triton-access-token", TOKEN),))
    assert opened.statistics
    done = remote.measure_cell(opened, cell(CLOSED), SETTINGS)
    assert_ok(done)
    assert done.result.server_split is not None
    # over gRPC, Triton reads the token from a prefixed metadata key
    grpc_key = "triton-grpc-protocol-triton-access-token"
    assert not remote.connect(pytriton_token.grpc("mlp")).statistics
    assert remote.connect(pytriton_token.grpc("mlp"), ((grpc_key, TOKEN),)).statistics


def test_a_local_onnx_file_describes_the_inputs(pytriton, mlp_path, bert_path):
    s = remote.connect(pytriton.http("mlp"), model_path=str(mlp_path))
    assert s.model.sha256 and s.model.opset and s.model.path == pytriton.http("mlp")
    assert_ok(remote.measure_cell(s, cell(CLOSED), SETTINGS))
    with pytest.raises(BadInput, match="has no input named x"):
        remote.connect(pytriton.http("mlp"), model_path=str(bert_path))


# ---------------------------------------------------------------- KServe and MLServer


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_kserve_closed_and_open_cells(kserve_server, protocol):
    url = getattr(kserve_server, protocol)("mlp")
    s = remote.connect(url)
    assert s.server.name == "kserve" and not s.statistics
    for load in (CLOSED, OPEN):
        done = remote.measure_cell(s, cell(load, batch=2), SETTINGS)
        assert_ok(done)
        assert done.result.server_split is None


def test_kserve_server_errors_are_counted(kserve_server):
    assert_errors_counted(measured(kserve_server.http("flaky"), CLOSED))


def test_mlserver_json_closed_and_open_cells(mlserver_server):
    s = remote.connect(mlserver_server.http("mlp"))
    assert (s.server.name, s.wire) == ("mlserver", "json")
    for load in (CLOSED, OPEN):
        assert_ok(remote.measure_cell(s, cell(load, batch=2), SETTINGS))


def test_mlserver_server_errors_are_counted(mlserver_server):
    assert_errors_counted(measured(mlserver_server.http("flaky"), CLOSED))
