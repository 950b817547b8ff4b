"""`benchbox verify` output: the prediction beside the measurement, as text lines or JSON."""

from __future__ import annotations

from typing import Any

from benchbox.format import fmt_ms_given, fmt_ms_text, percentile_label, server_split_text
from benchbox.schema import ServerSplit, finite, to_dict
from benchbox.verify import Figure, Verification
from benchbox.warning_kinds import WarningKind


def _ci(f: Figure) -> str:
    return (
        f"CI {fmt_ms_text(f.ci_ms[0], '')}–{fmt_ms_text(f.ci_ms[1])}"
        if f.ci_ms
        else "no CI: too few requests"
    )


def split_line(split: ServerSplit | None, reason: str | None) -> str:
    """The server-side split in one line, or why it is unavailable."""
    if split is None:
        return f"server-side split unavailable: {reason or 'no request was counted'}"
    return f"server side, mean per request: {server_split_text(split)}"


def lines(v: Verification, split_reason: str | None = None) -> list[str]:
    """What `benchbox verify` prints."""
    p = percentile_label(v.target.percentile)
    pred = v.predicted
    head = f"predicted {p} ≤ {fmt_ms_text(pred.bound_ms)} ({_ci(pred)})"
    out = [f"cell {v.cell_id} on {v.url}"]
    out += [f"note: {n}" for n in v.notes]
    cell = v.measured_cell
    if v.measured is None:
        out.append(f"{head}; the server's cell {cell.status}: {cell.reason}")
        out.append(f"does not meet the target ({p} ≤ {fmt_ms_given(v.target.value_ms)})")
        return out
    m, gap = v.measured, v.gap_ms or 0.0
    side = "over" if gap > 0 else "under"
    verdict = "meets the target" if v.meets_target else "does not meet the target"
    out.append(
        f"{head}, measured {fmt_ms_text(m.value_ms)} ({_ci(m)}) on {v.server}: "
        f"{gap:+.2g} ms {side} the prediction; {verdict} ({p} ≤ {fmt_ms_given(v.target.value_ms)}"
        + (f", held to its upper bound {fmt_ms_text(m.bound_ms)})" if m.ci_ms else ")")
    )
    out.append(split_line(v.split, split_reason))
    out += [f"warning: {w}" for w in cell.warnings if w.kind != WarningKind.NO_SERVER_SPLIT]
    return out


def _figure(f: Figure | None) -> dict[str, Any] | None:
    if f is None:
        return None
    return {
        "value_ms": f.value_ms,
        "ci_ms": list(f.ci_ms) if f.ci_ms else None,
        "bound_ms": f.bound_ms,
        "point_estimate": f.point_estimate,
    }


def as_json(v: Verification) -> dict[str, Any]:
    """`benchbox verify --json`: predicted, measured, meets_target and what they rest on."""
    r = v.measured_cell.result
    measured = _figure(v.measured)
    if measured is not None and r is not None:
        measured.update(
            requests=r.requests,
            errors=r.errors,
            error_rate=r.error_rate,
            throughput_ips=r.throughput_ips,
            server_split=to_dict(r.server_split),
        )
    return finite(
        {
            "cell": v.cell_id,
            "url": v.url,
            "server": v.server,
            "target": {"percentile": v.target.percentile, "value_ms": v.target.value_ms},
            "predicted": _figure(v.predicted),
            "measured": measured,
            "gap_ms": v.gap_ms,
            "meets_target": v.meets_target,
            "status": v.measured_cell.status,
            "reason": v.measured_cell.reason,
            "warnings": [to_dict(w) for w in v.measured_cell.warnings],
            "notes": list(v.notes),
        }
    )
