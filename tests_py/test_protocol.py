"""The StorageBackend protocol on the backend directly, mirroring what Pulsing's
MemoryBackend promises."""

from __future__ import annotations

import asyncio
import time

import pytest
from pulsing.streaming import MemoryBackend

from persisting import PersistingBackend


async def collect(stream):
    return [chunk async for chunk in stream]


async def test_put_get_offsets(open_backend):
    b = open_backend()
    for i in range(10):
        await b.put({"id": i})
    assert b.total_count() == 10
    assert await b.get(3, 0) == [{"id": 0}, {"id": 1}, {"id": 2}]
    assert await b.get(limit=2, offset=8) == [{"id": 8}, {"id": 9}]
    assert await b.get(5, 8) == [{"id": 8}, {"id": 9}]  # clipped at the end
    assert await b.get(5, 10) == []  # exactly at the end
    assert await b.get(5, 1000) == []  # far past the end
    assert await b.get(0, 0) == []
    with pytest.raises(ValueError, match="limit"):
        await b.get(-1, 0)


async def test_negative_offset_is_a_clear_error(open_backend):
    b = open_backend()
    await b.put({"id": 1})
    with pytest.raises(ValueError, match="offset"):
        await b.get(1, -1)


async def test_put_batch_in_order_and_empty_is_noop(open_backend):
    b = open_backend()
    await b.put_batch([])
    assert b.total_count() == 0
    await b.put({"id": -1})
    await b.put_batch([{"id": i} for i in range(250)])
    rows = await b.get(1000, 0)
    assert [r["id"] for r in rows] == [-1, *range(250)]


async def test_get_returns_fresh_dicts(open_backend):
    b = open_backend()
    await b.put({"id": 1, "tags": ["a"]})
    first = await b.get(1, 0)
    first[0]["tags"].append("mutated")
    first[0]["id"] = 99
    assert await b.get(1, 0) == [{"id": 1, "tags": ["a"]}]


async def test_stream_chunks_of_at_most_100_and_total_at_most_limit(open_backend):
    b = open_backend()
    await b.put_batch([{"id": i} for i in range(350)])
    chunks = await collect(b.get_stream(1000, 0))
    assert [len(c) for c in chunks] == [100, 100, 100, 50]
    assert [r["id"] for c in chunks for r in c] == list(range(350))
    chunks = await collect(b.get_stream(120, 30))
    assert [len(c) for c in chunks] == [100, 20]
    assert chunks[0][0] == {"id": 30}
    assert await collect(b.get_stream(0, 0)) == []
    with pytest.raises(ValueError, match="limit"):
        await collect(b.get_stream(-5, 0))
    assert await collect(b.get_stream(10, 350)) == []


async def test_stream_positional_arguments_as_pulsing_calls_them(open_backend):
    b = open_backend()
    await b.put_batch([{"id": i} for i in range(5)])
    chunks = await collect(b.get_stream(3, 1, False, None))
    assert chunks == [[{"id": 1}, {"id": 2}, {"id": 3}]]


async def test_wait_timeout_on_empty_bucket_returns_nothing_after_timeout(open_backend):
    b = open_backend()
    start = time.monotonic()
    chunks = await collect(b.get_stream(10, 0, wait=True, timeout=0.3))
    assert chunks == []
    assert time.monotonic() - start >= 0.25


async def test_waiting_reader_wakes_on_put(open_backend):
    b = open_backend()
    reader = asyncio.create_task(collect(b.get_stream(2, 0, wait=True, timeout=5)))
    await asyncio.sleep(0.05)
    assert not reader.done()
    await b.put({"id": "first"})
    await asyncio.sleep(0.05)
    assert not reader.done()  # still one short of the limit
    await b.put({"id": "second"})
    chunks = await asyncio.wait_for(reader, 2)
    assert [r["id"] for c in chunks for r in c] == ["first", "second"]


async def test_falsy_timeout_waits_forever(open_backend):
    b = open_backend()
    for timeout in (None, 0):
        reader = asyncio.create_task(collect(b.get_stream(1, b.total_count(), True, timeout)))
        await asyncio.sleep(0.2)
        assert not reader.done()
        await b.put({"id": 1})
        assert len(await asyncio.wait_for(reader, 2)) == 1


async def test_timeout_is_per_wait_not_total(open_backend):
    b = open_backend()

    async def trickle():
        for i in range(4):
            await asyncio.sleep(0.15)
            await b.put({"id": i})

    writer = asyncio.create_task(trickle())
    chunks = await collect(b.get_stream(4, 0, wait=True, timeout=0.4))  # total 0.6 s > 0.4
    await writer
    assert [r["id"] for c in chunks for r in c] == [0, 1, 2, 3]


async def test_concurrent_put_and_stream(open_backend):
    b = open_backend()

    async def produce():
        for i in range(500):
            await b.put({"id": i})

    consumer = asyncio.create_task(collect(b.get_stream(500, 0, wait=True, timeout=5)))
    await asyncio.gather(produce(), produce())
    chunks = await asyncio.wait_for(consumer, 10)
    got = [r["id"] for c in chunks for r in c]
    assert len(got) == 500
    assert all(1 <= len(c) <= 100 for c in chunks)
    assert await b.get(2000, 0) == [r for c in chunks for r in c] + await b.get(2000, 500)


async def test_abandoned_stream_holds_nothing(open_backend):
    b = open_backend()
    await b.put_batch([{"id": i} for i in range(300)])
    stream = b.get_stream(300, 0)
    await stream.__anext__()  # then abandon it without aclose(), as Pulsing does
    del stream
    await b.put({"id": 300})
    assert len(await b.get(1000, 0)) == 301


async def test_stats_keys_and_values(open_backend, tmp_path):
    b = open_backend(bucket_id=3)
    empty = await b.stats()
    assert empty["total_count"] == 0 and empty["buffer_size"] == 0
    await b.put_batch([{"id": i} for i in range(7)])
    stats = await b.stats()
    memory = await MemoryBackend(bucket_id=3).stats()
    assert memory.keys() <= stats.keys()  # a superset of what Pulsing's own backend reports
    assert stats["bucket_id"] == 3
    assert stats["backend"] == "persisting"
    assert stats["storage_path"] == str(tmp_path / "bucket_3")
    assert stats["total_count"] == 7
    assert stats["buffer_count"] == stats["buffer_size"] == 7
    assert stats["persisted_count"] == 0
    assert stats["wal_enabled"] is False
    assert stats["compression"] == "none"


async def test_flush_on_fresh_and_used_bucket(open_backend):
    b = open_backend()
    await b.flush()
    await b.put({"id": 1})
    await b.flush()
    assert await b.get(10, 0) == [{"id": 1}]


async def test_constructor_creates_directory_and_accepts_pulsing_keywords(tmp_path):
    path = tmp_path / "deep" / "nested" / "bucket_0"
    b = PersistingBackend(
        bucket_id=0, storage_path=str(path), batch_size=10, enable_wal=True, compression="lz4"
    )
    try:
        assert path.is_dir()
        assert b.options.compression == "lz4"
    finally:
        await b.close()


async def test_unknown_option_warns_once_and_is_ignored(open_backend):
    with pytest.warns(UserWarning, match="unknown option 'colour'"):
        open_backend(bucket_id=0, colour="blue")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        open_backend(bucket_id=1, colour="red")


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"compression": "gzip"}, ValueError, "valid: None, 'none', 'zstd', 'lz4', 'snappy'"),
        ({"wal_sync_interval": -1}, ValueError, "wal_sync_interval"),
        ({"wal_sync_interval": float("nan")}, ValueError, "wal_sync_interval"),
        ({"wal_sync_interval": True}, TypeError, "wal_sync_interval"),
        ({"wal_sync_interval": "1"}, TypeError, "wal_sync_interval"),
        ({"max_wal_size": 0}, ValueError, "max_wal_size"),
        ({"max_wal_size": 1.5}, TypeError, "max_wal_size"),
        ({"flush_threshold": "big"}, TypeError, "flush_threshold"),
        ({"flush_threshold": True}, TypeError, "flush_threshold"),
        ({"enable_wal": "false"}, TypeError, "enable_wal"),
        ({"enable_wal": 1}, TypeError, "enable_wal"),
        ({"enable_metrics": "yes"}, TypeError, "enable_metrics"),
        ({"wal_truncate_corrupt": None}, TypeError, "wal_truncate_corrupt"),
        ({"metrics_port": True}, ValueError, "metrics_port"),
        ({"vector_columns": {"v": 0}}, ValueError, "vector_columns"),
        ({"vector_columns": {"a.b": 4}}, ValueError, "'.'"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": True}, TypeError, "batch_size"),
    ],
)
async def test_bad_options_are_typed_errors_raised_by_every_call(tmp_path, options, error, match):
    """The constructor keeps the error (inside Pulsing an exception there only says
    the actor died); ready(), total_count() and every call raise it."""
    backend = PersistingBackend(bucket_id=0, storage_path=str(tmp_path / "b"), **options)
    with pytest.raises(error, match=match):
        await backend.ready()
    with pytest.raises(error, match=match):
        backend.total_count()
    with pytest.raises(error, match=match):
        await backend.put({"a": 1})
    with pytest.raises(error, match=match):
        await backend.get()
    await backend.close()  # nothing to close, no error
    assert not (tmp_path / "b").exists()  # refused before anything touched the disk


async def test_close_is_idempotent_and_later_calls_fail_clearly(open_backend):
    from persisting import ClosedError

    b = open_backend()
    await b.put({"id": 1})
    await b.close()
    await b.close()
    with pytest.raises(ClosedError):
        await b.put({"id": 2})


async def test_backpressure_makes_put_wait_and_never_drops(open_backend):
    b = open_backend(batch_size=10**6, max_buffer_rows=20)
    # Each batch overfills the buffer, so the next one arrives while the flush
    # that frees it is still writing: it must wait for that flush.
    for start in range(0, 300, 50):
        await b.put_batch([{"id": i} for i in range(start, start + 50)])
    stats = await b.stats()
    assert stats["backpressure"] > 0, "the buffer bound was never hit"
    assert stats["total_count"] == 300
    assert sorted(r["id"] for r in await b.get(1000, 0)) == list(range(300))


async def test_total_count_is_exact_after_every_put_across_hand_overs(open_backend):
    """Puts acknowledged at once are handed to Go in groups (every 4096, and at
    the end of the tick): the count must be exact at every step, as Pulsing takes
    total_count() before a put as that record's position."""
    b = open_backend(batch_size=1000)
    for i in range(9000):
        await b.put({"i": i})
        assert b.total_count() == i + 1
    assert [r["i"] for r in await b.get(10_000, 0)] == list(range(9000))
    assert (await b.stats())["total_count"] == 9000
