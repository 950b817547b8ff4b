"""Accuracy measured, not assumed: a cell's outputs against the fp32 CPU reference.

The samples are fixed for a sweep: `count` samples in input sets of ACCURACY_BATCH (a dynamic
batch; else the model's fixed batch), synthetic (seeded) or a data source's. The reference is
the source model on onnxruntime's CPU EP at fp32 (all graph optimisations), computed once per
model, sample count and seed and cached under `$BENCHBOX_CACHE/reference`. The comparison
runs after a cell is measured, outside the timed path, on the cell's own open session (its
first instance). A variant's outputs depend on its precision, device and session's graph
options, not on threads, instances, batch size or load, so the comparison runs once per such
key in a sweep (the first cell of the key, named in `Accuracy.source`) and the other cells of
the key reuse it.

Per output: max abs error, relative L2 error, mean and lowest per-sample cosine similarity;
for classification-like outputs (float, rank >= 2, last dim >= 2) the positions whose argmax
over the last dim agrees with the reference's; with labels (a data source's label column), the
samples whose argmax matches the label.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from benchbox.precision import calibration
from benchbox.schema import Accuracy, ModelInfo, OutputAccuracy, from_dict, to_dict

ACCURACY_SEED = 20251  # the fixed samples' seed: not the sweep's, so reports compare
ACCURACY_BATCH = 8
# An fp32 cell whose outputs differ from the reference by more than this (relative L2 error)
# computes in another precision or with other kernels; it is flagged.
FP32_REL_TOLERANCE = 1e-4
REFERENCE_KEYS = ("cpu", "fp32", "all", False)  # device, precision, graph opt, io binding


def reference_dir() -> pathlib.Path:
    """`$BENCHBOX_CACHE/reference`, default `~/.cache/benchbox/reference`."""
    root = os.environ.get("BENCHBOX_CACHE")
    base = pathlib.Path(root) if root else pathlib.Path.home() / ".cache" / "benchbox"
    return base / "reference"


def accuracy_batch(info: ModelInfo) -> int:
    """The batch size the fixed samples are run at: ACCURACY_BATCH for a dynamic batch (one
    batch of 8 costs far less than 8 of 1), else the model's own."""
    return ACCURACY_BATCH if info.batch == "dynamic" else calibration.sample_batch(info)


def fixed_samples(
    info: ModelInfo, count: int, samples: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The accuracy check's input sets: the data source's first `count`, else synthetic ones,
    `count` samples in sets of `accuracy_batch`."""
    if samples:
        return list(samples[:count])
    batch = accuracy_batch(info)
    sets = -(-count // batch)
    return calibration.synthetic_samples(info, sets, ACCURACY_SEED, batch_size=batch)


def as_arrays(result: Any) -> list[np.ndarray]:
    """A runner's return value as numpy arrays in the model's output order (onnxruntime's list,
    an io-binding, OpenVINO's result dict)."""
    if hasattr(result, "copy_outputs_to_cpu"):
        result = result.copy_outputs_to_cpu()
    elif hasattr(result, "to_tuple"):
        result = result.to_tuple()
    elif isinstance(result, dict):
        result = list(result.values())
    return [np.asarray(getattr(x, "numpy", lambda x=x: x)()) for x in result]


def run_all(runner: Callable[[dict], Any], inputs: Sequence[dict]) -> list[list[np.ndarray]]:
    """Every input set through the runner, outputs copied (a runner may reuse its buffers)."""
    return [[np.array(a, copy=True) for a in as_arrays(runner(feed))] for feed in inputs]


def reference_outputs(
    model_path: str, info: ModelInfo, inputs: list[dict], key: str, threads: int = 1
) -> list[list[np.ndarray]]:
    """The fp32 CPU outputs of the input sets, from the cache or computed now."""
    path = reference_dir() / f"{key}.npz"
    if path.exists():
        with np.load(path) as data:
            sets, outs = int(data["sets"]), int(data["outputs"])
            return [[data[f"s{i}o{j}"] for j in range(outs)] for i in range(sets)]
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, threads)
    so.log_severity_level = 4
    session = ort.InferenceSession(model_path, sess_options=so, providers=["CPUExecutionProvider"])
    outputs = run_all(lambda feed: session.run(None, feed), inputs)
    save_reference(path, outputs)
    return outputs


def save_reference(path: pathlib.Path, outputs: list[list[np.ndarray]]) -> None:
    """Write reference outputs atomically (npz: no pickle)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"s{i}o{j}": a for i, outs in enumerate(outputs) for j, a in enumerate(outs)}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez(tmp, sets=len(outputs), outputs=len(outputs[0]) if outputs else 0, **arrays)
        os.replace(tmp, path)
    finally:
        pathlib.Path(tmp).unlink(missing_ok=True)


def reference_key(info: ModelInfo, count: int, samples_digest: str = "synthetic") -> str:
    """The reference cache key: model, sample count, the samples' origin, shapes."""
    dims = json.dumps([info.dims, info.input_values], sort_keys=True, default=str)
    extra = hashlib.sha256((dims + samples_digest).encode()).hexdigest()[:8]
    return f"{info.sha256[:16]}-n{count}-s{ACCURACY_SEED}-b{accuracy_batch(info)}-{extra}"


def _per_sample(a: np.ndarray, rows: bool) -> np.ndarray:
    """The output as (samples, values): rows along the batch axis when it has one."""
    a = np.asarray(a, dtype=np.float64)
    if rows and a.ndim >= 2:
        return a.reshape(a.shape[0], -1)
    return a.reshape(1, -1)


def _cosines(y: np.ndarray, r: np.ndarray) -> np.ndarray:
    num = np.sum(y * r, axis=1)
    den = np.linalg.norm(y, axis=1) * np.linalg.norm(r, axis=1)
    both_zero = (np.linalg.norm(y, axis=1) == 0) & (np.linalg.norm(r, axis=1) == 0)
    out = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return np.where(both_zero, 1.0, out)


def compare_output(
    name: str,
    got: list[np.ndarray],
    ref: list[np.ndarray],
    labels: list[np.ndarray] | None = None,
) -> OutputAccuracy:
    """One output's figures over every input set."""
    rows = [_per_sample(r, True) for r in ref]
    ys = [_per_sample(g, True) for g in got]
    if any(y.shape != r.shape for y, r in zip(ys, rows, strict=True)):
        shapes = f"{got[0].shape} vs reference {ref[0].shape}"
        raise ValueError(f"output '{name}' has another shape than the reference: {shapes}")
    y, r = np.concatenate(ys), np.concatenate(rows)
    diff = np.abs(y - r)
    norm = float(np.linalg.norm(r))
    rel = float(np.linalg.norm(y - r) / norm) if norm > 0 else float(np.linalg.norm(y - r))
    cos = _cosines(y, r)
    top1_agree = top1_count = label_correct = label_count = None
    first = np.asarray(ref[0])
    if first.dtype.kind == "f" and first.ndim >= 2 and first.shape[-1] >= 2:
        a = np.concatenate([np.argmax(g, axis=-1).ravel() for g in got])
        b = np.concatenate([np.argmax(x, axis=-1).ravel() for x in ref])
        top1_agree, top1_count = int(np.sum(a == b)), int(a.size)
        if labels is not None:
            lab = np.concatenate([np.asarray(x).ravel() for x in labels])
            if lab.size == a.size:
                label_correct, label_count = int(np.sum(a == lab)), int(lab.size)
    return OutputAccuracy(
        name=name,
        max_abs_error=float(diff.max()) if diff.size else 0.0,
        rel_error=rel,
        cosine=float(cos.mean()) if cos.size else 1.0,
        cosine_min=float(cos.min()) if cos.size else 1.0,
        top1_agree=top1_agree,
        top1_count=top1_count,
        label_correct=label_correct,
        label_count=label_count,
    )


def compare(
    names: Sequence[str],
    got: list[list[np.ndarray]],
    ref: list[list[np.ndarray]],
    labels: list[np.ndarray] | None = None,
) -> tuple[OutputAccuracy, ...]:
    """Every output's figures (names in the model's output order)."""
    return tuple(
        compare_output(name, [g[j] for g in got], [r[j] for r in ref], labels)
        for j, name in enumerate(names)
    )


def fp32_flag(device: str, outputs: Sequence[OutputAccuracy]) -> str | None:
    """Words for an fp32 cell whose outputs already differ from the reference, else None."""
    worst = max(outputs, key=lambda o: o.rel_error, default=None)
    if worst is None or worst.rel_error <= FP32_REL_TOLERANCE:
        return None
    return (
        f"fp32 on {device} differs from the fp32 CPU reference: output '{worst.name}' relative "
        f"error {worst.rel_error:.2g}, max abs {worst.max_abs_error:.2g} (it may compute in lower "
        "precision, e.g. bf16 or tf32)"
    )


def accuracy_key(config: Any) -> str:
    """The key cells share an accuracy measurement by: precision, device, graph options."""
    return (
        "-".join(
            str(x)
            for x in (config.device, config.precision, config.graph_optimization, config.io_binding)
        )
        .replace("/", "_")
        .replace(":", "_")
        .replace("?", "_")
    )


def load_cached(folder: pathlib.Path | None, key: str) -> Accuracy | None:
    """The accuracy measured earlier in this sweep for the key, or None."""
    if folder is None:
        return None
    path = folder / f"{key}.json"
    if not path.exists():
        return None
    return from_dict(Accuracy, json.loads(path.read_text()), "accuracy cache")


def store_cached(folder: pathlib.Path | None, key: str, acc: Accuracy) -> None:
    """Keep the accuracy for the other cells (and trials) of the key."""
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{key}.", dir=folder)
    with os.fdopen(fd, "w") as f:
        json.dump(to_dict(acc), f)
    os.replace(tmp, folder / f"{key}.json")


def measure_cell_accuracy(
    runner: Callable[[dict], Any],
    config: Any,
    cell_id: str,
    model_path: str,
    info: ModelInfo,
    count: int,
    cache: pathlib.Path | None = None,
    samples: list[dict[str, Any]] | None = None,
    labels: list[np.ndarray] | None = None,
    source: str = "synthetic",
    threads: int = 1,
) -> Accuracy:
    """The cell's accuracy: from this sweep's cache for its key, or measured on `runner`."""
    key = accuracy_key(config)
    cached = load_cached(cache, key)
    if cached is not None:
        return cached
    inputs = fixed_samples(info, count, samples)
    digest = "synthetic" if not samples else _digest(inputs)
    ref_key = reference_key(info, count, digest)
    names = [o.name for o in info.outputs]
    is_reference = (config.device, config.precision, config.graph_optimization) == (
        REFERENCE_KEYS[:3]
    ) and not config.io_binding
    got = run_all(runner, inputs)
    if is_reference and not (reference_dir() / f"{ref_key}.npz").exists():
        save_reference(reference_dir() / f"{ref_key}.npz", got)
        ref = got
    else:
        ref = reference_outputs(model_path, info, inputs, ref_key, threads)
    outputs = compare(names or [f"output{j}" for j in range(len(got[0]))], got, ref, labels)
    flag = fp32_flag(config.device, outputs) if config.precision == "fp32" else None
    acc = Accuracy(
        samples=sum(_rows(feed) for feed in inputs),
        source=f"{source}; measured on {cell_id}",
        outputs=outputs,
        flag=flag,
    )
    store_cached(cache, key, acc)
    return acc


def _rows(feed: dict) -> int:
    """The samples in one input set: its first input's leading dim (1 for a scalar)."""
    first = next(iter(feed.values()), None)
    shape = getattr(first, "shape", ())
    return int(shape[0]) if shape else 1


def _digest(inputs: list[dict]) -> str:
    from benchbox.precision.variants import samples_key

    return samples_key(inputs)
