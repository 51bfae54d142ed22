"""Through the real Pulsing queue: a standalone actor system, write_queue and
read_queue with backend="persisting"."""

from __future__ import annotations

import asyncio
import gc
import time

import pulsing as pul
from pulsing.streaming import list_backends, read_queue, write_queue

import persisting
from persisting import LanceBackend, PersistingBackend


def test_registered_under_name_and_class_names():
    names = list_backends()
    for name in ("persisting", "persisting_lance", "PersistingBackend", "LanceBackend"):
        assert name in names
    assert set(persisting.queue.REGISTERED) >= {"persisting", "PersistingBackend"}
    assert issubclass(PersistingBackend, LanceBackend)


async def test_eight_writers_four_buckets_read_back_in_bucket_order(system, tmp_path):
    writer = await write_queue(
        system, "orders", backend="persisting", num_buckets=4, storage_path=str(tmp_path)
    )

    async def produce(w: int) -> None:
        for i in range(250):
            await writer.put({"id": f"w{w}-{i}", "writer": w, "seq": i, "payload": "x" * (i % 7)})

    await asyncio.gather(*(produce(w) for w in range(8)))
    reader = await read_queue(
        system, "orders", backend="persisting", num_buckets=4, storage_path=str(tmp_path)
    )
    records = []
    while batch := await reader.get(limit=300):
        records.extend(batch)
    assert len(records) == 2000
    expected = {
        f"w{w}-{i}": {"id": f"w{w}-{i}", "writer": w, "seq": i, "payload": "x" * (i % 7)}
        for w in range(8)
        for i in range(250)
    }
    assert {r["id"]: r for r in records} == expected
    # Within each bucket, each writer's records appear in the order written.
    stats = await writer.queue.stats()
    assert sum(s["total_count"] for s in stats["buckets"].values()) == 2000
    for bucket_id in range(4):
        rows = await (
            await read_queue(
                system,
                "orders",
                bucket_id=bucket_id,
                backend="persisting",
                storage_path=str(tmp_path),
            )
        ).get(limit=2000)
        for w in range(8):
            seqs = [r["seq"] for r in rows if r["writer"] == w]
            assert seqs == sorted(seqs)


async def test_blocked_reader_wakes_on_put(system, tmp_path):
    writer = await write_queue(
        system, "wake", backend="persisting", num_buckets=1, storage_path=str(tmp_path)
    )
    await writer.put({"id": "warmup"})
    reader = await read_queue(
        system, "wake", backend="persisting", num_buckets=1, storage_path=str(tmp_path)
    )
    assert len(await reader.get(limit=1)) == 1
    pending = asyncio.create_task(reader.get(limit=1, wait=True, timeout=10))
    await asyncio.sleep(0.2)
    assert not pending.done()
    start = time.monotonic()
    await writer.put({"id": "late"})
    got = await asyncio.wait_for(pending, 5)
    assert [r["id"] for r in got] == ["late"]
    assert time.monotonic() - start < 5


async def test_wait_timeout_on_empty_bucket(system, tmp_path):
    reader = await read_queue(
        system, "empty", bucket_id=0, backend="persisting", storage_path=str(tmp_path)
    )
    start = time.monotonic()
    assert await reader.get(limit=10, wait=True, timeout=0.3) == []
    assert time.monotonic() - start >= 0.25


async def test_bucket_stats_through_pulsing(system, tmp_path):
    writer = await write_queue(
        system,
        "stats",
        backend="persisting",
        num_buckets=4,
        storage_path=str(tmp_path),
        backend_options={"enable_wal": True, "compression": "lz4"},
    )
    for i in range(40):
        await writer.put({"id": i})
    stats = await writer.queue.stats()
    assert stats["num_buckets"] == 4
    assert stats["buckets"]
    for bucket_id, s in stats["buckets"].items():
        assert {
            "bucket_id",
            "backend",
            "total_count",
            "buffer_size",
            "buffer_count",
            "persisted_count",
        } <= s.keys()
        assert s["bucket_id"] == bucket_id
        assert s["backend"] == "persisting"
        assert s["wal_enabled"] is True and s["compression"] == "lz4"
        assert {"wal_size", "persisted_count", "dataset_version", "storage_path"} <= s.keys()
    assert sum(s["total_count"] for s in stats["buckets"].values()) == 40


async def test_class_passed_as_backend_works(system, tmp_path):
    writer = await write_queue(
        system, "by-class", backend=PersistingBackend, num_buckets=2, storage_path=str(tmp_path)
    )
    await writer.put({"id": 1})
    stats = await writer.queue.stats()
    assert sum(s["total_count"] for s in stats["buckets"].values()) == 1


async def test_new_actor_system_over_same_path_in_same_process(tmp_path):
    for round_ in range(3):
        system = await pul.actor_system()
        try:
            writer = await write_queue(
                system, "again", backend="persisting", num_buckets=2, storage_path=str(tmp_path)
            )
            await writer.put({"id": round_})
            await writer.flush()
        finally:
            await system.shutdown()
        gc.collect()
