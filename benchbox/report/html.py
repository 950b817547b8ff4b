"""A report as one self-contained HTML page: inline CSS and SVG plots, no scripts, no network."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from benchbox.measure import stats
from benchbox.report.tabular import cell_roles, fmt_number
from benchbox.schema import MEASURED, Cell, Report

PALETTE = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#7f7f7f",
    "#b8a21a",
)
DASHES = ("", "6 3", "2 3", "8 3 2 3")
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', 'Liberation Sans', sans-serif"
CHAR_W = 6.8  # approximate width of one 12 px character, for layout without measuring text


# ---------------------------------------------------------------- a small SVG plotter


@dataclass
class Series:
    """A named set of points drawn as a line (plain or stepped) and/or markers."""

    label: str
    points: list[tuple[float, float]]
    color: str
    line: bool = True
    step: bool = False
    markers: bool = True
    dash: str = ""
    hollow: list[bool] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)


@dataclass
class Mark:
    """A labelled point drawn on top of everything (the recommended cell)."""

    x: float
    y: float
    label: str


@dataclass
class RefLine:
    """A dashed reference line: vertical at x (axis='x') or horizontal at y (axis='y')."""

    value: float
    label: str
    axis: str = "x"
    color: str = "#444"
    label_at: str = "top"  # for vertical lines: "top" or "bottom" of the plot


class _Scale:
    def __init__(self, lo: float, hi: float, log: bool, a: float, b: float) -> None:
        self.log, self.a, self.b = log, a, b
        if log:
            self.lo, self.hi = math.log10(lo), math.log10(hi)
        else:
            self.lo, self.hi = lo, hi
        if self.hi <= self.lo:
            self.hi = self.lo + 1.0

    def __call__(self, v: float) -> float:
        t = (math.log10(v) if self.log else v) - self.lo
        return self.a + (self.b - self.a) * t / (self.hi - self.lo)


def _nice_step(span: float, n: int) -> float:
    raw = span / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def linear_ticks(lo: float, hi: float, n: int = 6) -> tuple[float, float, list[float]]:
    """A nice (lo, hi, ticks) covering [lo, hi] with about n ticks."""
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    step = _nice_step(hi - lo, n)
    lo_t = math.floor(lo / step + 1e-9) * step
    hi_t = math.ceil(hi / step - 1e-9) * step
    ticks, k = [], 0
    while lo_t + k * step <= hi_t + step * 1e-6:
        ticks.append(round(lo_t + k * step, 10))
        k += 1
    return lo_t, hi_t, ticks


def log_ticks(lo: float, hi: float) -> tuple[float, float, list[float]]:
    """A (lo, hi, ticks) for a log axis: 1-2-5 steps over short spans, decades over long ones."""
    d_lo, d_hi = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    steps = [m * 10.0**d for d in range(d_lo, d_hi + 1) for m in (1, 2, 5)]
    lo_t = max(t for t in steps if t <= lo * (1 + 1e-9))
    hi_t = min(t for t in steps if t >= hi * (1 - 1e-9))
    if hi_t / lo_t <= 1e3:
        return lo_t, hi_t, [t for t in steps if lo_t <= t <= hi_t]
    decades = [10.0**d for d in range(d_lo, d_hi + 1) if lo_t <= 10.0**d <= hi_t]
    return lo_t, hi_t, sorted({lo_t, *decades, hi_t})


def tick_label(v: float) -> str:
    """Compact tick text: 0.5, 12, 2.5k, 1.2M."""
    av = abs(v)
    if av >= 1e6:
        return f"{v / 1e6:g}M"
    if av >= 1e4:
        return f"{v / 1e3:g}k"
    return f"{round(v, 6):g}"


def _esc(x: object) -> str:
    return html.escape(str(x), quote=True)


def _f(v: float) -> str:
    return f"{v:.1f}"


def svg_plot(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    x_log: bool | None = None,
    y_log: bool | None = None,
    y_zero: bool = True,
    y_range: tuple[float, float] | None = None,
    y_ticks: list[float] | None = None,
    refs: Sequence[RefLine] = (),
    marks: Sequence[Mark] = (),
    width: int = 820,
    plot_height: int = 330,
    plot_id: str = "plot",
) -> str:
    """An SVG chart with axes, ticks, unit labels, grid, lines, markers and a legend below it."""
    pts = [p for s in series for p in s.points]
    xs = [p[0] for p in pts] + [r.value for r in refs if r.axis == "x"]
    ys = [p[1] for p in pts] + [r.value for r in refs if r.axis == "y"]
    x_log = _auto_log(xs) if x_log is None else x_log
    y_log = _auto_log(ys) if y_log is None else y_log
    xs = [x for x in xs if x > 0] if x_log else xs
    ys = [y for y in ys if y > 0] if y_log else ys

    left, right, top = 74, 24, 34
    plot_w = width - left - right
    legend_rows, legend_h = _legend_layout(series, plot_w)
    bottom_axis = 52
    height = top + plot_height + bottom_axis + legend_h
    x0, x1, y0, y1 = left, left + plot_w, top + plot_height, top

    if x_log:
        xlo, xhi, xt = log_ticks(min(xs) / 1.08, max(xs) * 1.08)
    else:
        pad = (max(xs) - min(xs)) * 0.05 or abs(max(xs)) * 0.1 or 1.0
        xlo, xhi, xt = linear_ticks(max(0.0, min(xs) - pad), max(xs) + pad)
    if y_range is not None:
        ylo, yhi = y_range
        yt = y_ticks or linear_ticks(ylo, yhi)[2]
    elif y_log:
        ylo, yhi, yt = log_ticks(min(ys) / 1.1, max(ys) * 1.1)
    else:
        lo = 0.0 if y_zero else min(ys)
        ylo, yhi, yt = linear_ticks(lo, max(ys) * 1.06 if max(ys) > 0 else 1.0)
    sx = _Scale(xlo, xhi, x_log, x0, x1)
    sy = _Scale(ylo, yhi, y_log, y0, y1)
    clip = f"clip-{plot_id}"

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{_esc(title)}" '
        f'font-family="{_esc(FONT)}" font-size="12" class="plot">',
        f"<title>{_esc(title)}</title>",
        f'<defs><clipPath id="{clip}"><rect x="{x0 - 6}" y="{y1 - 6}" width="{plot_w + 12}" '
        f'height="{plot_height + 12}"/></clipPath></defs>',
        f'<rect x="{x0}" y="{y1}" width="{plot_w}" height="{plot_height}" fill="#fff"/>',
    ]
    # grid and ticks
    out.append('<g class="grid" stroke="#e8e8e8">')
    for t in xt:
        out.append(f'<line x1="{_f(sx(t))}" y1="{y1}" x2="{_f(sx(t))}" y2="{y0}"/>')
    for t in yt:
        out.append(f'<line x1="{x0}" y1="{_f(sy(t))}" x2="{x1}" y2="{_f(sy(t))}"/>')
    out.append("</g>")
    out.append('<g class="axes" stroke="#333" shape-rendering="crispEdges">')
    out.append(f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}"/>')
    out.append(f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}"/>')
    for t in xt:
        out.append(f'<line x1="{_f(sx(t))}" y1="{y0}" x2="{_f(sx(t))}" y2="{y0 + 5}"/>')
    for t in yt:
        out.append(f'<line x1="{x0 - 5}" y1="{_f(sy(t))}" x2="{x0}" y2="{_f(sy(t))}"/>')
    out.append("</g>")
    out.append('<g class="tick-labels" fill="#333">')
    for t in _thin(xt, sx, 46):
        out.append(
            f'<text x="{_f(sx(t))}" y="{y0 + 19}" text-anchor="middle">{tick_label(t)}</text>'
        )
    for t in _thin(yt, sy, 16):
        out.append(
            f'<text x="{x0 - 9}" y="{_f(sy(t) + 4)}" text-anchor="end">{tick_label(t)}</text>'
        )
    out.append("</g>")
    out.append(
        f'<text x="{(x0 + x1) / 2:.1f}" y="{y0 + 42}" text-anchor="middle" font-size="13" '
        f'fill="#111">{_esc(_log_label(x_label, x_log))}</text>'
    )
    cy = (y0 + y1) / 2
    out.append(
        f'<text x="16" y="{cy:.1f}" text-anchor="middle" font-size="13" fill="#111" '
        f'transform="rotate(-90 16 {cy:.1f})">{_esc(_log_label(y_label, y_log))}</text>'
    )
    out.append(
        f'<text x="{x0}" y="20" font-size="14" font-weight="600" fill="#111">{_esc(title)}</text>'
    )

    # reference lines
    for r in refs:
        if r.axis == "x":
            x = sx(r.value)
            anchor, dx = ("end", -5) if x > x0 + plot_w * 0.7 else ("start", 5)
            out.append(
                f'<line class="ref" x1="{_f(x)}" y1="{y1}" x2="{_f(x)}" y2="{y0}" '
                f'stroke="{r.color}" stroke-width="1.5" stroke-dasharray="5 4"/>'
            )
            ty = y1 + 14 if r.label_at == "top" else y0 - 8
            out.append(
                f'<text class="halo" x="{_f(x + dx)}" y="{ty}" text-anchor="{anchor}" '
                f'fill="{r.color}">{_esc(r.label)}</text>'
            )
        else:
            y = sy(r.value)
            out.append(
                f'<line class="ref" x1="{x0}" y1="{_f(y)}" x2="{x1}" y2="{_f(y)}" '
                f'stroke="{r.color}" stroke-width="1" stroke-dasharray="3 4"/>'
            )
            out.append(
                f'<text class="halo" x="{x0 + 6}" y="{_f(y + 15)}" fill="{r.color}">'
                f"{_esc(r.label)}</text>"
            )

    # data
    out.append(f'<g clip-path="url(#{clip})">')
    for s in series:
        pts_s = [(x, y) for x, y in s.points if (not x_log or x > 0) and (not y_log or y > 0)]
        if s.line and len(pts_s) > 1:
            coords = _step(pts_s) if s.step else pts_s
            path = " ".join(f"{_f(sx(x))},{_f(sy(y))}" for x, y in coords)
            dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
            out.append(
                f'<polyline class="series" points="{path}" fill="none" stroke="{s.color}" '
                f'stroke-width="2" stroke-linejoin="round"{dash}/>'
            )
        if s.markers:
            for i, (x, y) in enumerate(s.points):
                if (x_log and x <= 0) or (y_log and y <= 0):
                    continue
                hollow = i < len(s.hollow) and s.hollow[i]
                fill = "#fff" if hollow else s.color
                tip = f"<title>{_esc(s.titles[i])}</title>" if i < len(s.titles) else ""
                out.append(
                    f'<circle class="point" cx="{_f(sx(x))}" cy="{_f(sy(y))}" r="3.6" '
                    f'fill="{fill}" stroke="{s.color}" stroke-width="1.5">{tip}</circle>'
                )
    out.append("</g>")
    drawn = [
        (sx(x), sy(y))
        for s in series
        for x, y in s.points
        if (not x_log or x > 0) and (not y_log or y > 0)
    ]
    for m in marks:
        mx, my = sx(m.x), sy(m.y)
        anchor, dx, dy = _label_spot(m.label, mx, my, drawn, (x0, x1, y1, y0))
        out.append(
            f'<circle class="mark" cx="{_f(mx)}" cy="{_f(my)}" r="9" fill="none" stroke="#111" '
            f'stroke-width="2"/>'
        )
        out.append(
            f'<text class="halo" x="{_f(mx + dx)}" y="{_f(my + dy)}" text-anchor="{anchor}" '
            f'font-weight="600" fill="#111">{_esc(m.label)}</text>'
        )
    out.extend(_legend(legend_rows, left, top + plot_height + bottom_axis + 4))
    out.append("</svg>")
    return "\n".join(out)


def _label_spot(
    label: str, mx: float, my: float, drawn: list[tuple[float, float]], box: tuple
) -> tuple[str, float, float]:
    """Where to put a mark's label (anchor, dx, dy): the corner covering the fewest points."""
    x0, x1, top, bottom = box
    w, h = len(label) * CHAR_W * 1.08, 14.0
    best, best_score = ("start", 12.0, -10.0), math.inf
    for anchor, dx, dy in (
        ("start", 12.0, -10.0),
        ("start", 12.0, 22.0),
        ("end", -12.0, -10.0),
        ("end", -12.0, 22.0),
    ):
        left = mx + dx if anchor == "start" else mx + dx - w
        right, base = left + w, my + dy
        score = sum(
            left - 4 <= px <= right + 4 and base - h - 4 <= py <= base + 4 for px, py in drawn
        )
        if left < x0 or right > x1 or base - h < top or base > bottom:
            score += 1000
        if score < best_score:
            best, best_score = (anchor, dx, dy), score
    return best


def _log_label(label: str, log: bool) -> str:
    """'latency (ms)' -> 'latency (ms, log scale)' on a log axis."""
    if not log:
        return label
    if label.endswith(")"):
        return label[:-1] + ", log scale)"
    return label + " (log scale)"


def _auto_log(values: list[float]) -> bool:
    pos = [v for v in values if v > 0]
    return len(pos) == len(values) and len(pos) > 1 and max(pos) / min(pos) >= 25


def _thin(ticks: list[float], scale: _Scale, min_gap: float) -> list[float]:
    """Drop tick labels that would collide (keep every k-th)."""
    if len(ticks) < 2:
        return ticks
    gap = abs(scale(ticks[1]) - scale(ticks[0]))
    if gap <= 0:
        return ticks[:1]
    k = max(1, math.ceil(min_gap / gap))
    return ticks[::k]


def _step(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out = [points[0]]
    for x, y in points[1:]:
        out.append((x, out[-1][1]))
        out.append((x, y))
    return out


def _legend_layout(series: Sequence[Series], plot_w: float) -> tuple[list[list[Series]], int]:
    shown = [s for s in series if s.label]
    if not shown:
        return [], 0
    entry_w = max(len(s.label) for s in shown) * CHAR_W + 40
    per_row = max(1, int(plot_w // entry_w))
    rows = [shown[i : i + per_row] for i in range(0, len(shown), per_row)]
    return rows, len(rows) * 20 + 8


def _legend(rows: list[list[Series]], left: float, top: float) -> list[str]:
    if not rows:
        return []
    entry_w = max(len(s.label) for r in rows for s in r) * CHAR_W + 40
    out = ['<g class="legend">']
    for i, row in enumerate(rows):
        y = top + i * 20 + 8
        for j, s in enumerate(row):
            x = left + j * entry_w
            dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
            if s.line:
                out.append(
                    f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x + 22:.1f}" y2="{y:.1f}" '
                    f'stroke="{s.color}" stroke-width="2"{dash}/>'
                )
            if s.markers:
                out.append(
                    f'<circle cx="{x + 11:.1f}" cy="{y:.1f}" r="3.6" fill="{s.color}" '
                    f'stroke="{s.color}"/>'
                )
            out.append(f'<text x="{x + 28:.1f}" y="{y + 4:.1f}" fill="#222">{_esc(s.label)}</text>')
    out.append("</g>")
    return out


def no_plot(title: str, message: str) -> str:
    """The plot's place when there is nothing to draw: the title and why."""
    return (
        f'<div class="noplot"><div class="noplot-title">{_esc(title)}</div>'
        f"<p>{_esc(message)}</p></div>"
    )


# ---------------------------------------------------------------- the report's plots


def _measured(report: Report) -> list[Cell]:
    return [c for c in report.cells if c.status in MEASURED and c.result is not None]


def _percentile(report: Report) -> str:
    rec = report.recommendation
    return rec.percentile if rec is not None else "p99"


def _pname(key: str) -> str:
    return key.replace("_", ".")


def _lat(cell: Cell, key: str) -> float:
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


def _load_text(cell: Cell) -> str:
    if cell.load.kind == "open":
        return f"{cell.load.rate_rps:g} req/s"
    return f"concurrency {cell.load.concurrency}"


def _style(i: int) -> tuple[str, str]:
    return PALETTE[i % len(PALETTE)], DASHES[(i // len(PALETTE)) % len(DASHES)]


def _target_ref(report: Report) -> list[RefLine]:
    rec = report.recommendation
    if rec is None:
        return []
    return [
        RefLine(rec.target_ms, f"{_pname(rec.percentile)} target {rec.target_ms:g} ms", "x", "#b00")
    ]


def throughput_plot(report: Report) -> str:
    """Throughput against tail latency, one line per serving config as load rises."""
    title = "Throughput against latency as load rises"
    cells = _measured(report)
    if not cells:
        return no_plot(title, "No cell was measured, so there is nothing to plot.")
    key_p = _percentile(report)
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
                points=[(_lat(c, key_p), c.result.throughput_ips) for c in members],
                color=color,
                dash=dash,
                hollow=[c.status == "unstable" for c in members],
                titles=[_tip(c, key_p) for c in members],
            )
        )
    return svg_plot(
        series,
        title=title,
        x_label=f"{_pname(key_p)} latency (ms)",
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
        f"{cell.id}: {_load_text(cell)}, {_pname(key_p)} {fmt_number(_lat(cell, key_p))} ms, "
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
    for cell in sorted(cells, key=lambda c: (_lat(c, key_p), c.result.cost_usd_per_million)):
        if cell.result.cost_usd_per_million < best:
            front.append(cell)
            best = cell.result.cost_usd_per_million
    return front


def cost_plot(report: Report) -> str:
    """Cost per million against latency, with the Pareto front and the recommended cell."""
    title = "Cost per million inferences against latency"
    key_p = _percentile(report)
    cells = [c for c in _measured(report) if c.result.cost_usd_per_million is not None]
    if not cells:
        return no_plot(
            title,
            "No cost: this report has no price profile. Re-run the sweep with --profile NAME "
            "(see `benchbox profiles list`) to price every configuration.",
        )
    by_id = {c.id: c for c in cells}
    rec = report.recommendation
    if rec is not None and rec.pareto:
        front = sorted((by_id[i] for i in rec.pareto if i in by_id), key=lambda c: _lat(c, key_p))
    else:
        front = pareto_front(cells, key_p)
    front_ids = {c.id for c in front}
    others = [c for c in cells if c.id not in front_ids]
    series = [
        Series(
            "other configurations",
            [(_lat(c, key_p), c.result.cost_usd_per_million) for c in others],
            "#9aa5b1",
            line=False,
            hollow=[c.status == "unstable" for c in others],
            titles=[_tip(c, key_p) for c in others],
        ),
        Series(
            "Pareto front (nothing is both faster and cheaper)",
            [(_lat(c, key_p), c.result.cost_usd_per_million) for c in front],
            PALETTE[0],
            step=True,
            hollow=[c.status == "unstable" for c in front],
            titles=[_tip(c, key_p) for c in front],
        ),
    ]
    marks = []
    if rec is not None and rec.winner in by_id:
        w = by_id[rec.winner]
        marks.append(Mark(_lat(w, key_p), w.result.cost_usd_per_million, f"recommended: {w.id}"))
    return svg_plot(
        series,
        title=title,
        x_label=f"{_pname(key_p)} latency (ms)",
        y_label="cost (USD per million inferences)",
        refs=_target_ref(report),
        marks=marks,
        plot_id="cost",
    )


def cdf_cells(report: Report) -> list[Cell]:
    """The recommended cell and its runners-up, else the three fastest cells."""
    cells = [c for c in _measured(report) if c.result.histogram]
    by_id = {c.id: c for c in cells}
    rec = report.recommendation
    if rec is not None and rec.winner in by_id:
        return [by_id[i] for i in (rec.winner, *rec.runners_up) if i in by_id]
    return sorted(cells, key=lambda c: _lat(c, _percentile(report)))[:3]


def cdf_plot(report: Report) -> str:
    """Latency CDFs of the recommended cell and its runners-up, log latency axis."""
    title = "Latency distribution (CDF)"
    chosen = cdf_cells(report)
    if not chosen:
        return no_plot(title, "No measured cell has a latency histogram to draw.")
    rec = report.recommendation
    series = []
    for i, cell in enumerate(chosen):
        cdf = stats.histogram_cdf(stats.histogram_from_dict(cell.result.histogram))
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
    key_p = _percentile(report)
    q = stats.PERCENTILES[key_p]
    refs.append(RefLine(q, _pname(key_p), "y", "#666"))
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


# ---------------------------------------------------------------- the page


CSS = """
:root { color-scheme: light; }
body { font-family: __FONT__; color: #1b1f24; background: #f6f7f9; margin: 0; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 10px; border-bottom: 1px solid #d8dde3; padding-bottom: 4px; }
.sub { color: #57606a; margin: 0 0 16px; }
section.card { background: #fff; border: 1px solid #d8dde3; border-radius: 6px;
               padding: 14px 18px; }
.verdict { font-size: 16px; margin: 0 0 8px; }
.verdict.good { color: #116329; } .verdict.bad { color: #a40e26; }
code { font-family: ui-monospace, 'DejaVu Sans Mono', monospace; font-size: 90%;
       background: #eef1f4; padding: 1px 4px; border-radius: 3px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e3e6ea; text-align: left;
         vertical-align: top; }
th { background: #f0f2f5; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.winner td { background: #e6f4ea; font-weight: 600; }
tr.status-failed td, tr.status-skipped td { color: #8a8f96; }
.cells td code, .cells td.load { white-space: nowrap; }
section.card th { white-space: nowrap; }
h3 { margin: 0 0 8px; font-size: 15px; }
.meta td { overflow-wrap: anywhere; }
.badge { display: inline-block; font-size: 11px; padding: 0 6px; border-radius: 8px;
         background: #eef1f4; color: #333; margin-left: 4px; }
.badge.winner { background: #116329; color: #fff; } .badge.unstable { background: #fff1c2; }
.badge.failed { background: #fde2e4; color: #a40e26; }
.meta { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.meta table { width: 100%; }
.meta th { width: 38%; background: none; font-weight: 600; color: #57606a; }
figure { margin: 0 0 18px; background: #fff; border: 1px solid #d8dde3; border-radius: 6px;
         padding: 8px; }
figure svg { display: block; width: 100%; height: auto; max-width: 100%; }
figcaption { color: #57606a; font-size: 13px; padding: 4px 8px 2px; }
svg .halo { paint-order: stroke; stroke: #fff; stroke-width: 4px; stroke-linejoin: round; }
.noplot { border: 1px dashed #c4cad1; border-radius: 6px; padding: 18px; background: #fafbfc; }
.noplot-title { font-weight: 600; margin-bottom: 4px; }
.cells { overflow-x: auto; background: #fff; border: 1px solid #d8dde3; border-radius: 6px; }
.cells table { width: 100%; }
details { margin-top: 8px; } summary { cursor: pointer; color: #0b5cad; }
footer { color: #8a8f96; font-size: 12px; margin-top: 32px; }
""".replace("__FONT__", FONT)


def render_html(report: Report) -> str:
    """The whole report as one self-contained HTML page (no scripts, no external resources)."""
    model_name = report.model.path.rsplit("/", 1)[-1] or "model"
    title = f"benchbox: {model_name} on {report.host.hostname}"
    key_p = _percentile(report)
    body = [
        f"<h1>{_esc(model_name)} on {_esc(report.host.hostname)}</h1>",
        f'<p class="sub">{len(report.cells)} configurations measured'
        f"{' on ' + _esc(report.created) if report.created else ''}"
        f" · benchbox {_esc(report.benchbox_version or 'unknown')}</p>",
        "<h2>Recommendation</h2>",
        _recommendation_html(report),
        "<h2>Throughput and latency</h2>",
        _figure(
            throughput_plot(report),
            "Each line is one serving configuration as the load rises (more concurrency or a "
            f"higher request rate). Up and to the left is better. Hollow points are unstable. "
            f"The x axis is the {_pname(key_p)} latency.",
        ),
        "<h2>Cost</h2>",
        _figure(
            cost_plot(report),
            "Every measured configuration; the step line joins the ones no other configuration "
            "beats on both latency and cost.",
        ),
        "<h2>Latency distribution</h2>",
        _figure(
            cdf_plot(report),
            "Share of requests finished within each latency, from the latency histograms.",
        ),
        "<h2>Configurations</h2>",
        _cells_table(report),
        "<h2>Host and model</h2>",
        _metadata_html(report),
        f"<footer>Generated by benchbox from a {_esc(report.schema)} report. "
        "This page is self-contained: it loads nothing from the network.</footer>",
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>{_esc(title)}</title>\n<style>{CSS}</style>\n</head>\n"
        "<body>\n<main>\n" + "\n".join(body) + "\n</main>\n</body>\n</html>\n"
    )


def _figure(svg: str, caption: str) -> str:
    if not svg.startswith("<svg"):  # the plot's place says why there is no plot
        return svg
    return f"<figure>{svg}<figcaption>{_esc(caption)}</figcaption></figure>"


def _ci_text(cell: Cell, key: str) -> str:
    ci = (cell.result.latency_ci_ms or {}).get(key) if cell.result else None
    if not ci:
        return ""
    return f"{fmt_number(ci[0])} – {fmt_number(ci[1])}"


def _recommendation_html(report: Report) -> str:
    rec = report.recommendation
    if rec is None:
        return (
            '<section class="card"><p class="verdict">This report holds no recommendation.</p>'
            "<p>Ask for one with <code>benchbox recommend REPORT --latency-target p99=20ms</code>."
            "</p></section>"
        )
    cells = {c.id: c for c in report.cells}
    target = f"{_pname(rec.percentile)} ≤ {rec.target_ms:g} ms"
    parts = ['<section class="card">']
    if rec.winner is None or rec.winner not in cells:
        parts.append(f'<p class="verdict bad">No configuration meets {_esc(target)}.</p>')
    else:
        w = cells[rec.winner]
        r = w.result
        facts = []
        if r is not None:
            lat = _lat(w, rec.percentile)
            ci = _ci_text(w, rec.percentile)
            facts.append(
                f"{_pname(rec.percentile)} {fmt_number(lat)} ms"
                + (f" (95% CI {ci} ms)" if ci else "")
            )
            facts.append(f"{fmt_number(r.throughput_ips)} inferences/s")
            if r.cost_usd_per_million is not None:
                facts.append(f"${fmt_number(r.cost_usd_per_million)} per million")
            if r.energy_j_per_inference is not None:
                facts.append(f"{fmt_number(r.energy_j_per_inference)} J per inference")
        parts.append(
            f'<p class="verdict good">Recommended: <code>{_esc(w.id)}</code> meets {_esc(target)}'
            f"</p><p>{_esc(' · '.join(facts))}</p>"
        )
    lines = [
        ("objective", rec.objective),
        ("price profile", rec.profile or "none"),
        ("runners-up", ", ".join(rec.runners_up) or "none"),
        ("Pareto front", ", ".join(rec.pareto) or "—"),
    ]
    if rec.fleet is not None:
        f = rec.fleet
        fleet = f"{f.replicas} replicas for {f.qps:g} req/s (headroom {f.headroom:g})"
        if f.usd_per_hour is not None:
            fleet += f", ${fmt_number(f.usd_per_hour)} per hour"
        lines.append(("fleet", fleet))
    if rec.point_estimate_used:
        lines.append(("point estimate used", ", ".join(rec.point_estimate_used)))
    if rec.note:
        lines.append(("note", rec.note))
    parts.append("<table>")
    parts += [f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in lines]
    parts.append("</table>")
    if rec.rejected:
        parts.append(f"<details><summary>{len(rec.rejected)} configurations rejected</summary>")
        parts.append("<table><tr><th>configuration</th><th>why</th></tr>")
        parts += [
            f"<tr><td><code>{_esc(k)}</code></td><td>{_esc(v)}</td></tr>"
            for k, v in rec.rejected.items()
        ]
        parts.append("</table></details>")
    parts.append("</section>")
    return "\n".join(parts)


def _cells_table(report: Report) -> str:
    roles = cell_roles(report)
    key_p = _percentile(report)
    head = [
        "configuration",
        "load",
        "status",
        "throughput (inf/s)",
        "p50 (ms)",
        f"{_pname(key_p)} (ms)",
        f"{_pname(key_p)} 95% CI (ms)",
        "USD / million",
        "J / inference",
        "power (W)",
        "RSS (MB)",
    ]
    rows = ["<table><thead><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in head) + "</tr></thead>"]
    rows.append("<tbody>")
    for cell in report.cells:
        r = cell.result
        role = roles.get(cell.id)
        cls = "winner" if role == "winner" else f"status-{cell.status}"
        badge = f' <span class="badge {_esc(role or "")}">{_esc(role)}</span>' if role else ""
        status = f'<span class="badge {_esc(cell.status)}">{_esc(cell.status)}</span>'
        if cell.reason:
            status += f"<br><small>{_esc(cell.reason)}</small>"
        nums = ["", "", "", "", "", "", "", ""]
        if r is not None:
            nums = [
                fmt_number(r.throughput_ips),
                fmt_number(r.latency_ms.p50),
                fmt_number(_lat(cell, key_p)),
                _ci_text(cell, key_p),
                fmt_number(r.cost_usd_per_million),
                fmt_number(r.energy_j_per_inference),
                fmt_number(r.power_w),
                fmt_number(r.rss_mb),
            ]
        rows.append(
            f'<tr class="{_esc(cls)}"><td><code>{_esc(cell.id)}</code>{badge}</td>'
            f'<td class="load">{_esc(_load_text(cell))}</td><td>{status}</td>'
            + "".join(f'<td class="num">{_esc(n)}</td>' for n in nums)
            + "</tr>"
        )
    rows.append("</tbody></table>")
    return '<div class="cells">' + "\n".join(rows) + "</div>"


def _kv_table(title: str, items: list[tuple[str, object]]) -> str:
    rows = "".join(
        f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in items if v not in (None, "")
    )
    return f'<section class="card"><h3>{_esc(title)}</h3><table>{rows}</table></section>'


def _metadata_html(report: Report) -> str:
    h, m = report.host, report.model
    gpus = "; ".join(
        g.name
        + (f" ({g.memory_gb:g} GB)" if g.memory_gb else "")
        + (f", driver {g.driver}" if g.driver else "")
        for g in h.gpus
    )
    host = _kv_table(
        "Host",
        [
            ("hostname", h.hostname),
            ("OS", h.os),
            ("CPU", h.cpu_model),
            ("cores", f"{h.cpu_cores_logical} logical, {h.cpu_cores_physical or '?'} physical"),
            ("memory", f"{h.memory_gb:g} GB"),
            ("GPUs", gpus or "none"),
            ("python", h.python),
            ("onnxruntime", h.onnxruntime),
            ("providers", ", ".join(h.providers)),
        ],
    )

    def spec(t) -> str:
        return f"{t.name}: {t.dtype}[{', '.join(str(d) for d in t.shape)}]"

    items: list[tuple[str, object]] = [
        ("path", m.path),
        ("sha256", m.sha256),
        ("opset", m.opset),
        ("inputs", "; ".join(spec(t) for t in m.inputs)),
        ("outputs", "; ".join(spec(t) for t in m.outputs)),
        ("batch axis", m.batch),
    ]
    if report.profile:
        p = report.profile
        price = p.get("price_per_hour_usd")
        priced = f" (${price:g}/hour)" if isinstance(price, int | float) else ""
        items.append(("price profile", f"{p.get('name', '?')}{priced}"))
    if report.settings:
        items.append(("settings", ", ".join(f"{k}={v}" for k, v in report.settings.items())))
    model = _kv_table("Model and run", items)
    return f'<div class="meta">{host}{model}</div>'
