"""`benchbox ab`'s view: the ratios table, hyperfine's summary lines, and its JSON."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from benchbox.format import accuracy_label, fmt_ms
from benchbox.sweep.ab import AbResult

VERDICT_STYLE = {"slower": "red", "faster": "green"}


def as_plain(result: AbResult) -> dict:
    """The JSON `ab --json` prints."""
    return {
        "baseline": result.labels[0],
        "candidate": result.labels[1],
        "cell": result.baseline.id,
        "trials": result.trials,
        "order": list(result.order),
        "threshold": result.threshold,
        "ratios": {k: _finite(dataclasses.asdict(f)) for k, f in result.figures.items()},
        "regressed": result.regressed,
        "decides": result.decides,
        "verdict": result.verdict,
        "warnings": list(result.warnings),
        "reports": list(result.reports),
    }


def _finite(d: dict) -> dict:
    """A figure's fields with an unbounded CI end as null (JSON has no infinity)."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def _ratio_text(f: Any) -> str:
    if not (math.isfinite(f.hi) and f.lo > 0):
        return f"{f.ratio:.3f} (no interval)"
    return f"{f.ratio:.3f} ({f.lo:.3f}–{f.hi:.3f})"


def show(result: AbResult, console: Console) -> None:
    """The ratios table and hyperfine's summary lines."""
    b, c = result.baseline.result, result.candidate.result
    labels = result.labels
    table = Table(
        title=escape(f"{labels[1]} against {labels[0]} — {result.baseline.id}"),
        header_style="bold",
    )
    for col in ("figure", "baseline", "candidate", "ratio (CI)", "verdict"):
        table.add_column(col, justify="left" if col in ("figure", "verdict") else "right")
    for name, f in result.figures.items():
        if name == "throughput":
            bv, cv = f"{b.throughput_ips:,.1f} inf/s", f"{c.throughput_ips:,.1f} inf/s"
        else:
            bv, cv = fmt_ms(getattr(b.latency_ms, name)), fmt_ms(getattr(c.latency_ms, name))
        style = VERDICT_STYLE.get(f.verdict, "")
        verdict = f"[{style}]{f.verdict}[/]" if style else f.verdict
        table.add_row(name, bv, cv, _ratio_text(f), verdict)
    console.print(table)
    console.print(
        f"{result.trials} trials each, interleaved in a seeded random order: "
        + " ".join("B" if s == "baseline" else "C" for s in result.order),
        highlight=False,
    )
    console.print(escape(result.verdict), style="bold", highlight=False)
    for f in result.figures.values():
        console.print(escape(f.summary), highlight=False)
    if result.baseline.accuracy or result.candidate.accuracy:  # (precision)
        console.print(
            f"accuracy vs fp32: {labels[0]} {accuracy_label(result.baseline)}, "
            f"{labels[1]} {accuracy_label(result.candidate)}",
            highlight=False,
        )
    for w in result.warnings:
        console.print(f"[yellow]warning[/] {escape(w)}", highlight=False)
    if result.threshold > 0:
        console.print(f"[dim]changes under {result.threshold * 100:g}% count as not significant[/]")
    console.print("reports saved: " + ", ".join(result.reports), highlight=False)
