"""Cells measured on `--data`: real onnxruntime sessions on the zoo's BERT, requests from the
samples a test writes, each request's bucket known outside the timed path."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from benchbox import model as model_mod
from benchbox.data.pool import build_pool
from benchbox.data.samples import load_samples
from benchbox.measure import stats
from benchbox.measure.buckets import bucket_stats
from benchbox.schema import Cell, Load, MeasureSettings, Result, ServingConfig, cell_id, replace
from benchbox.sweep.runner import CellContext, InProcessWorker

LENGTHS = [6, 12, 40, 7, 70, 20, 9, 100]


@pytest.fixture(scope="module")
def bert_data(bert_path, tmp_path_factory):
    info = model_mod.inspect_model(bert_path)
    path = tmp_path_factory.mktemp("data") / "log.jsonl"
    path.write_text(
        "".join(
            json.dumps({"input_ids": [1 + i % 50 for i in range(n)], "attention_mask": [1] * n})
            + "\n"
            for n in LENGTHS
        )
    )
    return info, load_samples(str(path), info)


def make_cell(batch: int, load: Load) -> Cell:
    config = ServingConfig(batch_size=batch)
    return Cell(id=cell_id(config, load), config=config, load=load)


def measure(bert_path, info, data, cell):
    settings = MeasureSettings(warmup_s=0.05, duration_s=0.3, min_duration_s=0.1)
    worker = InProcessWorker(CellContext(str(bert_path), info, settings, data=data))
    try:
        return worker.measure(cell)
    finally:
        worker.close()


@pytest.mark.parametrize(
    "load", [Load("closed", concurrency=2), Load("open", concurrency=1, rate_rps=150.0)]
)
def test_a_cell_on_data_records_latency_per_length_bucket(bert_path, bert_data, load):
    info, data = bert_data
    done = measure(bert_path, info, data, make_cell(1, load))
    assert done.status in ("ok", "unstable"), done.reason
    buckets = done.result.buckets
    expected = sorted({1 << (n - 1).bit_length() for n in LENGTHS})
    assert [b.upper for b in buckets] == expected  # every bucket was met: the pool cycles
    assert all(b.dim == "seq" for b in buckets)
    assert sum(b.requests for b in buckets) == done.result.requests
    assert all(b.latency_ms.min <= b.latency_ms.p50 <= b.latency_ms.max for b in buckets)
    assert done.result.repeat_check is None  # no two requests share a length: nothing to compare


def test_batches_are_padded_to_their_longest_member(bert_path, bert_data):
    info, data = bert_data
    done = measure(bert_path, info, data, make_cell(2, Load("closed", concurrency=1)))
    assert done.status in ("ok", "unstable"), done.reason
    # batches (6,12) (40,7) (70,20) (9,100): padded to 12, 40, 70, 100
    assert [b.upper for b in done.result.buckets] == [16, 64, 128]
    pool = build_pool(data, info, 2)
    assert pool.lengths.tolist() == [12, 40, 70, 100]


def test_bucket_stats_split_requests_by_their_pool_item():
    latency_ns = np.array([1e6, 2e6, 3e6, 4e6, 5e6])
    items = np.array([0, 1, 2, 3, 4])  # item 3 and 4 wrap round to 0 and 1
    stats = bucket_stats(latency_ns, items, np.array([8, 16, 16]), "seq")
    assert [(b.upper, b.requests) for b in stats] == [(8, 2), (16, 3)]
    assert stats[0].latency_ms.max == 4.0 and stats[1].latency_ms.min == 2.0
    assert bucket_stats(latency_ns, items, np.array([8]), None) == ()


def test_a_worker_checks_one_repeated_request_against_distinct_ones_of_its_shape(
    bert_path, tmp_path
):
    """MLPerf's TEST04, briefly: the first cell on --data carries the repeat check, on the
    most common length's distinct requests; the next cell of the worker does not repeat it."""
    info = model_mod.inspect_model(bert_path)
    path = tmp_path / "log.jsonl"
    lengths = [16, 16, 40, 16, 16, 16, 16, 90]
    path.write_text(
        "".join(
            json.dumps(
                {"input_ids": [1 + (i * k) % 90 for i in range(n)], "attention_mask": [1] * n}
            )
            + "\n"
            for k, n in enumerate(lengths)
        )
    )
    data = load_samples(str(path), info)
    settings = MeasureSettings(warmup_s=0.05, duration_s=0.3, min_duration_s=0.1)
    worker = InProcessWorker(CellContext(str(bert_path), info, settings, data=data))
    try:
        first = worker.measure(make_cell(1, Load("closed", concurrency=1)))
        second = worker.measure(make_cell(1, Load("closed", concurrency=2)))
    finally:
        worker.close()
    check = first.result.repeat_check
    assert check is not None and check.distinct == 6 and check.length == 16
    assert check.ratio == pytest.approx(check.distinct_p50_ms / check.repeated_p50_ms)
    assert second.result.repeat_check is None


def _a_result() -> Result:
    lat = np.array([1.0, 2.0, 3.0])
    return Result(
        requests=3, inferences=3, duration_s=1.0, throughput_ips=3.0, requests_per_s=3.0,
        latency_ms=stats.summarize(lat), latency_ci_ms=None, confidence=0.95,
    )  # fmt: skip


def test_the_repeat_check_flags_a_runner_that_caches_and_needs_two_of_a_shape():
    """A runner that answers a repeated request from its cache: distinct requests sleep 2 ms
    each, the repeated one returns at once, so the ratio is far over 1.1 at any speed."""
    from benchbox.measure.repeat import flattered, repeat_check, same_shape
    from benchbox.sweep.runner import with_repeat_check

    last: list = [None]

    def caching(feeds):
        if feeds is not last[0]:
            last[0] = feeds
            time.sleep(0.002)

    feeds = [{"x": np.full(4, i)} for i in range(5)]
    check = repeat_check(caching, feeds, np.array([8, 8, 8, 3, 8]), round_s=0.02)
    assert check.distinct == 4 and check.length == 8
    assert check.distinct_p50_ms >= 2.0 and flattered(check)
    cell = with_repeat_check(replace(make_cell(1, Load()), result=_a_result()), check, pool_size=5)
    assert [w.kind for w in cell.warnings] == ["repeat-faster"]
    assert "cycled 5 distinct requests" in cell.warnings[0].text
    assert repeat_check(caching, feeds, np.array([1, 2, 3, 4, 5])) is None
    assert same_shape(feeds, np.array([2, 2, 1, 1, 1]))[1] == 1
