"""A KServe `InferenceService` (serving.kserve.io/v1beta1) for a measured cell, as YAML.

`spec.predictor.model` names the ONNX format (the runtime is left to KServe unless given, e.g.
`kserve-tritonserver`), the storage URI and the container resources: CPU from threads x instances,
memory from the measured RSS with headroom, one GPU for GPU devices. Replicas come from the fleet
sizing (min = replicas that carry the target rate at the headroom, max = twice that for bursts),
and the autoscaler targets the load the cell was measured at (concurrency, or rps for open loop).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml

from benchbox import schema
from benchbox.devices import parse_device
from benchbox.errors import BadInput
from benchbox.export.common import prepare_out_dir, provenance, safe_name
from benchbox.store import atomic_write_text

API_VERSION = "serving.kserve.io/v1beta1"
# KServe's InferenceService name rule (a DNS-1035 label); kept short so the names KServe derives
# from it (`<name>-predictor-00001-deployment`) stay within Kubernetes' 63 characters.
NAME_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
NAME_MAX = 40
MEMORY_REQUEST_FACTOR = 1.25  # measured RSS x this, rounded up to 64 Mi
MEMORY_LIMIT_FACTOR = 1.5
MEMORY_MIN_MI = 256
BURST_FACTOR = 2  # maxReplicas = minReplicas x this
_GPU_RESOURCE = {
    "cuda": "nvidia.com/gpu",
    "tensorrt": "nvidia.com/gpu",
    "rocm": "amd.com/gpu",
    "migraphx": "amd.com/gpu",
    "openvino": "gpu.intel.com/i915",
}


def export_kserve(
    report: schema.Report,
    cell: schema.Cell,
    out_dir: str | Path,
    fleet: schema.Fleet | None = None,
    profile: Any = None,
    model_uri: str | None = None,
    name: str | None = None,
    runtime: str | None = None,
) -> Path:
    """Write `<out>/<name>.yaml`, an InferenceService serving `cell`'s configuration."""
    doc, notes = inference_service(report, cell, fleet, profile, model_uri, name, runtime)
    header = [f"# {k}: {v}" for k, v in provenance(report, cell).items() if v not in (None, "")]
    header = ["# Written by benchbox from a measured cell.", *header, *(f"# {n}" for n in notes)]
    text = "\n".join(header) + "\n" + yaml.safe_dump(doc, sort_keys=False)
    path = prepare_out_dir(out_dir) / f"{doc['metadata']['name']}.yaml"
    return atomic_write_text(path, text)


def inference_service(
    report: schema.Report,
    cell: schema.Cell,
    fleet: schema.Fleet | None = None,
    profile: Any = None,
    model_uri: str | None = None,
    name: str | None = None,
    runtime: str | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The InferenceService as plain data, and notes for the file's header."""
    notes: list[str] = []
    name = _name(name, report)
    cfg, r = cell.config, cell.result
    spec = parse_device(cfg.device)
    if spec.kind in ("dml", "coreml"):
        raise BadInput(
            f"{spec.name} runs on Windows or macOS, not on the Linux nodes KServe schedules",
            "export a cpu or cuda cell for KServe, or use --export onnxruntime",
        )

    cpu = cfg.intra_op_threads * cfg.instances
    requests: dict[str, str] = {"cpu": str(cpu)}
    limits: dict[str, str] = {"cpu": str(cpu)}
    rss = r.rss_mb if r is not None else None
    if rss is not None and rss > 0:
        requests["memory"] = f"{_mi(rss * MEMORY_REQUEST_FACTOR)}Mi"
        limits["memory"] = f"{_mi(rss * MEMORY_LIMIT_FACTOR)}Mi"
    else:
        requests["memory"], limits["memory"] = "1Gi", "2Gi"
        notes.append("memory was not measured: 1Gi/2Gi are guesses, adjust them")
    gpu = _GPU_RESOURCE.get(spec.kind) if spec.is_gpu else None
    if gpu:
        requests[gpu] = limits[gpu] = "1"

    if model_uri is None:
        model_uri = f"pvc://benchbox-models/{name}"
        notes.append(
            f"storageUri {model_uri} is a placeholder: upload the model (for "
            "kserve-tritonserver, the repository from --export triton) and set it"
        )

    model: dict[str, Any] = {"modelFormat": {"name": "onnx"}}
    if runtime:
        model["runtime"] = runtime
        if "triton" in runtime:
            model["protocolVersion"] = "v2"
    model["storageUri"] = model_uri
    model["resources"] = {"requests": requests, "limits": limits}

    predictor: dict[str, Any] = {}
    if fleet is not None:
        predictor["minReplicas"] = max(1, int(fleet.replicas))
        predictor["maxReplicas"] = max(1, int(fleet.replicas)) * BURST_FACTOR
        notes.append(
            f"replicas: {fleet.replicas} carry {fleet.qps:g} qps at {fleet.headroom:.0%} of the "
            f"measured throughput; up to {predictor['maxReplicas']} for bursts"
        )
    else:
        predictor["minReplicas"] = 1
    metric, target = _scale_target(cell.load)
    predictor["scaleMetric"] = metric
    predictor["scaleTarget"] = target
    predictor["model"] = model

    annotations = {"benchbox.dev/cell": cell.id}
    if r is not None:
        annotations["benchbox.dev/p99-ms"] = f"{r.latency_ms.p99:.4g}"
        annotations["benchbox.dev/throughput-ips"] = f"{r.throughput_ips:.4g}"
    prof = _profile_fields(profile if profile is not None else report.profile)
    if prof.get("name"):
        annotations["benchbox.dev/profile"] = str(prof["name"])
    if prof.get("price_per_hour_usd") is not None:
        annotations["benchbox.dev/usd-per-hour"] = f"{float(prof['price_per_hour_usd']):g}"
    doc = {
        "apiVersion": API_VERSION,
        "kind": "InferenceService",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"predictor": predictor},
    }
    return doc, notes


def _name(name: str | None, report: schema.Report) -> str:
    if name is not None:
        if not NAME_RE.match(name) or len(name) > NAME_MAX:
            raise BadInput(
                f"InferenceService name {name!r} is not valid",
                f"use lower-case letters, digits and '-', start with a letter, "
                f"at most {NAME_MAX} characters",
            )
        return name
    stem = Path(report.model.path).stem if report.model.path else "model"
    return safe_name(stem)[:NAME_MAX].rstrip("-") or "model"


def _scale_target(load: schema.Load) -> tuple[str, int]:
    """What the autoscaler watches: the concurrency (or the rate) the cell met the target at."""
    if load.kind == "open" and load.rate_rps:
        return "rps", max(1, math.floor(load.rate_rps))
    return "concurrency", max(1, int(load.concurrency or 1))


def _mi(mb: float) -> int:
    return max(MEMORY_MIN_MI, int(math.ceil(mb / 64.0)) * 64)


def _profile_fields(profile: Any) -> dict[str, Any]:
    if profile is None:
        return {}
    if isinstance(profile, dict):
        return profile
    return {
        "name": getattr(profile, "name", None),
        "price_per_hour_usd": getattr(profile, "price_per_hour_usd", None),
    }
