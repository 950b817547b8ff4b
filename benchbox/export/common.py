"""What the export writers share: the output folder, the model file and its tensors, names and
provenance."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from benchbox import schema
from benchbox.errors import BadInput
from benchbox.format import fmt_ms_given, percentile_label
from benchbox.model import inspect_model, sha256_file


def prepare_out_dir(out_dir: str | Path) -> Path:
    """Create the output folder and check it can be written; BadInput naming it otherwise."""
    folder = Path(out_dir)
    try:
        if folder.exists() and not folder.is_dir():
            raise BadInput(
                f"cannot export to {folder}: it is a file, not a folder",
                "choose a folder with --out",
            )
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".benchbox-probe-"):
            pass
    except OSError as exc:
        raise BadInput(
            f"cannot write the export to {folder}: {exc.strerror or exc}",
            "choose a folder you can write to with --out",
        ) from None
    return folder


def measured_variant(report: schema.Report, cell: schema.Cell | None) -> schema.VariantInfo | None:
    """(precision) The variant file a cell measured, when it is not the source model: fp16 and
    int8 variants on onnxruntime (OpenVINO took fp16 as a hint on the fp32 model)."""
    if cell is None or cell.config.precision == "fp32":
        return None
    if cell.config.precision == "fp16" and cell.config.device.startswith("ov"):
        return None
    variant = next((v for v in report.variants if v.precision == cell.config.precision), None)
    if variant is None or variant.path is None:
        raise BadInput(
            f"the report has no {cell.config.precision} variant for {cell.id}",
            "sweep again with --precision to build it",
        )
    return variant


def resolve_model_path(
    report: schema.Report,
    model_path: str | Path | None = None,
    cell: schema.Cell | None = None,
) -> Path:
    """The ONNX file to ship: `model_path`, else the one the report measured (for `cell`, the
    variant it measured); it must exist and be that model (same sha256)."""
    variant = measured_variant(report, cell)
    if variant is not None:
        path = Path(model_path) if model_path is not None else Path(variant.path)
        if not path.is_file():
            raise BadInput(
                f"the {variant.precision} variant ({path}) does not exist",
                "pass the variant file with --model FILE, or sweep again to rebuild it",
            )
        check_measured(report, path, variant.sha256)
        return path
    path = Path(model_path) if model_path is not None else Path(report.model.path)
    if not path.is_file():
        where = "given" if model_path is not None else "the report measured"
        raise BadInput(
            f"the model file {where} ({path}) does not exist",
            "pass the ONNX file with --model FILE",
        )
    check_measured(report, path)
    return path


def check_measured(report: schema.Report, path: Path, expected: str | None = None) -> None:
    """BadInput when the file is not the model the report measured (its sha256 differs);
    `expected`: a variant's sha256 instead of the source model's."""
    try:
        actual = sha256_file(path)
    except OSError as exc:
        raise BadInput(f"cannot read the model file {path}: {exc.strerror or exc}") from None
    expected = expected or report.model.sha256
    if actual != expected:
        raise BadInput(
            f"{path} is not the model this report measured: its sha256 is {actual[:12]}…, "
            f"the report's is {expected[:12]}…",
            "pass the file that was measured with --model FILE, or sweep this one first",
        )


def model_tensors(
    report: schema.Report, model_path: str | Path | None = None
) -> tuple[tuple[schema.TensorSpec, ...], tuple[schema.TensorSpec, ...]]:
    """(inputs, outputs) of the model: from the report, or read from the file when it lacks them."""
    info = report.model
    if info.inputs and info.outputs:
        return info.inputs, info.outputs
    read = inspect_model(resolve_model_path(report, model_path))
    return read.inputs, read.outputs


def batchable(tensors: tuple[schema.TensorSpec, ...]) -> bool:
    """True when every tensor's first dim is symbolic: a server may stack requests along it."""
    return bool(tensors) and all(t.shape and isinstance(t.shape[0], str) for t in tensors)


def safe_name(text: str, fallback: str = "model") -> str:
    """A DNS-1035 label (lower-case letters, digits, '-'; starts with a letter; <= 63 chars)."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)
    if not name or not name[0].isalpha():
        name = f"{fallback}-{name}".strip("-")
    return name[:63].rstrip("-")


def provenance(report: schema.Report, cell: schema.Cell) -> dict[str, Any]:
    """Where an export came from: cell, measured figures, target and profile (for comments)."""
    r = cell.result
    out: dict[str, Any] = {
        "benchbox_version": report.benchbox_version,
        "report_created": report.created,
        "model_sha256": report.model.sha256,
        "cell": cell.id,
        **_variant_provenance(report, cell),
        "throughput_ips": r.throughput_ips if r else None,
        "p99_ms": r.latency_ms.p99 if r else None,
    }
    rec = report.recommendation
    if rec is not None and rec.winner == cell.id:
        out["target"] = f"{percentile_label(rec.percentile)}<={fmt_ms_given(rec.target_ms, 'ms')}"
        out["objective"] = rec.objective
    if report.profile:
        out["profile"] = report.profile.name
    return out


def _variant_provenance(report: schema.Report, cell: schema.Cell) -> dict[str, Any]:
    """(precision) The variant's precision, method and sha256, for a non-fp32 cell."""
    if cell.config.precision == "fp32":
        return {}
    v = next((v for v in report.variants if v.precision == cell.config.precision), None)
    out: dict[str, Any] = {"precision": cell.config.precision}
    if v is not None:
        out.update(method=v.method, variant_sha256=v.sha256)
    return out
