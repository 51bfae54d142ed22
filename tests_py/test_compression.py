"""Compression: every codec round-trips through WAL replay and through Lance (read
back by pylance), and a compressible workload is measurably smaller."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import lance
import pytest

from persisting import PersistingBackend
from test_wal import frames

CODECS = ["zstd", "lz4", "snappy"]
RECORDS = [
    {"id": i, "text": f"order {i % 10} shipped to warehouse {i % 3} " * 6, "amount": i * 0.5}
    for i in range(400)
]


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


async def log_then_crash(path: str, codec: str) -> None:
    script = f"""
import asyncio, os, signal
from persisting import PersistingBackend
from test_wal import frames
async def main():
    b = PersistingBackend(bucket_id=0, storage_path={path!r}, batch_size=10**6,
                          enable_wal=True, wal_sync_interval=0, compression={codec!r})
    await b.put_batch({RECORDS!r})
    os.kill(os.getpid(), signal.SIGKILL)
asyncio.run(main())
"""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", script)
    assert await proc.wait() == -signal.SIGKILL


@pytest.mark.parametrize("codec", CODECS)
async def test_codec_round_trips_through_wal_replay_and_lance(tmp_path, codec):
    path = str(tmp_path / "b")
    await log_then_crash(path, codec)
    wal_bytes = size(Path(path, "wal"))
    # Reopened with another codec: frames name their own codec.
    b = PersistingBackend(bucket_id=0, storage_path=path, enable_wal=True, compression="lz4")
    try:
        await b.ready()
        assert (await b.stats())["recovered_rows"] == len(RECORDS)
        assert await b.get(1000, 0) == RECORDS
    finally:
        await b.close()
    assert lance.dataset(f"{path}/data.lance").to_table().to_pylist() == RECORDS
    assert wal_bytes > 0


async def test_compressed_wal_and_dataset_are_smaller(tmp_path):
    sizes = {}
    for codec in ["none", *CODECS]:
        path = tmp_path / codec
        await log_then_crash(str(path), codec)
        sizes[codec, "wal"] = sum(frames(seg)[1] for seg in (path / "wal").glob("*.wal"))
        b = PersistingBackend(
            bucket_id=0, storage_path=str(path), enable_wal=True, compression=codec
        )
        try:
            await b.ready()
            await b.flush()
            stats = await b.stats()
        finally:
            await b.close()
        sizes[codec, "lance"] = size(path / "data.lance")
        assert stats["compression"] == codec
        assert stats["lance_page_codec"] == {"snappy": "zstd"}.get(codec, codec)
        assert lance.dataset(str(path / "data.lance")).to_table().to_pylist() == RECORDS
    for codec in CODECS:
        assert sizes[codec, "wal"] < 0.6 * sizes["none", "wal"], (codec, sizes)
        assert sizes[codec, "lance"] < 0.8 * sizes["none", "lance"], (codec, sizes)


async def test_stats_report_bytes_before_and_after_compression(open_backend):
    b = open_backend(enable_wal=True, wal_sync_interval=0, compression="zstd")
    await b.put_batch(RECORDS)
    stats = await b.stats()
    assert stats["wal_codec"] == "zstd"
    assert stats["wal_bytes_written"] < stats["wal_bytes_uncompressed"] / 2


async def test_unknown_codec_lists_the_valid_ones(tmp_path):
    backend = PersistingBackend(bucket_id=0, storage_path=str(tmp_path / "b"), compression="brotli")
    with pytest.raises(ValueError, match="'zstd', 'lz4', 'snappy'"):
        await backend.ready()


async def test_lance_backend_compresses_pages(tmp_path):
    from persisting import LanceBackend

    sizes = {}
    for codec in ("none", "zstd"):
        b = LanceBackend(bucket_id=0, storage_path=str(tmp_path / codec), compression=codec)
        try:
            await b.put_batch(RECORDS)
            await b.flush()
            stats = await b.stats()
            assert stats["compression"] == codec and stats["lance_page_codec"] == codec
        finally:
            await b.close()
        sizes[codec] = size(tmp_path / codec / "data.lance")
        assert lance.dataset(str(tmp_path / codec / "data.lance")).to_table().to_pylist() == RECORDS
    assert sizes["zstd"] < 0.8 * sizes["none"], sizes


async def test_flushes_compress_strings_and_compaction_compresses_everything(tmp_path):
    """compression="zstd": a flush compresses the data of string columns, as
    Lance's writer does (large buffers as several zstd frames, which pylance
    reads); compaction, in the background, compresses the integers too, and the
    dataset shrinks. pylance reads every version alike."""
    path = tmp_path / "b"
    rows = [
        {"id": i, "ts": 1_700_000_000_000_000 + 37 * i, "name": f"user-{(i * 7919) % 100_000}"}
        for i in range(120_000)
    ]  # ~1 MB of string data per flush: one page, four zstd frames
    b = PersistingBackend(
        bucket_id=0,
        storage_path=str(path),
        compression="zstd",
        batch_size=10**9,
        compact_every=0,
        keep_versions=1,
    )
    try:
        for half in (rows[:60_000], rows[60_000:]):
            await b.put_batch(half)
            await b.flush()
        flushed = size(path / "data.lance" / "data")
        ints = 2 * 8 * len(rows)
        assert flushed > ints, (flushed, ints)  # the integers went in plain
        assert lance.dataset(str(path / "data.lance")).to_table().to_pylist() == rows
        done = await b.compact()
        assert done["compact"]["fragments_removed"] == 2, done
    finally:
        await b.close()
    compacted = size(path / "data.lance" / "data")
    assert compacted < 0.5 * flushed, (compacted, flushed)
    assert lance.dataset(str(path / "data.lance")).to_table().to_pylist() == rows
