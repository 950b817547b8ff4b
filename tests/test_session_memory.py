"""Peak memory over session creation is recorded apart from the measuring peak, and judged."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from benchbox import model as model_mod
from benchbox.measure.cell import MeasureSettings
from benchbox.recommend import memory_mb
from benchbox.schema import Cell, Load, ServingConfig
from benchbox.sweep.runner import CellContext, InProcessWorker

INIT_BYTES = 100 * 2**20


def big_initializer_model(path) -> None:
    """y = x + sum(W) over a 100 MiB float32 initializer W: tiny compute, large weights."""
    n = INIT_BYTES // 4
    w = numpy_helper.from_array(np.arange(n, dtype=np.float32) % 7, name="W")
    graph = helper.make_graph(
        [
            helper.make_node("ReduceSum", ["W"], ["s"], keepdims=0),
            helper.make_node("Add", ["x", "s"], ["y"]),
        ],
        "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_the_session_creation_peak_of_a_large_initializer_is_recorded_and_judged(tmp_path):
    path = tmp_path / "big.onnx"
    big_initializer_model(path)
    ctx = CellContext(
        model_path=str(path),
        model=model_mod.inspect_model(str(path)),
        settings=MeasureSettings(warmup_s=0.05, duration_s=0.3, window_s=0.1),
    )
    config = ServingConfig(device="cpu", intra_op_threads=1, instances=1, batch_size=1)
    cell = Cell("cpu/t1/i1/b1/closed-c1", config, Load("closed", concurrency=1))
    worker = InProcessWorker(ctx)
    try:
        done = worker.measure(cell)
    finally:
        worker.close()
    r = done.result
    assert done.status in ("ok", "unstable"), done.reason
    assert r.session_rss_mb is not None and r.rss_mb is not None
    # Creating the session holds the initializer at least once beyond what measuring keeps.
    assert r.session_rss_mb * 2**20 >= r.rss_mb * 2**20 + 0.5 * INIT_BYTES
    assert memory_mb(done) == r.session_rss_mb  # the memory decision reads the larger peak
