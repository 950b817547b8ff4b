"""The report's plots: throughput against latency, cost against latency, latency CDFs."""

from __future__ import annotations

import math
from dataclasses import replace

from benchbox.format import fmt_ms, fmt_ms_given, fmt_number, load_text, percentile_label
from benchbox.measure import stats
from benchbox.report.svg import DASHES, PALETTE, Mark, RefLine, Series, no_plot, svg_plot
from benchbox.schema import MEASURED, Cell, Report


def measured_cells(report: Report) -> list[Cell]:
    """The cells that were measured (ok or unstable) and have a result."""
    return [c for c in report.cells if c.status in MEASURED and c.result is not None]


def plotted_percentile(report: Report) -> str:
    """The percentile the plots put on their latency axis: the recommendation's, else p99."""
    rec = report.recommendation
    return rec.percentile if rec is not None else "p99"


def latency_ms(cell: Cell, key: str) -> float:
    """The cell's latency at percentile `key`, in ms."""
    return float(getattr(cell.result.latency_ms, key))


def series_key(cell: Cell) -> tuple:
    """What stays fixed along one load curve: device, batching, instances, threads, load kind."""
    c = cell.config
    db = c.dynamic_batching
    batching = f"db{db.max_batch}-{db.delay_ms:g}ms" if db else f"b{c.batch_size}"
    return (c.device, batching, c.instances, c.intra_op_threads, c.io_binding, cell.load.kind)


def series_label(key: tuple, kinds: set[str]) -> str:
    """A legend label such as `cpu · b8 · t2 · i1` (the load kind added when kinds are mixed)."""
    device, batching, instances, threads, iob, kind = key
    parts = [device, batching, f"t{threads}", f"i{instances}"]
    if iob:
        parts.append("iobinding")
    if len(kinds) > 1 or kind != "closed":
        parts.append(kind)
    return " · ".join(parts)


def _load_level(cell: Cell) -> float:
    if cell.load.kind == "open":
        return float(cell.load.rate_rps or 0.0)
    return float(cell.load.concurrency or 0)


def _style(i: int) -> tuple[str, str]:
    return PALETTE[i % len(PALETTE)], DASHES[(i // len(PALETTE)) % len(DASHES)]


def _target_ref(report: Report) -> list[RefLine]:
    rec = report.recommendation
    if rec is None:
        return []
    return [
        RefLine(
            rec.target_ms,
            f"{percentile_label(rec.percentile)} target {fmt_ms_given(rec.target_ms)}",
            "x",
            "#b00",
        )
    ]


def throughput_plot(report: Report) -> str:
    """Throughput against tail latency, one line per serving config as load rises."""
    title = "Throughput against latency as load rises"
    cells = measured_cells(report)
    if not cells:
        return no_plot(title, "No cell was measured, so there is nothing to plot.")
    key_p = plotted_percentile(report)
    groups: dict[tuple, list[Cell]] = {}
    for cell in cells:
        groups.setdefault(series_key(cell), []).append(cell)
    kinds = {k[-1] for k in groups}
    series = []
    for i, (key, members) in enumerate(sorted(groups.items(), key=lambda kv: _sort_key(kv[0]))):
        members.sort(key=_load_level)
        color, dash = _style(i)
        series.append(
            Series(
                label=series_label(key, kinds),
                points=[(latency_ms(c, key_p), c.result.throughput_ips) for c in members],
                color=color,
                dash=dash,
                hollow=[c.status == "unstable" for c in members],
                titles=[_tip(c, key_p) for c in members],
            )
        )
    return svg_plot(
        series,
        title=title,
        x_label=f"{percentile_label(key_p)} latency (ms)",
        y_label="throughput (inferences/s)",
        refs=_target_ref(report),
        plot_id="throughput",
    )


def _sort_key(key: tuple) -> tuple:
    device, batching, instances, threads, iob, kind = key
    num = int("".join(ch for ch in batching.split("-")[0] if ch.isdigit()) or 0)
    return (device, num, batching, instances, threads, iob, kind)


def _tip(cell: Cell, key_p: str) -> str:
    r = cell.result
    text = (
        f"{cell.id}: {load_text(cell)}, "
        f"{percentile_label(key_p)} {fmt_ms(latency_ms(cell, key_p))}, "
        f"{fmt_number(r.throughput_ips)} inf/s"
    )
    if r.cost_usd_per_million is not None:
        text += f", ${fmt_number(r.cost_usd_per_million)}/M"
    if cell.status == "unstable":
        text += " (unstable)"
    return text


def pareto_front(cells: list[Cell], key_p: str) -> list[Cell]:
    """Cells no other cell beats on both latency and cost, by rising latency."""
    front: list[Cell] = []
    best = math.inf
    for cell in sorted(cells, key=lambda c: (latency_ms(c, key_p), c.result.cost_usd_per_million)):
        if cell.result.cost_usd_per_million < best:
            front.append(cell)
            best = cell.result.cost_usd_per_million
    return front


def cost_plot(report: Report) -> str:
    """Cost per million against latency, with the Pareto front and the recommended cell."""
    title = "Cost per million inferences against latency"
    key_p = plotted_percentile(report)
    cells = [c for c in measured_cells(report) if c.result.cost_usd_per_million is not None]
    if not cells:
        return no_plot(
            title,
            "No cost: this report has no price profile. Re-run the sweep with --profile NAME "
            "(see `benchbox profiles list`) to price every configuration.",
        )
    by_id = {c.id: c for c in cells}
    rec = report.recommendation
    if rec is not None and rec.pareto:
        front = sorted(
            (by_id[i] for i in rec.pareto if i in by_id), key=lambda c: latency_ms(c, key_p)
        )
    else:
        front = pareto_front(cells, key_p)
    front_ids = {c.id for c in front}
    others = [c for c in cells if c.id not in front_ids]
    series = [
        Series(
            "other configurations",
            [(latency_ms(c, key_p), c.result.cost_usd_per_million) for c in others],
            "#9aa5b1",
            line=False,
            hollow=[c.status == "unstable" for c in others],
            titles=[_tip(c, key_p) for c in others],
        ),
        Series(
            "Pareto front (nothing is both faster and cheaper)",
            [(latency_ms(c, key_p), c.result.cost_usd_per_million) for c in front],
            PALETTE[0],
            step=True,
            hollow=[c.status == "unstable" for c in front],
            titles=[_tip(c, key_p) for c in front],
        ),
    ]
    marks = []
    if rec is not None and rec.winner in by_id:
        w = by_id[rec.winner]
        marks.append(
            Mark(latency_ms(w, key_p), w.result.cost_usd_per_million, f"recommended: {w.id}")
        )
    return svg_plot(
        series,
        title=title,
        x_label=f"{percentile_label(key_p)} latency (ms)",
        y_label="cost (USD per million inferences)",
        refs=_target_ref(report),
        marks=marks,
        plot_id="cost",
    )


def cdf_cells(report: Report) -> list[Cell]:
    """The recommended cell and its runners-up, else the three fastest cells."""
    cells = [c for c in measured_cells(report) if c.result.histogram]
    by_id = {c.id: c for c in cells}
    rec = report.recommendation
    if rec is not None and rec.winner in by_id:
        return [by_id[i] for i in (rec.winner, *rec.runners_up) if i in by_id]
    return sorted(cells, key=lambda c: latency_ms(c, plotted_percentile(report)))[:3]


def cdf_plot(report: Report) -> str:
    """Latency CDFs of the recommended cell and its runners-up, log latency axis."""
    title = "Latency distribution (CDF)"
    chosen = cdf_cells(report)
    if not chosen:
        return no_plot(title, "No measured cell has a latency histogram to draw.")
    rec = report.recommendation
    series = []
    for i, cell in enumerate(chosen):
        cdf = stats.histogram_cdf(cell.result.histogram)
        first = (cell.result.latency_ms.min, 0.0)
        role = "recommended" if rec is not None and cell.id == rec.winner else "runner-up"
        if rec is None or rec.winner is None:
            role = "fast"
        series.append(
            Series(
                f"{cell.id} ({role})" if rec is not None else cell.id,
                [first] + [(x, 100.0 * f) for x, f in cdf],
                PALETTE[i % len(PALETTE)],
                step=True,
                markers=False,
            )
        )
    refs = [replace(r, label_at="bottom") for r in _target_ref(report)]
    key_p = plotted_percentile(report)
    q = stats.PERCENTILES[key_p]
    refs.append(RefLine(q, percentile_label(key_p), "y", "#666"))
    return svg_plot(
        series,
        title=title,
        x_label="latency (ms)",
        y_label="requests completed within (%)",
        x_log=True,
        y_log=False,
        y_range=(0.0, 100.0),
        y_ticks=[0.0, 20.0, 40.0, 60.0, 80.0, 100.0],
        refs=refs,
        plot_id="cdf",
    )
