"""Comparing reports: across machines (cheapest first) and versions (cell by cell), and the CLI."""

from __future__ import annotations

import json
import sys

import pytest
from fixtures_reports import make_report

from benchbox import cost, recommend, schema, store
from benchbox.cli import main
from benchbox.compare import (
    MachineComparison,
    VersionComparison,
    compare_reports,
    metadata_differences,
    regressions,
)
from benchbox.errors import BadInput
from benchbox.parse import parse_target

P99_20 = parse_target("p99=20ms")
GPU_HOST = {"hostname": "gpu-box", "price_per_hour_usd": 1.2}
CPU_HOST = {
    "hostname": "cpu-box",
    "cpu_model": "AMD EPYC 9R14 96-Core Processor",
    "gpus": (),
    "devices": ("cpu",),
    "price_per_hour_usd": 0.35,
    "profile_name": "cheap-cpu",
}


# ---------------------------------------------------------------- refusing and choosing a mode


def test_reports_of_different_models_are_refused_naming_files_and_hashes() -> None:
    a = make_report(sha256="aa" * 32)
    b = make_report(sha256="bb" * 32)
    with pytest.raises(BadInput) as exc:
        compare_reports([a, b], labels=["old.json", "new.json"])
    msg = exc.value.message
    assert "old.json" in msg and "new.json" in msg
    assert "aaaaaaaaaaaaaaaa" in msg and "bbbbbbbbbbbbbbbb" in msg


def test_fewer_than_two_reports_is_bad_input() -> None:
    with pytest.raises(BadInput, match="at least two"):
        compare_reports([make_report()])


def test_same_host_twice_compares_versions_and_different_hosts_compare_machines() -> None:
    a, a2 = make_report(seed=1), make_report(seed=2)
    b = make_report(seed=3, **CPU_HOST)
    assert isinstance(compare_reports([a, a2]), VersionComparison)
    assert isinstance(compare_reports([a, b]), MachineComparison)
    # The flag wins over the guess: the cells both reports have are matched by id.
    forced = compare_reports([a, b], mode="versions")
    assert isinstance(forced, VersionComparison)
    assert {d.cell_id for d in forced.cells} == {c.id for c in b.cells if c.status == "ok"}
    assert any(u.startswith("cuda:0/") and "only in report 1" in u for u in forced.unmatched)


# ---------------------------------------------------------------- versions


def test_a_twenty_percent_slowdown_is_slower_in_every_cell_with_the_ratio_in_its_ci() -> None:
    base = make_report(seed=1, keep_samples=True)
    cand = make_report(seed=2, keep_samples=True, slowdown=1.2)
    cmp = compare_reports([base, cand], labels=["base.json", "cand.json"])
    assert isinstance(cmp, VersionComparison)
    assert len(cmp.cells) == 16  # the failed cell is in neither comparison
    for d in cmp.cells:
        assert d.method == "samples"
        assert d.verdict == "slower", d
        assert d.ratio_lo <= d.ratio <= d.ratio_hi
        assert 1.1 < d.ratio < 1.3
        assert d.ratio_lo < 1.2 < d.ratio_hi or abs(d.ratio - 1.2) < 0.06
        assert d.candidate_p50_ms > d.baseline_p50_ms
    assert cmp.baseline == "base.json" and cmp.candidates == ("cand.json",)


def test_a_faster_candidate_is_faster_and_not_a_regression() -> None:
    base = make_report(seed=1, keep_samples=True)
    cand = make_report(seed=2, keep_samples=True, slowdown=0.8)
    cmp = compare_reports([base, cand])
    assert {d.verdict for d in cmp.cells} == {"faster"}
    assert all(d.ratio_hi < 1.0 for d in cmp.cells)
    assert regressions(cmp, 0.0) == []


def test_the_same_distribution_twice_shows_no_regression() -> None:
    cmp = compare_reports([make_report(seed=11), make_report(seed=12)])
    assert all(d.method == "histograms" for d in cmp.cells)
    assert regressions(cmp, 0.05) == []
    # At 95% confidence a false "slower" or "faster" is rare; 16 cells allow at most one.
    assert sum(d.verdict != "not significant" for d in cmp.cells) <= 1


def test_histograms_stand_in_for_raw_samples_and_find_only_the_slowed_cells() -> None:
    slowed = ("cpu/t2/i1/b8/closed-c4", "cuda:0/t2/i1/b1/closed-c2")
    base = make_report(seed=1)
    cand = make_report(seed=2, slowdown=1.5, slowdown_cells=slowed)
    cmp = compare_reports([base, cand])
    verdicts = {d.cell_id: d for d in cmp.cells}
    for cid in slowed:
        assert verdicts[cid].method == "histograms"
        assert verdicts[cid].verdict == "slower"
        assert 1.35 < verdicts[cid].ratio < 1.65
    assert {d.cell_id for d in regressions(cmp, 0.05)} == set(slowed)


def test_regressions_need_the_ci_lower_bound_above_one_plus_the_threshold() -> None:
    base = make_report(seed=1, keep_samples=True)
    cand = make_report(seed=2, keep_samples=True, slowdown=1.2)
    cmp = compare_reports([base, cand])
    assert len(regressions(cmp, 0.05)) == 16
    assert regressions(cmp, 0.5) == []
    mid = regressions(cmp, 0.15)  # some cells' lower bounds are above 1.15, some below
    assert all(d.ratio_lo > 1.15 for d in mid)
    assert {d.cell_id for d in mid} == {d.cell_id for d in cmp.cells if d.ratio_lo > 1.15}


def test_a_cell_that_now_fails_is_reported_as_newly_failed() -> None:
    base = make_report(seed=1)
    cand = make_report(seed=2)
    broken_id = "cpu/t2/i1/b1/closed-c2"
    cells = tuple(
        schema.replace(c, status="failed", reason="session creation failed", result=None)
        if c.id == broken_id
        else c
        for c in cand.cells
    )
    cmp = compare_reports([base, schema.replace(cand, cells=cells)], labels=["a", "b"])
    assert broken_id not in {d.cell_id for d in cmp.cells}
    assert cmp.newly_failed == (f"{broken_id} is failed in b (session creation failed), ok in a",)


# ---------------------------------------------------------------- metadata


def test_metadata_differences_name_the_field_and_both_values() -> None:
    a = make_report(onnxruntime="1.31.0", python="3.11.7")
    b = make_report(onnxruntime="1.32.0", python="3.12.1", benchbox_version="0.2.0")
    lines = metadata_differences([a, b])
    assert "onnxruntime differs: 1.31.0 vs 1.32.0 — the comparison may not be fair" in lines
    assert "python differs: 3.11.7 vs 3.12.1 — the comparison may not be fair" in lines
    assert any(line.startswith("benchbox differs: 0.1.0 vs 0.2.0") for line in lines)
    assert not any("CPU model" in line for line in lines)
    assert metadata_differences([a, a]) == []
    cmp = compare_reports([a, b])
    assert set(cmp.warnings) == set(lines)


def test_machines_mode_does_not_warn_about_the_hardware_it_compares() -> None:
    cmp = compare_reports([make_report(**GPU_HOST), make_report(**CPU_HOST)])
    assert not any("CPU model" in w for w in cmp.warnings)
    assert any(w.startswith("provider set differs") for w in cmp.warnings)


# ---------------------------------------------------------------- machines


def test_machines_are_ranked_by_cost_with_the_best_config_under_the_target() -> None:
    gpu, cpu = make_report(seed=1, **GPU_HOST), make_report(seed=2, **CPU_HOST)
    cmp = compare_reports([cpu, gpu], P99_20, labels=["cpu.json", "gpu.json"])
    assert isinstance(cmp, MachineComparison)
    assert [r.label for r in cmp.rows] == ["gpu.json", "cpu.json"]
    assert [r.cheapest for r in cmp.rows] == [True, False]
    assert cmp.rows[0].usd_per_million < cmp.rows[1].usd_per_million
    for row, report in ((cmp.rows[0], gpu), (cmp.rows[1], cpu)):
        expected = recommend.recommend(report, P99_20)
        assert row.cell_id == expected.winner
        cell = next(c for c in report.cells if c.id == row.cell_id)
        assert row.latency_ms == cell.result.latency_ms.p99
        assert list(row.latency_ci_ms) == cell.result.latency_ci_ms["p99"]
        assert row.latency_ci_ms[1] <= 20.0  # held to the upper bound
        assert row.usd_per_million == cell.result.cost_usd_per_million
        assert row.energy_j_per_inference == cell.result.energy_j_per_inference
        assert row.throughput_ips == cell.result.throughput_ips
    assert cmp.rows[1].profile == "cheap-cpu"


def test_a_machine_with_no_config_under_the_target_says_so_and_ranks_last() -> None:
    gpu, cpu = make_report(seed=1, **GPU_HOST), make_report(seed=2, **CPU_HOST)
    cmp = compare_reports([cpu, gpu], parse_target("p99=3ms"))
    assert cmp.rows[0].hostname == "gpu-box" and cmp.rows[0].cell_id is not None
    assert cmp.rows[1].cell_id is None
    assert cmp.rows[1].how == "no configuration meets p99=3ms"
    assert cmp.rows[1].usd_per_million is None


def test_without_a_target_the_stored_recommendation_is_used_else_the_best_throughput() -> None:
    gpu = make_report(seed=1, **GPU_HOST)
    cpu = make_report(seed=2, target_ms=None, **CPU_HOST)
    cmp = compare_reports([gpu, cpu])
    rows = {r.hostname: r for r in cmp.rows}
    assert rows["gpu-box"].cell_id == gpu.recommendation.winner
    assert rows["gpu-box"].how.startswith("stored recommendation")
    ok = [c for c in cpu.cells if c.status == "ok"]
    fastest = max(ok, key=lambda c: c.result.throughput_ips)
    assert rows["cpu-box"].cell_id == fastest.id
    assert rows["cpu-box"].how == "highest throughput (no target)"


def test_a_profile_prices_the_reports_that_have_none() -> None:
    gpu = make_report(seed=1, **GPU_HOST)
    cpu = make_report(seed=2, **{**CPU_HOST, "price_per_hour_usd": None})
    profile = cost.load_profile("aws-c7i-2xlarge")
    cmp = compare_reports([gpu, cpu], P99_20, profile=profile)
    rows = {r.hostname: r for r in cmp.rows}
    assert rows["cpu-box"].profile == profile.name and rows["cpu-box"].profile_from_flag
    assert rows["gpu-box"].profile == "test-gpu-box" and not rows["gpu-box"].profile_from_flag
    expected = profile.price_per_hour_usd / (3600 * rows["cpu-box"].throughput_ips) * 1e6
    assert rows["cpu-box"].usd_per_million == pytest.approx(expected, rel=0.02)
    # Unpriced and no profile: no cost, marked by a None profile, ranked after priced rows.
    plain = compare_reports([cpu, gpu], P99_20)
    assert plain.rows[0].hostname == "gpu-box" and plain.rows[0].cheapest
    assert plain.rows[1].profile is None and plain.rows[1].usd_per_million is None


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


@pytest.fixture()
def version_files(tmp_path):
    base = make_report(seed=1, keep_samples=True, onnxruntime="1.31.0")
    cand = make_report(seed=2, keep_samples=True, slowdown=1.25)
    return store.save_report(base, tmp_path / "base.json"), store.save_report(
        cand, tmp_path / "cand.json"
    )


def test_cli_fail_on_regression_exits_1_naming_the_slower_cells(
    version_files, monkeypatch, capsys
) -> None:
    code, out, err = _cli(
        ["compare", *map(str, version_files), "--fail-on-regression", "5%"], monkeypatch, capsys
    )
    assert code == 1
    assert "16 cell(s) regressed by more than 5%" in err
    assert "cpu/t2/i1/b1/closed-c1" in err
    assert "slower" in out and "base.json" in out
    assert "warning: onnxruntime differs: 1.31.0 vs 1.32.0" in err
    # A bar the change does not reach passes.
    code, _, _ = _cli(
        ["compare", *map(str, version_files), "--fail-on-regression", "60%"], monkeypatch, capsys
    )
    assert code == 0


def test_cli_json_is_clean_on_stdout_with_warnings_on_stderr(
    version_files, monkeypatch, capsys
) -> None:
    code, out, err = _cli(["compare", *map(str, version_files), "--json"], monkeypatch, capsys)
    assert code == 0
    data = json.loads(out)
    assert data["mode"] == "versions"
    assert data["baseline"] == "base.json"
    assert len(data["cells"]) == 16 and data["cells"][0]["verdict"] == "slower"
    assert "warning: onnxruntime differs" in err and "warning:" not in out
    assert data["warnings"] == [
        "onnxruntime differs: 1.31.0 vs 1.32.0 — the comparison may not be fair"
    ]


def test_cli_machines_table_marks_the_cheapest(tmp_path, monkeypatch, capsys) -> None:
    gpu = store.save_report(make_report(seed=1, **GPU_HOST), tmp_path / "gpu.json")
    cpu = store.save_report(make_report(seed=2, **CPU_HOST), tmp_path / "cpu.json")
    code, out, _ = _cli(
        ["compare", str(cpu), str(gpu), "--latency-target", "p99=20ms", "--json"],
        monkeypatch,
        capsys,
    )
    data = json.loads(out)
    assert code == 0 and data["mode"] == "machines" and data["target"] == "p99=20ms"
    assert [r["label"] for r in data["rows"]] == ["gpu.json", "cpu.json"]
    code, out, _ = _cli(
        ["compare", str(cpu), str(gpu), "--latency-target", "p99=20ms"], monkeypatch, capsys
    )
    assert code == 0
    assert "cheapest" in out and "times cheaper per million" in out
    # A regression gate makes no sense across machines.
    code, _, err = _cli(
        ["compare", str(cpu), str(gpu), "--fail-on-regression", "5%"], monkeypatch, capsys
    )
    assert code == 2 and "different machines" in err


def test_cli_bad_inputs_exit_2_with_one_line(tmp_path, version_files, monkeypatch, capsys) -> None:
    code, _, err = _cli(["compare", str(version_files[0])], monkeypatch, capsys)
    assert code == 2 and "at least two reports" in err
    other = store.save_report(make_report(sha256="cd" * 32), tmp_path / "other.json")
    code, _, err = _cli(["compare", str(version_files[0]), str(other)], monkeypatch, capsys)
    assert code == 2 and "different models" in err and "other.json" in err
    code, _, err = _cli(
        ["compare", *map(str, version_files), "--mode", "sideways"], monkeypatch, capsys
    )
    assert code == 2 and "--mode" in err
    code, _, err = _cli(
        ["compare", *map(str, version_files), "--fail-on-regression", "lots"], monkeypatch, capsys
    )
    assert code == 2 and "percentage" in err
    assert "Traceback" not in err


def test_a_cell_without_latency_data_is_listed_not_compared() -> None:
    base, cand = make_report(seed=1), make_report(seed=2)
    bare_id = "cuda:0/t2/i1/b1/closed-c4"
    cells = tuple(
        schema.replace(c, result=schema.replace(c.result, histogram=None)) if c.id == bare_id else c
        for c in cand.cells
    )
    cmp = compare_reports([base, schema.replace(cand, cells=cells)])
    assert bare_id not in {d.cell_id for d in cmp.cells} and len(cmp.cells) == 15
    assert f"{bare_id} has no latency samples or histogram in both reports" in cmp.unmatched
