"""The recommendation: CI upper bounds, objectives, rejects, Pareto front, fleet, the command."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from rich.console import Console

from benchbox import schema
from benchbox.errors import BadInput
from benchbox.parse import LatencyTarget, parse_target
from benchbox.recommend import pareto_front, recommend, with_recommendation
from benchbox.report.recommend_view import render_recommendation
from benchbox.store import load_report, save_report

sys.path.insert(0, str(Path(__file__).parent))
from fixtures_reports import make_report, price_profile  # noqa: E402

P99_20 = LatencyTarget("p99", 20.0)


def make_cell(
    concurrency: int,
    p99: float | None = 10.0,
    hi: float | str | None = "auto",
    throughput: float = 1000.0,
    cost: float | None = 1.0,
    energy: float | None = None,
    rss_mb: float | None = 200.0,
    status: str = "ok",
    reason: str | None = None,
    device: str = "cpu",
    batch: int = 1,
) -> schema.Cell:
    """A cell whose p99 point value is `p99` and CI upper bound `hi` (None: no bound)."""
    config = schema.ServingConfig(device=device, intra_op_threads=2, batch_size=batch)
    load = schema.Load("closed", concurrency=concurrency)
    cid = schema.cell_id(config, load)
    if status != "ok" and p99 is None:
        return schema.Cell(cid, config, load, status=status, reason=reason)
    hi = p99 * 1.1 if hi == "auto" else hi
    lat = schema.LatencyStats(
        mean=p99 / 2,
        std=1.0,
        min=p99 / 4,
        p50=p99 / 2,
        p90=p99 * 0.8,
        p95=p99 * 0.9,
        p99=p99,
        p99_9=p99 * 1.2,
        max=p99 * 1.5,
    )
    cis = {k: None for k in schema.PERCENTILE_KEYS}
    cis["p99"] = None if hi is None else [p99 * 0.9, hi]
    result = schema.Result(
        requests=1000,
        inferences=1000 * batch,
        duration_s=5.0,
        throughput_ips=throughput,
        requests_per_s=throughput / batch,
        latency_ms=lat,
        latency_ci_ms=cis,
        confidence=0.95,
        rss_mb=rss_mb,
        energy_j_per_inference=energy,
        power_w=None if energy is None else energy * throughput,
        cost_usd_per_million=cost,
    )
    return schema.Cell(cid, config, load, status=status, reason=reason, result=result)


def make(*cells: schema.Cell, priced: bool = True) -> schema.Report:
    host = schema.HostInfo("h", "Linux", "cpu", 2, 1, 4.0, "3.11", "1.32")
    model = schema.ModelInfo(
        "m.onnx", "ab" * 32, 17, (schema.TensorSpec("x", "float32", ("b", 4)),)
    )
    profile = price_profile("box", 3.6) if priced else None
    return schema.Report(host=host, model=model, cells=tuple(cells), profile=profile)


def cid(concurrency: int, device: str = "cpu", batch: int = 1) -> str:
    return f"{device}/t2/i1/b{batch}/closed-c{concurrency}"


# ---------------------------------------------------------------- constraints


def test_a_cell_is_held_to_its_upper_bound_not_its_point_value():
    cheap_but_uncertain = make_cell(1, p99=15.0, hi=25.0, cost=1.0)
    dearer_and_sure = make_cell(2, p99=16.0, hi=18.0, cost=2.0)
    rec = recommend(make(cheap_but_uncertain, dearer_and_sure), P99_20)
    assert rec.winner == cid(2)
    assert rec.rejected[cid(1)] == "p99 upper bound 25 ms > target 20 ms"
    assert rec.point_estimate_used == ()


def test_a_cell_without_a_bound_is_judged_on_its_point_value_and_flagged():
    no_bound = make_cell(1, p99=12.0, hi=None, cost=1.0)
    no_bound_too_slow = make_cell(2, p99=23.1, hi=None, cost=0.5)
    rec = recommend(make(no_bound, no_bound_too_slow), P99_20)
    assert rec.winner == cid(1)
    assert set(rec.point_estimate_used) == {cid(1), cid(2)}
    assert rec.rejected[cid(2)] == "p99 23.1 ms (point estimate, no CI) > target 20 ms"


def test_rejection_text_tells_a_bound_just_over_the_target_from_the_target():
    rec = recommend(make(make_cell(1, p99=19.0, hi=20.04)), P99_20)
    assert rec.rejected[cid(1)] == "p99 upper bound 20.04 ms > target 20 ms"


def test_unmeasured_cells_are_rejected_with_their_status_and_reason():
    cells = [
        make_cell(1, cost=1.0),
        make_cell(2, status="unstable", reason="p99 varied 30% across windows", cost=0.1),
        make_cell(4, p99=None, status="failed", reason="out of memory"),
        make_cell(8, p99=None, status="skipped", reason="batch too large for the model"),
    ]
    rec = recommend(make(*cells), P99_20)
    assert rec.winner == cid(1)  # the cheaper unstable cell does not win
    assert rec.rejected[cid(2)] == "unstable measurement: p99 varied 30% across windows"
    assert rec.rejected[cid(4)] == "failed: out of memory"
    assert rec.rejected[cid(8)] == "skipped: batch too large for the model"


def test_throughput_and_memory_bounds_reject_with_numbers():
    slow = make_cell(1, throughput=120.0, cost=0.5)
    fat = make_cell(2, throughput=900.0, rss_mb=2048.0, cost=0.7)
    fine = make_cell(4, throughput=800.0, rss_mb=300.0, cost=0.9)
    rec = recommend(make(slow, fat, fine), P99_20, min_throughput_ips=200, max_memory_mb=1024)
    assert rec.winner == cid(4)
    assert rec.rejected[cid(1)] == "throughput 120 ips < min 200"
    assert rec.rejected[cid(2)] == "memory 2,048 MB > max 1024 MB"


def test_a_cell_breaking_two_constraints_lists_both():
    cell = make_cell(1, p99=30.0, hi=33.0, throughput=50.0)
    rec = recommend(make(cell), P99_20, min_throughput_ips=100)
    assert (
        rec.rejected[cid(1)] == "p99 upper bound 33 ms > target 20 ms; throughput 50 ips < min 100"
    )


def test_gpu_cells_are_held_to_their_gpu_memory():
    cell = make_cell(1, device="cuda:0", rss_mb=100.0)
    cell = schema.replace(cell, result=schema.replace(cell.result, gpu_mem_mb=3000.0))
    rec = recommend(make(cell), P99_20, max_memory_mb=1000)
    assert rec.winner is None
    assert rec.rejected[cid(1, "cuda:0")] == "memory 3,000 MB > max 1000 MB"


# ---------------------------------------------------------------- objectives


def test_cost_objective_picks_the_lowest_cost_and_lists_runners_up_in_order():
    costs = {1: 0.9, 2: 0.3, 4: 0.5, 8: 0.7, 16: 0.4}
    rec = recommend(make(*(make_cell(c, cost=v) for c, v in costs.items())), P99_20)
    assert rec.objective == "cost"
    assert rec.profile == "box"
    assert rec.winner == cid(2)
    assert rec.runners_up == (cid(16), cid(4), cid(8))  # at most three, best first


def test_throughput_objective_picks_the_highest_throughput():
    cells = [make_cell(1, throughput=500.0), make_cell(2, throughput=900.0)]
    cells.append(make_cell(4, throughput=1500.0, p99=30.0, hi=31.0))  # fastest but too slow
    rec = recommend(make(*cells), P99_20, objective="throughput")
    assert rec.winner == cid(2)
    assert rec.runners_up == (cid(1),)


def test_energy_objective_picks_the_lowest_energy_per_inference():
    cells = [make_cell(1, energy=0.05, cost=0.1), make_cell(2, energy=0.02, cost=0.9)]
    rec = recommend(make(*cells), P99_20, objective="energy")
    assert rec.objective == "energy"
    assert rec.winner == cid(2)


def test_ties_on_the_objective_go_to_the_lower_latency():
    cells = [make_cell(1, p99=15.0, hi=16.0, cost=0.5), make_cell(2, p99=11.0, hi=12.0, cost=0.5)]
    assert recommend(make(*cells), P99_20).winner == cid(2)


def test_cost_without_a_profile_falls_back_to_throughput_and_says_so():
    cells = [make_cell(1, throughput=400.0, cost=None), make_cell(2, throughput=700.0, cost=None)]
    rec = recommend(make(*cells, priced=False), P99_20, objective="cost")
    assert rec.objective == "throughput"
    assert rec.winner == cid(2)
    assert "no price profile" in rec.note and "--profile" in rec.note


def test_energy_without_power_falls_back_to_throughput_and_says_so():
    cells = [make_cell(1, throughput=400.0), make_cell(2, throughput=700.0)]
    rec = recommend(make(*cells), P99_20, objective="energy")
    assert rec.objective == "throughput"
    assert rec.winner == cid(2)
    assert "energy" in rec.note


def test_unknown_objective_and_bad_headroom_are_bad_input():
    report = make(make_cell(1))
    with pytest.raises(BadInput, match="unknown objective 'latency'"):
        recommend(report, P99_20, objective="latency")
    with pytest.raises(BadInput, match="headroom 1.5"):
        recommend(report, P99_20, headroom=1.5)


# ---------------------------------------------------------------- Pareto front


def test_pareto_front_keeps_only_cells_not_beaten_on_both_latency_and_cost():
    # (concurrency, p99 upper bound, cost): c4 is beaten by c2 (slower and dearer).
    points = [(1, 5.0, 3.0), (2, 8.0, 2.0), (4, 9.0, 2.5), (8, 14.0, 1.0), (16, 30.0, 0.5)]
    cells = [make_cell(c, p99=hi * 0.9, hi=hi, cost=cost) for c, hi, cost in points]
    rec = recommend(make(*cells), P99_20)
    # Cells that miss the target still belong on the front: they show the trade-off.
    assert rec.pareto == (cid(1), cid(2), cid(8), cid(16))


def test_pareto_front_uses_inverse_throughput_when_nothing_is_priced():
    cells = [
        make_cell(1, p99=4.0, hi=5.0, throughput=100.0, cost=None),
        make_cell(2, p99=7.0, hi=8.0, throughput=90.0, cost=None),  # slower and less throughput
        make_cell(4, p99=11.0, hi=12.0, throughput=400.0, cost=None),
    ]
    rec = recommend(make(*cells, priced=False), P99_20)
    assert rec.pareto == (cid(1), cid(4))


def test_pareto_front_of_synthetic_report_matches_a_brute_force_check():
    report = make_report(seed=3)
    measured = [c for c in report.cells if c.status == "ok"]
    rec = recommend(report, P99_20)

    def bound(c):
        return c.result.latency_ci_ms["p99"][1]

    def beaten(c):
        return any(
            bound(o) <= bound(c)
            and o.result.cost_usd_per_million <= c.result.cost_usd_per_million
            and (bound(o), o.result.cost_usd_per_million)
            != (bound(c), c.result.cost_usd_per_million)
            for o in measured
        )

    assert set(rec.pareto) == {c.id for c in measured if not beaten(c)}
    assert len(rec.pareto) >= 2


def test_pareto_front_helper_keeps_exact_ties():
    from benchbox.recommend import judge

    cells = [make_cell(1, p99=9.0, hi=10.0, cost=1.0), make_cell(2, p99=9.0, hi=10.0, cost=1.0)]
    assert pareto_front([judge(c, P99_20) for c in cells]) == [cid(1), cid(2)]


# ---------------------------------------------------------------- nothing meets the target


def test_when_nothing_meets_the_target_the_closest_cell_and_the_needed_target_are_named():
    cells = [make_cell(1, p99=21.0, hi=23.1), make_cell(2, p99=25.0, hi=28.0)]
    rec = recommend(make(*cells), P99_20)
    assert rec.winner is None
    assert rec.runners_up == ()
    assert cid(1) in rec.note
    assert "a target of p99=23.5ms would admit it" in rec.note
    assert "another device" in rec.note


def test_nothing_measured_says_so():
    rec = recommend(make(make_cell(1, p99=None, status="failed", reason="boom")), P99_20)
    assert rec.winner is None
    assert "No cell was measured successfully" in rec.note


# ---------------------------------------------------------------- fleet


def test_fleet_replicas_and_cost_per_hour_come_from_the_winner_throughput():
    rec = recommend(make(make_cell(1, throughput=300.0)), P99_20, qps=1000.0, headroom=0.8)
    assert rec.fleet is not None
    assert rec.fleet.replicas == math.ceil(1000.0 / (300.0 * 0.8)) == 5
    assert rec.fleet.usd_per_hour == pytest.approx(5 * 3.6)
    assert rec.fleet.qps == 1000.0 and rec.fleet.headroom == 0.8


def test_no_fleet_without_a_winner():
    rec = recommend(make(make_cell(1, p99=30.0, hi=33.0)), P99_20, qps=100.0)
    assert rec.fleet is None


# ---------------------------------------------------------------- report and rendering


def test_with_recommendation_survives_a_save_and_load(tmp_path):
    report = make(make_cell(1, hi=None), make_cell(2, p99=30.0, hi=33.0))
    rec = recommend(report, P99_20, qps=50.0)
    path = save_report(with_recommendation(report, rec), tmp_path / "r.json")
    loaded = load_report(path)
    assert loaded.recommendation == rec


def test_rendering_names_the_winner_the_rejects_the_fleet_and_point_estimates():
    report = make(
        make_cell(1, p99=12.0, hi=None, cost=0.4),
        make_cell(2, p99=10.0, hi=11.0, cost=0.8),
        make_cell(4, p99=30.0, hi=33.0, cost=0.2),
    )
    rec = recommend(report, P99_20, qps=2000.0)
    console = Console(record=True, width=160)
    render_recommendation(report, rec, console)
    text = console.export_text()
    assert cid(1) in text and "point estimate" in text
    assert "p99 upper bound 33 ms > target 20 ms" in text
    assert f"Fleet: {rec.fleet.replicas} replicas for 2000 requests/s" in text
    assert "Runners-up" in text and "Pareto front" in text


def test_rendering_says_plainly_when_nothing_met_the_target():
    report = make(make_cell(1, p99=21.0, hi=23.1))
    rec = recommend(report, P99_20)
    console = Console(record=True, width=160)
    render_recommendation(report, rec, console)
    text = console.export_text()
    assert "No configuration meets p99 ≤ 20 ms" in text
    assert "p99=23.5ms" in text


# ---------------------------------------------------------------- the command


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    from benchbox.cli import main

    monkeypatch.setattr(sys, "argv", ["benchbox", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    out = capsys.readouterr()
    code = exc.value.code if isinstance(exc.value.code, int) else 0
    return code, out.out, out.err


def _saved(tmp_path, report) -> str:
    return str(save_report(report, tmp_path / "report.json"))


def test_cli_json_names_the_winner_and_the_fleet(tmp_path, monkeypatch, capsys):
    path = _saved(tmp_path, make_report(seed=1))
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "recommend",
        path,
        "--latency-target",
        "p99=20ms",
        "--qps",
        "500",
        "--json",
    )
    assert code == 0, err
    doc = json.loads(out)
    expected = recommend(load_report(path), parse_target("p99=20ms"), qps=500)
    assert doc["recommendation"]["winner"] == expected.winner
    assert doc["winner"]["id"] == expected.winner
    assert doc["recommendation"]["fleet"]["replicas"] == expected.fleet.replicas


def test_cli_exits_1_and_names_the_closest_cell_when_nothing_meets(tmp_path, monkeypatch, capsys):
    path = _saved(tmp_path, make(make_cell(1, p99=21.0, hi=23.1)))
    code, out, err = run_cli(monkeypatch, capsys, "recommend", path, "--latency-target", "p99=20ms")
    assert code == 1
    assert cid(1) in out and "p99=23.5ms" in out
    assert "error: no configuration meets p99=20ms" in err


def test_cli_reprices_the_report_on_a_profile(tmp_path, monkeypatch, capsys):
    path = _saved(tmp_path, make(make_cell(1, throughput=500.0, cost=None), priced=False))
    profile = tmp_path / "cheap.toml"
    profile.write_text(
        'name = "cheap"\ndescription = "test"\nprice_per_hour_usd = 1.8\n'
        'price_source = "test"\nprice_date = "2025-01-01"\n'
        "[power]\nidle_w = 10.0\ntdp_w = 50.0\npue = 1.0\nenergy_included = true\n"
    )
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "recommend",
        path,
        "--latency-target",
        "p99=20ms",
        "--profile",
        str(profile),
        "--json",
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["recommendation"]["objective"] == "cost"
    assert doc["recommendation"]["profile"] == "cheap"
    expected = 1.8 / (3600 * 500.0) * 1e6
    assert doc["winner"]["result"]["cost_usd_per_million"] == pytest.approx(expected)


def test_cli_rejects_export_without_out_and_a_bad_target(tmp_path, monkeypatch, capsys):
    path = _saved(tmp_path, make(make_cell(1)))
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        "recommend",
        path,
        "--latency-target",
        "p99=20ms",
        "--export",
        "triton",
    )
    assert code == 2 and "--export triton needs --out DIR" in err
    code, _, err = run_cli(monkeypatch, capsys, "recommend", path, "--latency-target", "p98=1ms")
    assert code == 2 and "latency target 'p98=1ms' is not valid" in err
    code, _, err = run_cli(
        monkeypatch, capsys, "recommend", path, "--latency-target", "p99=20ms", "--objective", "x"
    )
    assert code == 2 and "--objective 'x'" in err


def test_the_winner_names_the_lengths_that_break_the_target_on_their_own():
    """issue 22: a cell can meet p99 over all its requests while its longest ones do not."""
    short = schema.LatencyStats(1.0, 0.1, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0)
    long = schema.LatencyStats(15.0, 2.0, 9.0, 15.0, 22.0, 25.0, 31.5, 33.0, 35.0)
    cell = make_cell(1, p99=12.0, hi=14.0)
    buckets = (schema.BucketStat("seq", 32, 900, short), schema.BucketStat("seq", 512, 100, long))
    cell = schema.replace(cell, result=schema.replace(cell.result, buckets=buckets))
    rec = recommend(make(cell), P99_20)
    assert rec.winner == cell.id
    assert "seq ≤ 512: p99 31.5 ms over 100 of 1000 requests" in rec.note
    assert "seq ≤ 32" not in rec.note
    calm = schema.replace(cell, result=schema.replace(cell.result, buckets=buckets[:1]))
    assert recommend(make(calm), P99_20).note is None  # every bucket within the target: no note
