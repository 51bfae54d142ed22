"""Real Lance (pylance) as a co-writer of our dataset and as the oracle.

pylance appends to, compacts, deletes from, updates and indexes a dataset our
backend wrote; after each action our backend reopens, must read exactly the
rows pylance shows (offsets are positions among the live rows), appends, and
pylance must then read everything back, index included. Datasets pylance
creates in Lance file format 2.0 are ours to use too; newer formats are refused
with a clear error. The WAL watermark in the manifest config must survive
pylance's commits, so recovery neither loses nor duplicates a record.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import lance
import pyarrow as pa
import pytest

from persisting import PersistingBackend, StorageError

WAL = {"enable_wal": True, "wal_sync_interval": 0}
WATERMARK_KEY = "persisting.wal_watermark"  # core/engine.WatermarkKey
BIG = 10**6
THEIRS = 50_000  # ids of rows pylance writes start here
OURS_AFTER = 90_000  # ids of rows we append after pylance's action start here


def record(i: int) -> dict[str, Any]:
    """Every type the backend maps, with nulls, empty lists and empty bytes."""
    return {
        "id": i,
        "name": f"name-{i}",
        "score": i / 3,
        "ok": i % 2 == 0,
        "raw": bytes([i % 256]) * (i % 5),
        "tags": [f"t{j}" for j in range(i % 4)],
        "maybe": None if i % 3 else i,
        "meta": {"k": i, "s": f"s{i}"},
    }


def records(ids: range) -> list[dict[str, Any]]:
    return [record(i) for i in ids]


def shaped(rows: list[dict[str, Any]], names: list[str]) -> list[dict[str, Any]]:
    """rows as read back from a table with columns `names`: missing ones are None."""
    return [{name: row.get(name) for name in names} for row in rows]


def uri_of(path: Path) -> str:
    return f"{path}/data.lance"


def pylance_rows(uri: str, **kwargs: Any) -> list[dict[str, Any]]:
    return lance.dataset(uri, **kwargs).to_table().to_pylist()


def pylance_append(uri: str, ids: range, **kwargs: Any) -> None:
    """Append with pylance in the dataset's own schema; no data_storage_version
    is passed, so pylance must follow the dataset's (2.0)."""
    schema = lance.dataset(uri).schema
    table = pa.Table.from_pylist(records(ids), schema=schema)
    lance.write_dataset(table, uri, mode="append", **kwargs)


def assert_lance_2_0(uri: str) -> None:
    ds = lance.dataset(uri)
    assert ds.data_storage_version == "2.0"
    versions = {
        (f.file_major_version, f.file_minor_version)
        for fragment in ds.get_fragments()
        for f in fragment.metadata.files
    }
    assert versions <= {(2, 0)}, f"pylance wrote data files of format {versions}"


def index_names(uri: str) -> list[str]:
    return [d.name for d in lance.dataset(uri).describe_indices()]


async def write_ours(path: Path, chunks: list[range], **options: Any) -> None:
    """Our backend writes one fragment per chunk (one flush each), then closes."""
    b = PersistingBackend(bucket_id=0, storage_path=str(path), batch_size=BIG, **options)
    try:
        for chunk in chunks:
            await b.put_batch(records(chunk))
            await b.flush()
    finally:
        await b.close()


async def assert_reads_like_pylance(b: PersistingBackend, uri: str) -> list[dict[str, Any]]:
    """Every read of ours agrees with pylance's view of the latest version."""
    expected = pylance_rows(uri)
    assert b.total_count() == len(expected)
    rows = await b.get(BIG, 0)
    assert len(rows) == len(expected)
    assert rows == expected  # same rows, same order
    n = len(expected)
    for offset in sorted({0, 1, 2, 3, n // 3, n // 2, n - 3, n - 1, n}):
        if offset >= 0:
            assert await b.get(4, offset) == expected[offset : offset + 4], offset
    streamed = [r async for chunk in b.get_stream(BIG, 0) for r in chunk]
    assert streamed == expected
    return expected


async def assert_versions_like_pylance(b: PersistingBackend, uri: str) -> None:
    """Our version listing and time travel agree with pylance for every version,
    including the versions pylance committed."""
    theirs = [v["version"] for v in lance.dataset(uri).versions()]
    ours = await b.versions()
    assert [v["version"] for v in ours] == theirs
    for v in ours:
        old = pylance_rows(uri, version=v["version"])
        assert v["rows"] == len(old), v
        assert await b.get_version(v["version"], BIG, 0) == old, v


# -- pylance actions ---------------------------------------------------------------


@dataclass
class Action:
    """What pylance does to a dataset our backend wrote as `chunks`."""

    name: str
    chunks: list[range]
    run: Callable[[str], None]
    # Checks on the dataset after our backend appended `ours` on top of it.
    after: Callable[[str, list[dict[str, Any]]], None] = field(default=lambda _uri, _ours: None)


def append(uri: str) -> None:
    pylance_append(uri, range(THEIRS, THEIRS + 7))
    # Many small pages and several fragments in one commit.
    pylance_append(
        uri, range(THEIRS + 7, THEIRS + 2507), max_page_bytes=4096, max_rows_per_file=1000
    )
    assert len(lance.dataset(uri).get_fragments()) == 2 + 1 + 3


def compact(uri: str) -> None:
    for k in range(3):
        pylance_append(uri, range(THEIRS + 3 * k, THEIRS + 3 * k + 3))
    ds = lance.dataset(uri)
    assert len(ds.get_fragments()) == 5
    metrics = ds.optimize.compact_files()
    assert (metrics.fragments_removed, metrics.fragments_added) == (5, 1)
    assert len(lance.dataset(uri).get_fragments()) == 1


def delete(uri: str) -> None:
    # Part of fragment 0, the whole of fragment 1 (dropped from the manifest)
    # and a row here and there in fragment 2.
    lance.dataset(uri).delete("id < 3 OR id = 7 OR (id >= 10 AND id < 20) OR id IN (21, 25, 29)")
    assert len(lance.dataset(uri).get_fragments()) == 2


def delete_all(uri: str) -> None:
    lance.dataset(uri).delete("true")
    assert lance.dataset(uri).get_fragments() == []


def no_fragment_id_reused(uri: str, ours: list[dict[str, Any]]) -> None:
    # Fragments 0 and 1 are gone, but their ids stay taken.
    assert [f.fragment_id for f in lance.dataset(uri).get_fragments()] == [2]


def delete_many(uri: str) -> None:
    # Thousands of deletions in one fragment: Lance stores them as a roaring
    # bitmap (.bin) instead of an Arrow array (.arrow, used for fragment 1).
    lance.dataset(uri).delete("id % 2 = 1 OR (id >= 12000 AND id < 12100)")
    suffixes = sorted(name.rsplit(".", 1)[-1] for name in os.listdir(f"{uri}/_deletions"))
    assert suffixes == ["arrow", "bin"], suffixes


def delete_then_compact(uri: str) -> None:
    pylance_append(uri, range(THEIRS, THEIRS + 4))
    ds = lance.dataset(uri)
    ds.delete("id % 4 = 0")
    ds = lance.dataset(uri)
    ds.optimize.compact_files()  # materializes the deletions
    ds = lance.dataset(uri)
    assert len(ds.get_fragments()) == 1
    assert ds.get_fragments()[0].metadata.deletion_file is None


def update(uri: str) -> None:
    ds = lance.dataset(uri)
    ds.update({"name": "'renamed'", "score": "score + 100"}, where="id IN (4, 12)")
    # Lance deletes the old rows and appends the new ones in a new fragment.
    tail = pylance_rows(uri)[-2:]
    assert [(r["id"], r["name"], r["score"]) for r in tail] == [
        (4, "renamed", 4 / 3 + 100),
        (12, "renamed", 12 / 3 + 100),
    ]


def merge_insert(uri: str) -> None:
    ds = lance.dataset(uri)
    new = [{**record(i), "name": "upserted"} for i in (3, 15, THEIRS)]
    table = pa.Table.from_pylist(new, schema=ds.schema)
    ds.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(table)
    assert sorted(r["id"] for r in pylance_rows(uri) if r["name"] == "upserted") == [3, 15, THEIRS]


def restore(uri: str) -> None:
    lance.dataset(uri, version=1).restore()
    assert pylance_rows(uri) == records(range(0, 10))


def cleanup_old_versions(uri: str) -> None:
    pylance_append(uri, range(THEIRS, THEIRS + 3))
    lance.dataset(uri).delete("id = 5")
    lance.dataset(uri).cleanup_old_versions(older_than=timedelta(0))
    assert [v["version"] for v in lance.dataset(uri).versions()] == [4]


def add_columns(uri: str) -> None:
    # A new data file per fragment holding only the new column.
    lance.dataset(uri).add_columns({"double_id": "id * 2"})
    fragments = lance.dataset(uri).get_fragments()
    assert all(len(f.metadata.files) == 2 for f in fragments)


def drop_columns(uri: str) -> None:
    # Our next append brings "tags" back: it must get a new field id.
    lance.dataset(uri).drop_columns(["tags", "score"])
    assert "tags" not in lance.dataset(uri).schema.names


def create_index(uri: str) -> None:
    ds = lance.dataset(uri)
    ds.create_scalar_index("id", "BTREE", name="id_idx")
    assert index_names(uri) == ["id_idx"]


def index_still_there(uri: str, ours: list[dict[str, Any]]) -> None:
    assert index_names(uri) == ["id_idx"]
    ds = lance.dataset(uri)
    stats = ds.stats.index_stats("id_idx")
    # The index covers the rows it covered; our fragment is unindexed, not lost.
    assert stats["num_indexed_rows"] == 20
    assert stats["num_unindexed_rows"] == len(ours)
    assert "ScalarIndexQuery" in ds.scanner(filter="id >= 5").explain_plan()
    # A filtered scan spans the indexed fragments and ours.
    got = ds.to_table(filter="id >= 15").to_pylist()
    assert got == records(range(15, 20)) + ours
    assert ds.to_table(filter=f"id = {OURS_AFTER + 1}").to_pylist() == [record(OURS_AFTER + 1)]
    # pylance can still bring the index up to date over our fragment.
    ds.optimize.optimize_indices()
    stats = lance.dataset(uri).stats.index_stats("id_idx")
    assert stats["num_unindexed_rows"] == 0
    assert stats["num_indexed_rows"] == 20 + len(ours)


TWO_FRAGMENTS = [range(0, 10), range(10, 20)]
THREE_FRAGMENTS = [range(0, 10), range(10, 20), range(20, 30)]
ACTIONS = [
    Action("append", TWO_FRAGMENTS, append),
    Action("compact_files", TWO_FRAGMENTS, compact),
    Action("delete", THREE_FRAGMENTS, delete),
    Action("delete_all", TWO_FRAGMENTS, delete_all, no_fragment_id_reused),
    Action("delete_many", [range(0, 12000), range(12000, 13000)], delete_many),
    Action("delete_then_compact", TWO_FRAGMENTS, delete_then_compact),
    Action("update", TWO_FRAGMENTS, update),
    Action("merge_insert", TWO_FRAGMENTS, merge_insert),
    Action("restore", TWO_FRAGMENTS, restore),
    Action("cleanup_old_versions", TWO_FRAGMENTS, cleanup_old_versions),
    Action("add_columns", TWO_FRAGMENTS, add_columns),
    Action("drop_columns", TWO_FRAGMENTS, drop_columns),
    Action("create_scalar_index", TWO_FRAGMENTS, create_index, index_still_there),
]


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.name)
async def test_after_a_pylance_action_we_reopen_read_append_and_pylance_reads_all(
    open_backend, tmp_path, action
):
    path = tmp_path / "bucket_0"
    uri = uri_of(path)
    await write_ours(path, action.chunks)
    assert pylance_rows(uri) == records(range(action.chunks[0].start, action.chunks[-1].stop))
    before = lance.dataset(uri).version

    action.run(uri)
    assert lance.dataset(uri).version > before
    assert_lance_2_0(uri)
    theirs = pylance_rows(uri)

    b = open_backend(storage_path=path, batch_size=BIG)
    await b.ready()
    assert await assert_reads_like_pylance(b, uri) == theirs
    await assert_versions_like_pylance(b, uri)
    ours = records(range(OURS_AFTER, OURS_AFTER + 5))
    await b.put_batch(ours)
    await b.flush()
    assert b.total_count() == len(theirs) + len(ours)
    names = lance.dataset(uri).schema.names  # ours may bring a dropped column back
    assert await b.get(BIG, 0) == shaped(theirs + ours, names)
    await b.close()

    assert_lance_2_0(uri)
    ds = lance.dataset(uri)
    assert ds.count_rows() == len(theirs) + len(ours)
    assert ds.to_table().to_pylist() == shaped(theirs + ours, names)
    assert ds.to_table(filter=f"id >= {OURS_AFTER}").to_pylist() == shaped(ours, names)
    action.after(uri, ours)

    # Whatever pylance did last (optimize_indices for the index case), we
    # still open, read and append.
    b = open_backend(storage_path=path, batch_size=BIG)
    await b.ready()
    everything = await assert_reads_like_pylance(b, uri)
    await b.put({"id": OURS_AFTER + 99, "name": "last"})
    await b.close()
    ids = lance.dataset(uri).to_table(columns=["id"]).column("id").to_pylist()
    assert ids == [r["id"] for r in everything] + [OURS_AFTER + 99]
    if action.after is index_still_there:
        assert index_names(uri) == ["id_idx"]


# -- datasets pylance creates ---------------------------------------------------------


@pytest.mark.parametrize("v2_paths", [True, False], ids=["v2_manifest_paths", "v1_paths"])
async def test_a_dataset_pylance_creates_in_format_2_0_is_ours_to_read_and_append(
    open_backend, tmp_path, v2_paths
):
    path = tmp_path / "bucket_0"
    uri = uri_of(path)
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("name", pa.string()),
            ("score", pa.float64()),
            ("ok", pa.bool_()),
            ("raw", pa.binary()),
            ("tags", pa.list_(pa.string())),
            ("maybe", pa.int64()),
            ("meta", pa.struct([("k", pa.int64()), ("s", pa.string())])),
        ]
    )
    table = pa.Table.from_pylist(records(range(THEIRS, THEIRS + 12)), schema=schema)
    lance.write_dataset(table, uri, data_storage_version="2.0", enable_v2_manifest_paths=v2_paths)
    pylance_append(uri, range(THEIRS + 12, THEIRS + 15))

    b = open_backend(storage_path=path, batch_size=BIG)
    await b.ready()
    assert await assert_reads_like_pylance(b, uri) == records(range(THEIRS, THEIRS + 15))
    await b.put_batch(records(range(0, 4)))
    await b.flush()
    await b.close()

    assert_lance_2_0(uri)
    assert [v["version"] for v in lance.dataset(uri).versions()] == [1, 2, 3]
    assert pylance_rows(uri) == records(range(THEIRS, THEIRS + 15)) + records(range(0, 4))


@pytest.mark.parametrize("version", [None, "2.1", "legacy"], ids=["default", "2.1", "legacy"])
async def test_a_dataset_in_another_storage_format_is_refused_clearly(
    open_backend, tmp_path, version
):
    path = tmp_path / "bucket_0"
    uri = uri_of(path)
    table = pa.table({"id": pa.array([1, 2, 3], pa.int64())})
    lance.write_dataset(table, uri, data_storage_version=version)
    written = lance.dataset(uri).data_storage_version
    assert written != "2.0"

    b = open_backend(storage_path=path, batch_size=BIG)
    with pytest.raises(StorageError) as info:
        await b.ready()
    message = str(info.value)
    assert "data storage format" in message
    assert "2.0" in message
    assert str(path) in message
    with pytest.raises(StorageError):
        await b.put({"id": 4})
    await b.close()

    ds = lance.dataset(uri)  # untouched
    assert ds.version == 1
    assert ds.data_storage_version == written
    assert ds.to_table().column("id").to_pylist() == [1, 2, 3]


# -- the WAL watermark across pylance commits ---------------------------------------------


async def write_flush_then_crash(path: Path, flushed: range, logged: range) -> None:
    """A child flushes `flushed`, then puts `logged` (fsynced to the WAL, not
    flushed) and dies by SIGKILL."""
    script = f"""
import asyncio, os, signal
from persisting import PersistingBackend
async def main():
    b = PersistingBackend(bucket_id=0, storage_path={str(path)!r}, batch_size=10**6,
                          enable_wal=True, wal_sync_interval=0)
    await b.put_batch({records(flushed)!r})
    await b.flush()
    for r in {records(logged)!r}:
        await b.put(r)
    os.kill(os.getpid(), signal.SIGKILL)
asyncio.run(main())
"""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", script)
    assert await proc.wait() == -signal.SIGKILL


def wal_append(uri: str) -> None:
    pylance_append(uri, range(THEIRS, THEIRS + 6))


def wal_delete(uri: str) -> None:
    lance.dataset(uri).delete("id IN (0, 5, 9)")


def wal_compact(uri: str) -> None:
    wal_append(uri)
    pylance_append(uri, range(THEIRS + 6, THEIRS + 8))
    lance.dataset(uri).optimize.compact_files()
    assert len(lance.dataset(uri).get_fragments()) == 1


@pytest.mark.parametrize("pylance_action", [wal_append, wal_delete, wal_compact])
async def test_wal_watermark_survives_pylance_commits_no_record_lost_or_duplicated(
    open_backend, tmp_path, pylance_action
):
    path = tmp_path / "bucket_0"
    uri = uri_of(path)
    flushed, logged = range(0, 10), range(10, 15)
    await write_flush_then_crash(path, flushed, logged)
    assert pylance_rows(uri) == records(flushed)
    watermark = lance.dataset(uri).config()[WATERMARK_KEY]

    pylance_action(uri)
    assert lance.dataset(uri).config()[WATERMARK_KEY] == watermark
    theirs = pylance_rows(uri)

    b = open_backend(storage_path=path, batch_size=BIG, **WAL)
    await b.ready()
    assert (await b.stats())["recovered_rows"] == len(logged)
    rows = await b.get(BIG, 0)
    # pylance's view of the dataset, then the records only the WAL held.
    assert rows == theirs + records(logged)
    assert b.total_count() == len(theirs) + len(logged)
    await b.put_batch(records(range(15, 18)))
    await b.close()

    expected = theirs + records(logged) + records(range(15, 18))
    assert pylance_rows(uri) == expected
    ids = [r["id"] for r in expected]
    assert len(ids) == len(set(ids)), "a record was duplicated"
    assert lance.dataset(uri).config()[WATERMARK_KEY] != watermark

    # A second recovery replays nothing more.
    b = open_backend(storage_path=path, batch_size=BIG, **WAL)
    await b.ready()
    assert b.total_count() == len(expected)
    assert await b.get(BIG, 0) == expected
    assert (await b.stats())["recovered_rows"] == 0
    await b.close()
    assert pylance_rows(uri) == expected


async def test_wal_watermark_survives_pylance_append_after_a_clean_close(open_backend, tmp_path):
    path = tmp_path / "bucket_0"
    uri = uri_of(path)
    b = open_backend(storage_path=path, batch_size=4, **WAL)
    for r in records(range(0, 10)):
        await b.put(r)
    await b.close()
    watermark = lance.dataset(uri).config()[WATERMARK_KEY]
    wal_append(uri)
    assert lance.dataset(uri).config()[WATERMARK_KEY] == watermark

    b = open_backend(storage_path=path, batch_size=4, **WAL)
    await b.ready()
    expected = records(range(0, 10)) + records(range(THEIRS, THEIRS + 6))
    assert await b.get(BIG, 0) == expected
    assert (await b.stats())["recovered_rows"] == 0
    for r in records(range(10, 13)):
        await b.put(r)
    await b.close()
    assert pylance_rows(uri) == expected + records(range(10, 13))
