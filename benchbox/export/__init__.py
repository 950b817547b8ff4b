"""Exports of a measured serving config in the formats servers read: Triton, onnxruntime, KServe.

`export(kind, report, cell, out_dir)` dispatches; each writer returns the paths it wrote. The
helpers the writers share (output folder, model file and tensors, provenance) are in `common`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchbox import schema
from benchbox.errors import BadInput
from benchbox.export.kserve import export_kserve
from benchbox.export.onnxruntime import export_onnxruntime
from benchbox.export.triton import export_triton

KINDS = ("triton", "onnxruntime", "kserve")


def export(
    kind: str, report: schema.Report, cell: schema.Cell | str, out_dir: str | Path, **kw: Any
) -> list[Path]:
    """Write `cell`'s serving config as `kind` (triton, onnxruntime, kserve) under `out_dir`."""
    if kind not in KINDS:
        raise BadInput(f"unknown export format {kind!r}", "choose one of: " + ", ".join(KINDS))
    cell = resolve_cell(report, cell)
    if kind == "triton":
        return export_triton(report, cell, out_dir, **kw)
    if kind == "onnxruntime":
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
