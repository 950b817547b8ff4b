"""onnxruntime session settings for a measured cell, as JSON, and a session built back from them.

The JSON holds what `onnxruntime.InferenceSession` takes (providers, provider_options and the
SessionOptions the measurement used) plus how the cell served: batch size, instances (independent
sessions) and dynamic batching. Format history: benchbox.onnxruntime/1 (0.1.0).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchbox import schema
from benchbox.backends.onnxruntime import provider_list
from benchbox.devices import parse_device
from benchbox.errors import BadInput
from benchbox.export.common import prepare_out_dir, provenance
from benchbox.files import require_regular_file
from benchbox.store import atomic_write_text

FORMAT = "benchbox.onnxruntime/1"
# ServingConfig.graph_optimization -> onnxruntime.GraphOptimizationLevel member name.
GRAPH_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


def onnxruntime_settings(report: schema.Report, cell: schema.Cell) -> dict[str, Any]:
    """The export as a dict (what export_onnxruntime writes)."""
    cfg = cell.config
    spec = parse_device(cfg.device)
    if spec.runtime != "onnxruntime":
        raise BadInput(
            f"{cell.id} ran on the {spec.runtime} runtime, not onnxruntime: "
            "an onnxruntime export would not reproduce it",
            "export a cell measured on an onnxruntime device (cpu, cuda:0, openvino, ...)",
        )
    providers: list[str] = []
    provider_options: list[dict[str, str]] = []
    # The same providers, in the same order, as the measurement opened (benchbox.backends).
    for entry in provider_list(spec):
        name, options = entry if isinstance(entry, tuple) else (entry, {})
        providers.append(name)
        provider_options.append({k: str(v) for k, v in options.items()})
    db = cfg.dynamic_batching
    return {
        "format": FORMAT,
        "device": cfg.device,
        "providers": providers,
        "provider_options": provider_options,
        "session_options": {
            "intra_op_num_threads": cfg.intra_op_threads,
            "inter_op_num_threads": 1,
            "graph_optimization_level": GRAPH_LEVELS.get(cfg.graph_optimization, "ORT_ENABLE_ALL"),
            "execution_mode": "ORT_SEQUENTIAL",
        },
        "batch_size": db.max_batch if db is not None else cfg.batch_size,
        "instances": cfg.instances,
        "dynamic_batching": None
        if db is None
        else {"max_batch": db.max_batch, "delay_ms": db.delay_ms, "preferred": list(db.preferred)},
        "io_binding": cfg.io_binding,
        "measured": provenance(report, cell),
    }


def export_onnxruntime(report: schema.Report, cell: schema.Cell, out_dir: str | Path) -> Path:
    """Write `<out>/onnxruntime.json` with the cell's providers and session options."""
    settings = onnxruntime_settings(report, cell)
    path = prepare_out_dir(out_dir) / "onnxruntime.json"
    return atomic_write_text(path, json.dumps(settings, indent=2) + "\n")


def load_settings(json_path: str | Path) -> dict[str, Any]:
    """Read and check an onnxruntime export; BadInput when it is not one."""
    path = Path(json_path)
    if path.exists():
        require_regular_file(path, "onnxruntime export")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"cannot read {path}: {exc}") from None
    except RecursionError:
        raise BadInput(f"{path} is nested too deeply to be an onnxruntime export") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BadInput(
            f"{path} is not a benchbox onnxruntime export (format is "
            f"{data.get('format') if isinstance(data, dict) else None!r})",
            "write one with `benchbox recommend ... --export onnxruntime --out DIR`",
        )
    return data


def session_options(settings: dict[str, Any]):
    """onnxruntime.SessionOptions from an export's `session_options`."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    s = settings["session_options"]
    so.intra_op_num_threads = int(s["intra_op_num_threads"])
    so.inter_op_num_threads = int(s["inter_op_num_threads"])
    try:
        so.graph_optimization_level = getattr(
            ort.GraphOptimizationLevel, s["graph_optimization_level"]
        )
        so.execution_mode = getattr(ort.ExecutionMode, s["execution_mode"])
    except AttributeError as exc:
        raise BadInput(f"unknown onnxruntime setting in the export: {exc}") from None
    return so


def session_from_export(json_path: str | Path, model_path: str | Path):
    """An onnxruntime.InferenceSession configured as the export says; BadInput if a provider is
    missing from this onnxruntime build (never a silent fall back to CPU)."""
    import onnxruntime as ort

    settings = load_settings(json_path)
    wanted = settings["providers"][0]
    if wanted not in ort.get_available_providers():
        raise BadInput(
            f"the export runs on {wanted}, which this onnxruntime build lacks",
            f"install an onnxruntime build with {wanted} (see `benchbox devices`)",
        )
    if not Path(model_path).is_file():
        raise BadInput(f"the model file {model_path} does not exist")
    return ort.InferenceSession(
        str(model_path),
        sess_options=session_options(settings),
        providers=list(zip(settings["providers"], settings["provider_options"], strict=True)),
    )
