"""The built-in models: deterministic, cached, real topologies, runnable in onnxruntime; the CLI."""

from __future__ import annotations

import collections
import hashlib
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from benchbox import cli, model, zoo
from benchbox.errors import BadInput


def _session(model_or_path: pathlib.Path | bytes) -> ort.InferenceSession:
    source = model_or_path if isinstance(model_or_path, bytes) else str(model_or_path)
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"])


def _ops(m: onnx.ModelProto) -> collections.Counter:
    return collections.Counter(n.op_type for n in m.graph.node)


def _param_count(m: onnx.ModelProto) -> int:
    return sum(int(np.prod(t.dims)) for t in m.graph.initializer if t.data_type == 1)


# ---------------------------------------------------------------- catalogue and determinism


def test_catalogue_lists_every_model_and_the_demo_model_is_in_it():
    names = [e.name for e in zoo.list_models()]
    assert names == ["mlp", "mlp_fixed", "resnet18", "bert", "mixed"]
    assert zoo.DEMO_MODEL in names
    bert = next(e for e in zoo.list_models() if e.name == "bert")
    assert bert.params == {"layers": 2, "hidden": 128, "heads": 4, "vocab": 1000}


_FIXTURES = {
    "mlp": "mlp_path",
    "mlp_fixed": "fixed_batch_path",
    "resnet18": "resnet_path",
    "bert": "bert_path",
    "mixed": "mixed_path",
}


@pytest.mark.parametrize("name", list(_FIXTURES))
def test_building_again_gives_the_byte_identical_cached_model(name, request):
    cached = request.getfixturevalue(_FIXTURES[name]).read_bytes()
    assert zoo.build(name).SerializeToString() == cached


def test_different_params_give_different_models():
    one = zoo.build("bert", layers=1).SerializeToString()
    two = zoo.build("bert", layers=2).SerializeToString()
    assert one != two
    assert zoo.build("bert", layers="1").SerializeToString() == one  # CLI strings are coerced


def test_models_are_opset_17_with_float32_weights_and_pass_the_checker(
    mlp_path, fixed_batch_path, bert_path, mixed_path
):
    for path in (mlp_path, fixed_batch_path, bert_path, mixed_path):
        m = onnx.load(str(path))
        onnx.checker.check_model(m, full_check=True)
        assert [(o.domain, o.version) for o in m.opset_import] == [("", 17)]
        float_weights = [t for t in m.graph.initializer if t.data_type in (1, 10, 11, 16)]
        assert float_weights and all(t.data_type == 1 for t in float_weights)


def test_unknown_model_name_is_bad_input_listing_the_names():
    with pytest.raises(BadInput) as err:
        zoo.build("resnet19")
    assert "resnet19" in err.value.message
    assert "resnet18" in err.value.hint and "bert" in err.value.hint


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"depth": 3}, "no parameter 'depth'"),
        ({"layers": "two"}, "not an integer"),
        ({"layers": 0}, "at least 1"),
        ({"hidden": 100, "heads": 3}, "multiple of heads"),
    ],
)
def test_bad_params_are_bad_input(params, fragment):
    with pytest.raises(BadInput) as err:
        zoo.build("bert", **params)
    assert fragment in err.value.message + " " + (err.value.hint or "")


def test_resnet_resolution_out_of_range_is_bad_input():
    with pytest.raises(BadInput, match="resolution 16"):
        zoo.build("resnet18", resolution=16)


# ---------------------------------------------------------------- the cache


def test_path_for_builds_once_and_names_the_file_by_params_and_content_hash(tmp_path):
    first = zoo.path_for("mlp", cache=tmp_path, hidden=32)
    stat = first.stat()
    again = zoo.path_for("mlp", cache=tmp_path, hidden="32")
    assert again == first
    assert again.stat().st_mtime_ns == stat.st_mtime_ns and again.stat().st_ino == stat.st_ino
    digest = hashlib.sha256(first.read_bytes()).hexdigest()
    assert first.name == f"mlp-hidden32-g{zoo.GENERATOR_VERSION}-{digest[:12]}.onnx"
    assert zoo.path_for("mlp", cache=tmp_path) != first  # default hidden=128 is another file
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in tmp_path.glob("mlp-hidden*.onnx")
    )  # no temp files left behind


def test_path_for_uses_benchbox_cache_env(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHBOX_CACHE", str(tmp_path))
    path = zoo.path_for("mixed")
    assert path.parent == tmp_path / "zoo"
    assert path.read_bytes() == zoo.build("mixed").SerializeToString()


def test_resolve_takes_files_zoo_names_and_zoo_names_with_params(mlp_path, tmp_path):
    assert zoo.resolve(str(mlp_path)) == mlp_path
    small = zoo.resolve("bert:layers=1,hidden=64")
    assert "layers1" in small.name and "hidden64" in small.name
    assert _ops(onnx.load(str(small)))["Softmax"] == 1
    missing = tmp_path / "nope.onnx"
    assert zoo.resolve(str(missing)) == missing  # left to inspect_model to report
    with pytest.raises(BadInput, match="KEY=VALUE"):
        zoo.resolve("bert:layers")
    assert zoo.parse_params(["layers=4", "hidden=256, heads=8"]) == {
        "layers": "4",
        "hidden": "256",
        "heads": "8",
    }


# ---------------------------------------------------------------- running them


_OUTPUT_SHAPES = {
    "mlp": lambda b: [(b, 10)],
    "resnet18": lambda b: [(b, 1000)],
    "bert": lambda b: [(b, 128, 128), (b, 128)],
    "mixed": lambda b: [(b, 8), (b, 8)],
}


@pytest.mark.parametrize("name", ["mlp", "resnet18", "bert", "mixed"])
def test_zoo_model_runs_at_batch_1_and_4_with_finite_outputs(name, request):
    path = request.getfixturevalue(_FIXTURES[name])
    session = _session(path)
    info = model.inspect_model(path)
    for batch in (1, 4):
        assert model.batch_skip_reason(info, batch) is None
        outputs = [session.run(None, feed) for feed in model.synthesize_inputs(info, batch)]
        assert [o.shape for o in outputs[0]] == _OUTPUT_SHAPES[name](batch)
        for out in outputs:
            assert all(np.isfinite(o.astype(np.float32)).all() for o in out)
        # The pool really is distinct: different inputs give different outputs.
        assert not np.array_equal(outputs[0][0], outputs[1][0])


def test_fixed_batch_mlp_runs_at_batch_1_and_skips_4(fixed_batch_path):
    info = model.inspect_model(fixed_batch_path)
    assert info.batch == 1
    out = _session(fixed_batch_path).run(None, model.synthesize_inputs(info, 1)[0])
    assert out[0].shape == (1, 10)
    assert model.batch_skip_reason(info, 4) == "model has a fixed batch dimension of 1"
    assert model.inspect_model(zoo.path_for("mlp_fixed", batch=2)).batch == 2


# ---------------------------------------------------------------- topologies


def test_resnet18_has_the_resnet18_topology(resnet_path):
    m = onnx.load(str(resnet_path))
    ops = _ops(m)
    assert ops == {
        "Conv": 20,  # stem + 16 in 8 basic blocks + 3 projection shortcuts
        "Relu": 17,  # stem + 2 per block
        "Add": 8,  # one residual add per block
        "MaxPool": 1,
        "GlobalAveragePool": 1,
        "Flatten": 1,
        "Gemm": 1,
    }
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    attrs = [{a.name: list(a.ints) for a in n.attribute} for n in convs]
    assert attrs[0]["kernel_shape"] == [7, 7] and attrs[0]["strides"] == [2, 2]
    projections = [a for a in attrs if a["kernel_shape"] == [1, 1]]
    assert len(projections) == 3 and all(a["strides"] == [2, 2] for a in projections)
    assert sum(a["strides"] == [2, 2] for a in attrs if a["kernel_shape"] == [3, 3]) == 3
    # torchvision's resnet18 has 11,689,512 parameters; folding each of the 4,800 BN channels'
    # (gamma, beta) into one conv bias leaves 11,684,712.
    assert _param_count(m) == 11_684_712
    weights = {t.name: tuple(t.dims) for t in m.graph.initializer}
    assert weights["fc.weight"] == (1000, 512)
    assert weights["layer4.1.conv2.weight"] == (512, 512, 3, 3)


def test_resnet18_resolution_224_is_the_classic_input():
    m = zoo.build("resnet18", resolution=224)
    dims = m.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, 224, 224]
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224), dtype=np.float32)
    (logits,) = _session(m.SerializeToString()).run(None, {"input": x})
    assert logits.shape == (1, 1000) and np.isfinite(logits).all()


def test_bert_has_symbolic_batch_and_seq_and_the_encoder_ops():
    m = zoo.build("bert", layers=3)
    ops = _ops(m)
    assert ops["Softmax"] == 3 and ops["Erf"] == 3
    assert ops["LayerNormalization"] == 1 + 2 * 3
    assert ops["MatMul"] == 3 * 8  # q, k, v, out, 2 FFN, 2 attention products per layer
    shapes = {
        vi.name: [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]
        for vi in list(m.graph.input) + list(m.graph.output)
    }
    assert shapes == {
        "input_ids": ["batch", "seq"],
        "attention_mask": ["batch", "seq"],
        "last_hidden_state": ["batch", "seq", 128],
        "pooler_output": ["batch", 128],
    }


def test_bert_attention_mask_hides_masked_tokens(bert_path):
    session = _session(bert_path)
    rng = np.random.default_rng(1)
    for seq in (8, 32):
        ids = rng.integers(0, 1000, (2, seq), dtype=np.int64)
        mask = np.ones((2, seq), np.int64)
        mask[:, seq // 2 :] = 0
        hidden, pooled = session.run(None, {"input_ids": ids, "attention_mask": mask})
        assert hidden.shape == (2, seq, 128) and pooled.shape == (2, 128)
        changed = ids.copy()
        changed[:, seq // 2 :] = (changed[:, seq // 2 :] + 7) % 1000
        hidden2, _ = session.run(None, {"input_ids": changed, "attention_mask": mask})
        # Unmasked positions cannot see masked tokens, so they do not change ...
        np.testing.assert_allclose(hidden2[:, : seq // 2], hidden[:, : seq // 2], atol=1e-5)
        # ... but they do when the mask lets them see the changed tokens.
        full = np.ones_like(mask)
        a, _ = session.run(None, {"input_ids": ids, "attention_mask": full})
        b, _ = session.run(None, {"input_ids": changed, "attention_mask": full})
        assert np.abs(a[:, : seq // 2] - b[:, : seq // 2]).max() > 1e-3


def test_mixed_covers_float32_float16_int32_and_bool_inputs(mixed_path):
    info = model.inspect_model(mixed_path)
    assert [(s.name, s.dtype) for s in info.inputs] == [
        ("dense", "float32"),
        ("dense_half", "float16"),
        ("token_ids", "int32"),
        ("flags", "bool"),
    ]
    assert info.batch == "dynamic"
    assert [(s.name, s.dtype) for s in info.outputs] == [("y", "float32"), ("y_half", "float16")]


# ---------------------------------------------------------------- the CLI


def _benchbox(*args: str) -> subprocess.CompletedProcess:
    """The installed `benchbox` console script, as users run it."""
    return subprocess.run(
        ["benchbox", *args], capture_output=True, text=True, env=os.environ.copy(), timeout=120
    )


def _main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """`benchbox ARGS` in this process (cheaper than a subprocess): exit code, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["benchbox", *args])
    monkeypatch.delenv("BENCHBOX_DEBUG", raising=False)
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_models_list_json_is_only_json_with_every_model(monkeypatch, capsys):
    code, out, err = _main(monkeypatch, capsys, "models", "list", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["name"] for r in rows] == [e.name for e in zoo.list_models()]
    assert rows[2]["params"] == {"resolution": 64}
    assert "input_ids" in rows[3]["inputs"]


def test_cli_models_without_subcommand_lists_them(monkeypatch, capsys):
    code, out, err = _main(monkeypatch, capsys, "models")
    assert code == 0, err
    for name in ("mlp", "resnet18", "bert", "mixed", "mlp_fixed"):
        assert name in out
    assert "[batch," in out  # shapes are shown, not eaten as rich markup


def test_cli_models_build_writes_the_file_and_prints_its_sha256(tmp_path):
    out = tmp_path / "sub" / "small.onnx"
    result = _benchbox("models", "build", "mlp", "--out", str(out), "--param", "hidden=32")
    assert result.returncode == 0, result.stderr
    sha = model.sha256_file(out)
    assert str(out) in result.stdout and f"sha256 {sha}" in result.stdout
    assert out.read_bytes() == zoo.build("mlp", hidden=32).SerializeToString()
    weights = {t.name: tuple(t.dims) for t in onnx.load(str(out)).graph.initializer}
    assert weights["fc1.weight"] == (32, 64)


def test_cli_models_build_json_into_a_folder(tmp_path, monkeypatch, capsys):
    code, out, err = _main(
        monkeypatch,
        capsys,
        "models",
        "build",
        "bert",
        "--out",
        str(tmp_path),
        "-p",
        "layers=1",
        "--json",
    )
    assert code == 0, err
    record = json.loads(out)
    assert record["path"] == str(tmp_path / "bert.onnx")
    assert record["params"] == {"layers": 1, "hidden": 128, "heads": 4, "vocab": 1000}
    assert record["sha256"] == model.sha256_file(tmp_path / "bert.onnx")


def test_cli_models_build_bad_name_and_bad_param_exit_2_with_one_line_error(
    tmp_path, monkeypatch, capsys
):
    out = str(tmp_path / "x.onnx")
    for args, fragment in [
        (("nope",), "unknown zoo model 'nope'"),
        (("bert", "--param", "depth=2"), "has no parameter 'depth'"),
        (("bert", "--param", "layers"), "is not KEY=VALUE"),
    ]:
        code, stdout, stderr = _main(monkeypatch, capsys, "models", "build", *args, "--out", out)
        assert code == 2, stderr
        assert stderr.startswith("error: ") and fragment in stderr
        assert len(stderr.splitlines()) == 2 and stderr.splitlines()[1].startswith("hint: ")
        assert stdout == ""
    assert not pathlib.Path(out).exists()
