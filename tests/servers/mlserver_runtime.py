"""An MLServer custom runtime that runs an ONNX file (`parameters.uri`) with onnxruntime.

`parameters.extra.flaky`: fail one call in ten (to count server errors)."""

from __future__ import annotations

import itertools

import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class OnnxRuntime(MLModel):
    async def load(self) -> bool:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        uri = self.settings.parameters.uri
        self.session = ort.InferenceSession(uri, opts, providers=["CPUExecutionProvider"])
        self.names = [o.name for o in self.session.get_outputs()]
        extra = self.settings.parameters.extra or {}
        self.flaky = bool(extra.get("flaky"))
        self.calls = itertools.count()
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        if self.flaky and next(self.calls) % 10 == 9:
            raise ValueError("flaky model: every tenth call fails")
        feeds = {i.name: NumpyCodec.decode_input(i) for i in payload.inputs}
        outputs = self.session.run(self.names, feeds)
        return InferenceResponse(
            model_name=self.name,
            outputs=[
                NumpyCodec.encode_output(name, arr)
                for name, arr in zip(self.names, outputs, strict=True)
            ],
        )
