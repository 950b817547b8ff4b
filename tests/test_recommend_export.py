"""`recommend --export` refuses before it prints when the export could not be written."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

from benchbox.measure.cell import MeasureSettings
from benchbox.sweep import SweepRequest, run_sweep
from benchbox.sweep.plan import SweepSpec

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_a_triton_export_whose_model_file_is_gone_refuses_before_printing(mlp_path, tmp_path):
    model = tmp_path / "mlp.onnx"
    shutil.copy(mlp_path, model)
    req = SweepRequest(
        model_path=str(model),
        spec=SweepSpec(),
        settings=MeasureSettings(warmup_s=0.05, duration_s=0.2, window_s=0.1),
        out_dir=str(tmp_path / "reports"),
        search="grid",
        isolate=False,
    )
    _, report = run_sweep(req)
    model.unlink()  # the report names a file that is no longer there
    done = subprocess.run(
        [sys.executable, "-m", "benchbox", "recommend", str(report), "--latency-target",
         "p99=10s", "--export", "triton", "--out", str(tmp_path / "exp")],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""  # the answer was printed, then the export failed
    assert f"the model file the report measured ({model}) does not exist" in done.stderr
    assert not (tmp_path / "exp").exists()
