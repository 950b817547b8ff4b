"""A PyTriton server (real tritonserver, real dynamic batcher) serving an ONNX file with
onnxruntime through its Python backend. Runs from the pytriton venv (tests/servers/venvs.py).

python pytriton_server.py MODEL.onnx --http-port P --grpc-port P --metrics-port P
  [--name mlp] [--max-batch 16] [--delay-us 500] [--preferred 4,8] [--instances 1]
  [--threads 1] [--token SECRET] [--open-statistics] [--flaky]

--token sets the access token of PyTriton's restricted endpoints (statistics among them);
--open-statistics leaves statistics unrestricted (TritonSecurityConfig). --flaky also serves a
model `flaky` (the same ONNX file) that fails one call in ten.
"""

from __future__ import annotations

import argparse
import itertools
import logging

import numpy as np
import onnxruntime as ort
import parent_watch
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig

ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}
RESTRICTED = ["shared-memory", "model-repository", "statistics", "trace", "logging"]


def tensors(args) -> list:
    return [
        Tensor(
            name=a.name,
            dtype=ORT_TYPES[a.type],
            shape=tuple(d if isinstance(d, int) else -1 for d in a.shape[1:]),
        )
        for a in args
    ]


def make_infer(session: ort.InferenceSession, flaky: bool):
    names = [o.name for o in session.get_outputs()]
    calls = itertools.count()

    @batch
    def infer(**inputs):
        if flaky and next(calls) % 10 == 9:
            raise ValueError("flaky model: every tenth call fails")
        return dict(zip(names, session.run(names, inputs), strict=True))

    return infer


def main() -> None:
    parent_watch.start()
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--name", default="mlp")
    p.add_argument("--http-port", type=int, required=True)
    p.add_argument("--grpc-port", type=int, required=True)
    p.add_argument("--metrics-port", type=int, required=True)
    p.add_argument("--max-batch", type=int, default=16)
    p.add_argument("--delay-us", type=int, default=0)
    p.add_argument("--preferred", default="")
    p.add_argument("--instances", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--token", default=None)
    p.add_argument("--open-statistics", action="store_true")
    p.add_argument("--flaky", action="store_true")
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    opts = ort.SessionOptions()
    # benchbox.backends.onnxruntime's session options for a serving config
    opts.intra_op_num_threads = a.threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    restricted = [e for e in RESTRICTED if not (a.open_statistics and e == "statistics")]
    security = TritonSecurityConfig(access_token=a.token, restricted_endpoints=restricted)
    config = TritonConfig(
        http_address="127.0.0.1",
        http_port=a.http_port,
        grpc_address="127.0.0.1",
        grpc_port=a.grpc_port,
        metrics_port=a.metrics_port,
        allow_metrics=False,
        log_verbose=0,
    )
    preferred = [int(x) for x in a.preferred.split(",") if x]
    batcher = DynamicBatcher(
        max_queue_delay_microseconds=a.delay_us, preferred_batch_size=preferred or None
    )
    with Triton(config=config, security_config=security) as triton:
        models = [(a.name, False)] + ([("flaky", True)] if a.flaky else [])
        for name, flaky in models:
            sessions = [
                ort.InferenceSession(a.model, opts, providers=["CPUExecutionProvider"])
                for _ in range(a.instances)
            ]
            triton.bind(
                model_name=name,
                infer_func=[make_infer(s, flaky) for s in sessions],
                inputs=tensors(sessions[0].get_inputs()),
                outputs=tensors(sessions[0].get_outputs()),
                config=ModelConfig(max_batch_size=a.max_batch, batcher=batcher),
                strict=False,
            )
        print("serving", flush=True)
        triton.serve()


if __name__ == "__main__":
    main()
