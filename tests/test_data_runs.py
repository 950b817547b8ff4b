"""Cells measured on `--data`: real onnxruntime sessions on the zoo's BERT, requests from the
samples a test writes, each request's bucket known outside the timed path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchbox import model as model_mod
from benchbox.data.pool import build_pool
from benchbox.data.samples import load_samples
from benchbox.measure.buckets import bucket_stats
from benchbox.schema import Cell, Load, MeasureSettings, ServingConfig, cell_id
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
