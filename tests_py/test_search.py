"""Readers and exact vector search against real pylance: open_dataset on
Lance datasets, bucket directories and storage paths; search equal to
pylance's flat search (same _rowid, _distance within 1e-5); filters; time
travel; streaming scans; a writer's buffered rows; hostile inputs."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import lance
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import persisting
from persisting import PersistingBackend, open_dataset

DIM = 16


def _table(n: int, start: int = 0, seed: int = 0, dim: int = DIM) -> pa.Table:
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    ids = np.arange(start, start + n)
    price = pa.array([None if i % 11 == 0 else float(i % 97) / 4 for i in ids], pa.float64())
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "cat": pa.array([None if i % 13 == 0 else f"c{i % 7}" for i in ids]),
            "price": price,
            "flag": pa.array([i % 3 == 0 for i in ids]),
            "day": pa.array(
                [dt.date(2024, 1, 1) + dt.timedelta(days=int(i % 40)) for i in ids], pa.date32()
            ),
            "ts": pa.array(
                [
                    dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(hours=int(i))
                    for i in ids
                ],
                pa.timestamp("us", tz="UTC"),
            ),
            "v": pa.FixedSizeListArray.from_arrays(pa.array(vecs.ravel()), dim),
        }
    )


@pytest.fixture
def lance_path(tmp_path: Path) -> str:
    """A Lance 2.0 dataset written by pylance in three fragments."""
    path = str(tmp_path / "ds.lance")
    lance.write_dataset(_table(1500), path, data_storage_version="2.0")
    lance.write_dataset(_table(1500, 1500, seed=1), path, mode="append")
    lance.write_dataset(_table(1000, 3000, seed=2), path, mode="append")
    return path


def _query(seed: int = 7, dim: int = DIM) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


def _pylance(path: str, q, k: int, metric: str, flt: str | None, version: int | None = None):
    ds = lance.dataset(path, version=version)
    return ds.to_table(
        columns=["id"],
        filter=flt,
        nearest={"column": "v", "q": q, "k": k, "metric": metric, "use_index": False},
        prefilter=True,
        with_row_id=True,
    )


def _assert_same(ours: pa.Table, ref: pa.Table) -> None:
    assert ours["_rowid"].to_pylist() == ref["_rowid"].to_pylist()
    assert ours["id"].to_pylist() == ref["id"].to_pylist()
    np.testing.assert_allclose(
        np.asarray(ours["_distance"]), np.asarray(ref["_distance"]), rtol=1e-5, atol=1e-5
    )


FILTERS = [None, "cat IN ('c1', 'c2') AND price >= 3", "id BETWEEN 100 AND 2999 AND NOT flag"]


@pytest.mark.parametrize("metric", ["l2", "cosine", "dot"])
@pytest.mark.parametrize("flt", FILTERS)
def test_search_equals_pylance_flat_search(lance_path, metric, flt):
    ds = open_dataset(lance_path)
    for seed in range(3):
        q = _query(seed)
        for k in (1, 10, 57):
            ours = ds.search("v", q, k=k, metric=metric, filter=flt, columns=["id"])
            _assert_same(ours, _pylance(lance_path, q, k, metric, flt))


def test_search_ties_ordered_by_row_id(tmp_path):
    path = str(tmp_path / "ties.lance")
    # Four distinct vectors repeated: every distance appears many times.
    base = np.eye(DIM, dtype=np.float32)[:4]
    vecs = np.tile(base, (250, 1))
    t = pa.table(
        {
            "id": pa.array(np.arange(1000), pa.int64()),
            "v": pa.FixedSizeListArray.from_arrays(pa.array(vecs.ravel()), DIM),
        }
    )
    lance.write_dataset(t.slice(0, 600), path, data_storage_version="2.0")
    lance.write_dataset(t.slice(600), path, mode="append")
    q = np.zeros(DIM, np.float32)
    q[0] = 1
    ds = open_dataset(path)
    for metric in ("l2", "dot", "cosine"):
        for k in (5, 250, 300):
            ours = ds.search("v", q, k=k, metric=metric, columns=["id"])
            _assert_same(ours, _pylance(path, q, k, metric, None))
            rowids = ours["_rowid"].to_pylist()
            d = ours["_distance"].to_pylist()
            assert all((d[i], rowids[i]) < (d[i + 1], rowids[i + 1]) for i in range(len(d) - 1))


def test_search_after_pylance_deletions_and_compaction(lance_path):
    lds = lance.dataset(lance_path)
    lds.delete("id % 3 = 0 OR id BETWEEN 1400 AND 1700")
    q = _query()
    ds = open_dataset(lance_path)
    assert ds.count() == lance.dataset(lance_path).count_rows()
    for metric in ("l2", "cosine"):
        for flt in (None, "cat = 'c3'"):
            _assert_same(
                ds.search("v", q, k=20, metric=metric, filter=flt, columns=["id"]),
                _pylance(lance_path, q, 20, metric, flt),
            )
    lance.dataset(lance_path).optimize.compact_files(target_rows_per_fragment=100_000)
    ds.refresh()
    assert lance.dataset(lance_path).version == ds.version
    assert len(lance.dataset(lance_path).get_fragments()) == 1
    for metric in ("l2", "dot"):
        _assert_same(
            ds.search("v", q, k=15, metric=metric, columns=["id"]),
            _pylance(lance_path, q, 15, metric, None),
        )
    # The scan sees the same live rows as pylance, with the same row ids.
    ours = ds.to_arrow(columns=["id"], with_row_id=True)
    ref = lance.dataset(lance_path).to_table(columns=["id"], with_row_id=True)
    assert ours["id"].to_pylist() == ref["id"].to_pylist()
    assert ours["_rowid"].to_pylist() == ref["_rowid"].to_pylist()


# -- filters -----------------------------------------------------------------

FILTER_CASES = [
    "id = 5",
    "id != 5",
    "id <> 5",
    "id < 100",
    "id <= 100",
    "id > 3900",
    "id >= 3900",
    "price > 10.5",
    "price BETWEEN 2 AND 4",
    "price NOT BETWEEN 2 AND 20",
    "cat IN ('c1', 'c4')",
    "cat NOT IN ('c1', 'c4')",
    "cat IS NULL",
    "cat IS NOT NULL",
    "price IS NULL OR cat IS NULL",
    "NOT (price > 5 AND cat = 'c2')",
    "(id < 10 OR id > 3990) AND flag = TRUE",
    "flag = false",
    "day >= DATE '2024-02-01'",
    # Plain strings against dates and timestamps are our extension; pylance
    # gets the typed literal.
    ("day = '2024-01-05'", "day = DATE '2024-01-05'"),
    "ts < TIMESTAMP '2024-01-03 00:00:00'",
    (
        "ts >= TIMESTAMP '2024-05-01T00:00:00Z' AND ts < '2024-05-02'",
        "ts >= TIMESTAMP '2024-05-01 00:00:00' AND ts < TIMESTAMP '2024-05-02 00:00:00'",
    ),
    "cat >= 'c5'",
]


@pytest.mark.parametrize("expr", FILTER_CASES)
def test_filter_operators_match_pylance(lance_path, expr):
    expr, theirs = expr if isinstance(expr, tuple) else (expr, expr)
    ds = open_dataset(lance_path)
    ref = lance.dataset(lance_path).to_table(columns=["id"], filter=theirs)["id"].to_pylist()
    assert ds.count(expr) == len(ref)
    assert ds.to_arrow(columns=["id"], filter=expr)["id"].to_pylist() == ref


def test_filter_nulls_are_unknown(lance_path):
    ds = open_dataset(lance_path)
    nulls = ds.count("price IS NULL")
    assert nulls > 0
    # A comparison with a null is unknown: neither p < 5 nor NOT (p < 5) holds.
    assert ds.count("price < 5") + ds.count("NOT (price < 5)") + nulls == ds.count()


@pytest.mark.parametrize(
    ("expr", "column"),
    [
        ("nope = 1", "nope"),
        ("id = 'x'", "id"),
        ("cat > 3", "cat"),
        ("flag = 1", "flag"),
        ("v = 1", "v"),
        ("day < 'yesterday'", "day"),
        ("price = NULL", "price"),
    ],
)
def test_filter_errors_name_the_column(lance_path, expr, column):
    ds = open_dataset(lance_path)
    for call in (
        lambda: ds.count(expr),
        lambda: ds.to_arrow(filter=expr),
        lambda: ds.search("v", _query(), filter=expr),
    ):
        with pytest.raises(ValueError, match=column) as info:
            call()
        assert info.value.field == column


@pytest.mark.parametrize(
    "expr", ["id =", "id = 1 AND", "(id = 1", "id ~ 1", "'x' = id", "id IN ()"]
)
def test_filter_syntax_errors(lance_path, expr):
    with pytest.raises(ValueError, match="filter"):
        open_dataset(lance_path).count(expr)


# -- hostile queries ---------------------------------------------------------


def test_hostile_search_inputs(lance_path):
    ds = open_dataset(lance_path)
    with pytest.raises(ValueError, match="dimension"):
        ds.search("v", np.zeros(DIM + 1, np.float32))
    for k in (0, -3):
        with pytest.raises(ValueError, match="k must be positive"):
            ds.search("v", _query(), k=k)
    with pytest.raises(TypeError):
        ds.search("v", _query(), k=2.5)
    nan = _query()
    nan[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ds.search("v", nan)
    with pytest.raises(ValueError, match="metric"):
        ds.search("v", _query(), metric="hamming")
    with pytest.raises(ValueError, match="id"):
        ds.search("id", _query())
    with pytest.raises(ValueError, match="nope"):
        ds.search("nope", _query())
    with pytest.raises(ValueError, match="1-D"):
        ds.search("v", np.zeros((2, DIM), np.float32))
    with pytest.raises(ValueError, match="zero"):
        ds.search("v", np.zeros(DIM, np.float32), metric="cosine")
    with pytest.raises(ValueError, match="nope"):
        ds.to_arrow(columns=["nope"])
    # The dataset still works.
    assert len(ds.search("v", _query(), k=3)) == 3


def test_open_errors(tmp_path):
    with pytest.raises(persisting.StorageError, match="no such file"):
        open_dataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(persisting.StorageError, match="no Lance dataset"):
        open_dataset(tmp_path / "empty")


# -- time travel and streaming ----------------------------------------------


def test_time_travel(lance_path):
    ds = open_dataset(lance_path)
    versions = ds.versions()
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert [v["rows"] for v in versions] == [1500, 3000, 4000]
    q = _query()
    ds.checkout(1)
    assert ds.version == 1 and ds.count() == 1500
    _assert_same(
        ds.search("v", q, k=10, columns=["id"]), _pylance(lance_path, q, 10, "l2", None, 1)
    )
    assert open_dataset(lance_path, version=2).count("id >= 1500") == 1500
    ds.checkout(versions[1]["timestamp"])
    assert ds.version == 2
    ds.refresh()
    assert ds.version == 3 and ds.count() == 4000
    with pytest.raises(ValueError, match="no version 9"):
        ds.checkout(9)


def test_scan_streams_batch_by_batch(tmp_path):
    path = str(tmp_path / "many.lance")
    lance.write_dataset(_table(100), path, data_storage_version="2.0")
    for i in range(1, 20):
        lance.write_dataset(_table(100, 100 * i, seed=i), path, mode="append")
    ds = open_dataset(path)
    reader = ds.scan(columns=["id"], batch_rows=100)
    first = reader.read_next_batch()
    assert first["id"].to_pylist() == list(range(100))
    # Go reads at most GOMAXPROCS+1 chunks ahead: the last fragments' files
    # are not open yet, so removing them now makes the scan fail there.
    assert (os.cpu_count() or 1) < 12
    files = {f.data_files()[0].path for f in lance.dataset(path).get_fragments()[-4:]}
    for name in files:
        os.remove(os.path.join(path, "data", name))
    seen = 100
    with pytest.raises(OSError):
        for batch in reader:
            seen += batch.num_rows
    assert 100 < seen < 2000


def test_scan_with_row_ids_and_projection(lance_path):
    ds = open_dataset(lance_path)
    ours = ds.to_arrow(columns=["cat", "id"], filter="id < 50", with_row_id=True)
    assert ours.column_names == ["cat", "id", "_rowid"]
    ref = lance.dataset(lance_path).to_table(
        columns=["cat", "id"], filter="id < 50", with_row_id=True
    )
    assert ours.to_pylist() == ref.select(["cat", "id", "_rowid"]).to_pylist()
    assert ds.schema.names == ["id", "cat", "price", "flag", "day", "ts", "v"]


# -- writers: buffered rows, other processes ---------------------------------


async def _put_rows(backend: PersistingBackend, table: pa.Table) -> None:
    for row in table.to_pylist():
        row["v"] = np.asarray(row["v"], np.float32)
        await backend.put(row)


def _brute(table: pa.Table, q: np.ndarray, k: int) -> list[int]:
    vecs = np.asarray(table["v"].combine_chunks().flatten()).reshape(-1, DIM)
    d = ((vecs - q) ** 2).sum(axis=1)
    ids = np.asarray(table["id"])
    order = np.lexsort((ids, d))
    return ids[order[:k]].tolist()


async def test_writer_search_includes_buffered_rows(open_backend):
    b = open_backend(batch_size=1000, vector_columns={"v": DIM})
    data = _table(400).drop_columns(["ts", "day"])
    await _put_rows(b, data.slice(0, 250))
    await b.flush()
    await _put_rows(b, data.slice(250))  # stays in the buffer (batch_size 1000)
    q = _query()
    res = await b.search("v", q, k=30, columns=["id"])
    assert res["id"].to_pylist() == _brute(data, q, 30)
    rowids = res["_rowid"].to_pylist()
    buffered = [i for i, r in zip(res["id"].to_pylist(), rowids, strict=True) if r is None]
    assert buffered and all(i >= 250 for i in buffered)
    filtered = await b.search("v", q, k=10, columns=["id"], filter="id >= 250 AND cat = 'c1'")
    sub = data.filter(pc.and_(pc.greater_equal(data["id"], 250), pc.equal(data["cat"], "c1")))
    assert filtered["id"].to_pylist() == _brute(sub, q, 10)
    # Persisted, the same rows come back with their Lance row ids, equal to pylance's.
    await b.flush()
    res = await b.search("v", q, k=30, columns=["id"])
    ref = _pylance(os.path.join(b.bucket_dir, "data.lance"), q, 30, "l2", None)
    _assert_same(res, ref)
    with pytest.raises(ValueError, match="dimension"):
        await b.search("v", q[:3])


_READER = textwrap.dedent(
    """
    import sys, time, json
    import persisting
    ds = persisting.open_dataset(sys.argv[1])
    seen = []
    deadline = time.time() + 60
    while time.time() < deadline:
        ds.refresh()
        seen.append([ds.version, ds.count()])
        if ds.count() >= int(sys.argv[2]):
            break
        time.sleep(0.05)
    print(json.dumps(seen))
    """
)


async def test_reader_in_another_process_beside_a_live_writer(open_backend, tmp_path):
    import asyncio
    import json

    b = open_backend(batch_size=50, vector_columns={"v": DIM})
    data = _table(500).drop_columns(["ts", "day"])
    await _put_rows(b, data.slice(0, 50))
    await b.flush()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _READER,
        str(tmp_path / "bucket_0"),
        "500",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    for i in range(1, 10):
        await _put_rows(b, data.slice(50 * i, 50))
        await b.flush()
        await asyncio.sleep(0.05)
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0, err.decode()
    seen = json.loads(out)
    assert seen[-1][1] == 500
    versions = [v for v, _ in seen]
    assert versions == sorted(versions) and len(set(versions)) > 1
    # The writer still holds its lock and works.
    await _put_rows(b, data.slice(0, 1))
    assert b.total_count() == 501


async def test_index_search_through_pylance_and_buffer(open_backend, tmp_path):
    b = open_backend(batch_size=10_000, vector_columns={"v": DIM})
    data = _table(3000).drop_columns(["ts", "day"])
    await _put_rows(b, data.slice(0, 2500))
    await b.flush()
    path = os.path.join(b.bucket_dir, "data.lance")
    lance.dataset(path).create_index(
        "v", index_type="IVF_PQ", num_partitions=4, num_sub_vectors=4, metric="l2"
    )
    await _put_rows(b, data.slice(2500, 300))
    await b.flush()  # our commit keeps the index; fragment 2 is not covered by it
    indices = lance.dataset(path).describe_indices()
    assert len(indices) == 1
    await _put_rows(b, data.slice(2800))  # buffered
    q = _query()
    res = await b.search("v", q, k=10, columns=["id"], use_index=True)
    assert len(res) == 10
    d = res["_distance"].to_pylist()
    assert d == sorted(d)
    exact = await b.search("v", q, k=10, columns=["id"])
    assert exact["id"].to_pylist() == _brute(data, q, 10)
    # The reader goes through the index too and agrees with pylance on that version.
    ds = open_dataset(path)
    assert ds.buckets[0]["indexed"]
    ours = ds.search("v", q, k=10, columns=["id"], use_index=True)
    ref = lance.dataset(path).to_table(
        columns=["id"],
        nearest={"column": "v", "q": q, "k": 10, "metric": "l2", "use_index": True},
        with_row_id=True,
    )
    assert ours["_rowid"].to_pylist() == ref["_rowid"].to_pylist()
    # A row only in the buffer that is the exact query is found through use_index.
    hit = data.slice(2900, 1)
    qv = np.asarray(hit["v"][0].values, np.float32)
    res = await b.search("v", qv, k=1, columns=["id"], use_index=True)
    assert res["id"].to_pylist() == [2900] and res["_rowid"].to_pylist() == [None]


async def test_pulsing_writers_and_a_reader_on_the_storage_path(system, tmp_path):
    """A Pulsing app reaches search and time travel through open_dataset on
    the queue's storage_path, while its writers keep writing."""
    from pulsing.streaming import write_queue

    writer = await write_queue(
        system,
        "vectors",
        backend="persisting",
        num_buckets=3,
        batch_size=40,
        storage_path=str(tmp_path),
        backend_options={"vector_columns": {"v": DIM}},
    )
    data = _table(300).drop_columns(["ts", "day"])
    rows = data.to_pylist()
    for row in rows[:150]:
        row["v"] = np.asarray(row["v"], np.float32)
        await writer.put(row)
    await writer.flush()
    ds = open_dataset(tmp_path)
    assert sorted(b["bucket"] for b in ds.buckets) == [0, 1, 2]
    assert ds.count() == 150
    first = ds.version
    assert isinstance(first, dict) and set(first) == {0, 1, 2}
    for row in rows[150:]:
        row["v"] = np.asarray(row["v"], np.float32)
        await writer.put(row)
    await writer.flush()
    assert ds.count() == 150  # a reader sees its version until refresh
    ds.refresh()
    assert ds.count() == 300
    q = _query()
    res = ds.search("v", q, k=12, columns=["id"], filter="price IS NOT NULL")
    sub = data.filter(pc.is_valid(data["price"]))
    assert res["id"].to_pylist() == _brute(sub, q, 12)
    assert res.column_names == ["id", "_distance", "_rowid", "_bucket"]
    # Each bucket's hits agree with pylance on that bucket's dataset.
    for bucket in {*res["_bucket"].to_pylist()}:
        path = str(tmp_path / f"bucket_{bucket}" / "data.lance")
        mine = [
            r
            for r, b in zip(res["_rowid"].to_pylist(), res["_bucket"].to_pylist(), strict=True)
            if b == bucket
        ]
        ref = _pylance(path, q, 12, "l2", "price IS NOT NULL")["_rowid"].to_pylist()
        assert mine == ref[: len(mine)]
    ds.checkout(first)
    assert ds.count() == 150
    assert ds.to_arrow(columns=["id"])["id"].to_pylist() != []
