"""The server-side split: Triton's statistics extension, diffed over a measured interval.

`GET /v2/models/NAME/stats` (or gRPC ModelStatistics) holds cumulative counters: per model
version, the request count and time of `success`, `queue`, `compute_input`, `compute_infer` and
`compute_output`, `inference_count` (items) and `execution_count` (batches run), and per batch
size the executions at that size (`batch_stats`). The difference of two snapshots covers what
the server did in between; divided by the requests it is a mean per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchbox.schema import ServerSplit

PHASES = ("success", "queue", "compute_input", "compute_infer", "compute_output")


@dataclass(frozen=True)
class Counters:
    """One snapshot of a model's cumulative statistics: (count, ns) per phase."""

    phases: dict[str, tuple[int, int]]
    inferences: int
    executions: int
    batches: dict[int, int]  # batch size -> executions (compute_infer count)


def _int(x: Any) -> int:
    try:
        return int(x)
    except (TypeError, ValueError):
        return 0


def counters(data: Any, version: str = "") -> Counters | None:
    """The summed counters of the model's versions (or of one version) in a stats answer."""
    if not isinstance(data, dict) or not isinstance(data.get("model_stats"), list):
        return None
    phases = {p: [0, 0] for p in PHASES}
    inferences = executions = 0
    batches: dict[int, int] = {}
    for entry in data["model_stats"]:
        if not isinstance(entry, dict) or (version and str(entry.get("version")) != version):
            continue
        stats = entry.get("inference_stats") or {}
        for p in PHASES:
            d = stats.get(p) or {}
            phases[p][0] += _int(d.get("count"))
            phases[p][1] += _int(d.get("ns"))
        inferences += _int(entry.get("inference_count"))
        executions += _int(entry.get("execution_count"))
        for b in entry.get("batch_stats") or ():
            size = _int(b.get("batch_size"))
            batches[size] = batches.get(size, 0) + _int((b.get("compute_infer") or {}).get("count"))
    return Counters({p: (c, ns) for p, (c, ns) in phases.items()}, inferences, executions, batches)


def diff(
    before: Counters, after: Counters, client_mean_ms: float | None = None
) -> ServerSplit | None:
    """Means per request over the interval; None when the server counted no request in it.

    `client_mean_ms` is the client's mean from send to answer; what it holds beyond queue and
    compute is the network plus the client (and the server's own request handling).
    """
    d = {
        p: (after.phases[p][0] - before.phases[p][0], after.phases[p][1] - before.phases[p][1])
        for p in PHASES
    }
    requests = d["success"][0]
    if requests <= 0:
        return None

    def per_request_ms(phase: str) -> float:
        return d[phase][1] / requests / 1e6

    queue = per_request_ms("queue")
    parts = [per_request_ms(p) for p in ("compute_input", "compute_infer", "compute_output")]
    compute = sum(parts)
    batches = {
        size: after.batches.get(size, 0) - before.batches.get(size, 0)
        for size in sorted(after.batches)
        if after.batches.get(size, 0) - before.batches.get(size, 0) > 0
    }
    return ServerSplit(
        requests=requests,
        queue_ms=queue,
        compute_ms=compute,
        compute_input_ms=parts[0],
        compute_infer_ms=parts[1],
        compute_output_ms=parts[2],
        server_ms=per_request_ms("success"),
        network_client_ms=(client_mean_ms - queue - compute) if client_mean_ms else None,
        inferences=after.inferences - before.inferences,
        executions=after.executions - before.executions,
        batch_sizes=batches,
    )
