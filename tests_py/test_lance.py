"""Flushed records live in a Lance dataset that real Lance (pylance) reads, with
the same values and types; versions and time travel."""

from __future__ import annotations

import asyncio
import gc

import lance
import pulsing as pul
import pyarrow as pa
import pytest
from pulsing.streaming import read_queue, write_queue

from persisting import PersistingBackend

RECORDS = [
    {
        "id": i,
        "name": f"name-{i}",
        "score": i / 3,
        "ok": i % 2 == 0,
        "raw": bytes([i % 256]) * (i % 5),
        "tags": [f"t{j}" for j in range(i % 4)],
        "maybe": None if i % 3 else i,
    }
    for i in range(250)
]


def dataset_path(backend: PersistingBackend) -> str:
    return f"{backend.storage_path}/data.lance"


async def test_flushed_records_read_by_pylance_with_same_values_and_types(open_backend):
    b = open_backend(batch_size=100)
    for record in RECORDS:
        await b.put(record)
    await b.flush()
    stats = await b.stats()
    assert stats["persisted_count"] == 250 and stats["buffer_count"] == 0
    table = lance.dataset(dataset_path(b)).to_table()
    assert table.num_rows == 250
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field("name").type == pa.string()
    assert table.schema.field("score").type == pa.float64()
    assert table.schema.field("ok").type == pa.bool_()
    assert table.schema.field("raw").type == pa.binary()
    assert table.schema.field("tags").type == pa.list_(pa.string())
    assert table.schema.field("maybe").type == pa.int64()
    assert table.to_pylist() == RECORDS
    assert await b.get(1000, 0) == RECORDS  # our reader agrees


async def test_every_version_we_create_is_listed_and_readable_by_pylance(open_backend):
    b = open_backend(batch_size=10**6)
    for chunk in range(3):
        await b.put_batch([{"id": chunk * 10 + i} for i in range(10)])
        await b.flush()
    ours = await b.versions()
    assert [v["version"] for v in ours] == [1, 2, 3]
    assert [v["rows"] for v in ours] == [10, 20, 30]
    ds = lance.dataset(dataset_path(b))
    assert [v["version"] for v in ds.versions()] == [1, 2, 3]
    for v in ours:
        old = lance.dataset(dataset_path(b), version=v["version"]).to_table()
        assert old.column("id").to_pylist() == list(range(v["rows"]))
        assert [r["id"] for r in await b.get_version(v["version"], 100, 0)] == list(
            range(v["rows"])
        )


async def test_time_travel_does_not_disturb_the_live_bucket(open_backend):
    b = open_backend(batch_size=10**6)
    await b.put_batch([{"id": i} for i in range(5)])
    await b.flush()
    await b.put_batch([{"id": i, "extra": "x"} for i in range(5, 8)])
    assert await b.get_version(1, 100, 2) == [{"id": 2}, {"id": 3}, {"id": 4}]
    assert await b.get_version(1, 100, 50) == []
    assert b.total_count() == 8
    assert len(await b.get(100, 0)) == 8
    with pytest.raises(ValueError, match="no version 7"):
        await b.get_version(7, 10, 0)


async def test_reopen_continues_offsets_from_the_dataset(tmp_path):
    path = str(tmp_path / "bucket_0")
    b = PersistingBackend(bucket_id=0, storage_path=path, batch_size=50)
    await b.put_batch([{"id": i} for i in range(120)])
    await b.close()
    b = PersistingBackend(bucket_id=0, storage_path=path, batch_size=50)
    try:
        await b.ready()
        assert b.total_count() == 120
        await b.put({"id": 120})
        assert [r["id"] for r in await b.get(3, 118)] == [118, 119, 120]
    finally:
        await b.close()
    assert lance.dataset(f"{path}/data.lance").count_rows() == 121


async def test_ten_thousand_records_survive_an_actor_system_restart(tmp_path):
    storage = str(tmp_path)
    system = await pul.actor_system()
    try:
        writer = await write_queue(
            system,
            "big",
            backend="persisting",
            num_buckets=4,
            batch_size=100,
            storage_path=storage,
        )
        for i in range(10_000):
            await writer.put({"id": f"k{i}", "seq": i})
        await writer.flush()
    finally:
        await system.shutdown()
    gc.collect()

    system = await pul.actor_system()
    try:
        per_bucket = []
        for bucket_id in range(4):
            reader = await read_queue(
                system, "big", bucket_id=bucket_id, backend="persisting", storage_path=storage
            )
            rows = []
            while batch := await reader.get(limit=1000):
                rows.extend(batch)
            per_bucket.append(rows)
    finally:
        await system.shutdown()
    everything = [r for rows in per_bucket for r in rows]
    assert len(everything) == 10_000
    assert sorted(r["seq"] for r in everything) == list(range(10_000))
    for rows in per_bucket:
        seqs = [r["seq"] for r in rows]
        assert seqs == sorted(seqs), "a bucket came back out of write order"


async def test_concurrent_reads_during_flushes_see_every_row(open_backend):
    b = open_backend(batch_size=20)
    stop = asyncio.Event()
    problems: list[str] = []

    async def reader():
        while not stop.is_set():
            total = b.total_count()
            rows = await b.get(10**6, 0)
            if len(rows) < total or [r["id"] for r in rows] != list(range(len(rows))):
                problems.append(f"read {len(rows)} rows with total {total}")
            await asyncio.sleep(0)

    task = asyncio.create_task(reader())
    for i in range(600):
        await b.put({"id": i})
        if i % 7 == 0:
            # A put acknowledged at once does not yield (nor does
            # MemoryBackend's): give the reader and the flushes their turns.
            await asyncio.sleep(0.001)
    stop.set()
    await task
    assert not problems, problems[:3]
    stats = await b.stats()
    assert stats["flushes"] >= 2 and stats["persisted_count"] > 0


async def test_rows_another_writer_commits_while_open_are_counted(open_backend):
    b = open_backend(batch_size=10**6)
    await b.put_batch([{"id": i} for i in range(5)])
    await b.flush()
    uri = dataset_path(b)
    lance.write_dataset(pa.table({"id": pa.array([1000, 1001, 1002])}), uri, mode="append")
    await b.put_batch([{"id": i} for i in range(5, 8)])
    await b.flush()
    theirs = lance.dataset(uri).to_table().to_pylist()
    assert len(theirs) == 11
    assert b.total_count() == 11
    assert await b.get(100, 0) == theirs
