"""Every report view labels CIs with their real level and memory with its binary unit."""

from __future__ import annotations

import dataclasses
import io
import re

import pytest
from fixtures_reports import make_report, simple_recommendation
from rich.console import Console

from benchbox import schema
from benchbox.format import (
    ci_label,
    common_confidence,
    fmt_gib,
    fmt_mib,
    fmt_ms,
    fmt_number,
    percentile_label,
    report_confidence,
)
from benchbox.report.html import render_html
from benchbox.report.recommend_view import render_recommendation
from benchbox.report.render import render_cell_detail, render_report
from benchbox.report.tabular import to_markdown


def _at_confidence(report: schema.Report, level: float) -> schema.Report:
    cells = tuple(
        dataclasses.replace(c, result=dataclasses.replace(c.result, confidence=level))
        if c.result is not None
        else c
        for c in report.cells
    )
    report = dataclasses.replace(report, cells=cells)
    return dataclasses.replace(report, recommendation=simple_recommendation(report, 20.0))


@pytest.fixture(scope="module")
def report99() -> schema.Report:
    # no failed cell: its reason ("out of memory allocating 1.2 GB") is text, not a label
    return _at_confidence(make_report(seed=3, include_failed=False), 0.99)


def _terminal(report: schema.Report) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=220, color_system=None)
    render_report(report, console)
    render_recommendation(report, report.recommendation, console)
    measured = next(c for c in report.cells if c.result is not None)
    render_cell_detail(report, measured, console)
    return buf.getvalue()


def test_ci_label_says_the_level_it_was_computed_at() -> None:
    assert ci_label(0.95) == "95% CI"
    assert ci_label(0.99) == "99% CI"
    assert ci_label(0.999) == "99.9% CI"
    assert ci_label(0.9) == "90% CI"
    assert ci_label(None) == "CI"


def test_a_column_of_mixed_levels_names_no_level() -> None:
    assert common_confidence([0.99, None, 0.99]) == 0.99
    assert common_confidence([0.95, 0.99]) is None
    assert common_confidence([None]) is None


def test_no_view_prints_95_percent_when_the_cis_are_99_percent(report99) -> None:
    assert report_confidence(report99) == 0.99
    views = {
        "terminal": _terminal(report99),
        "html": render_html(report99),
        "markdown": to_markdown(report99),
    }
    for name, text in views.items():
        assert "95%" not in text, name
        assert "99% CI" in text, name


def test_memory_is_labelled_in_binary_units_everywhere(report99) -> None:
    assert fmt_mib(186.4) == "186 MiB" and fmt_gib(31.25) == "31.2 GiB"
    assert fmt_mib(None) == "—" and fmt_gib(None) == "—"
    for name, text in (
        ("terminal", _terminal(report99)),
        ("html", render_html(report99)),
        ("markdown", to_markdown(report99)),
    ):
        assert not re.search(r"\d ?GB\b|\bRSS \(?MB\b|\d MB RSS|RSS \d+ MB", text), name
    page = render_html(report99)
    host = report99.host
    assert f"<td>{fmt_gib(host.memory_gb)}</td>" in page
    assert "RSS (MiB)" in page and "RSS (MiB)" in to_markdown(report99)


def test_one_number_formatter_in_both_of_its_modes() -> None:
    assert fmt_number(1974.44) == "1,974" and fmt_number(1974.44, 1) == "1,974.4"
    assert fmt_number(None) == "" and fmt_number(None, 1, "—") == "—"
    assert fmt_ms(0.05) == "50.0 µs" and fmt_ms(12.34) == "12.3 ms" and fmt_ms(None) == "—"
    assert percentile_label("p99_9") == "p99.9"
