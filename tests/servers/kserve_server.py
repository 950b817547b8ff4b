"""A KServe ModelServer (REST and gRPC) with a small kserve.Model that runs an ONNX file with
onnxruntime. Runs from the kserve venv (tests/servers/venvs.py).

python kserve_server.py MODEL.onnx --http-port P --grpc-port P --metrics-port P [--name mlp]

Also serves `flaky` (the same ONNX file), which fails one call in ten. KServe binds every
interface by default; this script binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import itertools
import sys

import parent_watch

a_parser = argparse.ArgumentParser()
a_parser.add_argument("model")
a_parser.add_argument("--name", default="mlp")
a_parser.add_argument("--http-port", type=int, required=True)
a_parser.add_argument("--grpc-port", type=int, required=True)
a_parser.add_argument("--metrics-port", type=int, default=0)
ARGS = a_parser.parse_args()
sys.argv = sys.argv[:1]  # kserve parses sys.argv when it is imported

import grpc.aio  # noqa: E402
import kserve  # noqa: E402
import onnxruntime as ort  # noqa: E402
import uvicorn  # noqa: E402
from kserve import InferOutput, InferRequest, InferResponse  # noqa: E402
from kserve.protocol.rest import server as rest_server  # noqa: E402

DATATYPES = {"tensor(float)": "FP32", "tensor(int64)": "INT64", "tensor(int32)": "INT32"}
NUMPY_TO_DATATYPE = {"float32": "FP32", "int64": "INT64", "int32": "INT32", "float64": "FP64"}

_config = uvicorn.Config


def _local_config(*args, **kwargs):
    kwargs["host"] = "127.0.0.1"
    return _config(*args, **kwargs)


rest_server.uvicorn.Config = _local_config
_add_port = grpc.aio._server.Server.add_insecure_port
grpc.aio._server.Server.add_insecure_port = lambda self, address: _add_port(
    self, "127.0.0.1:" + address.rsplit(":", 1)[1]
)


def _types(args) -> list[dict]:
    return [
        {
            "name": a.name,
            "datatype": DATATYPES[a.type],
            "shape": [d if isinstance(d, int) else -1 for d in a.shape],
        }
        for a in args
    ]


class OnnxModel(kserve.Model):
    def __init__(self, name: str, path: str, flaky: bool) -> None:
        super().__init__(name)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        self.names = [o.name for o in self.session.get_outputs()]
        self.flaky = flaky
        self.calls = itertools.count()
        self.ready = True

    def get_input_types(self) -> list[dict]:
        return _types(self.session.get_inputs())

    def get_output_types(self) -> list[dict]:
        return _types(self.session.get_outputs())

    async def predict(self, payload: InferRequest, headers=None, response_headers=None):
        if self.flaky and next(self.calls) % 10 == 9:
            raise ValueError("flaky model: every tenth call fails")
        feeds = {i.name: i.as_numpy() for i in payload.inputs}
        outputs = self.session.run(self.names, feeds)
        infer_outputs = []
        for name, arr in zip(self.names, outputs, strict=True):
            out = InferOutput(
                name=name, shape=list(arr.shape), datatype=NUMPY_TO_DATATYPE[arr.dtype.name]
            )
            out.set_data_from_numpy(arr)
            infer_outputs.append(out)
        return InferResponse(
            response_id=payload.id or "", model_name=self.name, infer_outputs=infer_outputs
        )


if __name__ == "__main__":
    parent_watch.start()
    models = [OnnxModel(ARGS.name, ARGS.model, False), OnnxModel("flaky", ARGS.model, True)]
    kserve.ModelServer(http_port=ARGS.http_port, grpc_port=ARGS.grpc_port, workers=1).start(models)
