"""The CLI as a shell: commands register once, choices are one-line errors, and the work they hand
off (compare, recommend, export) is callable without the CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import typer
import yaml
from fixtures_reports import make_report, simple_recommendation

from benchbox import cost, schema, store
from benchbox.cli import app, main
from benchbox.commands import COMMANDS, ROOMS, room_app, room_command, short_help
from benchbox.compare import (
    CompareMode,
    MachineComparison,
    VersionComparison,
    compare_files,
    file_labels,
)
from benchbox.errors import BadInput, GateFailed, NothingMeasured
from benchbox.export import ExportKind, export_recommended
from benchbox.parse import parse_target
from benchbox.recommend import Objective, recommend_file
from benchbox.report.compare_view import comparison_json, regression_gate
from benchbox.report.listing import listing_rows


def _cli(args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["benchbox", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


# ---------------------------------------------------------------- registering


def test_every_command_is_listed_once_however_often_main_runs(monkeypatch, capsys) -> None:
    for _ in range(2):
        code, out, _ = _cli(["--help"], monkeypatch, capsys)
        assert code == 0
        rows = out.split("Commands:")[1].splitlines()
        listed = [line.split()[0] for line in rows if line.strip()]
        assert listed == [
            "sweep",
            "run",
            "devices",
            "recommend",
            "compare",
            "fleet",
            "ab",
            "models",
            "report",
            "profiles",
            "verify",
        ]
    assert len(app.registered_groups) == 0  # the rooms are the group's to build, not typer's


def test_each_room_is_a_typer_app_the_same_way() -> None:
    assert len(ROOMS) == 10  # with verify, fleet and ab
    for room in ROOMS:
        assert isinstance(room_app(room), typer.Typer), room


def test_the_listed_help_is_each_commands_own_docstring() -> None:
    # `benchbox --help` lists COMMANDS without importing the rooms: each line must say what the
    # command's own help says, cut the same way.
    for name, (_, text) in COMMANDS.items():
        command = room_command(name)
        assert command.name == name
        for limit in (45, 200):
            assert short_help(text, limit) == command.get_short_help_str(limit), name


def test_help_imports_no_room(tmp_path) -> None:
    import subprocess

    code = (
        "import sys; sys.argv = ['benchbox', '--help']\n"
        "from benchbox.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('numpy', 'onnx', 'onnxruntime', 'scipy', 'rich.progress')"
        " if m in sys.modules]\n"
        "rooms = [m for m in sys.modules if m.startswith('benchbox.commands.')]\n"
        "print('LOADED', heavy, rooms)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "LOADED [] []" in done.stdout, done.stdout


# ---------------------------------------------------------------- choices


@pytest.mark.parametrize(
    ("args", "first_line", "choices"),
    [
        (["sweep", "--load", "bursty"], "error: --load 'bursty': unknown load kind", "closed"),
        (["sweep", "--arrival", "x"], "error: --arrival 'x': unknown arrival", "poisson"),
        (["sweep", "--search", "all"], "error: --search 'all': unknown search strategy", "grid"),
        (["run", "m.onnx", "--load", "up"], "error: --load 'up': unknown load kind", "offline"),
        (
            ["recommend", "r.json", "--latency-target", "p99=1ms", "--objective", "speed"],
            "error: --objective 'speed': unknown objective",
            "cost, throughput, energy",
        ),
        (
            ["recommend", "r.json", "--latency-target", "p99=1ms", "--export", "helm"],
            "error: --export 'helm': unknown export format",
            "triton, onnxruntime, kserve",
        ),
        (["compare", "a", "b", "--mode", "x"], "error: --mode 'x': unknown comparison", "auto"),
        (
            ["report", "export", "r.json", "--format", "xlsx"],
            "error: --format 'xlsx': unknown export format",
            "csv, parquet, md, html",
        ),
    ],
)
def test_a_bad_choice_is_one_line_and_a_hint_with_exit_2(
    args, first_line, choices, monkeypatch, capsys
) -> None:
    code, out, err = _cli(args, monkeypatch, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and out == ""
    assert len(lines) == 2, err
    assert lines[0].startswith(first_line)
    assert lines[1].startswith("hint: choose one of") and choices in lines[1]


def test_the_help_lists_the_choices_of_each_vocabulary(monkeypatch, capsys) -> None:
    _, out, _ = _cli(["recommend", "--help"], monkeypatch, capsys)
    assert "<cost|throughput|energy>" in out and "<triton|onnxruntime|kserve>" in out
    _, out, _ = _cli(["sweep", "--help"], monkeypatch, capsys)
    assert "<closed|open|offline|trace>" in out and "<grid|adaptive>" in out


def test_choices_take_any_case_as_before(tmp_path, monkeypatch, capsys) -> None:
    path = store.save_report(make_report(), tmp_path / "r.json")
    args = ["recommend", str(path), "--latency-target", "p99=20ms", "--objective", "THROUGHPUT"]
    code, out, err = _cli([*args, "--json"], monkeypatch, capsys)
    assert code == 0, err
    assert json.loads(out)["recommendation"]["objective"] == "throughput"


# ---------------------------------------------------------------- compare


@pytest.fixture()
def version_files(tmp_path):
    base = make_report(seed=1, keep_samples=True, onnxruntime="1.31.0")
    cand = make_report(seed=2, keep_samples=True, slowdown=1.25)
    return [
        store.save_report(base, tmp_path / "base.json"),
        store.save_report(cand, tmp_path / "cand.json"),
    ]


def test_compare_files_checks_options_then_loads_and_compares(version_files) -> None:
    result = compare_files(version_files, fail_on_regression="5%")
    assert isinstance(result, VersionComparison)
    assert result.baseline == "base.json" and result.threshold == pytest.approx(0.05)
    assert any(d.verdict == "slower" for d in result.cells)
    with pytest.raises(GateFailed, match=r"regressed by more than 5%: .*cand\.json: 1\.2"):
        regression_gate(result, "5%")
    assert json.loads(json.dumps(comparison_json(result)))["baseline"] == "base.json"


def test_compare_files_refuses_a_gate_across_machines(tmp_path, version_files) -> None:
    other = store.save_report(make_report(hostname="bench-b", gpus=()), tmp_path / "other.json")
    paths = [version_files[0], other]
    assert isinstance(compare_files(paths), MachineComparison)
    with pytest.raises(BadInput, match="different machines"):
        compare_files(paths, fail_on_regression="5%")
    assert isinstance(compare_files(paths, mode=CompareMode.VERSIONS), VersionComparison)
    with pytest.raises(BadInput, match=r"--confidence 0\.2 must be in \[0\.5, 1\)"):
        compare_files(paths, confidence=0.2)
    with pytest.raises(BadInput, match="at least two reports"):
        compare_files(paths[:1])


def test_file_labels_are_names_unless_two_share_one(tmp_path) -> None:
    assert file_labels([tmp_path / "a" / "r.json", tmp_path / "b.json"]) == ["r.json", "b.json"]
    twins = [tmp_path / "a" / "r.json", tmp_path / "b" / "r.json"]
    assert file_labels(twins) == [str(p) for p in twins]


# ---------------------------------------------------------------- recommend and export


def test_recommend_file_prices_on_a_profile_and_recommends(tmp_path) -> None:
    path = store.save_report(make_report(price_per_hour_usd=None), tmp_path / "r.json")
    profile = tmp_path / "box.toml"
    profile.write_text(
        'name = "box"\ndescription = "d"\nprice_per_hour_usd = 3.6\nprice_source = "s"\n'
        'price_date = "2025-01-01"\n[power]\nidle_w = 50\ntdp_w = 200\n'
    )
    report, rec = recommend_file(path, parse_target("p99=20ms"), profile=str(profile))
    assert rec.objective == Objective.COST and rec.profile == "box"
    assert report.recommendation == rec
    winner = next(c for c in report.cells if c.id == rec.winner)
    expected = 3.6 / (3600 * winner.result.throughput_ips) * 1e6
    assert winner.result.cost_usd_per_million == pytest.approx(expected)
    assert cost.load_profile(str(profile)).price_per_hour_usd == 3.6


def test_recommend_file_says_nothing_was_measured_with_the_counts(tmp_path) -> None:
    report = make_report()
    failed = tuple(schema.replace(c, status="failed", result=None) for c in report.cells)
    path = store.save_report(schema.replace(report, cells=failed), tmp_path / "r.json")
    with pytest.raises(NothingMeasured, match=rf"\({len(failed)} failed\)") as exc:
        recommend_file(path, parse_target("p99=20ms"))
    assert exc.value.hint == f"fix the failures, then `benchbox sweep --resume {path}`"


def test_export_recommended_maps_the_options_onto_each_format(tmp_path) -> None:
    report = make_report()
    rec = schema.replace(
        simple_recommendation(report, 20.0),
        fleet=schema.Fleet(qps=400.0, replicas=3, headroom=0.8, usd_per_hour=7.5),
    )
    report = schema.replace(report, recommendation=rec)
    (ort,) = export_recommended(ExportKind.ONNXRUNTIME, report, rec, tmp_path / "ort")
    assert ort.name == "onnxruntime.json" and json.loads(ort.read_text())
    (manifest,) = export_recommended(
        "kserve", report, rec, tmp_path / "ks", storage_uri="s3://bucket/m", name="my-model"
    )
    doc = yaml.safe_load(manifest.read_text())
    assert doc["metadata"]["name"] == "my-model" and manifest.name == "my-model.yaml"
    assert doc["spec"]["predictor"]["minReplicas"] == 3
    assert "s3://bucket/m" in manifest.read_text()


# ---------------------------------------------------------------- report list


def test_listing_rows_name_the_recommended_or_else_the_fastest_cell(tmp_path, monkeypatch) -> None:
    a = make_report(seed=1, created="2025-05-01T12:00:00Z")
    b = make_report(seed=2, hostname="bench-b", target_ms=None, created="2025-05-02T09:30:00Z")
    store.save_report(a, tmp_path / "a.json")
    store.save_report(b, tmp_path / "b.json")
    rows = {Path(r["path"]).name: r for r in listing_rows(tmp_path)}
    assert rows["a.json"]["best"] == a.recommendation.winner
    assert rows["a.json"]["best_why"] == "recommended, p99≤20ms"
    fastest = max((c for c in b.cells if c.status == "ok"), key=lambda c: c.result.throughput_ips)
    assert rows["b.json"]["best"] == fastest.id and rows["b.json"]["host"] == "bench-b"
    assert rows["b.json"]["cells_ok"] == sum(c.status == "ok" for c in b.cells)
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path / "empty")
    assert not store.DEFAULT_DIR.exists() and listing_rows(store.DEFAULT_DIR) == []
