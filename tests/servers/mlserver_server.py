"""MLServer with a custom onnxruntime runtime (tests/servers/mlserver_runtime.py), on 127.0.0.1.
Runs from the mlserver venv (tests/servers/venvs.py). MLServer has no binary tensor extension,
so benchbox talks JSON to it.

python mlserver_server.py MODEL.onnx --http-port P --grpc-port P --metrics-port P [--name mlp]

Writes the settings into the working directory and serves `NAME` and `flaky` (fails one call in
ten) in-process (parallel_workers 0).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import sys

import onnxruntime as ort
import parent_watch

DATATYPES = {"tensor(float)": "FP32", "tensor(int64)": "INT64", "tensor(int32)": "INT32"}


def _types(args) -> list[dict]:
    return [
        {
            "name": a.name,
            "datatype": DATATYPES[a.type],
            "shape": [d if isinstance(d, int) else -1 for d in a.shape],
        }
        for a in args
    ]


def main() -> None:
    parent_watch.start()
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--name", default="mlp")
    p.add_argument("--http-port", type=int, required=True)
    p.add_argument("--grpc-port", type=int, required=True)
    p.add_argument("--metrics-port", type=int, required=True)
    a = p.parse_args()
    root = pathlib.Path.cwd() / f"mlserver-{a.http_port}"
    root.mkdir(exist_ok=True)
    shutil.copy(pathlib.Path(__file__).with_name("mlserver_runtime.py"), root)
    session = ort.InferenceSession(a.model, providers=["CPUExecutionProvider"])
    settings = {
        "host": "127.0.0.1",
        "http_port": a.http_port,
        "grpc_port": a.grpc_port,
        "metrics_port": a.metrics_port,
        "parallel_workers": 0,
        "metrics_endpoint": None,
    }
    (root / "settings.json").write_text(json.dumps(settings))
    for name, flaky in ((a.name, False), ("flaky", True)):
        folder = root / name
        folder.mkdir(exist_ok=True)
        model = {
            "name": name,
            "implementation": "mlserver_runtime.OnnxRuntime",
            "parameters": {"uri": a.model, "extra": {"flaky": flaky}},
            "inputs": _types(session.get_inputs()),
            "outputs": _types(session.get_outputs()),
        }
        (folder / "model-settings.json").write_text(json.dumps(model))
    sys.path.insert(0, str(root))
    from mlserver.cli.main import main as mlserver_main

    sys.argv = ["mlserver", "start", str(root)]
    mlserver_main()


if __name__ == "__main__":
    main()
