"""ONNX inspection (inputs, batch axis, symbolic dims, errors) and input synthesis."""

from __future__ import annotations

import hashlib
import os
import pathlib

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from benchbox import model, schema
from benchbox.errors import BadInput
from benchbox.schema import ModelInfo, TensorSpec

LIGHT = pathlib.Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def _session(path: pathlib.Path | str) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _save(path: pathlib.Path, nodes, inputs, outputs, initializers=(), ir=8) -> pathlib.Path:
    graph = helper.make_graph(nodes, "test", inputs, outputs, list(initializers))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=ir)
    onnx.save(m, str(path))
    return path


# ---------------------------------------------------------------- inspection


def test_sha256_file_hashes_files_larger_than_one_chunk(tmp_path):
    data = np.random.default_rng(0).bytes(3 * (1 << 20) + 5)
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert model.sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_inspect_bert_reports_symbolic_dims_and_defaults_seq_to_128(bert_path):
    info = model.inspect_model(bert_path)
    assert info.path == str(bert_path)
    assert info.sha256 == model.sha256_file(bert_path)
    assert info.opset == 17
    assert info.inputs == (
        TensorSpec("input_ids", "int64", ("batch", "seq")),
        TensorSpec("attention_mask", "int64", ("batch", "seq")),
    )
    assert info.outputs == (
        TensorSpec("last_hidden_state", "float32", ("batch", "seq", 128)),
        TensorSpec("pooler_output", "float32", ("batch", 128)),
    )
    assert info.batch == "dynamic"
    assert info.dims == {"seq": 128} and info.dims_defaulted == ("seq",)


def test_shape_overrides_a_symbolic_dim_and_feeds_input_shapes(bert_path):
    info = model.inspect_model(bert_path, {"seq": 16})
    assert info.dims == {"seq": 16} and info.dims_defaulted == ()
    assert model.input_shapes(info, 3) == {"input_ids": (3, 16), "attention_mask": (3, 16)}
    hidden, pooled = _session(bert_path).run(None, model.synthesize_inputs(info, 3)[0])
    assert hidden.shape == (3, 16, 128) and pooled.shape == (3, 128)


def test_unknown_shape_name_is_bad_input_listing_the_symbolic_dims(bert_path):
    with pytest.raises(BadInput) as err:
        model.inspect_model(bert_path, {"sequence": 16})
    assert "sequence" in err.value.message and "seq" in err.value.hint


def test_shape_for_the_batch_dim_points_to_the_batch_option(bert_path):
    with pytest.raises(BadInput) as err:
        model.inspect_model(bert_path, {"batch": 4})
    assert "batch dimension" in err.value.message and "--batch" in err.value.hint


def test_fixed_batch_model_inspects_as_that_int_and_other_batches_are_skipped(fixed_batch_path):
    info = model.inspect_model(fixed_batch_path)
    assert info.batch == 1 and info.inputs[0].shape == (1, 64)
    assert model.batch_skip_reason(info, 1) is None
    assert model.batch_skip_reason(info, 8) == "model has a fixed batch dimension of 1"
    assert model.input_shapes(info, 1) == {"x": (1, 64)}


@pytest.mark.parametrize(
    ("file", "input_name", "output_shape"),
    [
        ("light_squeezenet.onnx", "data_0", (1, 1000, 1, 1)),
        ("light_resnet50.onnx", "gpu_0/data_0", (1, 1000)),
    ],
)
def test_real_models_from_the_onnx_wheel_inspect_and_run(file, input_name, output_shape):
    path = LIGHT / file
    info = model.inspect_model(path)
    # IR-3 models list their weights as graph inputs too; only the real input is reported.
    assert info.inputs == (TensorSpec(input_name, "float32", (1, 3, 224, 224)),)
    assert info.batch == 1 and info.opset == 9 and info.dims == {}
    assert model.batch_skip_reason(info, 4) == "model has a fixed batch dimension of 1"
    (probs,) = _session(path).run(None, model.synthesize_inputs(info, 1, pool_size=1)[0])
    assert probs.shape == output_shape
    assert probs.sum() == pytest.approx(1.0, abs=1e-3)  # both end in a softmax


def test_unknown_dims_get_generated_names_and_image_defaults(tmp_path):
    path = _save(
        tmp_path / "img.onnx",
        [helper.make_node("GlobalAveragePool", ["x"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, None, None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3, 1, 1])],
    )
    info = model.inspect_model(path)
    assert info.inputs[0].shape == ("x_dim0", 3, "x_dim2", "x_dim3")
    assert info.batch == "dynamic"
    assert info.dims == {"x_dim2": 224, "x_dim3": 224}
    assert info.dims_defaulted == ("x_dim2", "x_dim3")
    small = model.inspect_model(path, {"x_dim2": 32, "x_dim3": 40})
    assert model.input_shapes(small, 2) == {"x": (2, 3, 32, 40)}
    (y,) = _session(path).run(None, model.synthesize_inputs(small, 2)[0])
    assert y.shape == (2, 3, 1, 1)


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("seq", 128),
        ("sequence_length", 128),
        ("max_seq_len", 128),
        ("numTokens", 128),
        ("height", 224),
        ("imgW", 224),
        ("num_boxes", 1),
        ("N", 1),
    ],
)
def test_default_dim_is_chosen_by_name(name, size):
    assert model.default_dim(name) == size


def test_string_inputs_are_skipped_with_a_reason(tmp_path):
    path = _save(
        tmp_path / "text.onnx",
        [helper.make_node("Identity", ["text"], ["out"])],
        [helper.make_tensor_value_info("text", TensorProto.STRING, ["batch"])],
        [helper.make_tensor_value_info("out", TensorProto.STRING, ["batch"])],
    )
    info = model.inspect_model(path)
    assert info.inputs == (TensorSpec("text", "string", ("batch",)),)
    assert model.batch_skip_reason(info, 1) == "string inputs are not supported (input 'text')"
    with pytest.raises(BadInput, match="string inputs are not supported"):
        model.synthesize_inputs(info, 1)


def test_scalar_inputs_mean_no_batch_axis(tmp_path):
    two = numpy_helper.from_array(np.array(2.0, np.float32), "two")
    path = _save(
        tmp_path / "scalar.onnx",
        [helper.make_node("Mul", ["x", "two"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])],
        [two],
    )
    info = model.inspect_model(path)
    assert info.batch is None
    assert model.batch_skip_reason(info, 1) is None
    assert model.batch_skip_reason(info, 4) == "model has no batch dimension"
    feed = model.synthesize_inputs(info, 1)[0]
    assert isinstance(feed["x"], np.ndarray) and feed["x"].shape == ()
    (y,) = _session(path).run(None, feed)
    assert y == pytest.approx(2 * feed["x"])


def test_inspect_does_not_read_external_weights(mlp_path, tmp_path):
    m = onnx.load(str(mlp_path))
    path = tmp_path / "ext.onnx"
    onnx.save(m, str(path), save_as_external_data=True, location="w.bin", size_threshold=0)
    assert (tmp_path / "w.bin").stat().st_size > 100_000
    (tmp_path / "w.bin").unlink()  # loading the weights would now fail; inspecting must not
    info = model.inspect_model(path)
    assert info.inputs == (TensorSpec("x", "float32", ("batch", 64)),)
    assert info.sha256 == model.sha256_file(path)


# ---------------------------------------------------------------- errors


def _no_inputs_model(path: pathlib.Path) -> pathlib.Path:
    value = numpy_helper.from_array(np.ones(3, np.float32), "v")
    return _save(
        path,
        [helper.make_node("Constant", [], ["y"], value=value)],
        [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
    )


def _weights_only_ir3_model(path: pathlib.Path) -> pathlib.Path:
    w = numpy_helper.from_array(np.ones(3, np.float32), "w")
    return _save(
        path,
        [helper.make_node("Relu", ["w"], ["y"])],
        [helper.make_tensor_value_info("w", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
        [w],
        ir=3,
    )


def _half(src: pathlib.Path, dst: pathlib.Path) -> pathlib.Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda d, mlp: d / "missing.onnx", "does not exist"),
        (lambda d, mlp: d, "is a directory"),
        (lambda d, mlp: _write(d / "notes.onnx", b"hello, this is text\nnot a model\n"), "not"),
        (lambda d, mlp: _write(d / "empty.onnx", b""), "is empty"),
        (lambda d, mlp: _half(LIGHT / "light_resnet50.onnx", d / "cut.onnx"), "not a valid"),
        (lambda d, mlp: _half(mlp, d / "cut_mlp.onnx"), "not a valid"),
        (lambda d, mlp: _no_inputs_model(d / "noin.onnx"), "has no inputs"),
        (lambda d, mlp: _weights_only_ir3_model(d / "w.onnx"), "has no inputs"),
    ],
    ids=["missing", "directory", "text", "empty", "truncated", "truncated-zoo", "no-inputs", "ir3"],
)
def test_bad_model_files_are_one_line_bad_input(make, fragment, tmp_path, mlp_path):
    path = make(tmp_path, mlp_path)
    with pytest.raises(BadInput) as err:
        model.inspect_model(path)
    assert fragment in err.value.message
    assert "\n" not in err.value.message and err.value.hint and "\n" not in err.value.hint


def _write(path: pathlib.Path, data: bytes) -> pathlib.Path:
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------- synthesis


def test_pool_is_deterministic_distinct_and_c_contiguous(mixed_path):
    info = model.inspect_model(mixed_path)
    pool = model.synthesize_inputs(info, 64, pool_size=3, seed=7)
    again = model.synthesize_inputs(info, 64, pool_size=3, seed=7)
    other = model.synthesize_inputs(info, 64, pool_size=3, seed=8)
    assert len(pool) == 3
    for a, b in zip(pool, again, strict=True):
        assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(pool[0]["dense"], other[0]["dense"])
    for name in ("dense", "dense_half", "token_ids", "flags"):
        assert not np.array_equal(pool[0][name], pool[1][name])
    for feed in pool:
        assert all(v.flags["C_CONTIGUOUS"] for v in feed.values())


def test_inputs_get_the_models_dtypes_and_sensible_values(mixed_path):
    info = model.inspect_model(mixed_path)
    feed = model.synthesize_inputs(info, 64, pool_size=1)[0]
    assert {k: v.dtype.name for k, v in feed.items()} == {
        "dense": "float32",
        "dense_half": "float16",
        "token_ids": "int32",
        "flags": "bool",
    }
    assert {k: v.shape for k, v in feed.items()} == {
        "dense": (64, 16),
        "dense_half": (64, 16),
        "token_ids": (64, 8),
        "flags": (64, 8),
    }
    dense = feed["dense"]
    assert abs(dense.mean()) < 0.15 and 0.85 < dense.std() < 1.15  # normal(0, 1)
    assert 0.35 < feed["flags"].mean() < 0.65  # both values, about half each
    # The mixed model's token table has 50 rows: ids stay below 50, and use the range.
    assert feed["token_ids"].min() >= 0 and feed["token_ids"].max() == 49


def test_id_limit_is_read_from_the_file_when_not_inspected_in_this_process(mixed_path):
    info = model.inspect_model(mixed_path)
    fresh = schema.replace(info, sha256="0" * 64)  # as a worker process would see it
    feed = model.synthesize_inputs(fresh, 64, pool_size=1)[0]
    assert feed["token_ids"].max() == 49
    assert model.index_limits(mixed_path) == {"token_ids": 50}


def test_ids_use_a_small_vocabulary_and_masks_are_ones(bert_path):
    info = model.inspect_model(bert_path, {"seq": 32})
    pool = model.synthesize_inputs(info, 4)
    ids = np.stack([feed["input_ids"] for feed in pool])
    assert ids.dtype == np.int64 and ids.min() >= 0 and ids.max() == model.ID_VOCAB - 1
    assert all((feed["attention_mask"] == 1).all() for feed in pool)
    assert model.index_limits(bert_path) == {"input_ids": 1000}


def test_id_limit_follows_casts_to_the_gather(tmp_path):
    table = numpy_helper.from_array(np.arange(28, dtype=np.float32).reshape(7, 4), "table")
    path = _save(
        tmp_path / "cast.onnx",
        [
            helper.make_node("Cast", ["ids"], ["ids64"], to=TensorProto.INT64),
            helper.make_node("Gather", ["table", "ids64"], ["emb"]),
        ],
        [helper.make_tensor_value_info("ids", TensorProto.INT32, ["batch", 5])],
        [helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["batch", 5, 4])],
        [table],
    )
    assert model.index_limits(path) == {"ids": 7}
    info = model.inspect_model(path)
    feed = model.synthesize_inputs(info, 16, pool_size=1)[0]
    assert feed["ids"].max() == 6
    (emb,) = _session(path).run(None, feed)
    assert emb.shape == (16, 5, 4)


def test_token_type_ids_are_zeros_and_unknown_files_fall_back_to_the_vocabulary():
    info = ModelInfo(
        path=os.devnull + "-missing.onnx",
        sha256="f" * 64,
        opset=17,
        inputs=(
            TensorSpec("input_ids", "int64", ("batch", "seq")),
            TensorSpec("token_type_ids", "int64", ("batch", "seq")),
        ),
        batch="dynamic",
        dims={"seq": 64},
    )
    feed = model.synthesize_inputs(info, 8, pool_size=1)[0]
    assert (feed["token_type_ids"] == 0).all() and feed["token_type_ids"].shape == (8, 64)
    assert feed["input_ids"].max() == model.ID_VOCAB - 1
