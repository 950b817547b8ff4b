"""Rendering reports in the terminal with rich: the results table, one cell in depth, warnings."""

from __future__ import annotations

import os

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from benchbox.format import (
    MISSING,
    accuracy_label,
    ci_label,
    config_label,
    fmt_gib,
    fmt_mib,
    fmt_ms,
    fmt_ms_group,
    fmt_ms_range,
    fmt_number,
    load_label,
    reason_line,
    report_confidence,
    server_split_text,
    target_text,
)
from benchbox.measure import stats
from benchbox.pricing import pricing_lines
from benchbox.report.recommend_view import render_recommendation
from benchbox.schema import Cell, CellWarning, GeneratorStats, Histogram, Report, Result
from benchbox.warning_kinds import NOTE_KINDS

STATUS_STYLE = {
    "ok": "green",
    "unstable": "yellow",
    "failed": "red",
    "skipped": "dim",
    "pending": "dim",
}


def _ci(cell: Cell, key: str) -> str:
    r = cell.result
    if r is None or not r.latency_ci_ms:
        return ""
    ci = r.latency_ci_ms.get(key)
    if ci is None:
        return "n/a"
    return fmt_ms_range(ci[0], ci[1])


def _within(r: Result, key: str, between: bool) -> list[str]:
    """The within-trial CI cell of a between-trial table row (nothing otherwise)."""
    if not between:
        return []
    ci = (r.within_trial_ci_ms or {}).get(key)
    return [f"{fmt_ms(ci[0])} … {fmt_ms(ci[1])}" if ci else "n/a"]


def render_trials(r: Result, console: Console) -> None:
    """How many trials the figures come from, and each trial's own figures."""
    if r.trials <= 1:
        console.print(
            "  Trials:           1 (the CIs are within-trial: they cover the requests of one run, "
            "not run-to-run noise; --trials 3 or more for between-trial CIs)",
            highlight=False,
        )
        return
    tci = r.throughput_ci_ips
    spread = f", throughput CI {fmt_number(tci[0], 1)} … {fmt_number(tci[1], 1)}" if tci else ""
    console.print(
        f"  Trials:           {r.trials}, each in a fresh worker (session, and process when "
        f"isolated); the figures are between-trial{spread}",
        highlight=False,
    )
    table = Table(show_header=True, header_style="bold", box=None, padding=(0, 2))
    for col in ("trial", "order", "status", "inf/s", "p50", "p99"):
        table.add_column(col, justify="left" if col in ("trial", "status") else "right")
    for k, t in enumerate(r.per_trial, 1):
        table.add_row(
            str(k),
            "" if t.order is None else str(t.order),
            t.status,
            fmt_number(t.throughput_ips, 1, MISSING),
            fmt_ms(t.latency_ms.p50),
            fmt_ms(t.latency_ms.p99),
        )
    console.print(table)


def cells_table(report: Report, title: str | None = None, width: int = 160) -> Table:
    """One row per cell: config, load, status, throughput, percentiles with the p99 CI.

    Every column but the last keeps its full width; the note (why a cell was skipped or
    failed) takes what is left of `width`. p90, CPU and RSS are dropped when they do not fit.
    """
    headers, rows = _table_rows(report, wide=True)
    if _width(headers, rows) + 24 > width:
        headers, rows = _table_rows(report, wide=False)
    table = Table(title=title, show_lines=False, header_style="bold", pad_edge=False)
    for k, name in enumerate(headers):
        justify = "left" if k < 3 else "right"
        table.add_column(
            name, justify=justify, no_wrap=True, min_width=_col_width(k, headers, rows)
        )
    room = max(width - _width(headers, rows) - 4, 8)
    table.add_column("note", style="dim", overflow="ellipsis", no_wrap=True, max_width=room)
    for row in rows:
        table.add_row(*row)
    return table


def _col_width(k: int, headers: list[str], rows: list[list]) -> int:
    return max([len(headers[k])] + [len(str(row[k])) for row in rows])


def _width(headers: list[str], rows: list[list]) -> int:
    return sum(_col_width(k, headers, rows) + 3 for k in range(len(headers)))


def _table_rows(report: Report, wide: bool) -> tuple[list[str], list[list]]:
    """The table's headers (without the note) and rows (with the note last)."""
    has_cost = any(c.result and c.result.cost_usd_per_million is not None for c in report.cells)
    has_power = any(c.result and c.result.power_w is not None for c in report.cells)
    has_trials = any(c.result and c.result.trials > 1 for c in report.cells)
    winner = report.recommendation.winner if report.recommendation else None
    headers = ["config", "load", "status"] + (["trials"] if has_trials else [])
    headers += ["inf/s", "p50"]
    headers += ["p90"] if wide else []
    headers += ["p99", f"p99 {ci_label(report_confidence(report))}"]
    headers += ["CPU%", "RSS MiB"] if wide else []
    headers += ["W"] if has_power else []
    headers += ["$ / 1M"] if has_cost else []
    has_accuracy = any(c.accuracy is not None for c in report.cells)
    headers += ["accuracy vs fp32"] if has_accuracy else []
    rows: list[list] = []
    for cell in report.cells:
        r = cell.result
        status = Text(cell.status, style=STATUS_STYLE.get(cell.status, ""))
        if r is not None and r.generator is not None and r.generator.limited:
            status = Text(f"{cell.status}, client-limited", style="red")  # not the server's
        label = config_label(cell) + (" ★" if cell.id == winner else "")
        if r is None:
            rows.append([label, load_label(cell), status] + [""] * (len(headers) - 3))
            rows[-1].append(Text(reason_line(cell.reason), style="dim"))
            continue
        row = [label, load_label(cell), status] + ([str(r.trials)] if has_trials else [])
        row += [fmt_number(r.throughput_ips, 1, MISSING), fmt_ms(r.latency_ms.p50)]
        if wide:
            row.append(fmt_ms(r.latency_ms.p90))
        row += [fmt_ms(r.latency_ms.p99), _ci(cell, "p99")]
        if wide:
            row += [
                fmt_number(r.cpu_util_pct, 0, MISSING),
                fmt_number(r.rss_mb, 0, MISSING),
            ]
        if has_power:
            row.append(fmt_number(r.power_w, 1, MISSING))
        if has_cost:
            row.append(f"{r.cost_usd_per_million:.4g}" if r.cost_usd_per_million else "—")
        if has_accuracy:
            row.append(accuracy_label(cell))
        rows.append(row + [""])
    return headers, rows


def render_warnings(report: Report, console: Console) -> None:
    """The cells' warnings under the table, one line per kind (with its hint)."""
    by_kind: dict[str, list[tuple[str, CellWarning]]] = {}
    for cell in report.cells:
        for w in cell.warnings:
            by_kind.setdefault(w.kind, []).append((cell.id, w))
    for kind, items in by_kind.items():
        cell_id, first = items[0]
        where = cell_id if len(items) == 1 else f"{cell_id} and {len(items) - 1} more cell(s)"
        label = "[cyan]note[/]" if kind in NOTE_KINDS else "[yellow]warning[/]"
        console.print(f"{label} {where}: {escape(str(first))}", highlight=False)


def render_header(report: Report, console: Console) -> None:
    """One line on the model and one on the host."""
    m, h = report.model, report.host
    dims = ", ".join(f"{k}={v}" for k, v in m.dims.items())
    defaulted = f" (defaults: {', '.join(m.dims_defaulted)})" if m.dims_defaulted else ""
    tied = f"  following the batch: {', '.join(m.batch_dims)}" if m.batch_dims else ""
    values = ", ".join(f"{k}={_short(v)}" for k, v in m.input_values.items())
    source = f"sha256 {m.sha256[:12]}  opset {m.opset}" if m.sha256 else "(server metadata)"
    line = (
        f" {m.path}  {source}  batch {m.batch}"
        + (f"  dims {dims}{defaulted}" if dims else "")
        + tied
        + (f"  inputs set: {values}" if values else "")
    )
    console.print(Text.assemble(("model", "bold"), line), highlight=False)
    if report.target is not None:
        console.print(f"[bold]server[/] {escape(target_text(report.target))}", highlight=False)
    gpus = ", ".join(g.name for g in h.gpus) or "no GPU"
    role = "client" if report.target is not None else "host"
    console.print(
        f"[bold]{role}[/] {h.hostname}  {h.cpu_model} ({h.cpu_cores_logical} cores)  "
        f"{fmt_gib(h.memory_gb)}  {gpus}  onnxruntime {h.onnxruntime}",
        highlight=False,
    )


def _short(value: object) -> str:
    """An input value as given, cut for the header line (the report keeps it whole)."""
    text = f"{value:g}" if isinstance(value, float) else str(value).replace(" ", "")
    return text if len(text) <= 24 else text[:21] + "..."


def render_trials_note(report: Report, console: Console) -> None:
    """One line on what the CIs cover: between trials (and how many), or one run only."""
    counts = sorted({c.result.trials for c in report.cells if c.result is not None})
    if not counts:
        return
    if counts == [1]:
        console.print(
            "[dim]one trial per cell: the CIs are within-trial and cannot see run-to-run noise "
            "(measure with --trials 3 or more)[/]",
            highlight=False,
        )
        return
    shown = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    console.print(
        f"[dim]{shown} trials per cell, interleaved in a seeded random order; CIs are "
        "between-trial (they include run-to-run noise)[/]",
        highlight=False,
    )


def render_pricing(report: Report, console: Console) -> None:
    """Which profile priced the report and why; a warning when it describes other hardware."""
    for line in pricing_lines(report):
        style = "yellow" if line.startswith("pricing on other hardware") else "dim"
        console.print(Text(line, style=style))


def render_report(report: Report, console: Console) -> None:
    """The whole report as the sweep shows it: header, table, warnings, price, recommendation."""
    render_header(report, console)
    console.print(cells_table(report, width=console.width))
    render_warnings(report, console)
    render_trials_note(report, console)
    render_pricing(report, console)
    if report.recommendation is not None:
        render_recommendation(report, report.recommendation, console)


def render_accuracy(report: Report, cell: Cell, console: Console) -> None:
    """(precision) The cell's variant and its outputs against the fp32 CPU reference."""
    variant = next((v for v in report.variants if v.precision == cell.config.precision), None)
    if variant is not None and variant.precision != "fp32":
        size = f"{variant.size_bytes / 1e6:,.2f} MB" if variant.size_bytes else MISSING
        line = f"  Variant:          {variant.precision}, {size}, {variant.method}"
        if variant.calibration:
            line += f", calibrated on {variant.calibration}"
        console.print(line, highlight=False, markup=False)
    acc = cell.accuracy
    if acc is None:
        return
    if acc.error:
        console.print(
            f"  Accuracy:         not measured: {acc.error}", highlight=False, markup=False
        )
        return
    console.print(
        f"  Accuracy vs fp32: {acc.samples} {acc.source.split(';')[0]} samples",
        highlight=False,
        markup=False,
    )
    for o in acc.outputs:
        top1 = f", top1 {o.top1_agree}/{o.top1_count}" if o.top1_count else ""
        console.print(
            f"    {o.name}: max abs {o.max_abs_error:.3g}, rel {o.rel_error:.3g}, "
            f"cosine {o.cosine:.6f} (lowest {o.cosine_min:.6f}){top1}",
            highlight=False,
            markup=False,
        )
    if acc.flag:
        console.print(f"  [yellow]! {escape(acc.flag)}[/]")


def generator_text(gen: GeneratorStats) -> str:
    """The generators in a few words: busy share (each one's when several), count, how chosen."""
    each = "/".join(f"{b:.0%}" for b in gen.busy_shares) if len(gen.busy_shares) > 1 else ""
    busy = each or f"{gen.busy_share:.0%}"
    count = f"{gen.processes} process" + ("es" if gen.processes > 1 else "")
    how = ", auto" if gen.auto else ""
    limit = "; the generators were the limit" if gen.limited else ""
    return f"generator busy {busy} ({count}{how}){limit}"


def render_cell_detail(report: Report, cell: Cell, console: Console) -> None:
    """One cell in depth: every percentile with its CI, min/max, throughput, a histogram."""
    render_header(report, console)
    console.print(
        f"[bold]{cell.id}[/]  status [{STATUS_STYLE.get(cell.status, '')}]{cell.status}[/]"
    )
    r = cell.result
    if r is None:
        console.print(f"  {reason_line(cell.reason)}", highlight=False, markup=False)
        return
    lat = r.latency_ms
    console.print(
        "  Time (mean ± σ):  {} ± {}    ".format(*fmt_ms_group(lat.mean, lat.std))
        + f"Range (min … max):  {fmt_ms_range(lat.min, lat.max)}",
        highlight=False,
    )
    console.print(
        f"  Throughput:       {fmt_number(r.throughput_ips, 1, MISSING)} inferences/s  "
        f"({fmt_number(r.requests_per_s, 1, MISSING)} requests/s, "
        f"{r.requests:,} requests in {r.duration_s:.2f} s)",
        highlight=False,
    )
    render_accuracy(report, cell, console)
    console.print(_percentile_table(cell, r))
    render_trials(r, console)
    render_data(report, r, console)
    for line in [*_serving_lines(r), *_outcome_lines(r)]:
        console.print(line, highlight=False)
    if r.histogram:
        console.print(histogram_text(r.histogram))
    for w in cell.warnings:
        label = "[cyan]note[/]" if w.kind in NOTE_KINDS else "[yellow]warning[/]"
        console.print(f"{label} {escape(str(w))}", highlight=False)
    render_pricing(report, console)


def _percentile_table(cell: Cell, r: Result) -> Table:
    """A measured cell's percentiles, each with its interval (and, across trials, the
    within-trial one beside it)."""
    lat = r.latency_ms
    between = r.ci_level == "between-trial"
    table = Table(show_header=True, header_style="bold", box=None, padding=(0, 2))
    table.add_column("percentile")
    table.add_column("latency", justify="right")
    level = ci_label(r.confidence) + (" (between trials)" if between else "")
    table.add_column(level, justify="right")
    if between:
        table.add_column("within-trial CI", justify="right", style="dim")
    for key, label in (("p50", "p50"), ("p90", "p90"), ("p95", "p95"), ("p99", "p99")):
        table.add_row(label, fmt_ms(getattr(lat, key)), _ci(cell, key), *_within(r, key, between))
    table.add_row("p99.9", fmt_ms(lat.p99_9), _ci(cell, "p99_9"), *_within(r, "p99_9", between))
    return table


def _serving_lines(r: Result) -> list[str]:
    """How the load was served: send delay, peak rate, the server's queue/compute split and the
    batch sizes it formed (each line only where measured)."""
    lines = []
    if r.issue_delay_ms:
        d = r.issue_delay_ms
        lines.append(
            f"  Send delay:       p50 {fmt_ms(d.p50)}  p99 {fmt_ms(d.p99)}  "
            f"max {fmt_ms(d.max)}  "
            f"(achieved {fmt_number(r.achieved_rate_rps, 1, MISSING)} req/s)"
        )
    if r.peak_rate_rps is not None:
        lines.append(
            f"  Peak rate:        {fmt_number(r.peak_rate_rps, 1, MISSING)} requests/s meet the "
            "target (the figures above are measured at that rate)"
        )
    if r.queue_ms and r.compute_ms:
        q, c = r.queue_ms, r.compute_ms
        lines.append(
            f"  Server split:     queue p50 {fmt_ms(q.p50)} p99 {fmt_ms(q.p99)}  "
            f"compute p50 {fmt_ms(c.p50)} p99 {fmt_ms(c.p99)}"
        )
    if r.batch_size_counts:
        total = sum(r.batch_size_counts.values()) or 1
        sizes = sorted(r.batch_size_counts.items())
        shown = "  ".join(f"{k}: {v / total:.0%}" for k, v in sizes if v / total >= 0.005)
        lines.append(f"  Batch sizes:      {shown}")
    return lines


def _outcome_lines(r: Result) -> list[str]:
    """What the cell cost and used: price, the server side, errors, CPU and memory (each line
    only where measured)."""
    lines = []
    if r.cost_usd_per_million is not None:
        lines.append(f"  Cost:             ${r.cost_usd_per_million:,.4g} per million inferences")
    if r.server_split is not None:
        lines.append(f"  Server side:      {server_split_text(r.server_split)}")
    if r.errors is not None:
        busy = f"; {generator_text(r.generator)}" if r.generator else ""
        lines.append(f"  Errors:           {r.errors:,} ({(r.error_rate or 0.0):.2%}){busy}")
    if r.generator is not None and r.generator.nodes:
        lines += ray_generator_lines(r.generator)
    if r.cpu_util_pct is not None:
        sessions = (
            f", {fmt_mib(r.session_rss_mb)} creating sessions"
            if r.session_rss_mb is not None
            else ""
        )
        lines.append(
            f"  Resources:        CPU {r.cpu_util_pct:.0f}% of the machine, "
            f"peak RSS {fmt_mib(r.rss_mb)} measuring{sessions}"
        )
    return lines


def ray_generator_lines(gen: GeneratorStats) -> list[str]:
    """The generator nodes of a Ray cluster: how many, where the percentiles come from, and per
    node its clock offset, requests and issue-delay p99 (or why it was lost)."""
    head = (
        f"  Generators:       {gen.processes} of {len(gen.nodes)} nodes of group {gen.ray_group}"
        f"; percentiles from the {gen.percentiles_from or 'pooled requests'}"
        + (" (partial: a node was lost)" if gen.partial else "")
    )
    lines = [head]
    for n in gen.nodes:
        if n.lost is not None:
            lines.append(f"    {n.node_id[:12]}  {n.lost}")
            continue
        delay = fmt_ms(n.issue_delay_p99_ms) if n.issue_delay_p99_ms is not None else "-"
        lines.append(
            f"    {n.node_id[:12]}  clock {n.clock_offset_ms:+.3f} ms (rtt {n.clock_rtt_ms:.2f})"
            f"  {n.requests:,} requests  issue delay p99 {delay}  busy {n.busy_share:.0%}"
        )
    return lines


def histogram_text(h: Histogram, bins: int = 12, width: int = 40) -> Text:
    """A small terminal histogram of the latency distribution (log-spaced bins)."""
    n = stats.histogram_count(h)
    text = Text()
    if n == 0:
        return text
    cdf = stats.histogram_cdf(h)
    values = np.array([v for v, _ in cdf])
    counts_per_bucket = np.diff(np.concatenate([[0.0], [f for _, f in cdf]])) * n
    # The bins span the samples' exact min and max (a bucket's value can sit above its min).
    low = min(float(values.min()), h.min_ms) if h.min_ms > 0 else float(values.min())
    lo, hi = max(low, 1e-6), max(float(values.max()), h.max_ms)
    if hi <= lo:
        hi = lo * 1.01
    edges = lo * (hi / lo) ** (np.arange(bins + 1) / bins)
    which = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, bins - 1)
    counts = np.bincount(which, weights=counts_per_bucket, minlength=bins).round().astype(int)
    peak = max(int(counts.max()), 1)
    for i, c in enumerate(counts):
        a, b = fmt_ms_group(edges[i], edges[i + 1])
        text.append(f"  {a:>10} … {b:>10} ")
        text.append("█" * round(width * int(c) / peak), style="cyan")
        text.append(f" {int(c)}\n")
    return text


def stdout_console() -> Console:
    """A console for results: the terminal's width, or (piped to a log) $COLUMNS or 160."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=int(os.environ.get("COLUMNS") or 160))
    return console


def render_data(report: Report, r: Result, console: Console) -> None:
    """Where a cell's requests came from (--data), and its latency per shape bucket."""
    data = report.data
    if data is None:
        return
    sampled = f", a seeded sample of {data.samples_read:,}" if data.sampled else ""
    console.print(
        f"  Data:             {data.source} ({data.kind}, {data.samples_used:,} samples"
        f"{sampled}; sha256 {data.sha256[:12]})",
        highlight=False,
        markup=False,
    )
    if not r.buckets:
        return
    table = Table(box=None, padding=(0, 2), header_style="bold")
    for col in (f"{r.buckets[0].dim} ≤", "requests", "p50", "p99"):
        table.add_column(col, justify="right")
    for b in r.buckets:
        table.add_row(str(b.upper), f"{b.requests:,}", fmt_ms(b.latency_ms.p50),
                      fmt_ms(b.latency_ms.p99))  # fmt: skip
    console.print(table)
