"""A ruler in every run: a small fixed workload timed in every trial round, beside the cells.

Trials inside one run cannot see a change of the machine between two runs (another day, a
neighbour, a frequency cap). A fixed reference workload measured in both runs can: if it got
10% slower, the machine did, and each cell's ratio is divided by the ruler's (with the ruler's
own uncertainty added), as performance bots run a reference build beside every tip. The
workload is a seeded float32 matrix product with an elementwise tanh, run by onnxruntime on one
thread, the kind of compute and memory traffic a CPU inference does; it costs a few hundredths
of a second. (v1 timed the same product in numpy, whose multi-threaded BLAS read up to 25x slow
in one round beside a busy worker, so its intervals spanned 0.1x-20x; v1 and v2 rulers are
different kinds and are not compared with each other.)

What a ruler cannot correct: a change that moves the model but not the ruler (memory bandwidth
against compute, a different cache size, an accelerator's clock while the CPU ruler is idle).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Sequence

RULER_KIND = "onnxruntime-matmul-192-tanh-t1-v2"
SIZE = 192
LOOPS = 8
GROUPS = 7
CONFOUNDED = 0.05  # the machine moved more than this (with confidence): the runs are confounded


@functools.cache
def _ruler_session():
    """An onnxruntime session of LOOPS steps of tanh(x @ b) on one thread, and its input (made
    once per process)."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(12345)
    b = (rng.standard_normal((SIZE, SIZE)) / math.sqrt(SIZE)).astype(np.float32)
    nodes, x = [], "x"
    for i in range(LOOPS):
        nodes += [
            helper.make_node("MatMul", [x, "b"], [f"m{i}"]),
            helper.make_node("Tanh", [f"m{i}"], [f"t{i}"]),
        ]
        x = f"t{i}"
    graph = helper.make_graph(
        nodes,
        "ruler",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [SIZE, SIZE])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [SIZE, SIZE])],
        [numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 4
    session = ort.InferenceSession(
        model.SerializeToString(), so, providers=["CPUExecutionProvider"]
    )
    feed = {"x": rng.standard_normal((SIZE, SIZE)).astype(np.float32)}
    session.run(None, feed)  # the first run allocates
    return session, feed


def time_ruler() -> float:
    """Seconds per loop of the reference workload: the fastest of GROUPS timed runs.

    One thread and no spinning, so the ruler neither fights a measured cell for cores nor reads
    a thread pool's contention (numpy's BLAS threads read 25x slow beside a busy worker on a
    2-core host); the fastest group, since a preemption only ever adds time and the machine's
    speed is what is read."""
    session, feed = _ruler_session()
    times = []
    for _ in range(GROUPS):
        start = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - start) / LOOPS)
    return float(min(times))


def corrected(
    ratio: float, lo: float, hi: float, ruler_ratio: float, ruler_lo: float, ruler_hi: float
) -> tuple[float, float, float]:
    """A cell's ratio divided by the ruler's, half-widths on the log scale added in quadrature.

    Both intervals are taken as symmetric on logs (their half-widths, at the same confidence);
    the quadrature sum is the interval of the difference of two independent estimates.
    """
    half_cell = (math.log(hi) - math.log(lo)) / 2.0
    half_ruler = (math.log(ruler_hi) - math.log(ruler_lo)) / 2.0
    center = math.log(ratio) - math.log(ruler_ratio)
    half = math.hypot(half_cell, half_ruler)
    return math.exp(center), math.exp(center - half), math.exp(center + half)


def moved_beyond(ruler_lo: float, ruler_hi: float, limit: float = CONFOUNDED) -> bool:
    """True when the ruler's CI lies wholly beyond 1 ± limit: the machine itself moved."""
    return ruler_lo > 1.0 + limit or ruler_hi < 1.0 / (1.0 + limit)


def usable(per_round_s: Sequence[float]) -> bool:
    """A ruler with two or more positive rounds (a between-round CI needs two)."""
    return len(per_round_s) >= 2 and all(v > 0 and math.isfinite(v) for v in per_round_s)
