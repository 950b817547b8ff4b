"""How every report view writes figures and labels: numbers, durations, memory, CIs, configs.

The terminal views (render, recommend_view), the HTML page and its plots, the Markdown table and
the comparison tables all format through this module, so a label reads the same everywhere and
says the truth (the CI's real confidence level; memory in MiB/GiB, the binary units benchbox
measures in: `rss_mb` and `gpu_mem_mb` are bytes / 2**20, `memory_gb` is bytes / 2**30).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from benchbox.parse import percentile_label
from benchbox.schema import Cell, Report, ServerSplit, TargetInfo

__all__ = [
    "MISSING",
    "cell_roles",
    "ci_label",
    "common_confidence",
    "config_label",
    "fmt_duration_s",
    "fmt_gib",
    "fmt_mib",
    "fmt_ms",
    "fmt_ms_given",
    "fmt_ms_group",
    "fmt_ms_range",
    "fmt_ms_text",
    "fmt_number",
    "load_label",
    "load_text",
    "percentile_label",
    "present",
    "report_confidence",
    "server_split_text",
    "target_text",
]

MISSING = "—"  # what the terminal tables show for a figure that was not measured


def present(value: Any) -> bool:
    """False for None, NaN and pandas' NA: the values a table leaves blank."""
    if value is None or type(value).__name__ == "NAType":
        return False
    return not (isinstance(value, float) and math.isnan(value))


def fmt_number(value: Any, digits: int | None = None, missing: str = "") -> str:
    """A number as people read it: 1,234 / 12.3 / 0.123 (3 significant digits below 1000).

    With `digits`, a fixed number of decimals with thousands separators (1,974.4), the way the
    terminal tables line up figures. `missing` is the text for None or NaN.
    """
    if not present(value):
        return missing
    x = float(value)
    if digits is not None:
        return f"{x:,.{digits}f}"
    if x == int(x) and abs(x) < 1e15 and not isinstance(value, float):
        return f"{int(x):,}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    if x == 0:
        return "0"
    return f"{x:#.3g}"


def _ms_unit(value_ms: float) -> tuple[float, str, int]:
    """(scale, unit, decimals) for a latency of this size: µs below 0.1 ms, s from 1000 ms."""
    size = abs(value_ms)
    if size < 0.1:
        return 1000.0, "µs", 1
    if size < 10:
        return 1.0, "ms", 3
    if size < 1000:
        return 1.0, "ms", 1
    return 0.001, "s", 2


def fmt_ms(value: float | None) -> str:
    """A latency in milliseconds with a sensible unit and number of digits (µs, ms, s)."""
    if not present(value):
        return MISSING
    scale, unit, decimals = _ms_unit(value)
    return f"{value * scale:.{decimals}f} {unit}"


def fmt_ms_group(*values: float | None) -> tuple[str, ...]:
    """Latencies that make one figure (mean ± σ, min … max, a CI, before → after) in one unit:
    the one the largest reads best in (`0.055 ms ± 0.345 ms`, never `55.3 µs ± 0.345 ms`)."""
    known = [abs(v) for v in values if present(v)]
    if not known:
        return tuple(MISSING for _ in values)
    scale, unit, decimals = _ms_unit(max(known))
    return tuple(f"{v * scale:.{decimals}f} {unit}" if present(v) else MISSING for v in values)


def fmt_ms_range(lo: float | None, hi: float | None, sep: str = " … ") -> str:
    """`6.133 ms … 6.709 ms`: a CI or a range, both ends in one unit."""
    a, b = fmt_ms_group(lo, hi)
    return f"{a}{sep}{b}"


def fmt_ms_text(value_ms: float, unit: str = " ms", versus: float | None = None) -> str:
    """A measured latency in a sentence, always in ms: 3 significant digits, whole ms from
    1000 ms, more digits when needed to tell it from `versus` (`14.3 ms`, `1234 ms`); `unit=""`
    for the first end of a range (`14.1–17.8 ms`)."""
    for digits in range(3, 8):
        text = f"{value_ms:.{digits}g}" if abs(value_ms) < 10**digits else f"{value_ms:.0f}"
        if versus is None or float(text) != versus:
            break
    return text + unit


def fmt_ms_given(value_ms: float, unit: str = " ms") -> str:
    """A latency someone set (a target, a delay, a threshold), exactly as given: `50 ms`."""
    return f"{value_ms:g}{unit}"


def fmt_duration_s(seconds: float | None) -> str:
    """A wall-clock span to the second: `45s`, `3m05s`, `1h02m` (an ETA, a sweep's size)."""
    if not present(seconds):
        return MISSING
    s = max(int(round(seconds)), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def fmt_mib(value_mib: float | None, missing: str = MISSING) -> str:
    """Memory measured in MiB (bytes / 2**20): `1,234 MiB`."""
    return f"{value_mib:,.0f} MiB" if present(value_mib) else missing


def fmt_gib(value_gib: float | None, missing: str = MISSING) -> str:
    """Memory measured in GiB (bytes / 2**30): `23.5 GiB`."""
    return f"{value_gib:,.1f} GiB" if present(value_gib) else missing


def ci_label(confidence: float | None) -> str:
    """`95% CI`, `99% CI`, `99.9% CI`: the interval's real level; `CI` when it is unknown."""
    if confidence is None or not 0 < confidence < 1:
        return "CI"
    return f"{round(confidence * 100, 6):g}% CI"


def common_confidence(levels: Iterable[float | None]) -> float | None:
    """The one confidence level the known `levels` share, or None when none is known or they
    differ (a column then says `CI` rather than a level that is true of only some rows)."""
    known = {level for level in levels if level is not None}
    return known.pop() if len(known) == 1 else None


def report_confidence(report: Report) -> float | None:
    """The confidence level of the report's CIs (every measured cell's), or None."""
    return common_confidence(c.result.confidence for c in report.cells if c.result is not None)


def config_label(cell: Cell) -> str:
    """`cpu t2 i1 b8`, with dynamic batching when set (`db16/2ms`)."""
    c = cell.config
    batch = (
        f"db{c.dynamic_batching.max_batch}/{c.dynamic_batching.delay_ms:g}ms"
        if c.dynamic_batching
        else f"b{c.batch_size}"
    )
    label = f"{c.device} t{c.intra_op_threads} i{c.instances} {batch}"
    if c.precision != "fp32":  # (precision) fp32 labels stay as they were
        label += f" {c.precision}"
    return label


def accuracy_label(cell: Cell) -> str:
    """A cell's accuracy against the fp32 reference, compact: the worst output's cosine and
    top-1 agreement (`cos 0.99954 top1 95.9%`); `—` when not measured."""
    acc = cell.accuracy
    if acc is None or not acc.outputs:
        return MISSING if acc is None or not acc.error else "error"
    worst = min(acc.outputs, key=lambda o: o.cosine)
    text = f"cos {worst.cosine:.5f}"
    rated = [o for o in acc.outputs if o.top1_count]
    if rated:
        low = min(rated, key=lambda o: o.top1_agree / o.top1_count)
        text += f" top1 {100 * low.top1_agree / low.top1_count:.1f}%"
    return text + (" ⚑" if acc.flag else "")


def load_label(cell: Cell) -> str:
    """The load, compact: `closed c=4`, `open 200/s c=8`, `offline c=2`, `open peak 850/s`."""
    load = cell.load
    if cell.result is not None and cell.result.peak_rate_rps is not None:
        return f"open peak {cell.result.peak_rate_rps:,.0f}/s"
    if load.kind == "open" and load.profile:
        return f"open {load.profile} c={load.concurrency}"
    if load.kind == "trace" and load.trace is not None:
        return f"trace {load.trace.requests} req x{load.trace.speed:g} c={load.concurrency}"
    if load.kind == "open" and load.rate_rps is not None:
        return f"open {load.rate_rps:g}/s c={load.concurrency}"
    if load.kind == "open":
        return f"open peak c={load.concurrency}"
    return f"{load.kind} c={load.concurrency}"


def load_text(cell: Cell) -> str:
    """The load level in words, for a page: `concurrency 4`, `200 req/s`."""
    if cell.load.kind == "open" and cell.load.profile:
        return f"rate profile {cell.load.profile}"
    if cell.load.kind == "open":
        return f"{cell.load.rate_rps:g} req/s"
    if cell.load.kind == "trace" and cell.load.trace is not None:
        return f"trace at {cell.load.trace.speed:g}x ({cell.load.rate_rps or 0:.0f} req/s mean)"
    return f"concurrency {cell.load.concurrency}"


def cell_roles(report: Report) -> dict[str, str]:
    """cell id -> 'winner' / 'runner-up' / 'pareto' from the report's recommendation."""
    rec = report.recommendation
    roles: dict[str, str] = {}
    if rec is None:
        return roles
    for cid in rec.pareto:
        roles[cid] = "pareto"
    for cid in rec.runners_up:
        roles[cid] = "runner-up"
    if rec.winner:
        roles[rec.winner] = "winner"
    return roles


def server_split_text(split: ServerSplit) -> str:
    """A server's split of a request's time (means per request), in one line."""
    text = f"queue {fmt_ms(split.queue_ms)} + compute {fmt_ms(split.compute_ms)}"
    if split.network_client_ms is not None:
        text += f", network + client {fmt_ms(split.network_client_ms)}"
    if split.batch_sizes:
        batches = ", ".join(f"{b}×{n}" for b, n in sorted(split.batch_sizes.items()))
        text += f"; batches formed {batches}"
        if split.executions:
            text += f" (mean {split.inferences / split.executions:.2g})"
    return text


def target_text(t: TargetInfo) -> str:
    """A remote server in one line: name, version, protocol and wire format, URL, statistics."""
    name = " ".join(x for x in (t.server_name, t.server_version) if x) or "server"
    split = "statistics read" if t.statistics else "no statistics"
    return f"{name}  {t.protocol} ({t.wire})  {t.url}  {split}, {len(t.extensions)} extensions"


# A line, or the end of one, that only says where a C++ runtime raised (OpenVINO, onnxruntime):
# "Exception from src/inference/src/cpp/core.cpp:84:", "Check 'x' failed at src/a.cpp:12:".
_WHERE_RAISED = re.compile(r"(Exception from \S+:\d+:|Check '.*' failed at \S+:\d+:)\s*$")


def reason_line(reason: str | None) -> str:
    """The informative line of a cell's reason, for the screen (the report keeps it whole): the
    first line, with a runtime's bare "raised at file:line" markers replaced by the first line
    that says what went wrong."""
    lines = [line.strip() for line in (reason or "").splitlines() if line.strip()]
    if not lines:
        return reason or ""
    head = _WHERE_RAISED.sub("", lines[0]).rstrip()
    if head == lines[0] and len(lines) == 1:
        return head
    cause = next((line for line in lines[1:] if not _WHERE_RAISED.fullmatch(line)), None)
    if cause is None or (head == lines[0] and not head.endswith(":")):
        return head
    return f"{head} {cause}" if head else cause
