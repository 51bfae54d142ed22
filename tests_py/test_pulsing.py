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


async def test_constructor_errors_reach_the_pulsing_caller_with_their_words(system, tmp_path):
    """Pulsing builds the backend inside an actor: an exception there would only say
    that the actor died. The words of a bad option and of a held lock must arrive."""
    bad = await write_queue(
        system,
        "bad-options",
        backend="persisting",
        storage_path=str(tmp_path / "bad"),
        backend_options={"enable_wal": "false"},
    )
    try:
        await asyncio.wait_for(bad.put({"id": "x", "a": 1}), 30)
    except Exception as exc:  # Pulsing re-raises as its own error type
        assert "enable_wal must be True or False" in str(exc), exc
    else:
        raise AssertionError("a bad option was accepted")

    holder = PersistingBackend(bucket_id=0, storage_path=str(tmp_path / "held" / "bucket_0"))
    try:
        held = await write_queue(
            system,
            "held",
            backend="persisting",
            num_buckets=1,
            storage_path=str(tmp_path / "held"),
        )
        try:
            await asyncio.wait_for(held.put({"id": "x", "a": 1}), 30)
        except Exception as exc:
            assert "in use by another live backend" in str(exc), exc
        else:
            raise AssertionError("a held directory was opened twice")
    finally:
        await holder.close()


async def test_restart_in_one_process_without_close(tmp_path):
    """Pulsing never calls close(): a second actor system in the same process, on
    another path, must not wait behind the finalizers of the first one's buckets."""
    first = await pul.actor_system()
    writer = await write_queue(
        first,
        "a",
        backend="persisting",
        num_buckets=8,
        storage_path=str(tmp_path / "a"),
        backend_options={"enable_wal": True},
    )

    async def produce(w: int) -> None:
        for i in range(100):
            await writer.put({"id": f"{w}-{i}"})

    await asyncio.wait_for(asyncio.gather(*(produce(w) for w in range(10))), 120)
    await first.shutdown()
    del writer
    gc.collect()

    second = await pul.actor_system()
    try:
        writer = await write_queue(
            second, "b", backend="persisting", num_buckets=4, storage_path=str(tmp_path / "b")
        )
        for i in range(500):
            await writer.put({"id": str(i), "i": i})
        await asyncio.wait_for(writer.flush(), 60)

        async def read() -> int:
            reader = await read_queue(
                second, "b", backend="persisting", num_buckets=4, storage_path=str(tmp_path / "b")
            )
            return len(await reader.get(limit=500))

        counts = await asyncio.wait_for(asyncio.gather(*(read() for _ in range(10))), 60)
        assert counts == [500] * 10
    finally:
        await second.shutdown()
        gc.collect()

    # Every record of the first system survived its shutdown without close.
    third = await pul.actor_system()
    try:
        reader = await read_queue(
            third,
            "a",
            backend="persisting",
            num_buckets=8,
            storage_path=str(tmp_path / "a"),
            backend_options={"enable_wal": True},
        )
        records = []
        while batch := await asyncio.wait_for(reader.get(limit=1000), 60):
            records.extend(batch)
        assert sorted(r["id"] for r in records) == sorted(
            f"{w}-{i}" for w in range(10) for i in range(100)
        )
    finally:
        await third.shutdown()
        gc.collect()


async def test_two_topics_sharing_a_storage_path_keep_their_own_records(tmp_path):
    """Pulsing 0.1.2 names a bucket {storage_path}/bucket_{id} without its topic;
    persisting gives each topic its own directory, the same after a restart."""
    for round_ in range(2):
        system = await pul.actor_system()
        try:
            for topic in ("alpha", "beta"):
                writer = await write_queue(
                    system, topic, backend="persisting", num_buckets=2, storage_path=str(tmp_path)
                )
                for i in range(20):
                    await writer.put({"id": f"{topic}-{round_}-{i}", "topic": topic})
                await writer.flush()
            for topic in ("alpha", "beta"):
                reader = await read_queue(
                    system, topic, backend="persisting", num_buckets=2, storage_path=str(tmp_path)
                )
                rows = []
                while batch := await asyncio.wait_for(reader.get(limit=100), 30):
                    rows.extend(batch)
                assert {r["topic"] for r in rows} == {topic}
                assert len(rows) == 20 * (round_ + 1)
        finally:
            await system.shutdown()
            gc.collect()
    assert sorted(p.name for p in (tmp_path / "topics").iterdir()) == ["beta"]
