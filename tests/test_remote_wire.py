"""Remote targets without a server: URLs, headers, metadata, request bodies, the stats diff."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchbox import model as model_mod
from benchbox.errors import BadInput
from benchbox.remote import split, wire
from benchbox.remote.generator import ErrorLog, LoadPlan, LoopStats, split_plan
from benchbox.remote.target import parse_headers, parse_url


def test_rest_url_names_model_and_version():
    t = parse_url("http://10.0.0.5:8000/v2/models/resnet/versions/3")
    assert (t.protocol, t.host, t.port, t.model, t.version) == (
        "http",
        "10.0.0.5",
        8000,
        "resnet",
        "3",
    )
    assert t.model_path == "/v2/models/resnet/versions/3"
    assert t.base_url == "http://10.0.0.5:8000"


def test_grpc_url_names_model():
    t = parse_url("grpc://localhost:8001/bert")
    assert (t.protocol, t.authority, t.model, t.version) == ("grpc", "localhost:8001", "bert", "")


@pytest.mark.parametrize(
    "url",
    ["ftp://h:1/v2/models/m", "http://h:1/models/m", "http://h:1/v2/models/", "grpc://h:1/", "h:1"],
)
def test_malformed_urls_are_bad_input(url):
    with pytest.raises(BadInput, match="--target"):
        parse_url(url)


def test_headers_parse_and_reject_missing_equals():
    assert parse_headers(["triton-access-token=a=b", "Authorization=Bearer x"]) == (
        ("triton-access-token", "a=b"),
        ("Authorization", "Bearer x"),
    )
    with pytest.raises(BadInput, match="KEY=VALUE"):
        parse_headers(["no-equals"])


def test_metadata_free_dims_become_batch_and_shared_dim_names():
    specs = wire.tensor_specs(
        [
            {"name": "input_ids", "datatype": "INT64", "shape": [-1, -1]},
            {"name": "attention_mask", "datatype": "INT64", "shape": [-1, -1]},
        ],
        "input",
    )
    assert specs[0].shape == ("batch", "dim1") and specs[0].dtype == "int64"
    info = model_mod.info_from_specs("http://x", specs, shapes={"dim1": 32})
    shapes = model_mod.input_shapes(info, 4)
    assert shapes == {"input_ids": (4, 32), "attention_mask": (4, 32)}
    with pytest.raises(BadInput, match="--shape"):
        model_mod.info_from_specs("http://x", specs, shapes={"seq": 8})


def test_binary_body_is_header_then_raw_bytes():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    ids = np.array([[1, 2]], dtype=np.int64)
    body, n = wire.binary_body({"x": x, "ids": ids})
    header = json.loads(body[:n])
    assert header["inputs"][0] == {
        "name": "x",
        "shape": [2, 3],
        "datatype": "FP32",
        "parameters": {"binary_data_size": 24},
    }
    assert header["inputs"][1]["parameters"]["binary_data_size"] == 16
    assert np.array_equal(np.frombuffer(body[n : n + 24], np.float32).reshape(2, 3), x)
    assert np.array_equal(np.frombuffer(body[n + 24 :], np.int64), ids.ravel())


def test_json_body_is_flat_row_major_data():
    body = json.loads(wire.json_body({"m": np.array([[True, False]])}))
    assert body["inputs"] == [
        {"name": "m", "shape": [1, 2], "datatype": "BOOL", "data": [True, False]}
    ]


def test_error_text_prefers_the_servers_error_field():
    assert wire.error_text(400, b'{"error": "bad  shape\\n for x"}') == "HTTP 400: bad shape for x"
    assert wire.error_text(503, b"") == "HTTP 503"


def _stats(success, queue, ci, cinf, co, infer_count, exec_count, batches):
    def phase(count_ns):
        return {"count": count_ns[0], "ns": count_ns[1]}

    return {
        "model_stats": [
            {
                "name": "m",
                "version": "1",
                "inference_count": infer_count,
                "execution_count": exec_count,
                "inference_stats": {
                    "success": phase(success),
                    "queue": phase(queue),
                    "compute_input": phase(ci),
                    "compute_infer": phase(cinf),
                    "compute_output": phase(co),
                },
                # gRPC's JSON form writes uint64 as strings
                "batch_stats": [
                    {"batch_size": b, "compute_infer": {"count": str(n), "ns": "0"}}
                    for b, n in batches.items()
                ],
            }
        ]
    }


def test_split_is_the_difference_of_two_snapshots_per_request():
    before = split.counters(
        _stats((10, 10e6), (10, 2e6), (4, 1e6), (4, 5e6), (4, 1e6), 10, 4, {1: 2, 4: 2})
    )
    after = split.counters(
        _stats(
            (110, 310e6), (110, 102e6), (30, 51e6), (30, 105e6), (30, 21e6), 110, 30, {1: 12, 4: 18}
        )
    )
    s = split.diff(before, after, client_mean_ms=5.0)
    assert s.requests == 100
    assert s.queue_ms == pytest.approx(1.0)
    assert s.compute_ms == pytest.approx(0.5 + 1.0 + 0.2)
    assert s.server_ms == pytest.approx(3.0)
    assert s.network_client_ms == pytest.approx(5.0 - 1.0 - 1.7)
    assert (s.inferences, s.executions) == (100, 26)
    assert s.batch_sizes == {1: 10, 4: 16}


def test_split_is_none_without_requests_or_triton_format():
    snap = split.counters(_stats((5, 1), (5, 1), (1, 1), (1, 1), (1, 1), 5, 1, {}))
    assert split.diff(snap, snap) is None
    assert split.counters({"models": []}) is None


def test_plan_splits_concurrency_and_rate_over_processes():
    parts = split_plan(LoadPlan("open", concurrency=5, rate_rps=300.0, seed=1), 2)
    assert [p.concurrency for p in parts] == [3, 2]
    assert [p.rate_rps for p in parts] == [150.0, 150.0]
    assert len({p.seed for p in parts}) == 2 and [p.first_index for p in parts] == [0, 1]
    assert len(split_plan(LoadPlan("closed", concurrency=1), 4)) == 1


def test_error_log_counts_in_an_interval_and_keeps_the_first_text():
    log = ErrorLog()
    for t, text in ((10, "HTTP 500: a"), (20, "HTTP 500: b"), (30, "timeout")):
        log.add(t, text)
    assert log.between(15, 30) == 2 and log.first == "HTTP 500: a"


def test_busy_share_leaves_out_spin_waits():
    assert LoopStats(cpu_s=0.9, spin_s=0.6, wall_s=1.0).busy_share == pytest.approx(0.3)
    assert LoopStats(cpu_s=0.0, spin_s=0.0, wall_s=0.0).busy_share == 0.0
