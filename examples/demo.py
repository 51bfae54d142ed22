"""`make demo`: the main job in one screen.

1. A writer process streams records through a Pulsing queue backed by persisting
   (write-ahead log on, fsync before every acknowledgement).
2. It is killed with SIGKILL in the middle of the stream.
3. A new Pulsing system reopens the queue: every acknowledged record is there,
   none twice.
4. pylance reads the same Lance datasets, and a past version is read back.
5. Everything is removed: the data lives in a temporary directory.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path

import lance
import pulsing as pul
from pulsing.streaming import read_queue, write_queue

from persisting import PersistingBackend

TOPIC = "orders"
BUCKETS = 4
BATCH = 100
KILL_AFTER = 600  # acknowledged puts before the SIGKILL
OPTIONS = {"enable_wal": True, "wal_sync_interval": 0.0, "compression": "zstd"}


def queue_args(storage: str) -> dict:
    return {"backend": "persisting", "storage_path": storage, "backend_options": OPTIONS}


async def writer_process(storage: str) -> None:
    """The child: put records one by one, print each id once put() has returned."""
    system = await pul.actor_system()
    writer = await write_queue(
        system, TOPIC, num_buckets=BUCKETS, batch_size=BATCH, **queue_args(storage)
    )
    for i in range(1_000_000):
        await writer.put({"id": f"order-{i}", "seq": i, "amount": round(i * 1.25, 2)})
        print(i, flush=True)


def run_and_kill(storage: str) -> list[int]:
    child = subprocess.Popen(
        [sys.executable, __file__, "--writer", storage],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    acknowledged = []
    for line in child.stdout:
        acknowledged.append(int(line))
        if len(acknowledged) == KILL_AFTER:
            child.send_signal(signal.SIGKILL)
            break
    acknowledged.extend(int(line) for line in child.stdout)  # printed before it died
    child.wait()
    assert child.returncode == -signal.SIGKILL
    return acknowledged


async def reopen(storage: str, acknowledged: list[int]) -> None:
    system = await pul.actor_system()
    try:
        reader = await read_queue(system, TOPIC, num_buckets=BUCKETS, **queue_args(storage))
        records = []
        while batch := await reader.get(limit=500):
            records.extend(batch)
    finally:
        await system.shutdown()
    seen = Counter(r["seq"] for r in records)
    twice = [seq for seq, n in seen.items() if n > 1]
    missing = sorted(set(acknowledged) - set(seen))
    print(
        f"   read back {len(records)} records through Pulsing "
        f"({len(records) - len(acknowledged)} more were in flight: durable, never acknowledged)"
    )
    print(f"   acknowledged but missing: {len(missing)}   read twice: {len(twice)}")
    assert not missing and not twice, (missing[:5], twice[:5])


async def settle(buckets: list[Path]) -> dict:
    """Open each bucket directly (this waits until Pulsing's backends, which it never
    closes, are closed in the background), flush, and return bucket_0's past version."""
    gc.collect()
    past = {}
    for bucket in buckets:
        backend = PersistingBackend(storage_path=str(bucket), **OPTIONS)
        await backend.flush()
        if bucket.name == "bucket_0":
            first = (await backend.versions())[0]
            rows = await backend.get_version(first["version"], limit=1)
            past = {"version": first["version"], "rows": first["rows"], "first": rows[0]}
        await backend.close()
    return past


def lance_rows(storage: str) -> dict[str, int]:
    return {
        bucket.name: lance.dataset(str(bucket / "data.lance")).count_rows()
        if (bucket / "data.lance").exists()
        else 0
        for bucket in sorted(Path(storage).iterdir())
    }


def main() -> None:
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="persisting-demo-") as tmp:
        storage = os.path.join(tmp, TOPIC)
        print(
            f"persisting-queue {version('persisting-queue')}, pulsing {pul.__version__}: "
            f"queue {TOPIC!r}, {BUCKETS} buckets, WAL fsynced before each ack"
        )

        print(f"1. a writer process puts records through Pulsing; SIGKILL after {KILL_AFTER} acks")
        acknowledged = run_and_kill(storage)
        print(f"   killed: {len(acknowledged)} puts had returned (last seq {acknowledged[-1]})")
        in_lance = lance_rows(storage)
        print(
            f"   pylance sees {sum(in_lance.values())} rows in the Lance datasets "
            f"{in_lance}; the rest is only in the WAL"
        )

        print("2. a new Pulsing system reopens the queue: Lance + WAL replay")
        asyncio.run(reopen(storage, acknowledged))

        print("3. pylance reads the same datasets once the replayed rows are flushed")
        past = asyncio.run(settle(sorted(Path(storage).iterdir())))
        for bucket in sorted(Path(storage).iterdir()):
            ds = lance.dataset(str(bucket / "data.lance"))
            print(
                f"   {bucket.name}/data.lance: {ds.count_rows()} rows, version {ds.version}, "
                f"{len(ds.get_fragments())} fragments"
            )
        total = sum(lance_rows(storage).values())
        print(f"   {total} rows in all")
        assert total >= len(acknowledged)

        print("4. time travel: bucket_0 as it was at its first version")
        print(
            f"   persisting: version {past['version']} held {past['rows']} rows; "
            f"first {past['first']}"
        )
        old = lance.dataset(str(Path(storage) / "bucket_0" / "data.lance"), version=1)
        print(f"   pylance, version=1: {old.count_rows()} rows")
    assert not os.path.exists(tmp)
    print(f"5. removed {tmp}; done in {time.monotonic() - start:.1f} s")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--writer":
        asyncio.run(writer_process(sys.argv[2]))
    else:
        main()
