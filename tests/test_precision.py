"""Precision as a sweep dimension: real variants of real models, their accuracy against the fp32
CPU reference, accuracy bounds judged with their uncertainty, and bad input in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from benchbox import model as model_mod
from benchbox.errors import BadInput
from benchbox.measure.cell import MeasureSettings
from benchbox.parse import parse_target
from benchbox.precision import accuracy_plan, parse_precisions
from benchbox.precision.accuracy import compare, measure_cell_accuracy, run_all
from benchbox.precision.bounds import check_outputs, parse_bound, parse_bounds
from benchbox.precision.calibration import needs_data_reason
from benchbox.precision.variants import build_variant
from benchbox.recommend import recommend
from benchbox.schema import Load, ServingConfig, TrialPolicy, cell_id, report_from_json
from benchbox.sweep import SweepRequest, make_in_process_worker, run_sweep
from benchbox.sweep.plan import SweepSpec
from benchbox.verdict import accuracy_broken, wilson_interval

ONNX_DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
CONV2D = ONNX_DATA / "pytorch-converted" / "test_Conv2d"
SAMPLES = 48


def cpu_runner(path: str):
    so = ort.SessionOptions()
    so.log_severity_level = 4
    session = ort.InferenceSession(path, sess_options=so, providers=["CPUExecutionProvider"])
    return lambda feeds: session.run(None, feeds)


def accuracy_of(variant_path: str, source: str, precision: str, cache=None, samples=None):
    info = model_mod.inspect_model(source)
    config = ServingConfig(precision=precision)
    return measure_cell_accuracy(
        cpu_runner(variant_path), config, "test", source, info, SAMPLES, cache, samples=samples
    )


def by_name(acc):
    return {o.name: o for o in acc.outputs}


# ---------------------------------------------------------------- real variants, real models


@pytest.mark.parametrize("precision", ["fp16", "int8-dynamic", "int8-static"])
def test_bert_variants_are_smaller_and_close_to_the_reference(bert_path, precision):
    info = model_mod.inspect_model(bert_path)
    v = build_variant(str(bert_path), info, precision)
    assert v.error is None, v.error
    assert v.size_bytes < Path(bert_path).stat().st_size * 0.6
    assert v.sha256 == model_mod.sha256_file(v.path) and v.converter_version.startswith("onnx")
    acc = accuracy_of(v.path, str(bert_path), precision)
    outs = by_name(acc)
    assert set(outs) == {"last_hidden_state", "pooler_output"}
    assert acc.samples == SAMPLES and acc.flag is None
    hidden = outs["last_hidden_state"]
    assert 0 < hidden.max_abs_error < 0.5 and hidden.cosine > 0.999
    assert hidden.top1_count == SAMPLES * 128  # argmax over the last dim, every position
    if precision == "fp16":
        assert hidden.max_abs_error < 1e-2 and hidden.rel_error < 1e-2
    if precision == "int8-static":
        assert v.calibration.startswith("synthetic")


def test_variant_is_built_once_and_then_read_from_the_cache(bert_path):
    info = model_mod.inspect_model(bert_path)
    first = build_variant(str(bert_path), info, "int8-dynamic")
    mtime = os.stat(first.path).st_mtime_ns
    again = build_variant(str(bert_path), info, "int8-dynamic")
    assert again == first and os.stat(again.path).st_mtime_ns == mtime
    assert info.sha256[:16] in Path(first.path).name and "int8-dynamic" in first.path


def test_cnn_int8_static_agrees_on_top1_with_the_reference(resnet_path):
    info = model_mod.inspect_model(resnet_path)
    v = build_variant(str(resnet_path), info, "int8-static")
    assert v.error is None, v.error
    assert v.size_bytes < Path(resnet_path).stat().st_size / 3  # int8 weights: about a quarter
    logits = by_name(accuracy_of(v.path, str(resnet_path), "int8-static"))["logits"]
    assert logits.top1_count == SAMPLES and logits.cosine > 0.98
    assert logits.top1_agree >= SAMPLES * 0.5  # random weights: most argmaxes survive int8


def test_onnx_test_data_model_calibrated_on_its_real_input(tmp_path):
    source = str(CONV2D / "model.onnx")
    tensor = onnx.TensorProto()
    tensor.ParseFromString((CONV2D / "test_data_set_0" / "input_0.pb").read_bytes())
    real = numpy_helper.to_array(tensor)
    info = model_mod.inspect_model(source)
    feeds = [{info.inputs[0].name: real}]
    v = build_variant(source, info, "int8-static", samples=feeds, source_name="test_data_set_0")
    assert v.error is None and v.calibration == "test_data_set_0 (1 samples)"
    acc = accuracy_of(v.path, source, "int8-static", samples=feeds)
    out = acc.outputs[0]
    expected = numpy_helper.to_array(
        onnx.load_tensor(str(CONV2D / "test_data_set_0" / "output_0.pb"))
    )
    np.testing.assert_allclose(cpu_runner(source)(feeds[0])[0], expected, rtol=1e-3, atol=1e-4)
    assert acc.samples == real.shape[0] and out.cosine > 0.99 and out.rel_error < 0.1
    fp16 = build_variant(source, info, "fp16")
    assert accuracy_of(fp16.path, source, "fp16", samples=feeds).outputs[0].rel_error < 1e-2


def test_a_variant_that_cannot_load_is_a_one_line_reason(tmp_path, monkeypatch):
    from benchbox.precision import variants

    def broken(source, out, calib):
        model = onnx.load(source)
        model.graph.node[0].op_type = "NoSuchOp"
        onnx.save(model, out)

    monkeypatch.setitem(variants._CONVERTERS, "fp16", broken)
    src = tmp_path / "m.onnx"
    onnx.save(_tiny_matmul(), src)
    v = build_variant(str(src), model_mod.inspect_model(src), "fp16", cache=tmp_path / "c")
    assert v.path is None and "\n" not in v.error
    assert v.error.startswith("onnxruntime cannot run the variant on the CPU")
    assert not list((tmp_path / "c").glob("*.onnx"))  # nothing cached for a broken variant


# ---------------------------------------------------------------- accuracy judged


def _tiny_matmul(k_input: bool = False) -> onnx.ModelProto:
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((16, 10)).astype("f"), "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["logits"])]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])]
    if k_input:
        nodes.append(helper.make_node("TopK", ["logits", "k"], ["values", "indices"]))
        inputs.append(helper.make_tensor_value_info("k", TensorProto.INT64, [1]))
        outputs = [
            helper.make_tensor_value_info("values", TensorProto.FLOAT, ["batch", "k"]),
            helper.make_tensor_value_info("indices", TensorProto.INT64, ["batch", "k"]),
        ]
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_perturbed_weights_fail_the_accuracy_bound(mlp_path, tmp_path):
    model = onnx.load(mlp_path)
    rng = np.random.default_rng(1)
    for init in model.graph.initializer:
        w = numpy_helper.to_array(init)
        init.CopyFrom(
            numpy_helper.from_array(w + rng.normal(0, 0.5, w.shape).astype(w.dtype), init.name)
        )
    broken = tmp_path / "broken.onnx"
    onnx.save(model, broken)
    good = accuracy_of(str(mlp_path), str(mlp_path), "int8-dynamic")
    bad = accuracy_of(str(broken), str(mlp_path), "int8-dynamic")
    bounds = parse_bounds(["cosine>=0.999", "top1>=90%"])
    assert accuracy_broken(good, bounds) == []
    why = accuracy_broken(bad, bounds)
    assert any(w.startswith("logits: cosine") and "(cosine>=0.999)" in w for w in why)
    assert any("top1" in w and "lower 95% bound" in w for w in why)
    # the same perturbation at fp32 is flagged as an EP that differs from the reference
    assert (
        "differs from the fp32 CPU reference"
        in accuracy_of(str(broken), str(mlp_path), "fp32").flag
    )


def test_agreement_rates_are_judged_by_their_wilson_lower_bound():
    lo, hi = wilson_interval(400, 400)
    assert 0.990 < lo < 0.991 and hi == pytest.approx(1.0)
    lo, hi = wilson_interval(380, 400)
    assert lo < 0.95 < hi
    from benchbox.schema import Accuracy, OutputAccuracy

    out = OutputAccuracy("y", 0.1, 0.01, 0.999, 0.99, top1_agree=298, top1_count=300)
    acc = Accuracy(samples=300, source="synthetic", outputs=(out,))
    # 99.3% agree, but 300 samples cannot show >= 99% with confidence
    assert accuracy_broken(acc, parse_bounds(["top1>=99%"]))[0].startswith("y: top1 298/300")
    assert accuracy_broken(acc, parse_bounds(["top1>=97%", "y:cosine>=0.99"])) == []
    assert accuracy_broken(None, parse_bounds(["cosine>=0.9"]))[0].startswith("accuracy not")


def test_bounds_grammar():
    b = parse_bound("pooler_output:cosine>=0.999")
    assert (b.metric, b.op, b.value, b.output) == ("cosine", ">=", 0.999, "pooler_output")
    assert parse_bound("top1>=99%").value == pytest.approx(0.99)
    assert parse_bound("max-abs<=1e-3").value == 1e-3
    for bad, says in [
        ("top1=99%", "malformed"),
        ("cosine<=0.9", "cosine takes >="),
        ("acc>=0.9", "unknown accuracy metric"),
        ("top1>=120%", "at most 100%"),
        ("max-abs<=x", "not a number"),
    ]:
        with pytest.raises(BadInput, match=says):
            parse_bound(bad)
    with pytest.raises(BadInput, match="names output 'nope'"):
        check_outputs(parse_bounds(["nope:cosine>=0.9"]), ["logits"])


def test_precision_list_and_the_accuracy_plan(mlp_path, tmp_path):
    assert parse_precisions("fp32,int8d,fp16,fp32") == ("fp32", "int8-dynamic", "fp16")
    with pytest.raises(BadInput, match="unknown precision 'int4'"):
        parse_precisions("fp32,int4")
    assert accuracy_plan(("fp32",), None, (), str(mlp_path)) == (None, ())
    assert accuracy_plan(("fp32", "fp16"), None, (), str(mlp_path)) == (400, ())
    assert accuracy_plan(("fp32",), 0, (), str(mlp_path)) == (None, ())
    topk = tmp_path / "topk.onnx"
    onnx.save(_tiny_matmul(k_input=True), topk)
    assert "integer input 'k'" in needs_data_reason(model_mod.inspect_model(topk))
    with pytest.raises(BadInput, match="int8-static needs calibration data"):
        accuracy_plan(("int8-static",), None, (), str(topk))
    assert needs_data_reason(model_mod.inspect_model(mlp_path)) is None


def test_compare_counts_argmax_positions_and_labels():
    ref = [[np.array([[0.1, 0.9], [0.8, 0.2]], "f")]]
    got = [[np.array([[0.2, 0.7], [0.4, 0.6]], "f")]]
    (out,) = compare(["y"], got, ref, labels=[np.array([1, 1])])
    assert (out.top1_agree, out.top1_count) == (1, 2)
    assert (out.label_correct, out.label_count) == (2, 2)
    assert out.max_abs_error == pytest.approx(0.4)
    assert run_all(lambda f: [f["x"] * 2], [{"x": np.ones(2)}])[0][0].tolist() == [2, 2]


# ---------------------------------------------------------------- the sweep


def test_fp32_cell_ids_are_unchanged_and_others_gain_a_segment():
    load = Load("closed", concurrency=2)
    assert cell_id(ServingConfig(batch_size=4), load) == "cpu/t1/i1/b4/closed-c2"
    assert cell_id(ServingConfig(precision="int8-dynamic"), load) == "cpu/t1/i1/b1/int8d/closed-c2"
    assert cell_id(ServingConfig(precision="fp16"), load) == "cpu/t1/i1/b1/fp16/closed-c2"


def test_sweep_measures_each_precision_and_recommends_under_an_accuracy_bound(mlp_path, tmp_path):
    req = SweepRequest(
        model_path=str(mlp_path),
        spec=SweepSpec(precisions=("fp32", "fp16", "int8-dynamic")),
        settings=MeasureSettings(warmup_s=0.05, duration_s=0.2, window_s=0.1),
        out_dir=str(tmp_path),
        profile=None,
        accuracy_samples=SAMPLES,
        accuracy=("cosine>=0.99999999",),
        latency_target=parse_target("p99=1000ms"),
    )
    report, path = run_sweep(req, make_worker=make_in_process_worker)
    ids = [c.id for c in report.cells]
    assert ids == ["cpu/t1/i1/b1/closed-c1", "cpu/t1/i1/b1/fp16/closed-c1",
                   "cpu/t1/i1/b1/int8d/closed-c1"]  # fmt: skip
    assert [v.precision for v in report.variants] == ["fp32", "fp16", "int8-dynamic"]
    fp32, fp16, int8 = report.cells
    assert fp32.accuracy.outputs[0].max_abs_error == 0.0  # it is the reference
    assert 0 < fp16.accuracy.outputs[0].max_abs_error < int8.accuracy.outputs[0].max_abs_error
    rec = report.recommendation
    assert rec.winner == fp32.id and rec.accuracy == ("cosine>=0.99999999",)
    assert "(cosine>=0.99999999)" in rec.rejected[int8.id]
    loaded = report_from_json(path.read_text())
    assert loaded.cells[2].accuracy == int8.accuracy and loaded.variants == report.variants
    data = json.loads(path.read_text())
    assert "precision" not in data["cells"][0]["config"]  # fp32 cells are written as before
    again = recommend(loaded, rec_target(), accuracy=("max-abs<=1",))
    assert again.winner is not None and not any("max-abs" in r for r in again.rejected.values())


def rec_target():
    from benchbox.parse import parse_target

    return parse_target("p99=1000ms")


def test_a_failed_variant_fails_its_cells_and_the_sweep_goes_on(mlp_path, tmp_path, monkeypatch):
    from benchbox.precision import variants

    def refuse(source, out, calib):
        raise RuntimeError("Could not find an implementation for\nConvInteger(10)")

    monkeypatch.setitem(variants._CONVERTERS, "fp16", refuse)
    monkeypatch.setenv("BENCHBOX_CACHE", str(tmp_path / "cache"))
    req = SweepRequest(
        model_path=str(mlp_path),
        spec=SweepSpec(precisions=("fp32", "fp16")),
        settings=MeasureSettings(warmup_s=0.05, duration_s=0.2, window_s=0.1),
        out_dir=str(tmp_path),
        profile=None,
    )
    report, _ = run_sweep(req, make_worker=make_in_process_worker)
    ok, failed = report.cells
    assert ok.status == "ok" and failed.status == "failed"
    assert (
        failed.reason
        == "fp16 conversion failed: Could not find an implementation for ConvInteger(10)"
    )


# ---------------------------------------------------------------- bad input, the real CLI


@pytest.mark.parametrize(
    "args, says",
    [
        (["--precision", "fp32,int4"], r"error: unknown precision 'int4'\nhint: choose from fp32"),
        (["--accuracy", "top1=99%"], r"error: accuracy bound 'top1=99%' is malformed"),
        (["--accuracy", "nope:cosine>=0.9"], r"names output 'nope', which the model lacks"),
        (["--precision", "int8-static", "TOPK"], r"int8-static needs calibration data.*'k'"),
    ],
)
def test_bad_precision_input_is_one_line_and_exit_2(args, says, mlp_path, tmp_path):
    import re

    topk = tmp_path / "topk.onnx"
    onnx.save(_tiny_matmul(k_input=True), topk)
    model = str(topk) if "TOPK" in args else str(mlp_path)
    args = [a for a in args if a != "TOPK"]
    proc = subprocess.run(
        [sys.executable, "-m", "benchbox", "sweep", model, *args, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) <= 2
    assert re.search(says, proc.stderr), proc.stderr
    assert not list(tmp_path.glob("*.json"))  # refused before any report is written


def test_triton_export_ships_the_variant_that_was_measured(mlp_path, tmp_path):
    from benchbox.export.triton import export_triton

    req = SweepRequest(
        model_path=str(mlp_path),
        spec=SweepSpec(precisions=("fp32", "int8-dynamic")),
        settings=MeasureSettings(warmup_s=0.05, duration_s=0.2, window_s=0.1),
        out_dir=str(tmp_path),
        profile=None,
    )
    report, _ = run_sweep(req, make_worker=make_in_process_worker)
    fp32, int8 = report.cells
    variant = report.variants[1]
    written = export_triton(report, int8, tmp_path / "repo", model_name="m")
    shipped = next(p for p in written if p.name == "model.onnx")
    assert model_mod.sha256_file(shipped) == variant.sha256 != report.model.sha256
    assert "int8-dynamic" in written[0].read_text()  # the provenance comment names it
    written = export_triton(report, fp32, tmp_path / "repo32", model_name="m")
    shipped = next(p for p in written if p.name == "model.onnx")
    assert model_mod.sha256_file(shipped) == report.model.sha256
    with pytest.raises(BadInput, match="is not the model this report measured"):
        export_triton(report, int8, tmp_path / "bad", model_path=mlp_path)


def test_ab_measures_the_baseline_and_candidate_at_their_own_precisions(mlp_path, tmp_path):
    from benchbox.sweep.ab import AbRequest, run_ab

    req = AbRequest(
        baseline_path=str(mlp_path),
        candidate_path=str(mlp_path),
        spec=SweepSpec(precisions=("fp32", "int8-dynamic")),
        settings=MeasureSettings(warmup_s=0.05, duration_s=0.2, window_s=0.1),
        trials=TrialPolicy(trials=2),
        out_dir=str(tmp_path),
        accuracy_samples=SAMPLES,
    )
    result = run_ab(req, make_in_process_worker)
    assert result.baseline.id == "cpu/t1/i1/b1/closed-c1"
    assert result.candidate.id == "cpu/t1/i1/b1/int8d/closed-c1"
    assert result.baseline.accuracy.outputs[0].max_abs_error == 0.0
    assert result.candidate.accuracy.outputs[0].max_abs_error > 0.0
    candidate = report_from_json(Path(result.reports[1]).read_text())
    assert [v.precision for v in candidate.variants] == ["int8-dynamic"]


def test_resume_measures_pending_variant_cells_with_the_report_variants(mlp_path, tmp_path):
    from benchbox.schema import replace, report_to_json
    from benchbox.sweep import resume_sweep

    req = SweepRequest(
        model_path=str(mlp_path),
        spec=SweepSpec(precisions=("fp32", "int8-dynamic")),
        settings=MeasureSettings(warmup_s=0.05, duration_s=0.2, window_s=0.1),
        out_dir=str(tmp_path),
        profile=None,
        accuracy_samples=SAMPLES,
    )
    report, path = run_sweep(req, make_worker=make_in_process_worker)
    pending = replace(report.cells[1], status="pending", result=None, accuracy=None)
    path.write_text(report_to_json(replace(report, cells=(report.cells[0], pending))))
    resumed, _ = resume_sweep(path, make_worker=make_in_process_worker)
    assert resumed.cells[1].status == "ok"
    assert resumed.cells[1].accuracy.outputs[0].max_abs_error > 0


def test_openvino_maps_precision_to_its_hint_and_its_outputs_are_compared(mlp_path, tmp_path):
    pytest.importorskip("openvino")
    from benchbox.backends.openvino import ov_properties
    from benchbox.devices import parse_device

    props = ov_properties(ServingConfig(precision="fp16"), parse_device("ov:CPU"))
    assert props["INFERENCE_PRECISION_HINT"] == "f16"
    assert "INFERENCE_PRECISION_HINT" not in ov_properties(ServingConfig(), parse_device("ov:CPU"))
    req = SweepRequest(
        model_path=str(mlp_path),
        spec=SweepSpec(devices=("ov:CPU",), precisions=("fp32", "fp16", "int8-static")),
        settings=MeasureSettings(warmup_s=0.05, duration_s=0.2, window_s=0.1),
        out_dir=str(tmp_path),
        profile=None,
        accuracy_samples=SAMPLES,
    )
    report, _ = run_sweep(req, make_worker=make_in_process_worker)
    assert [c.status for c in report.cells] == ["ok", "ok", "ok"]
    fp32, fp16, int8 = (c.accuracy.outputs[0] for c in report.cells)
    assert fp16.cosine > 0.999 and int8.cosine > 0.99
    # OpenVINO's CPU default is bf16 on CPUs with AVX-512 BF16 or AMX (benchbox's fp32 leaves it):
    # there the fp32 cell must say it differs from the reference; elsewhere it is the reference.
    from benchbox.devices import openvino_core

    default = str(openvino_core().get_property("CPU", "INFERENCE_PRECISION_HINT"))
    flag = report.cells[0].accuracy.flag
    if "bf16" in default or "bfloat16" in default:
        assert fp32.rel_error < 5e-2 and flag and "differs from the fp32 CPU reference" in flag
    else:
        assert fp32.rel_error < 1e-3 and flag is None
        assert int8.max_abs_error > fp32.max_abs_error


def test_pareto_front_gains_accuracy_as_an_axis(mlp_path, tmp_path):
    from benchbox.recommend import judge, pareto_front
    from benchbox.schema import replace

    req = SweepRequest(
        model_path=str(mlp_path),
        spec=SweepSpec(precisions=("fp32", "fp16", "int8-dynamic")),
        settings=MeasureSettings(warmup_s=0.05, duration_s=0.2, window_s=0.1),
        out_dir=str(tmp_path),
        profile=None,
        accuracy_samples=SAMPLES,
    )
    report, _ = run_sweep(req, make_worker=make_in_process_worker)

    def shaped(cell, p99_ms, ips):
        lat = replace(cell.result.latency_ms, p99=p99_ms, p99_9=p99_ms, max=p99_ms)
        result = replace(cell.result, latency_ms=lat, latency_ci_ms=None, throughput_ips=ips)
        return replace(cell, result=result)

    fp32, fp16, int8 = report.cells
    cells = [shaped(fp32, 2.0, 1000.0), shaped(fp16, 3.0, 900.0), shaped(int8, 1.0, 2000.0)]
    judged = [judge(c, rec_target()) for c in cells]
    # int8 is faster and cheaper but less accurate: both it and fp32 are on the front; fp16 is
    # slower, dearer and less accurate than fp32
    assert pareto_front(judged) == [int8.id, fp32.id]
    no_accuracy = [judge(replace(c, accuracy=None), rec_target()) for c in cells]
    assert pareto_front(no_accuracy) == [int8.id]
