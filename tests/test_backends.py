"""The onnxruntime backend: silent-fallback checks, the plugin (EP device) path, io_binding."""

from __future__ import annotations

import threading

import numpy as np
import onnxruntime as ort
import pytest

from benchbox import model as model_mod
from benchbox.backends import CellFailure, open_instances
from benchbox.backends import onnxruntime as ort_backend
from benchbox.devices import parse_device
from benchbox.schema import ServingConfig

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"


@pytest.fixture(scope="module")
def mlp_feeds(mlp_path):
    info = model_mod.inspect_model(mlp_path)
    return model_mod.synthesize_inputs(info, 4, pool_size=3, seed=1)


def reference(path, feeds) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=[CPU])
    return session.run(None, feeds)[0]


# ---------------------------------------------------------------- silent fallback


def test_a_session_running_on_another_provider_is_a_fallback():
    reason = ort_backend.fallback_reason(CUDA, [CPU])
    assert "CUDAExecutionProvider was requested but onnxruntime runs on CPUExecutionProvider" in (
        reason
    )
    assert "silent fallback" in reason


def test_a_provider_given_no_node_is_a_fallback_even_when_listed_first():
    reason = ort_backend.fallback_reason(CUDA, [CUDA, CPU], {CUDA: 0, CPU: 12})
    assert "none of the model's 12 nodes" in reason and CPU in reason


def test_a_provider_with_most_nodes_passes_with_a_placement_note():
    nodes = {CUDA: 10, CPU: 2}
    assert ort_backend.fallback_reason(CUDA, [CUDA, CPU], nodes) is None
    assert str(ort_backend.placement_note(CUDA, nodes)) == (
        "placement: 10 of 12 nodes run on CUDAExecutionProvider; 2 on CPUExecutionProvider"
    )
    assert ort_backend.placement_note(CUDA, {CUDA: 12}) is None
    assert ort_backend.fallback_reason(CPU, [CPU], {CPU: 5}) is None


@pytest.mark.skipif(
    "AzureExecutionProvider" not in ort.get_available_providers(),
    reason="needs a provider that is listed but takes no node (the Azure EP of the CPU wheel)",
)
def test_real_session_whose_listed_provider_runs_nothing_fails_the_check(mlp_path):
    # The Azure EP is in the default wheel, accepts the session, and takes none of the nodes:
    # onnxruntime lists it first in get_providers() while everything runs on the CPU.
    so = ort_backend.with_assignment_recording(ort_backend.session_options(ServingConfig()))
    session = ort.InferenceSession(str(mlp_path), so, providers=["AzureExecutionProvider", CPU])
    assert session.get_providers()[0] == "AzureExecutionProvider"
    with pytest.raises(CellFailure) as err:
        ort_backend.check_session(session, "AzureExecutionProvider")
    assert "none of the model's 5 nodes" in str(err.value)


def test_cpu_session_records_every_node_on_the_cpu(mlp_path):
    session = ort_backend.open_session(str(mlp_path), ServingConfig())
    nodes = ort_backend.nodes_per_provider(session)
    assert nodes in (None, {CPU: 5})  # None only on onnxruntime older than 1.23


def test_a_device_this_build_lacks_fails_the_cell_with_what_to_install(mlp_path):
    with pytest.raises(CellFailure) as err:
        open_instances(str(mlp_path), ServingConfig(device="rocm:0"))
    assert "ROCMExecutionProvider is not in this onnxruntime build" in str(err.value)
    assert "ROCm" in str(err.value)


def test_provider_lists_carry_device_ids_and_tensorrt_falls_back_to_cuda():
    spec = parse_device("tensorrt:1?trt_fp16_enable=1")
    got = ort_backend.provider_list(spec, providers=["TensorrtExecutionProvider", CUDA, CPU])
    assert got == [
        ("TensorrtExecutionProvider", {"trt_fp16_enable": "1", "device_id": "1"}),
        (CUDA, {"device_id": "1"}),
        CPU,
    ]
    assert ort_backend.provider_list(parse_device("openvino:GPU")) == [
        ("OpenVINOExecutionProvider", {"device_type": "GPU"}),
        CPU,
    ]
    assert ort_backend.provider_list(parse_device("cpu")) == [CPU]


# ---------------------------------------------------------------- plugin EPs


@pytest.mark.skipif(not hasattr(ort, "get_ep_devices"), reason="onnxruntime older than 1.23")
def test_session_on_an_ep_device_runs_the_model(mlp_path, mlp_feeds):
    # The plugin path (add_provider_for_devices) on the EP device every host has: the CPU's.
    cpu_devices = [d for d in ort.get_ep_devices() if d.ep_name == CPU]
    session = ort_backend.open_session_on_ep_devices(str(mlp_path), ServingConfig(), cpu_devices)
    assert session.get_providers() == [CPU]
    out = session.run(None, mlp_feeds[0])[0]
    np.testing.assert_allclose(out, reference(mlp_path, mlp_feeds[0]), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- runners and io_binding


def test_instances_are_independent_sessions_with_identical_results(mlp_path, mlp_feeds):
    inst = open_instances(str(mlp_path), ServingConfig(instances=2, batch_size=4))
    assert len(inst.runners) == 2 and inst.runtime.startswith("onnxruntime")
    a, b = (run(mlp_feeds[0])[0] for run in inst.runners)
    np.testing.assert_array_equal(a, b)
    assert inst.notes == []  # CPU, no io_binding: nothing to label
    inst.close()


def test_io_binding_runner_gives_the_plain_results_for_each_pooled_input(mlp_path, mlp_feeds):
    inst = open_instances(str(mlp_path), ServingConfig(batch_size=4, io_binding=True))
    run = inst.runners[0]
    for _ in range(2):  # the second pass reads the inputs bound on the first
        for feeds in mlp_feeds:
            out = run(feeds).copy_outputs_to_cpu()[0]
            np.testing.assert_allclose(out, reference(mlp_path, feeds), rtol=1e-5, atol=1e-6)
    assert any(str(n).startswith("io-binding: on a CPU device") for n in inst.notes)


def test_io_binding_runner_is_safe_across_threads(mlp_path, mlp_feeds):
    inst = open_instances(str(mlp_path), ServingConfig(batch_size=4, io_binding=True))
    run = inst.runners[0]
    expected = [reference(mlp_path, f) for f in mlp_feeds]
    errors = []

    def worker(k: int) -> None:
        for i in range(30):
            j = (i + k) % len(mlp_feeds)
            out = run(mlp_feeds[j]).copy_outputs_to_cpu()[0]
            if not np.allclose(out, expected[j], rtol=1e-5, atol=1e-6):
                errors.append((k, i))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_gpu_cells_are_labelled_with_what_the_timed_path_holds():
    plain = str(ort_backend.copy_note(parse_device("cuda:0"), io_binding=False))
    bound = str(ort_backend.copy_note(parse_device("cuda:0"), io_binding=True))
    assert plain.startswith("host-copies: the timed path includes host<->device copies")
    assert "cuda:0" in plain and "io_binding keeps them on the device" in plain
    assert bound.startswith("io-binding:") and "excludes host<->device copies" in bound
    assert ort_backend.copy_note(parse_device("cpu"), io_binding=False) is None
    assert ort_backend.memory_device(parse_device("tensorrt:0")) == "cuda"
    assert ort_backend.memory_device(parse_device("rocm:0")) is None


def test_io_binding_on_a_gpu_it_cannot_bind_is_a_cell_failure(mlp_path):
    with pytest.raises(CellFailure) as err:
        open_instances(str(mlp_path), ServingConfig(device="rocm:0", io_binding=True))
    assert "io_binding is not supported on rocm:0" in str(err.value)
