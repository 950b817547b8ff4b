"""A report as one self-contained HTML page: inline CSS and SVG plots, no scripts, no network.

The page lays out the recommendation, the plots (report/plots.py, drawn with report/svg.py),
the configurations table and the host and model metadata.
"""

from __future__ import annotations

from benchbox.format import (
    cell_roles,
    ci_label,
    fmt_gib,
    fmt_ms,
    fmt_ms_given,
    fmt_ms_range,
    fmt_number,
    load_text,
    percentile_label,
    report_confidence,
)
from benchbox.pricing import mismatch_text, pricing_lines
from benchbox.report.plots import (
    cdf_plot,
    cost_plot,
    latency_ms,
    plotted_percentile,
    throughput_plot,
)
from benchbox.report.svg import FONT, esc
from benchbox.schema import Cell, Report, to_dict

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
    key_p = plotted_percentile(report)
    body = [
        f"<h1>{esc(model_name)} on {esc(report.host.hostname)}</h1>",
        f'<p class="sub">{len(report.cells)} configurations measured'
        f"{' on ' + esc(report.created) if report.created else ''}"
        f" · benchbox {esc(report.benchbox_version or 'unknown')}</p>",
        "<h2>Recommendation</h2>",
        _recommendation_html(report),
        "<h2>Throughput and latency</h2>",
        _figure(
            throughput_plot(report),
            "Each line is one serving configuration as the load rises (more concurrency or a "
            f"higher request rate). Up and to the left is better. Hollow points are unstable. "
            f"The x axis is the {percentile_label(key_p)} latency.",
        ),
        "<h2>Cost</h2>",
        _pricing_html(report),
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
        f"<footer>Generated by benchbox from a {esc(report.schema)} report. "
        "This page is self-contained: it loads nothing from the network.</footer>",
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n"
        "<body>\n<main>\n" + "\n".join(body) + "\n</main>\n</body>\n</html>\n"
    )


def _figure(svg: str, caption: str) -> str:
    if not svg.startswith("<svg"):  # the plot's place says why there is no plot
        return svg
    return f"<figure>{svg}<figcaption>{esc(caption)}</figcaption></figure>"


def _ci_text(cell: Cell, key: str) -> str:
    ci = (cell.result.latency_ci_ms or {}).get(key) if cell.result else None
    if not ci:
        return ""
    return fmt_ms_range(ci[0], ci[1], " – ")


def _pricing_html(report: Report) -> str:
    """Which profile priced the page, and a warning when it describes other hardware."""
    lines = [line for line in pricing_lines(report) if line != mismatch_text(report)]
    parts = [f"<p>{esc(line)}</p>" for line in lines]
    other = mismatch_text(report)
    if other is not None:
        parts.insert(0, f'<p class="verdict bad">{esc(other)}</p>')
    return f'<section class="card">{"".join(parts)}</section>' if parts else ""


def _recommendation_html(report: Report) -> str:
    rec = report.recommendation
    if rec is None:
        return (
            '<section class="card"><p class="verdict">This report holds no recommendation.</p>'
            "<p>Ask for one with <code>benchbox recommend REPORT --latency-target p99=20ms</code>."
            "</p></section>"
        )
    cells = {c.id: c for c in report.cells}
    target = f"{percentile_label(rec.percentile)} ≤ {fmt_ms_given(rec.target_ms)}"
    parts = ['<section class="card">']
    if rec.winner is None or rec.winner not in cells:
        parts.append(f'<p class="verdict bad">No configuration meets {esc(target)}.</p>')
    else:
        w = cells[rec.winner]
        r = w.result
        facts = []
        if r is not None:
            lat = latency_ms(w, rec.percentile)
            ci = _ci_text(w, rec.percentile)
            facts.append(
                f"{percentile_label(rec.percentile)} {fmt_ms(lat)}"
                + (f" ({ci_label(r.confidence)} {ci})" if ci else "")
            )
            facts.append(f"{fmt_number(r.throughput_ips)} inferences/s")
            if r.cost_usd_per_million is not None:
                facts.append(f"${fmt_number(r.cost_usd_per_million)} per million")
            if r.energy_j_per_inference is not None:
                facts.append(f"{fmt_number(r.energy_j_per_inference)} J per inference")
        parts.append(
            f'<p class="verdict good">Recommended: <code>{esc(w.id)}</code> meets {esc(target)}'
            f"</p><p>{esc(' · '.join(facts))}</p>"
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
    parts += [f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in lines]
    parts.append("</table>")
    if rec.rejected:
        parts.append(f"<details><summary>{len(rec.rejected)} configurations rejected</summary>")
        parts.append("<table><tr><th>configuration</th><th>why</th></tr>")
        parts += [
            f"<tr><td><code>{esc(k)}</code></td><td>{esc(v)}</td></tr>"
            for k, v in rec.rejected.items()
        ]
        parts.append("</table></details>")
    parts.append("</section>")
    return "\n".join(parts)


def _cells_table(report: Report) -> str:
    roles = cell_roles(report)
    key_p = plotted_percentile(report)
    head = [
        "configuration",
        "load",
        "status",
        "throughput (inf/s)",
        "p50",
        f"{percentile_label(key_p)}",
        f"{percentile_label(key_p)} {ci_label(report_confidence(report))}",
        "USD / million",
        "J / inference",
        "power (W)",
        "RSS (MiB)",
    ]
    rows = ["<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr></thead>"]
    rows.append("<tbody>")
    for cell in report.cells:
        r = cell.result
        role = roles.get(cell.id)
        cls = "winner" if role == "winner" else f"status-{cell.status}"
        badge = f' <span class="badge {esc(role or "")}">{esc(role)}</span>' if role else ""
        status = f'<span class="badge {esc(cell.status)}">{esc(cell.status)}</span>'
        if cell.reason:
            status += f"<br><small>{esc(cell.reason)}</small>"
        nums = ["", "", "", "", "", "", "", ""]
        if r is not None:
            nums = [
                fmt_number(r.throughput_ips),
                fmt_ms(r.latency_ms.p50),
                fmt_ms(latency_ms(cell, key_p)),
                _ci_text(cell, key_p),
                fmt_number(r.cost_usd_per_million),
                fmt_number(r.energy_j_per_inference),
                fmt_number(r.power_w),
                fmt_number(r.rss_mb),
            ]
        rows.append(
            f'<tr class="{esc(cls)}"><td><code>{esc(cell.id)}</code>{badge}</td>'
            f'<td class="load">{esc(load_text(cell))}</td><td>{status}</td>'
            + "".join(f'<td class="num">{esc(n)}</td>' for n in nums)
            + "</tr>"
        )
    rows.append("</tbody></table>")
    return '<div class="cells">' + "\n".join(rows) + "</div>"


def _kv_table(title: str, items: list[tuple[str, object]]) -> str:
    rows = "".join(
        f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in items if v not in (None, "")
    )
    return f'<section class="card"><h3>{esc(title)}</h3><table>{rows}</table></section>'


def _metadata_html(report: Report) -> str:
    h, m = report.host, report.model
    gpus = "; ".join(
        g.name
        + (f" ({fmt_gib(g.memory_gb)})" if g.memory_gb else "")
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
            ("memory", fmt_gib(h.memory_gb)),
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
        ("sha256", m.sha256 or "none: the model was read from the server"),
        ("opset", m.opset),
        ("inputs", "; ".join(spec(t) for t in m.inputs)),
        ("outputs", "; ".join(spec(t) for t in m.outputs)),
        ("batch axis", m.batch),
    ]
    if report.profile:
        p = report.profile
        items.append(("price profile", f"{p.name} (${p.price_per_hour_usd:g}/hour)"))
    if report.settings:
        settings = to_dict(report.settings).items()
        items.append(("settings", ", ".join(f"{k}={v}" for k, v in settings)))
    model = _kv_table("Model and run", items)
    return f'<div class="meta">{host}{model}</div>'
