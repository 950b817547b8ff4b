"""`--data` sources: each kind read from a real file or database the test writes (the ONNX
layout from the onnx wheel's own test data), checked against the model, sampled, padded."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import onnx
import pytest

from benchbox import model as model_mod
from benchbox.data.pool import bucket_of, build_pool
from benchbox.data.samples import load_samples, parse_bytes, parse_data_map
from benchbox.data.source import parse_source, redact
from benchbox.errors import BadInput

ONNX_DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
LENGTHS = [5, 9, 3, 17, 9, 33]


@pytest.fixture(scope="module")
def bert(bert_path):
    return model_mod.inspect_model(bert_path)


@pytest.fixture(scope="module")
def mlp(mlp_path):
    return model_mod.inspect_model(mlp_path)


def bert_rows(lengths=LENGTHS):
    return [{"input_ids": list(range(1, n + 1)), "attention_mask": [1] * n} for n in lengths]


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_parquet(path: Path, rows, row_group_size=2) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows)
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def write_sqlite(path: Path, rows, table="requests") -> Path:
    conn = sqlite3.connect(path)
    cols = list(rows[0]) if rows else ["input_ids", "attention_mask"]
    conn.execute(f"CREATE TABLE {table} ({', '.join(c + ' TEXT' for c in cols)}, n INTEGER)")
    for r in rows:
        values = [json.dumps(r[c]) for c in cols] + [len(r[cols[0]])]
        conn.execute(f"INSERT INTO {table} VALUES ({', '.join('?' * len(values))})", values)
    conn.commit()
    conn.close()
    return path


def lengths_of(data, info):
    return [int(s["input_ids"].shape[0]) for s in data.samples]


def test_jsonl_parquet_sqlite_and_npz_read_the_same_samples_with_one_sha(tmp_path, bert):
    rows = bert_rows()
    jsonl = write_jsonl(tmp_path / "log.jsonl", rows)
    parquet = write_parquet(tmp_path / "lake.parquet", rows)
    db = write_sqlite(tmp_path / "req.db", rows)
    read = {
        "jsonl": load_samples(str(jsonl), bert),
        "parquet": load_samples(str(parquet), bert),
        "sqlite": load_samples(f"sqlite://{db}?table=requests", bert),
    }
    for kind, data in read.items():
        assert data.info.kind == kind
        assert lengths_of(data, bert) == LENGTHS
        assert data.samples[3]["input_ids"].dtype == np.int64
        assert data.samples[3]["input_ids"].tolist() == list(range(1, 18))
        assert data.info.samples_read == 6 and not data.info.sampled
        assert data.info.length_dim == "seq"
        assert data.info.length_counts == {3: 1, 5: 1, 9: 2, 17: 1, 33: 1}
    assert len({d.info.sha256 for d in read.values()}) == 1
    # npz holds fixed shapes: one array per input, first axis = samples
    ids = np.arange(4 * 8, dtype=np.int32).reshape(4, 8) % 50
    np.savez(tmp_path / "fixed.npz", input_ids=ids, attention_mask=np.ones((4, 8), np.int64))
    data = load_samples(str(tmp_path / "fixed.npz"), bert)
    assert data.info.kind == "npz" and len(data.samples) == 4
    assert data.samples[2]["input_ids"].dtype == np.int64
    assert data.samples[2]["input_ids"].tolist() == ids[2].tolist()
    assert data.info.sha256 != read["jsonl"].info.sha256


def test_parquet_folder_of_files_reads_every_file_in_order(tmp_path, bert):
    folder = tmp_path / "lake"
    (folder / "day=2").mkdir(parents=True)
    write_parquet(folder / "a.parquet", bert_rows([4, 6]))
    write_parquet(folder / "day=2" / "b.parquet", bert_rows([8]))
    data = load_samples(str(folder), bert)
    assert data.info.kind == "parquet" and lengths_of(data, bert) == [4, 6, 8]


def test_sqlite_query_and_data_map(tmp_path, bert):
    rows = [{"ids": r["input_ids"], "mask": r["attention_mask"]} for r in bert_rows()]
    db = write_sqlite(tmp_path / "q.db", rows, table="t")
    src = "sqlite://" + str(db) + "?query=SELECT ids, mask FROM t WHERE n > 8 ORDER BY n DESC"
    data = load_samples(
        src, bert, data_map=parse_data_map(["ids=input_ids", "mask=attention_mask"])
    )
    assert lengths_of(data, bert) == [33, 17, 9, 9]
    assert data.info.query.startswith("SELECT ids") and data.info.table is None
    assert data.info.data_map == {"ids": "input_ids", "mask": "attention_mask"}


def test_onnx_test_data_layout_from_the_onnx_wheel():
    folder = ONNX_DATA / "pytorch-converted" / "test_Linear"
    info = model_mod.inspect_model(folder / "model.onnx")
    data = load_samples(str(folder), info)
    assert data.info.kind == "onnx-test-data"
    tensor = onnx.TensorProto()
    tensor.ParseFromString((folder / "test_data_set_0" / "input_0.pb").read_bytes())
    whole = onnx.numpy_helper.to_array(tensor)
    # one test set is one request of the model's fixed batch: cut into its samples
    assert len(data.samples) == whole.shape[0]
    assert np.array_equal(data.samples[1][info.inputs[0].name], whole[1])
    pool = build_pool(data, info, info.batch)
    assert np.array_equal(pool.feeds[0][info.inputs[0].name], whole)


def test_kept_samples_own_their_memory_so_a_row_group_is_not_kept_alive(tmp_path, bert):
    """A sample read from a row group is a view into the group's buffer; kept as such, one
    sample would hold its whole group, and a sampled 10x-limit lake would be read whole into
    memory. Kept samples own their arrays, and a batch-1 pool reuses them without a copy."""
    path = write_parquet(tmp_path / "lake.parquet", bert_rows([5 + i % 9 for i in range(300)]), 64)
    limit = 30 * (200 + 2 * (130 + 8 * 9))
    data = load_samples(str(path), bert, limit_bytes=limit, seed=3)
    assert data.info.sampled and data.info.samples_used < 300
    assert all(a.base is None for s in data.samples for a in s.values())
    pool = build_pool(data, bert, 1)
    for feed, sample in zip(pool.feeds, data.samples, strict=True):
        assert all(np.shares_memory(feed[k], sample[k]) for k in sample)


def test_limit_samples_reproducibly_by_seed_and_says_so(tmp_path, bert):
    rows = bert_rows([4 + i % 7 for i in range(200)])
    path = write_jsonl(tmp_path / "big.jsonl", rows)
    full = load_samples(str(path), bert)
    limit = 40 * (200 + 2 * 8 * 10)
    a = load_samples(str(path), bert, limit_bytes=limit, seed=1)
    b = load_samples(str(path), bert, limit_bytes=limit, seed=1)
    c = load_samples(str(path), bert, limit_bytes=limit, seed=2)
    assert a.info.sampled and a.info.samples_read == 200 and a.info.samples_used < 200
    assert a.info.limit_bytes == limit and a.info.seed == 1
    assert sum(s["input_ids"].nbytes * 2 + 200 for s in a.samples) <= limit
    assert [s["input_ids"].tolist() for s in a.samples] == [
        s["input_ids"].tolist() for s in b.samples
    ]
    assert [s["input_ids"].tolist() for s in a.samples] != [
        s["input_ids"].tolist() for s in c.samples
    ]
    # the hash covers what was read, so a sample of the same source hashes as the whole
    assert a.info.sha256 == full.info.sha256 and not full.info.sampled


def test_pool_pads_each_batch_to_its_longest_member_and_buckets_it(tmp_path, bert):
    data = load_samples(str(write_jsonl(tmp_path / "l.jsonl", bert_rows())), bert)
    pool = build_pool(data, bert, 2)
    assert [f["input_ids"].shape for f in pool.feeds] == [(2, 9), (2, 17), (2, 33)]
    first = pool.feeds[0]
    assert first["attention_mask"].tolist()[0] == [1] * 5 + [0] * 4
    assert first["input_ids"].tolist()[0] == [1, 2, 3, 4, 5, 0, 0, 0, 0]
    assert pool.lengths.tolist() == [9, 17, 33] and pool.buckets.tolist() == [16, 32, 64]
    assert [bucket_of(n) for n in (1, 2, 3, 8, 9, 512)] == [1, 2, 4, 8, 16, 512]
    single = build_pool(data, bert, 1)
    assert [f["input_ids"].shape[1] for f in single.feeds] == LENGTHS


def test_source_grammar_and_credentials_stripped(tmp_path):
    db = write_sqlite(tmp_path / "x.db", bert_rows([2]))
    src = parse_source(f"sqlite://{db}?table=requests&timeout=0.5")
    assert (src.kind, src.path, src.table, src.timeout_s) == ("sqlite", str(db), "requests", 0.5)
    assert parse_source("sqlite:rel/x.db?query=SELECT 1").path == "rel/x.db"
    shown = redact("s3://user:hunter2@bucket/lake?region=eu&token=abc")
    assert "hunter2" not in shown and "abc" not in shown and "region=eu" in shown
    assert redact("/plain/path.jsonl") == "/plain/path.jsonl"
    assert parse_bytes("512MB") == 512 * 10**6 and parse_bytes("2GiB") == 2 << 30
    for bad in ("sqlite:///x.db", "sqlite:///x.db?table=a&query=b", "ftp://h/x", "none.csv"):
        with pytest.raises(BadInput):
            parse_source(bad)


def one_line(exc: BadInput) -> str:
    assert "\n" not in exc.message
    return exc.message


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing column", "input 'attention_mask', sample 0: no column of that name"),
        ("wrong dtype", "input 'input_ids', sample 1: expected int64, got float64"),
        ("nan in int", "input 'input_ids', sample 0: NaN in an integer input"),
        ("ragged mlp", "input 'x', sample 1: dim 0 is 63, expected 64"),
        ("ragged nested", "column 'x', sample 0: a ragged nested list"),
        ("shared dim", "input 'attention_mask', sample 0: dim 'seq' is 3, but input 'input_ids'"),
        ("empty", "no samples in it"),
        ("ids beyond vocab", "outside the model's embedding table"),
    ],
)
def test_bad_rows_fail_in_one_line_naming_input_and_sample(tmp_path, bert, mlp, case, expected):
    rows = {
        "missing column": ([{"input_ids": [1, 2]}], bert),
        "wrong dtype": (
            bert_rows([2]) + [{"input_ids": [0.5, 1.5], "attention_mask": [1, 1]}],
            bert,
        ),
        "nan in int": ([{"input_ids": [float("nan"), 1.0], "attention_mask": [1, 1]}], bert),
        "ragged mlp": ([{"x": [0.0] * 64}, {"x": [0.0] * 63}], mlp),
        "ragged nested": ([{"x": [[0.0] * 64, [1.0]]}], mlp),
        "shared dim": ([{"input_ids": [1, 2], "attention_mask": [1, 1, 1]}], bert),
        "empty": ([], bert),
        "ids beyond vocab": ([{"input_ids": [10**6], "attention_mask": [1]}], bert),
    }[case]
    path = write_jsonl(tmp_path / "bad.jsonl", rows[0])
    with pytest.raises(BadInput) as err:
        load_samples(str(path), rows[1])
    assert expected in one_line(err.value)


def test_empty_table_truncated_parquet_and_database_errors(tmp_path, bert):
    db = write_sqlite(tmp_path / "e.db", [])
    cases = {
        f"sqlite://{db}?table=requests": "no samples in it",
        f"sqlite://{db}?table=nope": "cannot read table 'nope': no such table",
        f"sqlite://{db}?query=SELEC x": "the query failed",
        f"sqlite://{tmp_path}/missing.db?table=t": "no database file",
    }
    parquet = write_parquet(tmp_path / "t.parquet", bert_rows(), row_group_size=1)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(parquet.read_bytes()[: parquet.stat().st_size // 2])
    cases[str(cut)] = "not a readable Parquet file"
    for source, expected in cases.items():
        with pytest.raises(BadInput) as err:
            load_samples(source, bert)
        assert expected in one_line(err.value), source


def test_locked_database_fails_after_its_timeout(tmp_path, bert):
    db = write_sqlite(tmp_path / "l.db", bert_rows([2]))
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(BadInput) as err:
            load_samples(f"sqlite://{db}?table=requests&timeout=0.05", bert)
        assert "the database is locked" in one_line(err.value)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert len(load_samples(f"sqlite://{db}?table=requests", bert).samples) == 1
