"""The write-ahead log seen from Python: damage found on open, the explicit
truncate option, the bound on its size, its stats, and a full disk."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import struct
import sys
import warnings
from pathlib import Path

import pytest

from persisting import CorruptionError, PersistingBackend, RecoveryWarning, StorageError

WAL = {"enable_wal": True, "wal_sync_interval": 0}
SEGMENT_HEADER = 32
FRAME_HEADER = 24


async def write_then_crash(path: str, records: int) -> None:
    """A child puts `records` records with the WAL on and no flush, then dies by SIGKILL."""
    script = f"""
import asyncio, os, signal
from persisting import PersistingBackend
async def main():
    b = PersistingBackend(bucket_id=0, storage_path={path!r}, batch_size=10**6,
                          enable_wal=True, wal_sync_interval=0)
    for i in range({records}):
        await b.put({{"n": i, "text": "payload-" + str(i) * 20}})
    os.kill(os.getpid(), signal.SIGKILL)
asyncio.run(main())
"""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", script)
    assert await proc.wait() == -signal.SIGKILL


def frames(segment: Path) -> tuple[list[int], int]:
    """Where each frame of a segment starts, and where the last one ends (a writer
    that died leaves the zeros it preallocated after it)."""
    data = segment.read_bytes()
    offsets, off = [], SEGMENT_HEADER
    while off + FRAME_HEADER <= len(data):
        (length,) = struct.unpack_from("<I", data, off)
        if length == 0:
            break
        offsets.append(off)
        off += FRAME_HEADER + (length + 7) // 8 * 8
    return offsets, off


def frame_offsets(segment: Path) -> list[int]:
    return frames(segment)[0]


def only_segment(path: str) -> Path:
    segments = sorted(Path(path, "wal").glob("*.wal"))
    assert len(segments) == 1, segments
    return segments[0]


async def open_and_read(path: str, **options) -> tuple[PersistingBackend, list[dict]]:
    b = PersistingBackend(bucket_id=0, storage_path=path, batch_size=10**6, **WAL, **options)
    await b.ready()
    return b, await b.get(10**6, 0)


async def test_torn_tail_is_cut_reported_and_the_rest_recovered(tmp_path):
    path = str(tmp_path / "b")
    await write_then_crash(path, 20)
    segment = only_segment(path)
    last = frame_offsets(segment)[-1]
    with segment.open("r+b") as f:
        f.truncate(last + FRAME_HEADER + 3)  # tear the last frame
    with pytest.warns(RecoveryWarning, match="cut"):
        b, rows = await open_and_read(path)
    try:
        assert [r["n"] for r in rows] == list(range(19))
        stats = await b.stats()
        assert stats["truncated_bytes"] == FRAME_HEADER + 3
        assert stats["recovered_rows"] == 19
        assert segment.name in stats["truncated_file"]
        await b.put({"n": 19, "text": "again"})
    finally:
        await b.close()
    _, rows = await open_and_read(path)
    assert [r["n"] for r in rows] == list(range(20))


async def test_corrupt_middle_frame_refuses_to_open_until_told_to_truncate(tmp_path):
    path = str(tmp_path / "b")
    await write_then_crash(path, 10)
    segment = only_segment(path)
    bad = frame_offsets(segment)[4]
    data = bytearray(segment.read_bytes())
    data[bad + FRAME_HEADER + 5] ^= 0x5A
    segment.write_bytes(bytes(data))

    b = PersistingBackend(bucket_id=0, storage_path=path, batch_size=10**6, **WAL)
    with pytest.raises(CorruptionError) as info:
        await b.ready()
    message = str(info.value)
    assert segment.name in message and str(bad) in message
    assert "wal_truncate_corrupt=True" in message
    with pytest.raises(CorruptionError):
        await b.put({"n": 99})
    await b.close()
    assert segment.read_bytes() == bytes(data), "a failed open must not touch the log"

    with pytest.warns(RecoveryWarning):
        b, rows = await open_and_read(path, wal_truncate_corrupt=True)
    try:
        assert [r["n"] for r in rows] == [0, 1, 2, 3]
        await b.put({"n": 4, "text": "after repair"})
        assert b.total_count() == 5
    finally:
        await b.close()


async def test_max_wal_size_bounds_the_log(open_backend):
    bound = 64 * 1024
    b = open_backend(batch_size=10**6, max_wal_size=bound, **WAL)
    largest = 0
    for i in range(1500):
        await b.put({"n": i, "text": "x" * 200})
        if i % 50 == 0:
            largest = max(largest, (await b.stats())["wal_size"])
    stats = await b.stats()
    assert stats["flushes"] > 0, "passing max_wal_size never flushed"
    assert largest < 3 * bound, f"log grew to {largest} bytes against a bound of {bound}"
    assert stats["persisted_count"] + stats["buffer_count"] == 1500
    assert [r["n"] for r in await b.get(10**6, 0)] == list(range(1500))


async def test_wal_stats_after_puts_flush_and_restart(tmp_path):
    path = str(tmp_path / "b")
    b = PersistingBackend(bucket_id=0, storage_path=path, batch_size=10**6, **WAL)
    await b.put_batch([{"n": i} for i in range(30)])
    stats = await b.stats()
    assert stats["wal_enabled"] is True
    assert stats["wal_size"] > 0 and stats["wal_segments"] == 1
    assert stats["wal_syncs"] >= 1 and stats["wal_records"] == 30
    await b.flush()
    stats = await b.stats()
    assert stats["persisted_count"] == 30 and stats["wal_size"] == 0
    await b.close()
    await write_then_crash(str(tmp_path / "c"), 7)
    b, rows = await open_and_read(str(tmp_path / "c"))
    try:
        stats = await b.stats()
        assert stats["recovered_rows"] == 7 and stats["recovered_frames"] == 7
        assert stats["truncated_bytes"] == 0
        assert len(rows) == 7
    finally:
        await b.close()


async def run(*argv: str) -> int:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    return await proc.wait()


async def mount_small_fs(where: Path, size: str) -> bool:
    await asyncio.to_thread(where.mkdir)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    return await run("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)) == 0


async def test_disk_full_fails_clearly_and_loses_nothing_acknowledged(tmp_path):
    fs = tmp_path / "small"
    if not await mount_small_fs(fs, "2m"):
        pytest.skip("cannot mount a small tmpfs here (needs root and mount); disk-full untested")
    try:
        path = str(fs / "b")
        filler = fs / "filler"
        with filler.open("wb") as f:
            f.write(b"\1" * (1536 * 1024))
        b = PersistingBackend(bucket_id=0, storage_path=path, batch_size=50, **WAL)
        acked = []
        error: Exception | None = None
        for i in range(5000):
            try:
                await b.put({"n": i, "text": "y" * 500})
            except StorageError as exc:
                error = exc
                break
            acked.append(i)
        assert error is not None, "the disk never filled up"
        assert "no space" in str(error).lower()
        assert acked, "nothing was written before the disk filled"
        filler.unlink()
        try:
            await b.close()
        except StorageError:
            pass  # the final flush may still report the earlier failure
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RecoveryWarning)  # a torn last frame is expected
            b, rows = await open_and_read(path)
        try:
            got = [r["n"] for r in rows]
            assert got[: len(acked)] == acked, "an acknowledged record was lost"
            assert len(got) <= len(acked) + 1  # at most the put that failed
            await b.put({"n": -1, "text": "after space was freed"})
        finally:
            await b.close()
    finally:
        await run("umount", "-l", str(fs))
