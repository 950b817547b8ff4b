"""A small SVG chart library: scales, ticks, lines, markers, reference lines and a legend.

Everything is computed in Python and written as inline SVG (no scripts, no fonts to load), so
a page that embeds the charts is self-contained. `svg_plot` draws one chart; the report's plots
(report/plots.py) are built on it.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

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


def esc(x: object) -> str:
    """Text made safe for SVG/HTML text and attribute values."""
    return html.escape(str(x), quote=True)


def _f(v: float) -> str:
    return f"{v:.1f}"


@dataclass(frozen=True)
class _Frame:
    """One chart's geometry: the SVG size, the plot area's edges, its scales and ticks."""

    width: int
    height: int
    plot_w: float
    plot_h: float
    x0: float  # left edge of the plot area
    x1: float  # right edge
    y0: float  # bottom edge (y grows downwards in SVG)
    y1: float  # top edge
    sx: _Scale
    sy: _Scale
    x_log: bool
    y_log: bool
    xt: list[float]
    yt: list[float]
    clip: str

    def visible(self, x: float, y: float) -> bool:
        """Whether a point can be drawn (a log axis cannot show values <= 0)."""
        return (not self.x_log or x > 0) and (not self.y_log or y > 0)


_LEFT, _RIGHT, _TOP, _BOTTOM_AXIS = 74, 24, 34, 52


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
    legend_rows, legend_h = _legend_layout(series, width - _LEFT - _RIGHT)
    height = _TOP + plot_height + _BOTTOM_AXIS + legend_h
    frame = _frame(
        series, refs, x_log, y_log, y_zero, y_range, y_ticks, (width, plot_height, height), plot_id
    )
    out = _open(frame, title)
    out += _grid_and_axes(frame)
    out += _axis_labels(frame, title, x_label, y_label)
    out += _ref_lines(frame, refs)
    out += _data(frame, series)
    out += _marks(frame, series, marks)
    out += _legend(legend_rows, _LEFT, _TOP + plot_height + _BOTTOM_AXIS + 4)
    out.append("</svg>")
    return "\n".join(out)


def _frame(
    series: Sequence[Series],
    refs: Sequence[RefLine],
    x_log: bool | None,
    y_log: bool | None,
    y_zero: bool,
    y_range: tuple[float, float] | None,
    y_ticks: list[float] | None,
    size: tuple[int, int, int],
    plot_id: str,
) -> _Frame:
    """Axes from the data and the reference lines: log or linear, ranges, ticks, scales.

    `size` is (SVG width, plot area height, SVG height).
    """
    width, plot_height, height = size
    pts = [p for s in series for p in s.points]
    xs = [p[0] for p in pts] + [r.value for r in refs if r.axis == "x"]
    ys = [p[1] for p in pts] + [r.value for r in refs if r.axis == "y"]
    x_log = _auto_log(xs) if x_log is None else x_log
    y_log = _auto_log(ys) if y_log is None else y_log
    xs = [x for x in xs if x > 0] if x_log else xs
    ys = [y for y in ys if y > 0] if y_log else ys

    plot_w = width - _LEFT - _RIGHT
    x0, x1, y0, y1 = _LEFT, _LEFT + plot_w, _TOP + plot_height, _TOP
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
    return _Frame(
        width=width,
        height=height,
        plot_w=plot_w,
        plot_h=plot_height,
        x0=x0,
        x1=x1,
        y0=y0,
        y1=y1,
        sx=_Scale(xlo, xhi, x_log, x0, x1),
        sy=_Scale(ylo, yhi, y_log, y0, y1),
        x_log=x_log,
        y_log=y_log,
        xt=xt,
        yt=yt,
        clip=f"clip-{plot_id}",
    )


def _open(fr: _Frame, title: str) -> list[str]:
    """The <svg> element, its title, the clip path and the plot area's background."""
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {fr.width} {fr.height}" '
        f'width="{fr.width}" height="{fr.height}" role="img" aria-label="{esc(title)}" '
        f'font-family="{esc(FONT)}" font-size="12" class="plot">',
        f"<title>{esc(title)}</title>",
        f'<defs><clipPath id="{fr.clip}"><rect x="{fr.x0 - 6}" y="{fr.y1 - 6}" '
        f'width="{fr.plot_w + 12}" height="{fr.plot_h + 12}"/></clipPath></defs>',
        f'<rect x="{fr.x0}" y="{fr.y1}" width="{fr.plot_w}" height="{fr.plot_h}" fill="#fff"/>',
    ]


def _grid_and_axes(fr: _Frame) -> list[str]:
    """Grid lines, the two axes, tick marks and tick labels (thinned so they do not collide)."""
    sx, sy, x0, x1, y0, y1 = fr.sx, fr.sy, fr.x0, fr.x1, fr.y0, fr.y1
    out = ['<g class="grid" stroke="#e8e8e8">']
    out += [f'<line x1="{_f(sx(t))}" y1="{y1}" x2="{_f(sx(t))}" y2="{y0}"/>' for t in fr.xt]
    out += [f'<line x1="{x0}" y1="{_f(sy(t))}" x2="{x1}" y2="{_f(sy(t))}"/>' for t in fr.yt]
    out.append("</g>")
    out.append('<g class="axes" stroke="#333" shape-rendering="crispEdges">')
    out.append(f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}"/>')
    out.append(f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}"/>')
    out += [f'<line x1="{_f(sx(t))}" y1="{y0}" x2="{_f(sx(t))}" y2="{y0 + 5}"/>' for t in fr.xt]
    out += [f'<line x1="{x0 - 5}" y1="{_f(sy(t))}" x2="{x0}" y2="{_f(sy(t))}"/>' for t in fr.yt]
    out.append("</g>")
    out.append('<g class="tick-labels" fill="#333">')
    for t in _thin(fr.xt, sx, 46):
        out.append(
            f'<text x="{_f(sx(t))}" y="{y0 + 19}" text-anchor="middle">{tick_label(t)}</text>'
        )
    for t in _thin(fr.yt, sy, 16):
        out.append(
            f'<text x="{x0 - 9}" y="{_f(sy(t) + 4)}" text-anchor="end">{tick_label(t)}</text>'
        )
    out.append("</g>")
    return out


def _axis_labels(fr: _Frame, title: str, x_label: str, y_label: str) -> list[str]:
    """The axis titles (with `log scale` on a log axis) and the chart's title."""
    cy = (fr.y0 + fr.y1) / 2
    return [
        f'<text x="{(fr.x0 + fr.x1) / 2:.1f}" y="{fr.y0 + 42}" text-anchor="middle" '
        f'font-size="13" fill="#111">{esc(_log_label(x_label, fr.x_log))}</text>',
        f'<text x="16" y="{cy:.1f}" text-anchor="middle" font-size="13" fill="#111" '
        f'transform="rotate(-90 16 {cy:.1f})">{esc(_log_label(y_label, fr.y_log))}</text>',
        f'<text x="{fr.x0}" y="20" font-size="14" font-weight="600" fill="#111">'
        f"{esc(title)}</text>",
    ]


def _ref_lines(fr: _Frame, refs: Sequence[RefLine]) -> list[str]:
    """Dashed reference lines with their labels (a target, a percentile level)."""
    out = []
    for r in refs:
        if r.axis == "x":
            x = fr.sx(r.value)
            anchor, dx = ("end", -5) if x > fr.x0 + fr.plot_w * 0.7 else ("start", 5)
            out.append(
                f'<line class="ref" x1="{_f(x)}" y1="{fr.y1}" x2="{_f(x)}" y2="{fr.y0}" '
                f'stroke="{r.color}" stroke-width="1.5" stroke-dasharray="5 4"/>'
            )
            ty = fr.y1 + 14 if r.label_at == "top" else fr.y0 - 8
            out.append(
                f'<text class="halo" x="{_f(x + dx)}" y="{ty}" text-anchor="{anchor}" '
                f'fill="{r.color}">{esc(r.label)}</text>'
            )
        else:
            y = fr.sy(r.value)
            out.append(
                f'<line class="ref" x1="{fr.x0}" y1="{_f(y)}" x2="{fr.x1}" y2="{_f(y)}" '
                f'stroke="{r.color}" stroke-width="1" stroke-dasharray="3 4"/>'
            )
            out.append(
                f'<text class="halo" x="{fr.x0 + 6}" y="{_f(y + 15)}" fill="{r.color}">'
                f"{esc(r.label)}</text>"
            )
    return out


def _data(fr: _Frame, series: Sequence[Series]) -> list[str]:
    """Each series' line (plain or stepped) and markers, clipped to the plot area."""
    out = [f'<g clip-path="url(#{fr.clip})">']
    for s in series:
        pts_s = [(x, y) for x, y in s.points if fr.visible(x, y)]
        if s.line and len(pts_s) > 1:
            coords = _step(pts_s) if s.step else pts_s
            path = " ".join(f"{_f(fr.sx(x))},{_f(fr.sy(y))}" for x, y in coords)
            dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
            out.append(
                f'<polyline class="series" points="{path}" fill="none" stroke="{s.color}" '
                f'stroke-width="2" stroke-linejoin="round"{dash}/>'
            )
        if s.markers:
            for i, (x, y) in enumerate(s.points):
                if not fr.visible(x, y):
                    continue
                hollow = i < len(s.hollow) and s.hollow[i]
                fill = "#fff" if hollow else s.color
                tip = f"<title>{esc(s.titles[i])}</title>" if i < len(s.titles) else ""
                out.append(
                    f'<circle class="point" cx="{_f(fr.sx(x))}" cy="{_f(fr.sy(y))}" r="3.6" '
                    f'fill="{fill}" stroke="{s.color}" stroke-width="1.5">{tip}</circle>'
                )
    out.append("</g>")
    return out


def _marks(fr: _Frame, series: Sequence[Series], marks: Sequence[Mark]) -> list[str]:
    """Ringed, labelled points on top; each label goes where it covers the fewest points."""
    drawn = [(fr.sx(x), fr.sy(y)) for s in series for x, y in s.points if fr.visible(x, y)]
    out = []
    for m in marks:
        mx, my = fr.sx(m.x), fr.sy(m.y)
        anchor, dx, dy = _label_spot(m.label, mx, my, drawn, (fr.x0, fr.x1, fr.y1, fr.y0))
        out.append(
            f'<circle class="mark" cx="{_f(mx)}" cy="{_f(my)}" r="9" fill="none" stroke="#111" '
            f'stroke-width="2"/>'
        )
        out.append(
            f'<text class="halo" x="{_f(mx + dx)}" y="{_f(my + dy)}" text-anchor="{anchor}" '
            f'font-weight="600" fill="#111">{esc(m.label)}</text>'
        )
    return out


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
            out.append(f'<text x="{x + 28:.1f}" y="{y + 4:.1f}" fill="#222">{esc(s.label)}</text>')
    out.append("</g>")
    return out


def no_plot(title: str, message: str) -> str:
    """The plot's place when there is nothing to draw: the title and why."""
    return (
        f'<div class="noplot"><div class="noplot-title">{esc(title)}</div>'
        f"<p>{esc(message)}</p></div>"
    )
