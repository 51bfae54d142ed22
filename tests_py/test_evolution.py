"""Schema evolution through PersistingBackend: each change before flush, after
flush and across a restart with WAL replay; refused changes fail alone."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import sys

import lance
import numpy as np
import pyarrow as pa
import pytest

from persisting import PersistingBackend, SchemaError

WAL = {"enable_wal": True, "wal_sync_interval": 0}

# (name, first records, later records, expected read-back of all of them)
CHANGES = [
    (
        "add a field",
        [{"id": 1}],
        [{"id": 2, "name": "b"}],
        [{"id": 1, "name": None}, {"id": 2, "name": "b"}],
    ),
    ("widen int to float", [{"x": 1}], [{"x": 2.5}], [{"x": 1.0}, {"x": 2.5}]),
    ("float column takes ints", [{"x": 1.5}], [{"x": 2}], [{"x": 1.5}, {"x": 2.0}]),
    ("null column becomes typed", [{"x": None}], [{"x": "s"}], [{"x": None}, {"x": "s"}]),
    (
        "nested field added",
        [{"s": {"a": 1}}],
        [{"s": {"a": 2, "b": "x"}}],
        [{"s": {"a": 1, "b": None}}, {"s": {"a": 2, "b": "x"}}],
    ),
]

REFUSED = [
    ("int to str", {"x": 1}, {"x": "one"}, "x"),
    ("str to int", {"x": "one"}, {"x": 1}, "x"),
    ("scalar to list", {"x": 1}, {"x": [1]}, "x"),
    ("struct to scalar", {"s": {"a": 1}}, {"s": 5}, "s"),
    (
        "vector dimension",
        {"v": np.ones(4, dtype=np.float32)},
        {"v": np.ones(8, dtype=np.float32)},
        "v",
    ),
]


async def reopen(path: str, **options) -> PersistingBackend:
    b = PersistingBackend(bucket_id=0, storage_path=path, batch_size=10**6, **options)
    await b.ready()
    return b


async def crash_after(path: str, batches: list[list[dict]]) -> None:
    """A child puts each batch with the WAL on and dies without flushing."""
    script = f"""
import asyncio, os, signal
from persisting import PersistingBackend
async def main():
    b = PersistingBackend(bucket_id=0, storage_path={path!r}, batch_size=10**6,
                          enable_wal=True, wal_sync_interval=0)
    for batch in {batches!r}:
        for record in batch:
            await b.put(record)
    os.kill(os.getpid(), signal.SIGKILL)
asyncio.run(main())
"""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", script)
    assert await proc.wait() == -signal.SIGKILL


@pytest.mark.parametrize(
    ("name", "first", "later", "expected"), CHANGES, ids=[c[0] for c in CHANGES]
)
@pytest.mark.parametrize("where", ["buffered", "flushed between", "flushed after", "wal replay"])
async def test_accepted_change(tmp_path, name, first, later, expected, where):
    path = str(tmp_path / "b")
    if where == "wal replay":
        await crash_after(path, [first, later])
        b = await reopen(path, **WAL)
    else:
        b = await reopen(path, **WAL)
        for record in first:
            await b.put(record)
        if where == "flushed between":
            await b.flush()
        for record in later:
            await b.put(record)
        if where == "flushed after":
            await b.flush()
    try:
        assert await b.get(100, 0) == expected
        await b.flush()
        assert await b.get(100, 0) == expected
        assert (await b.stats())["flush_errors"] == 0
    finally:
        await b.close()
    assert lance.dataset(f"{path}/data.lance").to_table().to_pylist() == expected
    b = await reopen(path, **WAL)
    try:
        assert await b.get(100, 0) == expected
    finally:
        await b.close()


@pytest.mark.parametrize(("name", "good", "bad", "field"), REFUSED, ids=[r[0] for r in REFUSED])
@pytest.mark.parametrize("flushed", [False, True], ids=["buffered", "flushed"])
async def test_refused_change_fails_alone(open_backend, name, good, bad, field, flushed):
    b = open_backend(batch_size=10**6, **WAL)
    await b.put(good)
    if flushed:
        await b.flush()
    with pytest.raises(SchemaError) as info:
        await b.put(bad)
    assert f'"{field}"' in str(info.value)
    await b.put(good)
    rows = await b.get(10, 0)
    assert len(rows) == 2
    assert b.total_count() == 2
    await b.flush()
    assert (await b.stats())["flush_errors"] == 0


async def test_users_guide_sequence(open_backend):
    b = open_backend()
    await b.put({"id": "1", "name": "Alice"})
    await b.put({"id": "2", "name": "Bob", "age": 30})
    assert await b.get(10, 0) == [
        {"id": "1", "name": "Alice", "age": None},
        {"id": "2", "name": "Bob", "age": 30},
    ]
    await b.flush()
    schema = lance.dataset(f"{b.storage_path}/data.lance").schema
    assert schema.names == ["id", "name", "age"]


async def test_field_defaults_fill_missing_fields(open_backend):
    b = open_backend(field_defaults={"age": 0})
    await b.put({"id": "1", "name": "Alice"})
    await b.put({"id": "2", "name": "Bob", "age": 30})
    assert [r["age"] for r in await b.get(10, 0)] == [0, 30]


async def test_datetimes_dates_and_vectors_round_trip(open_backend):
    paris = dt.timezone(dt.timedelta(hours=1))
    b = open_backend(vector_columns={"emb": 3})
    records = [
        {
            "at": dt.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=paris),
            "naive": dt.datetime(2026, 1, 2, 3, 4, 5, 654321),
            "day": dt.date(2026, 11, 26),
            "vec": np.arange(4, dtype=np.float32),
            "emb": [0.5, 1.5, 2.5],
            "n": np.int64(7),
            "f": np.float32(0.25),
        }
    ]
    await b.put_batch(records)
    for stage in ("buffered", "flushed"):
        (got,) = await b.get(1, 0)
        assert got["at"] == records[0]["at"] and got["at"].utcoffset() == dt.timedelta(hours=1)
        assert got["naive"] == records[0]["naive"] and got["naive"].tzinfo is None
        assert got["day"] == dt.date(2026, 11, 26)
        assert got["vec"].dtype == np.float32 and np.array_equal(got["vec"], np.arange(4))
        assert got["emb"].dtype == np.float32 and got["emb"].tolist() == [0.5, 1.5, 2.5]
        assert got["n"] == 7 and type(got["n"]) is int
        assert got["f"] == 0.25 and type(got["f"]) is float
        if stage == "buffered":
            await b.flush()
    schema = lance.dataset(f"{b.storage_path}/data.lance").schema
    assert schema.field("vec").type == pa.list_(pa.float32(), 4)
    assert schema.field("emb").type == pa.list_(pa.float32(), 3)
    assert schema.field("at").type == pa.timestamp("us", tz="+01:00")


async def test_put_batch_takes_arrow_objects(open_backend):
    b = open_backend()
    table = pa.table({"id": pa.array([1, 2, 3]), "name": pa.array(["a", "b", None])})
    await b.put_batch(table)
    await b.put_batch(table.to_batches()[0])
    await b.put_batch(table.to_reader())  # __arrow_c_stream__
    assert b.total_count() == 9
    assert await b.get(3, 6) == table.to_pylist()
    with pytest.raises(TypeError, match="int32"):
        await b.put_batch(pa.table({"id": pa.array([1], type=pa.int32())}))
    assert b.total_count() == 9


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (np.zeros((2, 2), dtype=np.float32), "1-D"),
        (np.zeros(3, dtype=np.int64), "float32"),
        (dt.timedelta(seconds=1), "duration"),
    ],
)
async def test_values_outside_the_mapping(open_backend, value, match):
    b = open_backend()
    with pytest.raises(TypeError, match=match):
        await b.put({"v": value})
    await b.put({"v": None})
    assert b.total_count() == 1


async def test_aware_datetimes_in_another_zone_keep_their_instant(open_backend):
    b = open_backend()
    plus_one = dt.timezone(dt.timedelta(hours=1))
    first = dt.datetime(2026, 1, 1, 12, 0, tzinfo=plus_one)
    later = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
    await b.put({"at": first})
    await b.put({"at": later})
    for _ in range(2):
        got = [r["at"] for r in await b.get(10, 0)]
        assert got == [first, later]  # the same instants
        assert all(g.utcoffset() == dt.timedelta(hours=1) for g in got)  # the table's zone
        await b.flush()
    with pytest.raises(SchemaError, match="at"):
        await b.put({"at": dt.datetime(2026, 1, 1, 12, 0)})  # naive meets aware


async def test_a_missing_dict_reads_as_none_before_and_after_flush(open_backend):
    b = open_backend()
    await b.put({"id": 1, "s": {"a": 1, "t": {"x": "deep"}}})
    await b.put({"id": 2})
    await b.put({"id": 3, "s": {"a": 3}})
    want = [
        {"id": 1, "s": {"a": 1, "t": {"x": "deep"}}},
        {"id": 2, "s": None},
        {"id": 3, "s": {"a": 3, "t": None}},
    ]
    assert await b.get(10, 0) == want
    await b.flush()
    assert await b.get(10, 0) == want
    # Lance 2.0 has no null structs: pylance shows the absent dict as a dict of Nones.
    theirs = lance.dataset(f"{b.storage_path}/data.lance").to_table().to_pylist()
    assert theirs[1]["s"] == {"a": None, "t": {"x": None}}
