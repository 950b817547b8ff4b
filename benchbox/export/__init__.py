"""Exports of a measured serving config in the formats servers read: Triton, onnxruntime, KServe.

`export(kind, report, cell, out_dir)` dispatches; each writer returns the paths it wrote.
`export_recommended` exports a recommendation's winner with the options the command line gives.
The helpers the writers share (output folder, model file and tensors, provenance) are in `common`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchbox import schema
from benchbox.errors import BadInput
from benchbox.export.common import resolve_model_path
from benchbox.export.kserve import export_kserve
from benchbox.export.onnxruntime import export_onnxruntime
from benchbox.export.triton import export_triton
from benchbox.kinds import ExportKind  # noqa: F401 (re-exported)
from benchbox.parse import parse_choice


def export(
    kind: str, report: schema.Report, cell: schema.Cell | str, out_dir: str | Path, **kw: Any
) -> list[Path]:
    """Write `cell`'s serving config as `kind` (triton, onnxruntime, kserve) under `out_dir`."""
    kind = parse_choice(ExportKind, kind, "export format")
    cell = resolve_cell(report, cell)
    if kind == ExportKind.TRITON:
        return export_triton(report, cell, out_dir, **kw)
    if kind == ExportKind.ONNXRUNTIME:
        return [export_onnxruntime(report, cell, out_dir, **kw)]
    return [export_kserve(report, cell, out_dir, **kw)]


def resolve_cell(report: schema.Report, cell: schema.Cell | str) -> schema.Cell:
    """The cell itself, or the report's cell with this id; it must have been measured."""
    if isinstance(cell, str):
        found = next((c for c in report.cells if c.id == cell), None)
        if found is None:
            raise BadInput(f"the report has no cell {cell!r}")
        cell = found
    if cell.status != "ok" or cell.result is None:
        raise BadInput(
            f"cell {cell.id} was not measured successfully ({cell.status}); nothing to export",
            "export the recommended cell, or one whose status is ok",
        )
    return cell


def check_export_source(
    kind: str, report: schema.Report, rec: schema.Recommendation, model_path: str | Path | None
) -> None:
    """BadInput now, before the answer is printed, when the export could not be written: a
    server's report holds no serving config of benchbox's (the server ran its own), and Triton
    ships the winner's ONNX file, which must exist and be the one measured."""
    kind = parse_choice(ExportKind, kind, "export format")
    if report.target is not None:
        raise BadInput(
            f"the report measured a server ({report.target.url}) as it was configured; its "
            f"serving settings are the server's own, so there is no {kind} config to export",
            "sweep the ONNX file the server serves in-process (`benchbox sweep MODEL.onnx`) and "
            "export that report; --model does not make a server's report exportable",
        )
    if rec.winner is not None and kind == ExportKind.TRITON:
        resolve_model_path(report, model_path, resolve_cell(report, rec.winner))


def export_recommended(
    kind: str,
    report: schema.Report,
    rec: schema.Recommendation,
    out_dir: str | Path,
    model_path: str | Path | None = None,
    storage_uri: str | None = None,
    name: str | None = None,
) -> list[Path]:
    """Write the recommendation's winner as `kind`: Triton ships the model file, KServe sizes the
    fleet and prices it; `name` names the model or InferenceService."""
    kind = parse_choice(ExportKind, kind, "export format")
    if kind == ExportKind.TRITON:
        return export(kind, report, rec.winner, out_dir, model_name=name, model_path=model_path)
    if kind == ExportKind.KSERVE:
        return export(
            kind,
            report,
            rec.winner,
            out_dir,
            fleet=rec.fleet,
            profile=report.profile,
            model_uri=storage_uri,
            name=name,
        )
    return export(kind, report, rec.winner, out_dir)
