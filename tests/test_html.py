"""The self-contained HTML report: its plots as data, and the page in a real headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_reports import make_report

from benchbox import schema
from benchbox.report import html as bhtml
from benchbox.report import plots
from benchbox.report import svg as bsvg
from benchbox.report.tabular import export_table

SCREENSHOT_COPY = Path("/tmp/benchbox-html-screenshot.png")


@pytest.fixture(scope="module")
def report() -> schema.Report:
    return make_report(seed=3, rates_rps=(100.0, 200.0, 400.0))


def _svgs(page: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", page, flags=re.S)


def _measured(report: schema.Report) -> list[schema.Cell]:
    return [c for c in report.cells if c.status in ("ok", "unstable") and c.result is not None]


# ---------------------------------------------------------------- the page as text


def test_the_page_is_self_contained_with_no_scripts_or_external_resources(report) -> None:
    page = bhtml.render_html(report)
    assert page.startswith("<!DOCTYPE html>")
    lowered = page.lower()
    assert "<script" not in lowered
    assert " src=" not in lowered and "@import" not in lowered and "url(http" not in lowered
    # The only URL is the SVG namespace, which is a name and never fetched.
    urls = set(re.findall(r"https?://[^\s\"')<>]+", page))
    assert urls == {"http://www.w3.org/2000/svg"}
    assert '<link rel="icon" href="data:,">' in page  # no favicon request either


def test_three_plots_each_with_marks_for_every_measured_cell(report) -> None:
    page = bhtml.render_html(report)
    svgs = _svgs(page)
    assert len(svgs) == 3
    throughput, cost, cdf = svgs
    measured = _measured(report)
    assert throughput.count('class="point"') == len(measured)
    # One line per (device, batch, instances, threads, load kind): 2 devices x 2 batches x 2 kinds.
    assert throughput.count('class="series"') == 8
    assert cost.count('class="point"') == len(measured)
    assert cdf.count('class="series"') == 1 + len(report.recommendation.runners_up)
    for svg in svgs:
        assert "(ms" in svg  # every plot has latency in ms on an axis


def test_axes_are_labelled_with_units(report) -> None:
    throughput, cost, cdf = _svgs(bhtml.render_html(report))
    assert "throughput (inferences/s" in throughput and "p99 latency (ms" in throughput
    assert "cost (USD per million inferences" in cost
    assert "latency (ms, log scale)" in cdf and "requests completed within (%)" in cdf


def test_the_latency_target_is_drawn_where_the_recommendation_puts_it(report) -> None:
    throughput, cost, cdf = _svgs(bhtml.render_html(report))
    for svg in (throughput, cost, cdf):
        assert "p99 target 20 ms" in svg
        assert 'class="ref"' in svg
    none = bhtml.render_html(schema.replace(report, recommendation=None))
    assert "target" not in _svgs(none)[0]


def test_throughput_series_run_in_load_order(report) -> None:
    svg = plots.throughput_plot(report)
    # The tooltip of each point names its load; along the cpu b1 closed line they must rise.
    tips = re.findall(r"<title>(cpu/t2/i1/b1/closed-c\d+): concurrency (\d+)", svg)
    assert [int(c) for _, c in tips] == [1, 2, 4, 8]


def test_the_pareto_front_is_a_step_line_through_the_recommended_front(report) -> None:
    svg = plots.cost_plot(report)
    front = [c for c in report.recommendation.pareto if c in {m.id for m in _measured(report)}]
    line = re.search(r'<polyline class="series" points="([^"]+)"', svg).group(1)
    # A step line has two vertices per front point after the first.
    assert len(line.split()) == 2 * len(front) - 1
    assert f"recommended: {report.recommendation.winner}" in svg
    assert svg.count('class="mark"') == 1


def test_without_a_recommendation_the_front_is_computed_and_the_cdfs_are_the_fastest() -> None:
    report = make_report(seed=4, target_ms=None)
    measured = _measured(report)
    front = plots.pareto_front(measured, "p99")
    costs = [c.result.cost_usd_per_million for c in front]
    assert costs == sorted(costs, reverse=True)  # each step right is cheaper
    for cell in measured:  # nothing off the front beats a front cell on both axes
        if cell in front:
            continue
        assert any(
            f.result.latency_ms.p99 <= cell.result.latency_ms.p99
            and f.result.cost_usd_per_million <= cell.result.cost_usd_per_million
            for f in front
        )
    fastest = sorted(measured, key=lambda c: c.result.latency_ms.p99)[:3]
    assert plots.cdf_cells(report) == fastest
    page = bhtml.render_html(report)
    assert "holds no recommendation" in page
    assert 'class="mark"' not in page


def test_without_prices_the_cost_plot_says_so() -> None:
    report = make_report(seed=5, price_per_hour_usd=None, target_ms=None)
    page = bhtml.render_html(report)
    assert len(_svgs(page)) == 2
    assert "No cost: this report has no price profile" in page


def test_a_report_with_nothing_measured_still_renders() -> None:
    report = make_report(seed=6)
    cells = tuple(
        schema.replace(c, status="failed", reason="no EP", result=None) for c in report.cells
    )
    page = bhtml.render_html(schema.replace(report, cells=cells, recommendation=None))
    assert _svgs(page) == []
    assert page.count('class="noplot"') == 3


def test_text_from_the_report_is_escaped() -> None:
    report = make_report(seed=8, hostname="<img src=x onerror=alert(1)>")
    page = bhtml.render_html(report)
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_ticks_are_round_numbers_covering_the_data() -> None:
    lo, hi, ticks = bsvg.linear_ticks(0.0, 93.0)
    assert lo == 0 and hi >= 93 and ticks[:3] == [0, 20, 40]
    lo, hi, ticks = bsvg.log_ticks(1.7, 430.0)
    assert lo == 1 and hi == 500 and ticks[:4] == [1, 2, 5, 10]
    assert bsvg.log_ticks(0.03, 4000.0)[2] == [0.02, 0.1, 1, 10, 100, 1000, 5000]
    assert bsvg.tick_label(25000) == "25k" and bsvg.tick_label(0.25) == "0.25"


def test_export_table_html_writes_the_page(report, tmp_path) -> None:
    path = export_table(report, "html", tmp_path / "r.html")
    assert path.read_text() == bhtml.render_html(report)


# ---------------------------------------------------------------- a real browser


def _chromium() -> str:
    """Debian's chromium, installed with apt-get when missing; skip only when that fails."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip("chromium is missing and cannot be installed here (needs apt-get as root)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    steps = (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"])
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            pytest.skip(f"chromium could not be installed ({' '.join(cmd)}: {tail[0]})")
    found = shutil.which("chromium")
    if not found:
        pytest.skip("apt-get installed chromium but no `chromium` is on PATH")
    return found


def _playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        cmd = [sys.executable, "-m", "pip", "install", "-q", "playwright"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            pytest.skip("playwright (the Chromium driver) is missing and pip could not install it")
        from playwright.sync_api import sync_playwright
    return sync_playwright


_PLOT_PROBE = """
() => [...document.querySelectorAll('svg.plot')].map(svg => {
  const box = svg.getBoundingClientRect();
  const marks = [...svg.querySelectorAll('circle.point, polyline.series')]
    .filter(el => { const b = el.getBBox(); return b.width > 0 || b.height > 0; }).length;
  const texts = [...svg.querySelectorAll('text')].map(t => {
    const b = t.getBoundingClientRect();
    return {text: t.textContent, l: b.left, r: b.right, t: b.top, b: b.bottom};
  });
  const overlaps = [];
  for (let i = 0; i < texts.length; i++) for (let j = i + 1; j < texts.length; j++) {
    const a = texts[i], c = texts[j];
    if (a.l < c.r - 1 && c.l < a.r - 1 && a.t < c.b - 1 && c.t < a.b - 1)
      overlaps.push(a.text + ' / ' + c.text);
  }
  const outside = texts.filter(t => t.l < box.left - 1 || t.r > box.right + 1 ||
                                    t.t < box.top - 1 || t.b > box.bottom + 1).map(t => t.text);
  return {label: svg.getAttribute('aria-label'), width: box.width, height: box.height,
          marks, overlaps, outside};
})
"""


def test_the_page_renders_in_headless_chromium_offline_and_looks_complete(report, tmp_path):
    chromium = _chromium()
    sync_playwright = _playwright()
    page_path = export_table(report, "html", tmp_path / "report.html")
    url = page_path.resolve().as_uri()
    requests: list[str] = []
    errors: list[str] = []
    shot = tmp_path / "report.png"
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=chromium,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
            viewport={"width": 1200, "height": 900},
        )
        try:
            context.on("request", lambda r: requests.append(r.url))
            page = context.pages[0] if context.pages else context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url, wait_until="networkidle")
            title = page.title()
            plots = page.evaluate(_PLOT_PROBE)
            rows = page.evaluate("document.querySelectorAll('.cells tbody tr').length")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            context.close()

    assert errors == []
    assert [u for u in requests if u != url] == []  # the page itself, nothing else
    assert title == "benchbox: resnet-tiny.onnx on bench-a"
    assert rows == len(report.cells)
    assert [p["label"] for p in plots] == [
        "Throughput against latency as load rises",
        "Cost per million inferences against latency",
        "Latency distribution (CDF)",
    ]
    for p in plots:
        assert p["width"] > 600 and p["height"] > 300, p
        assert p["marks"] > 0, p
        assert p["overlaps"] == [], p
        assert p["outside"] == [], p
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    shutil.copyfile(shot, SCREENSHOT_COPY)
