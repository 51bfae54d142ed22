"""A careless or hostile caller: persisting must not kill its host, hang an await,
let one record poison a bucket, change a value silently, or report an error as an
empty answer. Cases that could kill the interpreter run in a child process whose
exit status is checked."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from datetime import date, datetime, timezone

import lance
import numpy as np
import pyarrow as pa
import pytest

from persisting import (
    ClosedError,
    CorruptionError,
    PersistingBackend,
    RecoveryWarning,
    SchemaError,
    StorageError,
)

DEADLINE = 30  # seconds any single call may take here before it counts as a hang


async def answer(aw):
    """Await with a deadline: a hang fails the test instead of blocking it."""
    return await asyncio.wait_for(aw, DEADLINE)


async def run_child(script: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        textwrap.dedent(script),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


async def read_back(path: str, **options) -> list[dict]:
    backend = PersistingBackend(bucket_id=0, storage_path=path, **options)
    try:
        return await answer(backend.get(10**9, 0))
    finally:
        await backend.close()


# -- 1. the host never dies; a put pending at close is stored or ClosedError -----

CLOSE_WHILE_PUTTING = """
import asyncio, json, sys
from persisting import ClosedError, PersistingBackend

async def main(path, delay):
    b = PersistingBackend(bucket_id=0, storage_path=path, batch_size=3,
                          enable_wal=True, wal_sync_interval=0)
    await b.ready()
    outcome = {}

    async def produce(p):
        for n in range(10_000):
            key = f"{p}-{n}"
            try:
                await b.put({"k": key})
            except ClosedError:
                outcome[key] = "closed"
                return
            except Exception as exc:
                outcome[key] = f"other {type(exc).__name__}: {exc}"
                return
            outcome[key] = "ok"

    tasks = [asyncio.ensure_future(produce(p)) for p in range(32)]
    await asyncio.sleep(delay)
    await b.close()
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    print(json.dumps(outcome))

asyncio.run(main(sys.argv[1], float(sys.argv[2])))
"""


@pytest.mark.parametrize("delay", [0.0, 0.01, 0.05, 0.2])
async def test_close_while_puts_are_pending(tmp_path, delay):
    path = str(tmp_path / "bucket_0")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CLOSE_WHILE_PUTTING,
        path,
        str(delay),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()[-3000:]
    outcome = json.loads(out)
    assert all(v in ("ok", "closed") for v in outcome.values()), outcome
    stored = [r["k"] for r in await read_back(path, enable_wal=True)]
    assert len(stored) == len(set(stored)), "a record was stored twice"
    acked = {k for k, v in outcome.items() if v == "ok"}
    refused = {k for k, v in outcome.items() if v == "closed"}
    assert set(stored) == acked, (len(set(stored) - acked), len(acked - set(stored)))
    assert not refused & set(stored), "a put that raised ClosedError was stored"


async def test_close_ends_waiting_streams_with_closed_error(open_backend):
    b = open_backend()
    await b.put({"a": 1})

    async def consume():
        return [rows async for rows in b.get_stream(10, 1, wait=True)]

    readers = [asyncio.ensure_future(consume()) for _ in range(3)]
    await asyncio.sleep(0.05)
    await answer(b.close())
    for reader in readers:
        with pytest.raises(ClosedError):
            await answer(reader)


async def test_after_close_every_call_raises_closed_error(open_backend):
    b = open_backend()
    await b.put({"a": 1})
    await b.close()
    with pytest.raises(ClosedError):
        await b.get(10, 1)  # at the end: not an empty answer
    with pytest.raises(ClosedError):
        await b.get(10, 0)
    with pytest.raises(ClosedError):
        b.total_count()
    with pytest.raises(ClosedError):
        await b.put({"a": 2})
    with pytest.raises(ClosedError):
        await b.flush()
    await b.close()  # idempotent


# -- 2. a value whose conversion raises fails alone, its neighbours complete -----


def deep(levels: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"x": value}
    return value


HOSTILE = [
    ({"s": "a\ud800b"}, (TypeError, ValueError)),
    ({"a\udc00": 1}, ValueError),
    ({"v": np.zeros(0, dtype=np.float32)}, TypeError),
    ({"d": deep(5000)}, ValueError),
    ({"l": [[[[]]]] * 3, "n": 10**30}, TypeError),
]


@pytest.mark.parametrize("wal", [False, True])
async def test_bad_values_fail_alone_in_a_shared_tick(open_backend, wal):
    b = open_backend(enable_wal=wal, wal_sync_interval=0)
    await b.ready()
    for bad, error in HOSTILE:
        good = [b.put({"i": i}) for i in range(5)]
        results = await answer(
            asyncio.gather(
                good[0], good[1], b.put(bad), good[2], good[3], good[4], return_exceptions=True
            )
        )
        assert isinstance(results[2], error), (bad.keys(), results[2])
        assert [r for i, r in enumerate(results) if i != 2] == [None] * 5, results
    assert b.total_count() == 5 * len(HOSTILE)
    await answer(b.flush())
    assert len(await b.get(1000, 0)) == 5 * len(HOSTILE)


# -- 3. one record never poisons a bucket -------------------------------------


@pytest.mark.parametrize(
    ("record", "match"),
    [
        ({"": 1}, "empty"),
        ({"a.b": 1}, "'.'"),
        ({"a\x00b": 1}, "NUL"),
        ({"a`b": 1}, "'`'"),
        ({"_rowid": 1}, "reserved"),
        ({"_distance": 1.0}, "reserved"),
        ({"x" * 300: 1}, "at most 256 bytes"),
        ({"outer": {"in.ner": 1}}, "outer.in.ner"),
        ({"outer": [{"": 1}]}, "empty"),
        ({"d": deep(32)}, "nested deeper than 32"),
        ({"d": deep(62)}, "nested deeper than 32"),
        ({"ok": 2, "a.b": None}, "'.'"),
        ({"ok": 2, "": None}, "empty"),
    ],
)
@pytest.mark.parametrize("wal", [True, False], ids=["wal", "staged"])
async def test_unstorable_names_and_depths_are_refused_at_put(open_backend, record, match, wal):
    """With the WAL off a put of plain scalars is acknowledged without a round
    trip to Go: the same names are refused there, a None value's too."""
    b = open_backend(enable_wal=wal, wal_sync_interval=0)
    await answer(b.put({"ok": 0}))
    with pytest.raises(ValueError, match=match):
        await answer(b.put(record))
    await answer(b.put({"ok": 1}))  # the bucket still works
    await answer(b.flush())
    assert await b.get(10, 0) == [{"ok": 0}, {"ok": 1}]


async def test_deepest_allowed_nesting_round_trips_through_wal_flush_reopen_and_pylance(
    tmp_path,
):
    path = str(tmp_path / "bucket_0")
    record = {"d": deep(31), "n": 1}  # the leaf sits at depth 32
    b = PersistingBackend(bucket_id=0, storage_path=path, enable_wal=True, wal_sync_interval=0)
    await answer(b.put(record))
    await answer(b.put({"n": 2}))
    assert (await b.get(1, 0))[0] == record
    b.close_sync()  # flushes
    rows = await read_back(path, enable_wal=True)
    assert rows[0] == record
    table = lance.dataset(os.path.join(path, "data.lance")).to_table()
    assert table.num_rows == 2


async def test_bad_arrow_input_is_refused_naming_the_column(open_backend):
    b = open_backend()
    bad_utf8 = pa.Array.from_buffers(
        pa.string(), 1, [None, pa.py_buffer(np.array([0, 2], np.int32)), pa.py_buffer(b"\xff\xfe")]
    )
    with pytest.raises(SchemaError, match=r'"s".*UTF-8'):
        await answer(b.put_batch(pa.RecordBatch.from_arrays([bad_utf8], names=["s"])))
    dup = pa.RecordBatch.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"])
    with pytest.raises(SchemaError, match=r'"a".*twice'):
        await answer(b.put_batch(dup))
    reserved = pa.RecordBatch.from_arrays([pa.array([1])], names=["_rowaddr"])
    with pytest.raises(SchemaError, match="reserved"):
        await answer(b.put_batch(reserved))
    await answer(b.put({"a": 1}))
    await answer(b.flush())
    assert await b.get(10, 0) == [{"a": 1}]


# -- 4. no silent change of a value --------------------------------------------

MIXES = [
    ("s", "a", b"a"),
    ("t", datetime(2024, 1, 1), datetime(2024, 1, 1, tzinfo=timezone.utc)),
    ("t", datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(2024, 1, 1)),
    ("d", date(2024, 1, 1), datetime(2024, 1, 1, 5, 30)),
]


@pytest.mark.parametrize(("key", "first", "second"), MIXES)
async def test_put_batch_refuses_values_pyarrow_would_change(open_backend, key, first, second):
    b = open_backend()
    with pytest.raises(SchemaError):
        await answer(b.put_batch([{key: first}, {key: second}]))
    assert b.total_count() == 0


@pytest.mark.parametrize(("key", "first", "second"), MIXES)
async def test_concurrent_puts_keep_each_value_or_refuse_it(open_backend, key, first, second):
    b = open_backend()
    results = await answer(
        asyncio.gather(b.put({key: first}), b.put({key: second}), return_exceptions=True)
    )
    assert results[0] is None
    assert isinstance(results[1], SchemaError), results[1]
    assert await b.get(10, 0) == [{key: first}]


async def test_a_list_mixing_str_and_bytes_is_refused(open_backend):
    b = open_backend()
    with pytest.raises(SchemaError, match="'l'"):
        await answer(b.put({"l": ["a", b"a"]}))
    with pytest.raises(SchemaError, match="'l'"):
        await answer(b.put({"l": [{"x": date(2024, 1, 1)}, {"x": datetime(2024, 1, 1, 1)}]}))


async def test_declared_vector_of_wrong_dimension_is_a_schema_error(open_backend):
    b = open_backend(vector_columns={"v": 4})
    await answer(b.put({"v": [1, 2, 3, 4]}))
    with pytest.raises(SchemaError, match=r"'v'.*dimension 3"):
        await answer(b.put({"v": [1, 2, 3]}))
    with pytest.raises(SchemaError, match="record 1"):
        await answer(b.put_batch([{"v": [1, 2, 3, 4]}, {"v": [1, 2]}]))
    assert b.total_count() == 1


# -- 5. arguments are checked, not wrapped ---------------------------------------


async def test_out_of_range_and_mistyped_arguments(open_backend):
    b = open_backend()
    await b.put_batch([{"i": i} for i in range(10)])
    for call, error in [
        (lambda: b.get(2**64 + 5, 0), ValueError),
        (lambda: b.get(5, 2**64 + 1), ValueError),
        (lambda: b.get(1.5, 0), TypeError),
        (lambda: b.get(1, "0"), TypeError),
        (lambda: b.get(True, 0), TypeError),
        (lambda: b.get(-1, 0), ValueError),
        (lambda: b.get_version(2**64 + 1), ValueError),
        (lambda: b.get_version(-1), ValueError),
        (lambda: b.get_version(1.0), TypeError),
    ]:
        with pytest.raises(error):
            await answer(call())
    with pytest.raises(ValueError):
        await answer(b.get_stream(5, -1).__anext__())
    with pytest.raises(ValueError, match="timeout"):
        await answer(b.get_stream(5, 0, wait=True, timeout=-1).__anext__())
    assert await b.get(np.int64(2), np.int64(3)) == [{"i": 3}, {"i": 4}]


# -- 6 and 10. damage is reported and kept; an error is never an empty answer -----


async def test_wal_segment_truncated_to_zero_is_reported_and_kept(tmp_path):
    path = tmp_path / "bucket_0"
    script = f"""
        import asyncio, os
        from persisting import PersistingBackend
        async def main():
            b = PersistingBackend(bucket_id=0, storage_path={str(path)!r}, enable_wal=True,
                                  wal_sync_interval=0, batch_size=10**6)
            await b.put_batch([{{"i": i}} for i in range(50)])
            os._exit(0)  # acknowledged, in the log only
        asyncio.run(main())
    """
    rc, _, err = await run_child(script)
    assert rc == 0, err
    (seg,) = sorted((path / "wal").glob("*.wal"))
    seg.write_bytes(b"")  # the damage
    b = PersistingBackend(bucket_id=0, storage_path=str(path), enable_wal=True)
    with pytest.raises(CorruptionError, match=seg.name) as info:
        await answer(b.ready())
    assert info.value.path == str(seg) and info.value.offset == 0
    with pytest.raises(CorruptionError):
        await answer(b.get(10, 0))  # not an empty queue
    with pytest.raises(CorruptionError):
        b.total_count()
    await b.close()
    assert seg.exists(), "the failed open must not touch the evidence"
    with pytest.warns(RecoveryWarning, match="damaged"):
        b = PersistingBackend(
            bucket_id=0, storage_path=str(path), enable_wal=True, wal_truncate_corrupt=True
        )
        await answer(b.ready())
    stats = await b.stats()
    assert stats["damaged_files"] == [str(path / "wal" / "damaged" / seg.name)]
    assert (path / "wal" / "damaged" / seg.name).exists()
    assert await b.get(10, 0) == []
    await b.close()


# -- 7. total_count is true from the moment the constructor returns ---------------


async def test_total_count_of_a_reopened_bucket_is_exact_at_once(tmp_path):
    path = tmp_path / "bucket_0"
    script = f"""
        import asyncio, os
        from persisting import PersistingBackend
        async def main():
            b = PersistingBackend(bucket_id=0, storage_path={str(path)!r}, enable_wal=True,
                                  wal_sync_interval=0, batch_size=300)
            for start in range(0, 700, 70):
                await b.put_batch([{{"i": i}} for i in range(start, start + 70)])
            os._exit(0)  # 600 rows flushed, 100 in the log only
        asyncio.run(main())
    """
    rc, _, err = await run_child(script)
    assert rc == 0, err
    b = PersistingBackend(bucket_id=0, storage_path=str(path), enable_wal=True)
    assert b.total_count() == 700  # synchronously, before anything was awaited
    await b.put({"i": 700})
    assert b.total_count() == 701
    assert [r["i"] for r in await b.get(1000, 0)] == list(range(701))
    await b.close()


# -- the directory taken away, a close cancelled, a reopen behind a close -------


async def test_dataset_deleted_under_an_open_bucket_fails_clearly_and_never_hangs(tmp_path):
    import shutil

    path = tmp_path / "bucket_0"
    b = PersistingBackend(bucket_id=0, storage_path=str(path), batch_size=10)
    await b.put_batch([{"i": i} for i in range(15)])  # one flush of 15 rows
    await answer(b.flush())
    await b.put_batch([{"i": i} for i in range(15, 20)])
    shutil.rmtree(path / "data.lance")
    with pytest.raises(StorageError, match="deleted while the bucket was open"):
        await answer(b.flush())
    with pytest.raises(StorageError, match="deleted"):
        await answer(b.close())
    # Nothing was recreated from row 0 behind the user's back.
    assert not (path / "data.lance").exists()


async def test_a_cancelled_close_finishes_in_the_background(tmp_path):
    path = str(tmp_path / "bucket_0")
    b = PersistingBackend(bucket_id=0, storage_path=path, batch_size=10**6)
    await b.put_batch([{"i": i} for i in range(1000)])
    task = asyncio.ensure_future(b.close())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The close goes on; a new backend on the directory waits for it in Go,
    # not in its constructor, and then sees every record.
    again = PersistingBackend(bucket_id=0, storage_path=path)
    assert [r["i"] for r in await answer(again.get(2000, 0))] == list(range(1000))
    await again.close()


async def test_reopen_behind_a_finalizer_close_sees_every_record(tmp_path):
    import gc

    path = str(tmp_path / "bucket_0")
    b = PersistingBackend(bucket_id=0, storage_path=path, batch_size=10**6)
    await b.put_batch([{"i": i} for i in range(5000)])
    del b
    gc.collect()  # the finalizer starts a close (and its flush) in the background
    # The constructor does not wait for that close (recovery does, in Go).
    again = PersistingBackend(bucket_id=0, storage_path=path)
    assert again.total_count() == 5000
    await again.close()


async def test_close_sync_right_after_puts_keeps_every_acknowledged_record(tmp_path):
    """Puts acknowledged at once (no WAL) wait in Python for the end of the tick;
    a synchronous close in the same tick hands them to Go first."""
    path = str(tmp_path / "bucket_0")
    b = PersistingBackend(bucket_id=0, storage_path=path)
    await b.ready()
    for i in range(10):
        await b.put({"i": i})
    b.close_sync()
    assert [r["i"] for r in await read_back(path)] == list(range(10))
