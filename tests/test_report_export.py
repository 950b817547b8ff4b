"""The flat cell table and its exports (CSV, Parquet, Markdown), and `benchbox report`."""

from __future__ import annotations

import json
import math
import sys

import pandas as pd
import pytest
from fixtures_reports import make_report

from benchbox import schema, store
from benchbox.cli import main
from benchbox.errors import BadInput
from benchbox.format import fmt_number
from benchbox.report.tabular import cells_frame, export_table, to_markdown


@pytest.fixture(scope="module")
def report() -> schema.Report:
    return make_report(seed=7, rates_rps=(100.0, 400.0))


def _cell(report: schema.Report, cid: str) -> schema.Cell:
    return next(c for c in report.cells if c.id == cid)


# ---------------------------------------------------------------- the frame


def test_cells_frame_has_one_row_per_cell_with_units_in_the_column_names(report) -> None:
    frame = cells_frame(report)
    assert len(frame) == len(report.cells)
    for col in (
        "p99_ms",
        "p99_ci_lo_ms",
        "p99_ci_hi_ms",
        "throughput_ips",
        "cost_usd_per_million",
        "power_w",
        "rss_mb",
        "energy_j_per_inference",
        "device",
        "batch_size",
        "intra_op_threads",
        "instances",
        "load_kind",
        "concurrency",
        "rate_rps",
        "status",
        "reason",
    ):
        assert col in frame.columns, col
    row = frame.set_index("id").loc["cuda:0/t2/i1/b8/closed-c4"]
    cell = _cell(report, "cuda:0/t2/i1/b8/closed-c4")
    assert row["p99_ms"] == cell.result.latency_ms.p99
    assert row["p50_ms"] == cell.result.latency_ms.p50
    assert [row["p99_ci_lo_ms"], row["p99_ci_hi_ms"]] == cell.result.latency_ci_ms["p99"]
    assert row["throughput_ips"] == cell.result.throughput_ips
    assert row["cost_usd_per_million"] == cell.result.cost_usd_per_million
    assert row["device"] == "cuda:0" and row["batch_size"] == 8 and row["concurrency"] == 4
    assert row["load_kind"] == "closed" and math.isnan(row["rate_rps"])


def test_open_loop_rows_carry_the_rate_and_failed_rows_the_reason(report) -> None:
    frame = cells_frame(report).set_index("id")
    open_row = frame.loc["cpu/t2/i1/b1/open-r400-c16"]
    assert open_row["load_kind"] == "open" and open_row["rate_rps"] == 400.0
    failed = frame.loc["cuda:0/t2/i1/b64/closed-c8"]
    assert failed["status"] == "failed"
    assert failed["reason"].startswith("out of memory")
    assert math.isnan(failed["throughput_ips"]) and math.isnan(failed["p99_ms"])


def test_the_recommendation_shows_as_a_role_column(report) -> None:
    frame = cells_frame(report).set_index("id")
    rec = report.recommendation
    assert frame.loc[rec.winner, "role"] == "winner"
    for cid in rec.runners_up:
        assert frame.loc[cid, "role"] == "runner-up"
    assert (frame["role"] == "winner").sum() == 1


# ---------------------------------------------------------------- files


def test_csv_round_trips_the_numbers(report, tmp_path) -> None:
    path = export_table(report, "csv", tmp_path / "r.csv")
    back = pd.read_csv(path)
    frame = cells_frame(report)
    assert list(back.columns) == list(frame.columns)
    assert back["id"].tolist() == frame["id"].tolist()
    assert back["p99_ms"].tolist() == pytest.approx(frame["p99_ms"].tolist(), nan_ok=True)
    assert back["batch_size"].tolist() == frame["batch_size"].tolist()


def test_parquet_round_trips_with_typed_columns(report, tmp_path) -> None:
    pytest.importorskip("pyarrow", reason="pyarrow is the optional 'parquet' extra")
    path = export_table(report, "parquet", tmp_path / "r.parquet")
    back = pd.read_parquet(path)
    assert len(back) == len(report.cells)
    assert back["p99_ms"].dtype == "float64"
    assert str(back["concurrency"].dtype) == "Int64"
    row = back.set_index("id").loc["cpu/t2/i1/b8/closed-c2"]
    assert row["p99_ms"] == _cell(report, "cpu/t2/i1/b8/closed-c2").result.latency_ms.p99


def test_parquet_without_pyarrow_says_which_extra_to_install(report, tmp_path, monkeypatch):
    # makes `import pyarrow.parquet` fail; pyarrow itself stays, since pandas may already hold
    # arrow-backed strings when another test in this worker imported pyarrow first
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(BadInput) as exc:
        export_table(report, "parquet", tmp_path / "r.parquet")
    assert exc.value.hint == "pip install 'benchbox[parquet]'"
    assert not (tmp_path / "r.parquet").exists()


def test_unknown_format_is_bad_input(report, tmp_path) -> None:
    with pytest.raises(BadInput, match="unknown export format 'xlsx'"):
        export_table(report, "xlsx", tmp_path / "r.xlsx")


def test_markdown_is_a_github_table_with_one_row_per_cell(report) -> None:
    text = to_markdown(report)
    lines = text.strip().splitlines()
    assert len(lines) == len(report.cells) + 2
    header = [h.strip() for h in lines[0].strip("|").split("|")]
    assert header[:4] == ["cell", "role", "status", "throughput (inf/s)"]
    assert "USD / million" in header
    assert set(lines[1].replace("|", "").split()) <= {"---", "---:"}
    assert all(line.count("|") == lines[0].count("|") for line in lines)
    winner = report.recommendation.winner
    row = next(line for line in lines if f"`{winner}`" in line)
    cell = _cell(report, winner)
    assert "| winner |" in row
    assert f"| {fmt_number(cell.result.latency_ms.p99)} |" in row


def test_markdown_leaves_out_empty_columns_and_escapes_pipes() -> None:
    report = make_report(price_per_hour_usd=None, with_power=False, target_ms=None)
    cells = list(report.cells)
    cells[-1] = schema.replace(cells[-1], reason="bad | shape")
    text = to_markdown(schema.replace(report, cells=tuple(cells)))
    assert "USD / million" not in text and "power (W)" not in text and "role" not in text
    assert "bad \\| shape" in text


def test_fmt_number_reads_like_people_write_numbers() -> None:
    assert fmt_number(12345.6) == "12,346"
    assert fmt_number(123.45) == "123.5"
    assert fmt_number(12.345) == "12.35"
    assert fmt_number(0.012345) == "0.0123"
    assert fmt_number(8) == "8"
    assert fmt_number(None) == "" and fmt_number(float("nan")) == ""


# ---------------------------------------------------------------- the command line


def _cli(args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["benchbox", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_export_writes_next_to_the_report_by_default(report, tmp_path, monkeypatch, capsys):
    path = store.save_report(report, tmp_path / "sweep-1.json")
    for fmt, suffix in (("csv", ".csv"), ("md", ".md"), ("html", ".html")):
        code, _, err = _cli(["report", "export", str(path), "--format", fmt], monkeypatch, capsys)
        assert code == 0, err
        assert (tmp_path / f"sweep-1{suffix}").exists()
    assert pd.read_csv(tmp_path / "sweep-1.csv").shape[0] == len(report.cells)
    assert (tmp_path / "sweep-1.html").read_text().startswith("<!DOCTYPE html>")
    out = tmp_path / "sub" / "table.md"
    code, _, _ = _cli(
        ["report", "export", str(path), "--format", "md", "--out", str(out)], monkeypatch, capsys
    )
    assert code == 0 and out.read_text() == to_markdown(report)


def test_cli_export_bad_format_or_missing_file_exits_2(report, tmp_path, monkeypatch, capsys):
    path = store.save_report(report, tmp_path / "r.json")
    code, _, err = _cli(["report", "export", str(path), "--format", "xlsx"], monkeypatch, capsys)
    assert code == 2 and "unknown export format" in err
    code, _, err = _cli(
        ["report", "export", str(tmp_path / "nope.json"), "--format", "csv"], monkeypatch, capsys
    )
    assert code == 2 and "does not exist" in err and "Traceback" not in err


def test_cli_list_shows_each_report_with_its_best_configuration(tmp_path, monkeypatch, capsys):
    a = make_report(seed=1, created="2025-05-01T12:00:00Z")
    b = make_report(seed=2, hostname="bench-b", target_ms=None, created="2025-05-02T09:30:00Z")
    store.save_report(a, tmp_path / "a.json")
    store.save_report(b, tmp_path / "b.json")
    (tmp_path / "notes.json").write_text('{"not": "a report"}')
    code, out, _ = _cli(["report", "list", str(tmp_path), "--json"], monkeypatch, capsys)
    rows = json.loads(out)
    assert code == 0 and [r["host"] for r in rows] == ["bench-b", "bench-a"]  # newest first
    assert rows[1]["best"] == a.recommendation.winner
    ok = [c for c in b.cells if c.status == "ok"]
    assert rows[0]["best"] == max(ok, key=lambda c: c.result.throughput_ips).id
    assert rows[0]["best_why"].startswith("highest throughput")
    assert rows[0]["cells"] == len(b.cells) and rows[0]["cells_ok"] == len(ok)
    assert rows[0]["model"] == "resnet-tiny.onnx"
    code, out, _ = _cli(["report", "list", str(tmp_path)], monkeypatch, capsys)
    assert code == 0 and "bench-a" in out and "bench-b" in out and a.recommendation.winner in out


def test_cli_show_json_is_the_report_itself(report, tmp_path, monkeypatch, capsys):
    path = store.save_report(report, tmp_path / "r.json")
    code, out, _ = _cli(["report", "show", str(path), "--json"], monkeypatch, capsys)
    assert code == 0
    assert schema.report_from_json(out) == report
    code, out, _ = _cli(["report", "show", str(path)], monkeypatch, capsys)
    assert code == 0 and report.recommendation.winner in out
