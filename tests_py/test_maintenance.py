"""A queue that runs for months: compaction and version retention, in the
background and on request, read by pylance, across reopen and crash."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap

import lance
import pytest

from persisting import PersistingBackend


def dataset(path) -> lance.LanceDataset:
    return lance.dataset(os.path.join(str(path), "data.lance"))


async def test_background_compaction_bounds_fragments_and_keeps_every_offset(
    open_backend, tmp_path
):
    b = open_backend(batch_size=5, compact_every=4, enable_metrics=True)
    for start in range(0, 300, 5):
        for i in range(start, start + 5):
            await b.put({"i": i, "s": f"r{i}"})
        await b.flush()  # 60 flushes of 5 rows
    # A run asked for now follows the automatic one after the 60th flush.
    await b.cleanup()
    stats = await b.stats()
    assert stats["flushes"] == 60
    assert stats["maintenances"] in (15, 16)  # the two may share one run
    assert stats["fragments_compacted"] >= 60 - 8
    assert stats["fragments"] <= 5, stats["fragments"]
    assert stats["metrics"]['persisting_maintenance_total{result="ok"}'] == stats["maintenances"]
    assert stats["metrics"]["persisting_fragments"] == stats["fragments"]
    assert [r["i"] for r in await b.get(1000, 0)] == list(range(300))
    for offset in (0, 7, 123, 299):
        assert await b.get(3, offset) == [
            {"i": i, "s": f"r{i}"} for i in range(offset, min(offset + 3, 300))
        ]
    table = dataset(tmp_path / "bucket_0").to_table()
    assert table.column("i").to_pylist() == list(range(300))
    assert len(dataset(tmp_path / "bucket_0").get_fragments()) == stats["fragments"]


async def test_compact_on_request_then_pylance_appends_and_compacts_on_top(open_backend, tmp_path):
    b = open_backend(batch_size=10, compact_every=0)
    for start in range(0, 200, 10):
        await b.put_batch([{"i": i} for i in range(start, start + 10)])
        await b.flush()
    assert (await b.stats())["fragments"] == 20
    result = await b.compact()
    assert result["compact"]["fragments_removed"] == 20
    assert result["compact"]["fragments_added"] == 1
    assert (await b.stats())["fragments"] == 1
    assert [r["i"] for r in await b.get(1000, 0)] == list(range(200))
    await b.close()
    ds = dataset(tmp_path / "bucket_0")
    assert ds.to_table().column("i").to_pylist() == list(range(200))
    assert ds.versions()[-1]["version"] == ds.version
    import pyarrow as pa

    lance.write_dataset(
        pa.table({"i": [200, 201]}), ds.uri, mode="append", data_storage_version="2.0"
    )
    ds.optimize.compact_files()
    b = PersistingBackend(bucket_id=0, storage_path=str(tmp_path / "bucket_0"), batch_size=10)
    await b.put({"i": 202})
    assert [r["i"] for r in await b.get(1000, 0)] == list(range(203))
    await b.close()


async def test_cleanup_keeps_the_retention_window_and_time_travel_inside_it(open_backend):
    b = open_backend(batch_size=10**6, compact_every=0, keep_versions=3, keep_versions_seconds=0)
    for v in range(8):
        await b.put({"v": v})
        await b.flush()
    assert len(await b.versions()) == 8
    result = await b.cleanup()
    assert result["cleanup"]["versions_removed"] == 5
    assert result["cleanup"]["bytes_reclaimed"] > 0
    versions = [v["version"] for v in await b.versions()]
    assert versions == [6, 7, 8]
    assert [r["v"] for r in await b.get_version(6, 100)] == list(range(6))
    with pytest.raises(ValueError, match="no version 2"):
        await b.get_version(2, 100)
    assert [r["v"] for r in await b.get(100, 0)] == list(range(8))  # the queue itself is whole
    stats = await b.stats()
    assert stats["versions_removed"] == 5 and stats["bytes_reclaimed"] > 0


async def test_default_retention_keeps_recent_versions(open_backend):
    b = open_backend(batch_size=10**6, compact_every=0)
    for v in range(5):
        await b.put({"v": v})
        await b.flush()
    result = await b.cleanup()
    assert result["cleanup"]["versions_removed"] == 0  # all younger than 10 minutes
    assert len(await b.versions()) == 5


async def test_watermark_survives_compaction_and_cleanup_across_a_crash(tmp_path):
    path = tmp_path / "bucket_0"
    script = f"""
        import asyncio, os
        from persisting import PersistingBackend
        async def main():
            b = PersistingBackend(bucket_id=0, storage_path={str(path)!r}, batch_size=5,
                                  enable_wal=True, wal_sync_interval=0, compact_every=0,
                                  keep_versions=1, keep_versions_seconds=0)
            for i in range(40):
                await b.put({{"i": i}})
            await b.flush()
            await b.compact()
            for i in range(40, 43):
                await b.put({{"i": i}})  # in the log only
            os._exit(0)
        asyncio.run(main())
    """
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", textwrap.dedent(script))
    assert await proc.wait() == 0
    b = PersistingBackend(bucket_id=0, storage_path=str(path), enable_wal=True)
    assert b.total_count() == 43
    assert [r["i"] for r in await b.get(100, 0)] == list(range(43))
    await b.close()
    assert dataset(path).to_table().column("i").to_pylist() == list(range(43))


async def test_maintenance_options_are_checked(tmp_path):
    for options, error in [
        ({"compact_every": -1}, ValueError),
        ({"compact_every": 1.5}, TypeError),
        ({"keep_versions": 0}, ValueError),
        ({"keep_versions_seconds": "1"}, TypeError),
        ({"compact_target_rows": 0}, ValueError),
    ]:
        b = PersistingBackend(bucket_id=0, storage_path=str(tmp_path / "b"), **options)
        with pytest.raises(error, match=next(iter(options))):
            await b.ready()
