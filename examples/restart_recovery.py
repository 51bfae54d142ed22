"""Restart and recovery: a writer process is killed with SIGKILL in the middle of
a stream; reopening the bucket replays the write-ahead log, and every record whose
put() returned is there, once.

Run: python examples/restart_recovery.py
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile

from persisting import PersistingBackend

# wal_sync_interval=0: put() returns only after its log frame is fsynced.
OPTIONS = {"enable_wal": True, "wal_sync_interval": 0.0}


async def write_until_killed(path: str) -> None:
    """The child: write records, report each acknowledged id, then die mid-stream."""
    backend = PersistingBackend(storage_path=path, batch_size=50, **OPTIONS)
    for i in range(10_000):
        await backend.put({"id": i, "text": f"record {i}"})
        print(i, flush=True)  # acknowledged: put() returned
        if i == 120:  # 2 flushes to Lance, 21 records only in the log
            os.kill(os.getpid(), signal.SIGKILL)


async def reopen(path: str, acknowledged: list[int]) -> None:
    backend = PersistingBackend(storage_path=path, batch_size=50, **OPTIONS)
    await backend.ready()  # recovery: Lance dataset + log replayed past its watermark
    stats = await backend.stats()
    print(
        f"reopened: {backend.total_count()} records, {stats['persisted_count']} in Lance, "
        f"{stats['recovered_rows']} replayed from the log"
    )
    ids = [r["id"] for r in await backend.get(limit=100_000)]
    assert len(ids) == len(set(ids)), "a record came back twice"
    missing = set(acknowledged) - set(ids)
    assert not missing, f"acknowledged records lost: {sorted(missing)[:10]}"
    print(f"all {len(acknowledged)} acknowledged records are there, none twice")
    await backend.put({"id": len(ids), "text": "written after the restart"})
    await backend.close()


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        asyncio.run(write_until_killed(sys.argv[2]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bucket_0")
        child = subprocess.run(
            [sys.executable, __file__, "--child", path], capture_output=True, text=True
        )
        assert child.returncode == -signal.SIGKILL, child.stderr
        acknowledged = [int(line) for line in child.stdout.split()]
        print(f"writer killed with SIGKILL after {len(acknowledged)} acknowledged puts")
        asyncio.run(reopen(path, acknowledged))


if __name__ == "__main__":
    main()
