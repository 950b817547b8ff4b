"""A report's cells as a flat table (units in column names); CSV, Parquet, Markdown, HTML export."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


from benchbox.errors import BadInput
from benchbox.files import os_reason
from benchbox.format import cell_roles, ci_label, fmt_number, present, report_confidence
from benchbox.kinds import TableFormat  # noqa: F401 (re-exported)
from benchbox.parse import parse_choice
from benchbox.report.html import render_html
from benchbox.schema import PERCENTILE_KEYS, Cell, Load, Report, ServingConfig
from benchbox.store import atomic_write_text

# The columns of the Markdown table (a pull-request comment should fit a screen).
MD_COLUMNS = (
    ("id", "cell"),
    ("role", "role"),
    ("status", "status"),
    ("throughput_ips", "throughput (inf/s)"),
    ("p50_ms", "p50 (ms)"),
    ("p99_ms", "p99 (ms)"),
    ("p99_ci_ms", "p99 {ci} (ms)"),  # the level is the report's: ci_label(report_confidence)
    ("cost_usd_per_million", "USD / million"),
    ("power_w", "power (W)"),
    ("rss_mb", "RSS (MiB)"),
    ("reason", "reason"),
)


def cell_row(cell: Cell, roles: dict[str, str]) -> dict[str, Any]:
    """One cell as a flat dict: config, load, status, then the measured values."""
    cfg, load, res = cell.config, cell.load, cell.result
    db = cfg.dynamic_batching
    row: dict[str, Any] = {
        "id": cell.id,
        "role": roles.get(cell.id),
        "device": cfg.device,
        "batch_size": cfg.batch_size,
        "intra_op_threads": cfg.intra_op_threads,
        "instances": cfg.instances,
        "dynamic_batching_max_batch": db.max_batch if db else None,
        "dynamic_batching_delay_ms": db.delay_ms if db else None,
        "graph_optimization": cfg.graph_optimization,
        "io_binding": cfg.io_binding,
        "load_kind": load.kind,
        "concurrency": load.concurrency,
        "rate_rps": load.rate_rps,
        "distribution": load.distribution,
        "status": cell.status,
        "reason": cell.reason,
        "warnings": "; ".join(map(str, cell.warnings)) or None,
    }
    lat = res.latency_ms if res else None
    cis = (res.latency_ci_ms if res else None) or {}
    delay = res.issue_delay_ms if res else None
    row.update(
        {
            "requests": res.requests if res else None,
            "inferences": res.inferences if res else None,
            "duration_s": res.duration_s if res else None,
            "throughput_ips": res.throughput_ips if res else None,
            "requests_per_s": res.requests_per_s if res else None,
            "achieved_rate_rps": res.achieved_rate_rps if res else None,
            "mean_ms": lat.mean if lat else None,
            "std_ms": lat.std if lat else None,
            "min_ms": lat.min if lat else None,
        }
    )
    for key in PERCENTILE_KEYS:
        row[f"{key}_ms"] = getattr(lat, key) if lat else None
    row["max_ms"] = lat.max if lat else None
    for key in PERCENTILE_KEYS:
        ci = cis.get(key)
        row[f"{key}_ci_lo_ms"] = ci[0] if ci else None
        row[f"{key}_ci_hi_ms"] = ci[1] if ci else None
    for key in ("p50", "p99", "max"):
        row[f"issue_delay_{key}_ms"] = getattr(delay, key) if delay else None
    for name in (
        "cpu_util_pct",
        "rss_mb",
        "gpu_mem_mb",
        "gpu_util_pct",
        "power_w",
        "power_above_idle_w",
        "energy_j_per_inference",
        "power_source",
        "cost_usd_per_million",
        "peak_rate_rps",
        "windows",
        "trials",
        "ci_level",
    ):
        row[name] = getattr(res, name) if res else None
    tci = res.throughput_ci_ips if res else None
    row["throughput_ci_lo_ips"] = tci[0] if tci else None
    row["throughput_ci_hi_ips"] = tci[1] if tci else None
    row.update(accuracy_columns(cell))
    return row


def accuracy_columns(cell: Cell) -> dict[str, Any]:
    """(precision) The variant and its accuracy against the fp32 reference, worst output."""
    acc = cell.accuracy
    outs = acc.outputs if acc is not None else ()
    rated = [o for o in outs if o.top1_count]
    return {
        "precision": cell.config.precision,
        "accuracy_cosine": min((o.cosine for o in outs), default=None),
        "accuracy_max_abs_error": max((o.max_abs_error for o in outs), default=None),
        "accuracy_top1": min((o.top1_agree / o.top1_count for o in rated), default=None),
        "accuracy_flag": acc.flag if acc is not None else None,
    }


def cells_frame(report: Report) -> pd.DataFrame:
    """One row per cell, flattened; units in the column names (p99_ms, throughput_ips, ...)."""
    import pandas as pd

    roles = cell_roles(report)
    rows = [cell_row(c, roles) for c in report.cells]
    columns = list(cell_row(_EMPTY_CELL, {}).keys())
    frame = pd.DataFrame(rows, columns=columns)
    for col in columns:
        if col in _TEXT_COLUMNS:
            frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
        elif col in _INT_COLUMNS:
            frame[col] = frame[col].astype("Int64")
        elif col != "io_binding":
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    return frame


_TEXT_COLUMNS = {
    "id",
    "role",
    "device",
    "graph_optimization",
    "load_kind",
    "distribution",
    "status",
    "reason",
    "warnings",
    "power_source",
    "ci_level",
    "precision",
    "accuracy_flag",
}
_INT_COLUMNS = {
    "batch_size",
    "intra_op_threads",
    "instances",
    "dynamic_batching_max_batch",
    "concurrency",
    "requests",
    "inferences",
    "windows",
    "trials",
}


_EMPTY_CELL = Cell(id="", config=ServingConfig(), load=Load())


# ---------------------------------------------------------------- exports


def default_out_path(report_path: str | Path, fmt: str) -> Path:
    """Next to the report, with the format's suffix: reports/x.json -> reports/x.csv."""
    return Path(report_path).with_suffix("." + check_format(fmt))


def check_format(fmt: str) -> TableFormat:
    """The format, or BadInput listing the ones there are."""
    return parse_choice(TableFormat, fmt, "export format")


def export_table(report: Report, fmt: str, out_path: str | Path) -> Path:
    """Write the report as csv, parquet, md (GitHub table) or html; return the path written."""
    fmt = check_format(fmt)
    out_path = Path(out_path)
    if fmt == "csv":
        return atomic_write_text(out_path, cells_frame(report).to_csv(index=False))
    if fmt == "md":
        return atomic_write_text(out_path, to_markdown(report))
    if fmt == "html":
        return atomic_write_text(out_path, render_html(report))
    return _write_parquet(cells_frame(report), out_path)


def _write_parquet(frame: pd.DataFrame, out_path: Path) -> Path:
    try:
        import pyarrow.parquet  # noqa: F401 (what to_parquet writes with)
    except ImportError:
        raise BadInput(
            "Parquet export needs pyarrow, which is not installed",
            "pip install 'benchbox[parquet]'",
        ) from None
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(buf.getvalue())
        tmp.replace(out_path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise BadInput(f"cannot write {out_path}: {os_reason(exc)}") from None
    return out_path


def to_markdown(report: Report) -> str:
    """A GitHub-flavoured Markdown table of the cells (columns with no values are left out)."""
    frame = cells_frame(report)
    rows = []
    for rec in frame.to_dict("records"):
        lo, hi = rec["p99_ci_lo_ms"], rec["p99_ci_hi_ms"]
        rec["p99_ci_ms"] = f"{fmt_number(lo)} – {fmt_number(hi)}" if present(lo) else None
        rows.append(rec)
    ci = ci_label(report_confidence(report))
    titles = [(k, t.format(ci=ci)) for k, t in MD_COLUMNS]
    columns = [(k, t) for k, t in titles if any(present(r[k]) for r in rows)]
    numeric = {k for k, _ in columns if k not in _TEXT_COLUMNS and k != "p99_ci_ms"}
    lines = [
        "| " + " | ".join(title for _, title in columns) + " |",
        "| " + " | ".join("---:" if k in numeric else "---" for k, _ in columns) + " |",
    ]
    for r in rows:
        cells = [_md_cell(r[k], k in numeric, k == "id") for k, _ in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _md_cell(value: Any, numeric: bool, code: bool) -> str:
    if not present(value):
        return ""
    text = fmt_number(value) if numeric else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return f"`{text}`" if code else text
