"""The OpenVINO runtime as a second backend: real OpenVINO on zoo models, swept beside `cpu`."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import numpy as np
import onnxruntime as ort
import pytest

pytest.importorskip("openvino", reason="the openvino extra (benchbox[openvino]) is not installed")

from benchbox import model as model_mod  # noqa: E402
from benchbox.backends import CellFailure, open_instances  # noqa: E402
from benchbox.backends import openvino as ov_backend  # noqa: E402
from benchbox.devices import parse_device  # noqa: E402
from benchbox.schema import ServingConfig  # noqa: E402

F32 = "ov:CPU?INFERENCE_PRECISION_HINT=f32"  # OpenVINO may default to bf16 on AVX-512 CPUs


def reference(path, feeds) -> list[np.ndarray]:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)


def test_instances_become_streams_and_threads_are_per_stream():
    one = ov_backend.ov_properties(ServingConfig(intra_op_threads=2), parse_device("ov:CPU"))
    assert one == {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1", "INFERENCE_NUM_THREADS": "2"}
    three = ov_backend.ov_properties(
        ServingConfig(intra_op_threads=2, instances=3), parse_device("ov")
    )
    assert three == {
        "PERFORMANCE_HINT": "THROUGHPUT",
        "NUM_STREAMS": "3",
        "INFERENCE_NUM_THREADS": "6",
    }
    gpu = ov_backend.ov_properties(ServingConfig(), parse_device("ov:GPU?PERFORMANCE_HINT=X"))
    assert gpu == {"PERFORMANCE_HINT": "X", "NUM_STREAMS": "1"}  # options win; no GPU threads


def test_compiled_model_runs_with_the_mapped_streams(mlp_path):
    inst = open_instances(str(mlp_path), ServingConfig(device="ov:CPU", instances=2))
    assert len(inst.runners) == 2 and inst.runtime.startswith("openvino")
    assert inst.providers == ["OpenVINO CPU"]
    assert str(inst.notes[0]).startswith("openvino: CPU with")
    assert "NUM_STREAMS=2" in str(inst.notes[0]) and "INFERENCE_NUM_THREADS=2" in str(inst.notes[0])
    assert "PERFORMANCE_HINT=THROUGHPUT" in str(inst.notes[0])
    inst.close()


@pytest.mark.parametrize("fixture", ["mlp_path", "resnet_path"])
def test_openvino_computes_what_onnxruntime_computes(fixture, request):
    path = str(request.getfixturevalue(fixture))
    feeds = model_mod.synthesize_inputs(model_mod.inspect_model(path), 2, pool_size=1)[0]
    inst = open_instances(path, ServingConfig(device=F32, batch_size=2))
    assert not any(
        str(n).startswith("precision:") for n in inst.notes
    )  # f32 asked: nothing to flag
    got = list(inst.runners[0](feeds).values())
    for ours, theirs in zip(got, reference(path, feeds), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)


def test_inputs_of_another_shape_get_their_own_compiled_model(bert_path):
    info = model_mod.inspect_model(bert_path, {"seq": 16})
    feeds = model_mod.synthesize_inputs(info, 1, pool_size=1)[0]
    inst = open_instances(str(bert_path), ServingConfig(device=F32))
    first = inst.runners[0](feeds)
    out = first[next(iter(first.keys()))]
    assert out.shape[:2] == (1, 16)  # compiled at the default seq, then again for 16
    np.testing.assert_allclose(out, reference(bert_path, feeds)[0], rtol=1e-3, atol=1e-3)


def test_more_threads_than_instances_each_get_their_own_infer_request(mlp_path):
    info = model_mod.inspect_model(mlp_path)
    pool = model_mod.synthesize_inputs(info, 3, pool_size=4, seed=7)
    expected = [reference(mlp_path, f)[0] for f in pool]
    inst = open_instances(str(mlp_path), ServingConfig(device=F32, batch_size=3))
    run = inst.runners[0]
    errors = []

    def worker(k: int) -> None:
        for i in range(40):
            j = (i * 3 + k) % len(pool)
            out = next(iter(run(pool[j]).values())).copy()
            if not np.allclose(out, expected[j], rtol=1e-4, atol=1e-4):
                errors.append((k, i))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_device_openvino_does_not_see_fails_the_cell(mlp_path):
    with pytest.raises(CellFailure) as err:
        open_instances(str(mlp_path), ServingConfig(device="ov:NPU"))
    assert "OpenVINO sees no NPU device" in str(err.value)


def test_running_on_another_device_than_asked_is_a_fallback():
    gpu = parse_device("ov:GPU")
    assert "runs on CPU (silent fallback)" in ov_backend.execution_check(gpu, ["CPU"])
    assert ov_backend.execution_check(gpu, ["GPU.0"]) is None
    assert ov_backend.execution_check(parse_device("ov:AUTO"), ["CPU"]) is None


QUICK = ["--duration", "0.3s", "--warmup", "0.1s", "--window", "0.1s", "--search", "grid", "--json"]
QUICK += ["--trials", "1"]  # one trial a cell: side by side is what is tested here


def sweep(*args: str) -> dict:
    p = subprocess.run(
        [sys.executable, "-m", "benchbox", "sweep", *args, *QUICK],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_sweep_measures_cpu_and_openvino_side_by_side(resnet_path, tmp_path):
    report = sweep(
        str(resnet_path), "--device", "cpu,ov:CPU", "--batch", "1,2", "--concurrency", "1,2",
        "--threads", "1", "--out", str(tmp_path),
    )  # fmt: skip
    cells = {c["id"]: c for c in report["cells"]}
    assert len(cells) == 8
    for device in ("cpu", "ov:CPU"):
        for batch in (1, 2):
            for conc in (1, 2):
                cell = cells[f"{device}/t1/i1/b{batch}/closed-c{conc}"]
                assert cell["config"]["device"] == device
                assert cell["status"] in ("ok", "unstable"), cell["reason"]
                r = cell["result"]
                assert r["inferences"] == r["requests"] * batch > 0
                assert r["latency_ms"]["p50"] > 0
