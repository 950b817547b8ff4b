"""From the command line's options to a SweepRequest, called directly (no CLI, nothing measured)."""

from __future__ import annotations

import pytest

from benchbox import zoo
from benchbox.errors import BadInput
from benchbox.load import Arrival, LoadKind
from benchbox.parse import parse_choice
from benchbox.report.tabular import TableFormat
from benchbox.schema import DynamicBatching
from benchbox.sweep.request import (
    DEMO,
    CellOptions,
    MeasureOptions,
    SweepOptions,
    build_cell_request,
    build_request,
    build_resume,
    measure_settings,
    sweep_spec,
)
from benchbox.sweep.search import SearchKind


def test_no_model_is_the_demo_model_with_the_quick_grid_and_a_target(zoo_cache) -> None:
    req = build_request(SweepOptions())
    assert req.model_label == zoo.DEMO_MODEL
    assert req.model_path == str(zoo.path_for(zoo.DEMO_MODEL))
    assert req.latency_target == DEMO["latency_target"]
    assert (req.spec.batch_sizes, req.spec.concurrencies, req.spec.threads) == (
        (1, 4),
        (1, 2),
        (1, 2),
    )
    assert req.search == SearchKind.ADAPTIVE and req.isolate and req.cell_timeout_s is None


def test_a_model_file_keeps_its_own_grid_and_no_target(mlp_path) -> None:
    opts = SweepOptions(
        model=str(mlp_path),
        batch="8,2,2",
        concurrency="3",
        threads="1",
        instances="1,2",
        search=SearchKind.GRID,
        shape=("seq=16",),
        out="somewhere",
        cell_timeout="90s",
        isolate=False,
    )
    req = build_request(opts)
    assert (req.model_path, req.model_label) == (str(mlp_path), str(mlp_path))
    assert req.latency_target is None
    assert req.spec.batch_sizes == (2, 8) and req.spec.instances == (1, 2)
    assert req.shapes == {"seq": 16} and req.out_dir == "somewhere"
    assert req.cell_timeout_s == 90.0 and req.isolate is False
    assert req.search == "grid"  # a StrEnum: the report stores the plain word


def test_dynamic_batching_auto_reads_the_model_and_keeps_delays_under_the_target(mlp_path) -> None:
    opts = SweepOptions(
        model=str(mlp_path),
        load=LoadKind.OPEN,
        latency_target="p99=1ms",
        dynamic_batching="auto",
    )
    spec = build_request(opts).spec
    assert spec.dynamic_batching[0] == DynamicBatching(1, 0.0)
    assert {db.delay_ms for db in spec.dynamic_batching} == {0.0, 0.5}  # under 1 ms only
    assert spec.concurrencies == (1,)  # --concurrency not given: one sender


def test_dynamic_batching_refuses_a_model_with_a_fixed_batch(fixed_batch_path) -> None:
    opts = SweepOptions(
        model=str(fixed_batch_path), load=LoadKind.OPEN, rate="10", dynamic_batching="auto"
    )
    with pytest.raises(BadInput, match="fixed batch dimension of 1"):
        build_request(opts)


def test_dynamic_batching_needs_open_loop(mlp_path) -> None:
    with pytest.raises(BadInput, match="open-loop schedule"):
        build_request(SweepOptions(model=str(mlp_path), dynamic_batching="max_batch=4"))


def test_bad_choices_and_values_fail_before_anything_is_measured(mlp_path) -> None:
    model = str(mlp_path)
    with pytest.raises(BadInput, match=r"--search 'everything': unknown search strategy"):
        build_request(SweepOptions(model=model, search="everything"))
    with pytest.raises(BadInput, match="latency target 'p98=1ms' is not valid"):
        build_request(SweepOptions(model=model, latency_target="p98=1ms"))
    with pytest.raises(BadInput, match="unknown profile 'nosuch'"):
        build_request(SweepOptions(model=model, profile="nosuch"))
    with pytest.raises(BadInput, match="--load open needs --rate"):
        build_request(SweepOptions(model=model, load=LoadKind.OPEN))


def test_open_loop_without_rate_is_a_peak_search_when_a_target_is_given(mlp_path) -> None:
    req = build_request(
        SweepOptions(model=str(mlp_path), load=LoadKind.OPEN, latency_target="p99=20ms")
    )
    assert req.spec.load_kind == "open" and req.spec.rates_rps == ()


def test_sweep_spec_takes_the_words_too() -> None:
    spec = sweep_spec("cpu", "1", "2", "1", "1", "Open", "100,50", "constant")
    assert spec.load_kind is LoadKind.OPEN and spec.arrival is Arrival.CONSTANT
    assert spec.rates_rps == (50.0, 100.0)
    with pytest.raises(BadInput, match=r"--arrival 'bursty': unknown arrival distribution"):
        sweep_spec("cpu", "1", "1", "1", "1", "open", "10", "bursty")


def test_measure_settings_parse_durations_and_check_their_order() -> None:
    s = measure_settings(MeasureOptions(warmup="auto", duration="2s", window="250ms", seed=7))
    assert (s.warmup_s, s.duration_s, s.window_s, s.seed) == (None, 2.0, 0.25, 7)
    assert s.stability == pytest.approx(0.10)
    with pytest.raises(BadInput, match="--max-duration 1s is shorter than --min-duration 2s"):
        measure_settings(MeasureOptions(min_duration="2s", max_duration="1s"))
    with pytest.raises(BadInput, match="--confidence 0.3"):
        measure_settings(MeasureOptions(confidence=0.3))


def test_one_cell_request_is_exactly_the_cell_given(mlp_path) -> None:
    opts = CellOptions(model=str(mlp_path), batch=4, concurrency=2, load=LoadKind.OPEN, rate=150.0)
    req = build_cell_request(opts)
    spec = req.spec
    assert (spec.batch_sizes, spec.concurrencies, spec.rates_rps) == ((4,), (2,), (150.0,))
    assert req.latency_target is None and req.search == "grid"
    with pytest.raises(BadInput, match="--threads 0 must be at least 1"):
        build_cell_request(CellOptions(model=str(mlp_path), threads=0))


def test_resume_resolves_a_zoo_name_and_the_cell_timeout(zoo_cache) -> None:
    req = build_resume("r.json", "mlp", isolate=False, cell_timeout="2m")
    assert req.model_path == str(zoo.resolve("mlp"))
    assert (req.report_file, req.isolate, req.cell_timeout_s) == ("r.json", False, 120.0)
    assert build_resume("r.json").model_path is None


def test_a_choice_is_any_case_and_an_alias_a_vocabulary_defines() -> None:
    assert parse_choice(LoadKind, " OFFLINE ", "load kind") is LoadKind.OFFLINE
    assert parse_choice(TableFormat, "Markdown", "export format") is TableFormat.MD
    assert parse_choice(TableFormat, ".csv", "export format") is TableFormat.CSV
    with pytest.raises(BadInput) as exc:
        parse_choice(TableFormat, "xlsx", "export format", "--format")
    assert exc.value.lines() == [
        "error: --format 'xlsx': unknown export format",
        "hint: choose one of csv, parquet, md, html",
    ]
