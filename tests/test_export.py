"""Exports: Triton config.pbtxt parsed by Triton's own ModelConfig protobuf, an onnxruntime session
built back from its JSON and run, a KServe InferenceService checked against the v1beta1 schema."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import yaml
from fixtures_reports import price_profile
from onnx import TensorProto, helper, numpy_helper

from benchbox import schema
from benchbox.errors import BadInput
from benchbox.export import export
from benchbox.export.kserve import export_kserve
from benchbox.export.onnxruntime import export_onnxruntime, session_from_export
from benchbox.export.triton import export_triton
from benchbox.model import inspect_model
from benchbox.store import save_report

WEIGHTS = np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32)


def build_model(path, batch: str | int = "batch", external: bool = False) -> str:
    """y = relu(x @ W): x float32 [batch, 16], y float32 [batch, 4]."""
    w = numpy_helper.from_array(WEIGHTS, "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4])],
        initializer=[w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    if external:
        onnx.save_model(
            model, str(path), save_as_external_data=True, location="tiny.weights", size_threshold=0
        )
    else:
        onnx.save_model(model, str(path))
    return str(path)


def build_mixed_model(path) -> str:
    """ids int64 [batch, 8], flag bool [batch] -> out int64 [batch, 8] (a scalar per request)."""
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["flag"], ["f64"], to=TensorProto.INT64),
            helper.make_node("Unsqueeze", ["f64", "axes"], ["f2"]),
            helper.make_node("Add", ["ids", "f2"], ["out"]),
        ],
        "mixed",
        [
            helper.make_tensor_value_info("ids", TensorProto.INT64, ["n", 8]),
            helper.make_tensor_value_info("flag", TensorProto.BOOL, ["n"]),
        ],
        [helper.make_tensor_value_info("out", TensorProto.INT64, ["n", 8])],
        initializer=[numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save_model(model, str(path))
    return str(path)


def make_result(p99: float = 8.0, throughput: float = 2000.0, rss_mb: float | None = 300.0):
    lat = schema.LatencyStats(4.0, 1.0, 2.0, 4.0, 6.0, 7.0, p99, p99 * 1.2, p99 * 2)
    return schema.Result(
        requests=1000,
        inferences=8000,
        duration_s=5.0,
        throughput_ips=throughput,
        requests_per_s=throughput / 8,
        latency_ms=lat,
        latency_ci_ms={"p99": [p99 * 0.9, p99 * 1.1]},
        rss_mb=rss_mb,
        cost_usd_per_million=0.5,
    )


def make_cell(
    device: str = "cpu",
    threads: int = 2,
    instances: int = 3,
    batch: int = 8,
    concurrency: int = 4,
    dynamic: schema.DynamicBatching | None = None,
    graph: str = "all",
    load: schema.Load | None = None,
    rss_mb: float | None = 300.0,
) -> schema.Cell:
    config = schema.ServingConfig(
        device=device,
        intra_op_threads=threads,
        instances=instances,
        batch_size=batch,
        dynamic_batching=dynamic,
        graph_optimization=graph,
    )
    load = load or schema.Load("closed", concurrency=concurrency)
    return schema.Cell(
        schema.cell_id(config, load), config, load, "ok", result=make_result(rss_mb=rss_mb)
    )


def make_report(model_path: str, *cells: schema.Cell) -> schema.Report:
    host = schema.HostInfo("h", "Linux", "cpu", 2, 1, 4.0, "3.11", ort.__version__)
    profile = price_profile("test-box", 2.5)
    return schema.Report(
        host=host,
        model=inspect_model(model_path),
        cells=tuple(cells) or (make_cell(),),
        profile=profile,
        benchbox_version="0.1.0",
        created="2025-05-01T12:00:00Z",
    )


@pytest.fixture
def model_path(tmp_path):
    return build_model(tmp_path / "tiny.onnx")


# ---------------------------------------------------------------- Triton


@pytest.fixture
def model_config_pb2():
    return pytest.importorskip(
        "tritonclient.grpc.model_config_pb2", reason="needs tritonclient[grpc] (test extra)"
    )


def parse_config(path, pb2):
    from google.protobuf import text_format

    return text_format.Parse(path.read_text(), pb2.ModelConfig())


def test_triton_config_parses_as_a_model_config_with_the_cell_settings(
    tmp_path, model_path, model_config_pb2
):
    cell = make_cell(threads=2, instances=3, batch=8, graph="extended")
    report = make_report(model_path, cell)
    written = export_triton(report, cell, tmp_path / "repo")
    config_path = tmp_path / "repo" / "tiny" / "config.pbtxt"
    model_copy = tmp_path / "repo" / "tiny" / "1" / "model.onnx"
    assert written == [config_path, model_copy]
    cfg = parse_config(config_path, model_config_pb2)
    pb = model_config_pb2

    assert cfg.name == "tiny"
    assert cfg.platform == "onnxruntime_onnx"
    assert cfg.max_batch_size == 8
    assert [(i.name, i.data_type, list(i.dims)) for i in cfg.input] == [("x", pb.TYPE_FP32, [16])]
    assert [(o.name, o.data_type, list(o.dims)) for o in cfg.output] == [("y", pb.TYPE_FP32, [4])]
    assert len(cfg.instance_group) == 1
    group = cfg.instance_group[0]
    assert (group.count, group.kind, list(group.gpus)) == (3, pb.ModelInstanceGroup.KIND_CPU, [])
    assert cfg.HasField("dynamic_batching")
    assert list(cfg.dynamic_batching.preferred_batch_size) == [8]
    assert cfg.dynamic_batching.max_queue_delay_microseconds == 0
    params = {k: v.string_value for k, v in cfg.parameters.items()}
    assert params == {
        "intra_op_thread_count": "2",
        "inter_op_thread_count": "1",
        "execution_mode": "0",
    }
    assert cfg.optimization.graph.level == 1  # the backend's code for ORT_ENABLE_EXTENDED
    assert not cfg.optimization.HasField("execution_accelerators")
    assert model_copy.read_bytes() == (tmp_path / "tiny.onnx").read_bytes()


def test_triton_dynamic_batching_cell_sets_max_batch_delay_and_preferred_sizes(
    tmp_path, model_path, model_config_pb2
):
    db = schema.DynamicBatching(max_batch=16, delay_ms=0.5, preferred=(4, 8))
    cell = make_cell(batch=1, dynamic=db)
    export_triton(make_report(model_path, cell), cell, tmp_path, model_name="tiny-db")
    cfg = parse_config(tmp_path / "tiny-db" / "config.pbtxt", model_config_pb2)
    assert cfg.name == "tiny-db"
    assert cfg.max_batch_size == 16
    assert list(cfg.dynamic_batching.preferred_batch_size) == [4, 8]
    assert cfg.dynamic_batching.max_queue_delay_microseconds == 500
    assert not cfg.optimization.HasField("graph")  # "all" is the backend's default


def test_triton_batch_one_cell_has_no_dynamic_batcher(tmp_path, model_path, model_config_pb2):
    cell = make_cell(batch=1, instances=1)
    export_triton(make_report(model_path, cell), cell, tmp_path)
    cfg = parse_config(tmp_path / "tiny" / "config.pbtxt", model_config_pb2)
    assert cfg.max_batch_size == 1
    assert not cfg.HasField("dynamic_batching")


def test_triton_gpu_cells_name_the_gpu_and_the_tensorrt_precision(
    tmp_path, model_path, model_config_pb2
):
    pb = model_config_pb2
    trt = make_cell(device="tensorrt:1?trt_fp16_enable=1&trt_engine_cache_enable=1", instances=2)
    cuda = make_cell(device="cuda:0", instances=1)
    tuned = make_cell(device="cuda:0?cudnn_conv_algo_search=HEURISTIC", instances=1)
    report = make_report(model_path, trt, cuda, tuned)
    export_triton(report, trt, tmp_path, model_name="trt")
    export_triton(report, cuda, tmp_path, model_name="cuda")
    export_triton(report, tuned, tmp_path, model_name="tuned")

    cfg = parse_config(tmp_path / "trt" / "config.pbtxt", pb)
    group = cfg.instance_group[0]
    assert (group.count, group.kind, list(group.gpus)) == (2, pb.ModelInstanceGroup.KIND_GPU, [1])
    accels = cfg.optimization.execution_accelerators.gpu_execution_accelerator
    assert [a.name for a in accels] == ["tensorrt"]
    assert dict(accels[0].parameters) == {"precision_mode": "FP16", "trt_engine_cache_enable": "1"}

    cfg = parse_config(tmp_path / "cuda" / "config.pbtxt", pb)
    assert (cfg.instance_group[0].kind, list(cfg.instance_group[0].gpus)) == (
        pb.ModelInstanceGroup.KIND_GPU,
        [0],
    )
    assert not cfg.optimization.HasField("execution_accelerators")  # CUDA is the GPU default

    cfg = parse_config(tmp_path / "tuned" / "config.pbtxt", pb)
    accels = cfg.optimization.execution_accelerators.gpu_execution_accelerator
    assert [(a.name, dict(a.parameters)) for a in accels] == [
        ("cuda", {"cudnn_conv_algo_search": "HEURISTIC"})
    ]


def test_triton_openvino_cell_uses_the_cpu_openvino_accelerator(
    tmp_path, model_path, model_config_pb2
):
    cell = make_cell(device="openvino")
    export_triton(make_report(model_path, cell), cell, tmp_path)
    cfg = parse_config(tmp_path / "tiny" / "config.pbtxt", model_config_pb2)
    assert cfg.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_CPU
    accels = cfg.optimization.execution_accelerators.cpu_execution_accelerator
    assert [a.name for a in accels] == ["openvino"]


def test_triton_refuses_devices_its_onnxruntime_backend_cannot_run(tmp_path, model_path):
    for device, words in (("openvino:GPU", "OpenVINO on the CPU only"), ("rocm:0", "no rocm")):
        cell = make_cell(device=device)
        with pytest.raises(BadInput, match=words):
            export_triton(make_report(model_path, cell), cell, tmp_path)


def test_triton_model_without_a_batch_axis_keeps_full_dims(tmp_path, model_config_pb2):
    path = build_model(tmp_path / "fixed.onnx", batch=1)
    cell = make_cell(batch=1)
    export_triton(make_report(path, cell), cell, tmp_path / "repo")
    cfg = parse_config(tmp_path / "repo" / "fixed" / "config.pbtxt", model_config_pb2)
    assert cfg.max_batch_size == 0
    assert list(cfg.input[0].dims) == [1, 16]
    assert list(cfg.output[0].dims) == [1, 4]
    assert not cfg.HasField("dynamic_batching")


def test_triton_types_and_per_request_scalars_follow_the_backend_rules(tmp_path, model_config_pb2):
    pb = model_config_pb2
    path = build_mixed_model(tmp_path / "mixed.onnx")
    cell = make_cell(batch=4)
    export_triton(make_report(path, cell), cell, tmp_path / "repo")
    cfg = parse_config(tmp_path / "repo" / "mixed" / "config.pbtxt", pb)
    inputs = {i.name: i for i in cfg.input}
    assert (inputs["ids"].data_type, list(inputs["ids"].dims)) == (pb.TYPE_INT64, [8])
    # A [batch] tensor is one scalar per request: dims [1] reshaped to [] (as Triton autofills).
    assert (inputs["flag"].data_type, list(inputs["flag"].dims)) == (pb.TYPE_BOOL, [1])
    assert inputs["flag"].HasField("reshape") and list(inputs["flag"].reshape.shape) == []
    assert cfg.output[0].data_type == pb.TYPE_INT64


def test_triton_copies_external_weights_into_a_model_folder(tmp_path):
    path = build_model(tmp_path / "big.onnx", external=True)
    cell = make_cell()
    written = export_triton(make_report(path, cell), cell, tmp_path / "repo")
    folder = tmp_path / "repo" / "big" / "1" / "model.onnx"
    assert written[1:] == [folder / "model.onnx", folder / "tiny.weights"]
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    x = np.ones((2, 16), np.float32)
    np.testing.assert_allclose(session.run(None, {"x": x})[0], np.maximum(x @ WEIGHTS, 0), 1e-5)


def test_triton_needs_the_model_file(tmp_path, model_path):
    cell = make_cell()
    report = make_report(model_path, cell)
    with pytest.raises(BadInput, match="gone.onnx.*does not exist") as exc:
        export_triton(report, cell, tmp_path, model_path=tmp_path / "gone.onnx")
    assert exc.value.hint == "pass the ONNX file with --model FILE"


# ---------------------------------------------------------------- onnxruntime


def test_onnxruntime_export_builds_a_session_that_runs_like_the_cell(tmp_path, model_path):
    cell = make_cell(threads=2, instances=3, batch=8, graph="basic")
    path = export_onnxruntime(make_report(model_path, cell), cell, tmp_path)
    doc = json.loads(path.read_text())
    assert doc["providers"] == ["CPUExecutionProvider"]
    assert doc["session_options"] == {
        "intra_op_num_threads": 2,
        "inter_op_num_threads": 1,
        "graph_optimization_level": "ORT_ENABLE_BASIC",
        "execution_mode": "ORT_SEQUENTIAL",
    }
    assert (doc["batch_size"], doc["instances"]) == (8, 3)
    assert doc["measured"]["cell"] == cell.id

    session = session_from_export(path, model_path)
    assert session.get_providers() == ["CPUExecutionProvider"]
    so = session.get_session_options()
    assert so.intra_op_num_threads == 2 and so.inter_op_num_threads == 1
    assert so.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    x = np.random.default_rng(1).standard_normal((8, 16)).astype(np.float32)
    (y,) = session.run(None, {"x": x})
    np.testing.assert_allclose(y, np.maximum(x @ WEIGHTS, 0), rtol=1e-5, atol=1e-5)


def test_onnxruntime_export_keeps_gpu_provider_options(tmp_path, model_path):
    cell = make_cell(device="cuda:1?cudnn_conv_algo_search=HEURISTIC")
    path = export_onnxruntime(make_report(model_path, cell), cell, tmp_path)
    doc = json.loads(path.read_text())
    assert doc["providers"] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert doc["provider_options"] == [
        {"cudnn_conv_algo_search": "HEURISTIC", "device_id": "1"},
        {},
    ]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(BadInput, match="CUDAExecutionProvider, which this onnxruntime"):
            session_from_export(path, model_path)


def test_session_from_export_rejects_a_file_that_is_not_an_export(tmp_path, model_path):
    other = tmp_path / "other.json"
    other.write_text('{"format": "something-else"}')
    with pytest.raises(BadInput, match="not a benchbox onnxruntime export"):
        session_from_export(other, model_path)


# ---------------------------------------------------------------- KServe

# From the serving.kserve.io/v1beta1 API (pkg/apis/serving/v1beta1: ComponentExtensionSpec,
# PredictorSpec, ModelSpec = ModelFormat + runtime + PredictorExtensionSpec + corev1.Container).
COMPONENT_EXTENSION_KEYS = {
    "minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "scaleMetricType",
    "containerConcurrency", "timeout", "canaryTrafficPercent", "logger", "batcher", "labels",
    "annotations", "deploymentStrategy", "autoScaling",
}  # fmt: skip
PREDICTOR_IMPLEMENTATIONS = {
    "sklearn", "xgboost", "tensorflow", "pytorch", "triton", "onnx", "huggingface", "pmml",
    "lightgbm", "paddle", "model",
}  # fmt: skip
POD_SPEC_KEYS = {"containers", "nodeSelector", "tolerations", "affinity", "serviceAccountName"}
MODEL_SPEC_KEYS = {
    "modelFormat", "runtime", "storageUri", "runtimeVersion", "protocolVersion", "storage",
    # corev1.Container, inlined
    "name", "image", "command", "args", "workingDir", "ports", "envFrom", "env", "resources",
    "resizePolicy", "restartPolicy", "volumeMounts", "volumeDevices", "livenessProbe",
    "readinessProbe", "startupProbe", "lifecycle", "terminationMessagePath",
    "terminationMessagePolicy", "imagePullPolicy", "securityContext", "stdin", "stdinOnce", "tty",
}  # fmt: skip
SCALE_METRICS = {"cpu", "memory", "concurrency", "rps"}
# Kubernetes resource.Quantity (the CRD's pattern for requests/limits values).
QUANTITY = re.compile(
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
ISVC_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def check_inference_service(doc: dict) -> dict:
    """Assert `doc` is a valid v1beta1 InferenceService with a `model` predictor; return it."""
    assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}
    assert doc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert doc["kind"] == "InferenceService"
    assert ISVC_NAME.match(doc["metadata"]["name"]) and len(doc["metadata"]["name"]) <= 63
    for key, value in doc["metadata"].get("annotations", {}).items():
        assert isinstance(key, str) and isinstance(value, str)
    assert set(doc["spec"]) <= {"predictor", "transformer", "explainer"}
    predictor = doc["spec"]["predictor"]
    assert set(predictor) <= COMPONENT_EXTENSION_KEYS | PREDICTOR_IMPLEMENTATIONS | POD_SPEC_KEYS
    assert len(set(predictor) & PREDICTOR_IMPLEMENTATIONS) == 1  # exactly one implementation
    for key in ("minReplicas", "maxReplicas", "scaleTarget"):
        if key in predictor:
            assert type(predictor[key]) is int and predictor[key] >= 0
    if "maxReplicas" in predictor:
        assert predictor.get("minReplicas", 1) <= predictor["maxReplicas"]
    if "scaleMetric" in predictor:
        assert predictor["scaleMetric"] in SCALE_METRICS
    model = predictor["model"]
    assert set(model) <= MODEL_SPEC_KEYS
    assert set(model["modelFormat"]) <= {"name", "version"}
    assert isinstance(model["modelFormat"]["name"], str)  # required
    for key in ("runtime", "storageUri", "protocolVersion"):
        if key in model:
            assert isinstance(model[key], str)
    if "protocolVersion" in model:
        assert model["protocolVersion"] in {"v1", "v2", "grpc-v1", "grpc-v2"}
    resources = model.get("resources", {})
    assert set(resources) <= {"requests", "limits", "claims"}
    for group in ("requests", "limits"):
        for value in resources.get(group, {}).values():
            assert isinstance(value, str) and QUANTITY.match(value), value
    return doc


def test_kserve_manifest_is_a_valid_inference_service_sized_from_the_cell(tmp_path, model_path):
    cell = make_cell(threads=2, instances=3, concurrency=6, rss_mb=300.0)
    report = make_report(model_path, cell)
    fleet = schema.Fleet(qps=5000.0, replicas=4, headroom=0.8, usd_per_hour=10.0)
    path = export_kserve(report, cell, tmp_path, fleet=fleet, model_uri="s3://models/tiny")
    assert path == tmp_path / "tiny.yaml"
    doc = check_inference_service(yaml.safe_load(path.read_text()))

    predictor = doc["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (4, 8)
    assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("concurrency", 6)
    model = predictor["model"]
    assert model["modelFormat"] == {"name": "onnx"}
    assert model["storageUri"] == "s3://models/tiny"
    assert "runtime" not in model
    # 2 threads x 3 instances; memory: 300 MB x 1.25 / x 1.5, rounded up to 64 Mi.
    assert model["resources"] == {
        "requests": {"cpu": "6", "memory": "384Mi"},
        "limits": {"cpu": "6", "memory": "512Mi"},
    }
    annotations = doc["metadata"]["annotations"]
    assert annotations["benchbox.dev/cell"] == cell.id
    assert annotations["benchbox.dev/profile"] == "test-box"
    assert path.read_text().startswith("# Written by benchbox")


def test_kserve_gpu_cell_asks_for_one_gpu_and_triton_runtime_speaks_v2(tmp_path, model_path):
    cell = make_cell(device="cuda:0", threads=1, instances=2)
    path = export_kserve(
        make_report(model_path, cell),
        cell,
        tmp_path,
        name="tiny-gpu",
        runtime="kserve-tritonserver",
    )
    doc = check_inference_service(yaml.safe_load(path.read_text()))
    model = doc["spec"]["predictor"]["model"]
    assert model["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert model["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert model["resources"]["limits"]["cpu"] == "2"
    assert (model["runtime"], model["protocolVersion"]) == ("kserve-tritonserver", "v2")
    assert doc["spec"]["predictor"]["minReplicas"] == 1
    assert "maxReplicas" not in doc["spec"]["predictor"]
    assert "placeholder" in path.read_text()  # no storage URI was given


def test_kserve_open_loop_cell_scales_on_requests_per_second(tmp_path, model_path):
    load = schema.Load("open", concurrency=16, rate_rps=250.5, distribution="poisson")
    cell = make_cell(load=load, rss_mb=None)
    doc = check_inference_service(
        yaml.safe_load(export_kserve(make_report(model_path, cell), cell, tmp_path).read_text())
    )
    predictor = doc["spec"]["predictor"]
    assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("rps", 250)
    assert predictor["model"]["resources"]["requests"]["memory"] == "1Gi"


def test_kserve_rejects_an_invalid_name(tmp_path, model_path):
    cell = make_cell()
    with pytest.raises(BadInput, match="InferenceService name 'Tiny_Model' is not valid"):
        export_kserve(make_report(model_path, cell), cell, tmp_path, name="Tiny_Model")


# ---------------------------------------------------------------- dispatcher and command


def test_export_dispatches_by_kind_and_cell_id(tmp_path, model_path):
    cell = make_cell()
    report = make_report(model_path, cell)
    assert export("onnxruntime", report, cell.id, tmp_path) == [tmp_path / "onnxruntime.json"]
    assert export("kserve", report, cell.id, tmp_path) == [tmp_path / "tiny.yaml"]
    assert export("triton", report, cell.id, tmp_path)[0] == tmp_path / "tiny" / "config.pbtxt"
    with pytest.raises(BadInput, match="unknown export format 'helm'"):
        export("helm", report, cell.id, tmp_path)
    with pytest.raises(BadInput, match="no cell 'cpu/nope'"):
        export("triton", report, "cpu/nope", tmp_path)


def test_export_refuses_an_unmeasured_cell(tmp_path, model_path):
    failed = schema.replace(make_cell(), status="failed", reason="oom", result=None)
    with pytest.raises(BadInput, match="was not measured successfully"):
        export("onnxruntime", make_report(model_path, failed), failed, tmp_path)


def test_export_to_an_unwritable_folder_names_the_folder(tmp_path, model_path):
    cell = make_cell()
    report = make_report(model_path, cell)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for kind in ("triton", "onnxruntime", "kserve"):
        with pytest.raises(BadInput, match="a-file") as exc:
            export(kind, report, cell, blocker / "out")
        assert "cannot write the export to" in exc.value.message
    with pytest.raises(BadInput, match="it is a file, not a folder"):
        export("onnxruntime", report, cell, blocker)


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    from benchbox.cli import main

    monkeypatch.setattr(sys, "argv", ["benchbox", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    out = capsys.readouterr()
    return (exc.value.code if isinstance(exc.value.code, int) else 0), out.out, out.err


def test_recommend_command_exports_the_winner(tmp_path, model_path, monkeypatch, capsys):
    fast = make_cell(batch=8, concurrency=4)
    slow = schema.replace(make_cell(batch=1, concurrency=8), result=make_result(p99=40.0))
    report_path = save_report(make_report(model_path, fast, slow), tmp_path / "r.json")
    out_dir = tmp_path / "deploy"
    code, out, err = run_cli(
        monkeypatch, capsys, "recommend", str(report_path), "--latency-target", "p99=20ms",
        "--qps", "10000", "--export", "kserve", "--out", str(out_dir), "--json",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert doc["recommendation"]["winner"] == fast.id
    assert doc["exported"] == [str(out_dir / "tiny.yaml")]
    isvc = check_inference_service(yaml.safe_load((out_dir / "tiny.yaml").read_text()))
    # 10000 qps / (2000 ips x 0.8) -> 7 replicas
    assert isvc["spec"]["predictor"]["minReplicas"] == 7


def test_recommend_command_exports_nothing_when_nothing_meets(
    tmp_path, model_path, monkeypatch, capsys
):
    slow = schema.replace(make_cell(), result=make_result(p99=40.0))
    report_path = save_report(make_report(model_path, slow), tmp_path / "r.json")
    code, _, err = run_cli(
        monkeypatch, capsys, "recommend", str(report_path), "--latency-target", "p99=20ms",
        "--export", "triton", "--out", str(tmp_path / "deploy"),
    )  # fmt: skip
    assert code == 1
    assert "nothing was exported" in err
    assert not (tmp_path / "deploy").exists()


def test_triton_refuses_a_model_file_that_is_not_the_one_measured(tmp_path, model_path):
    cell = make_cell()
    report = make_report(model_path, cell)
    build_model(model_path, batch="n")  # the file changed since it was measured
    with pytest.raises(BadInput, match=r"tiny\.onnx is not the model this report measured") as exc:
        export_triton(report, cell, tmp_path / "repo")
    assert "--model FILE" in exc.value.hint
    assert not (tmp_path / "repo").exists()
    other = build_model(tmp_path / "other.onnx", batch=1)
    with pytest.raises(BadInput, match=r"other\.onnx is not the model this report measured"):
        export_triton(
            make_report(build_model(tmp_path / "m.onnx"), cell), cell, tmp_path, model_path=other
        )
