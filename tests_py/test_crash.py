"""Crash safety with real processes: a child writes through PersistingBackend and
is killed with SIGKILL; the parent reopens the bucket and checks that every
acknowledged record is there exactly once, in order."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
from collections import defaultdict
from pathlib import Path

import lance
import pytest

from persisting import PersistingBackend

CHILD = str(Path(__file__).with_name("crash_child.py"))
# A SIGKILL during a write leaves a torn tail; recovery cutting it is the point.
pytestmark = pytest.mark.filterwarnings("ignore::persisting.RecoveryWarning")
CYCLES = int(os.environ.get("PERSISTING_CRASH_CYCLES", "30"))


async def run_child_until_killed(
    path: str, start: int, producers: int, options: dict, kill_after: float
) -> list[str]:
    """Start the writer, SIGKILL it kill_after seconds after it is ready, return its lines."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        CHILD,
        path,
        str(start),
        str(producers),
        json.dumps(options),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    first = await proc.stdout.readline()
    assert first.strip() == b"READY", first
    await asyncio.sleep(kill_after)
    proc.send_signal(signal.SIGKILL)
    rest = (await proc.stdout.read()).decode()
    await proc.wait()
    # A line cut by the kill was never completely reported: ignore it.
    return [line for line in rest.split("\n") if line.count(" ") == 2]


async def run_script(script: str) -> int:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", script)
    return await proc.wait()


def parse(lines: list[str]) -> tuple[dict[int, set[int]], dict[int, set[int]]]:
    started: dict[int, set[int]] = defaultdict(set)
    acked: dict[int, set[int]] = defaultdict(set)
    for line in lines:
        kind, p, n = line.split()
        (acked if kind == "A" else started)[int(p)].add(int(n))
    return started, acked


async def read_all(path: str, **options) -> list[dict]:
    options.setdefault("enable_wal", True)
    backend = PersistingBackend(bucket_id=0, storage_path=path, batch_size=7, **options)
    try:
        await backend.ready()
        return await backend.get(10**9, 0)
    finally:
        await backend.close()


# Compaction every 2 flushes and cleanup down to 2 versions put most kills
# inside a compaction or a cleanup too.
MAINTENANCE = {"compact_every": 2, "keep_versions": 2, "keep_versions_seconds": 0}


@pytest.mark.parametrize("maintenance", [{}, MAINTENANCE], ids=["flushes", "compacting"])
async def test_sigkill_loses_no_acknowledged_record_and_duplicates_none(tmp_path, maintenance):
    path = str(tmp_path / "bucket_0")
    options = {"enable_wal": True, "wal_sync_interval": 0, "batch_size": 7, **maintenance}
    rng = random.Random(int(os.environ.get("PERSISTING_CRASH_SEED", "1234")))
    all_started: dict[int, set[int]] = defaultdict(set)
    all_acked: dict[int, set[int]] = defaultdict(set)
    for cycle in range(CYCLES):
        lines = await run_child_until_killed(
            path, cycle * 1_000_000, 3, options, rng.uniform(0.05, 0.6)
        )
        started, acked = parse(lines)
        for p in started:
            all_started[p] |= started[p]
        for p in acked:
            all_acked[p] |= acked[p]

        rows = await read_all(path)
        seen: dict[int, list[int]] = defaultdict(list)
        for row in rows:
            seen[row["producer"]].append(row["n"])
            assert row["payload"] == "x" * (row["n"] % 50)
        for p in set(all_acked) | set(seen):
            got = seen[p]
            assert len(got) == len(set(got)), f"cycle {cycle}: producer {p} has duplicates"
            assert got == sorted(got), f"cycle {cycle}: producer {p} out of order"
            missing = all_acked[p] - set(got)
            assert not missing, f"cycle {cycle}: acknowledged records lost: {sorted(missing)[:5]}"
            extra = set(got) - all_acked[p]
            # Only a put that was in flight at the kill may be there unacknowledged.
            assert extra <= all_started[p], f"cycle {cycle}: records never written: {extra}"
        # pylance opens what the crash left and sees the persisted rows.
        if rows:
            assert lance.dataset(os.path.join(path, "data.lance")).count_rows() == len(rows)
    assert sum(len(v) for v in all_acked.values()) > CYCLES, "the writer hardly wrote anything"


async def test_sync_every_put_means_on_disk_when_acknowledged(tmp_path):
    path = str(tmp_path / "bucket_0")
    options = {"enable_wal": True, "wal_sync_interval": 0, "batch_size": 10**6}
    lines = await run_child_until_killed(path, 0, 1, options, 0.5)
    _, acked = parse(lines)
    assert acked[0], "nothing was acknowledged"
    rows = await read_all(path)
    assert {r["n"] for r in rows} >= acked[0]
    assert [r["n"] for r in rows] == sorted(r["n"] for r in rows)


async def test_without_wal_a_crash_loses_only_unflushed_records(tmp_path):
    path = str(tmp_path / "bucket_0")
    script = f"""
import asyncio, os, signal
from persisting import PersistingBackend
async def main():
    b = PersistingBackend(bucket_id=0, storage_path={path!r}, batch_size=10**6)
    await b.put_batch([{{"n": i}} for i in range(10)])
    await b.flush()
    await b.put_batch([{{"n": i}} for i in range(10, 15)])
    os.kill(os.getpid(), signal.SIGKILL)
asyncio.run(main())
"""
    assert await run_script(script) == -signal.SIGKILL
    rows = await read_all(path, enable_wal=False)
    assert [r["n"] for r in rows] == list(range(10))


@pytest.mark.parametrize("interval", [0.05, 1.0])
async def test_interval_sync_flush_and_close_make_records_durable(tmp_path, interval):
    path = str(tmp_path / "bucket_0")
    script = f"""
import asyncio, os, signal
from persisting import PersistingBackend
async def main():
    b = PersistingBackend(bucket_id=0, storage_path={path!r}, batch_size=10**6,
                          enable_wal=True, wal_sync_interval={interval})
    await b.put_batch([{{"n": i}} for i in range(10)])
    await b.flush()
    await b.put_batch([{{"n": i}} for i in range(10, 15)])
    await b.close()
    os.kill(os.getpid(), signal.SIGKILL)
asyncio.run(main())
"""
    assert await run_script(script) == -signal.SIGKILL
    rows = await read_all(path)
    assert [r["n"] for r in rows] == list(range(15))


async def test_log_left_by_a_wal_open_is_replayed_when_reopened_without_wal(tmp_path):
    path = str(tmp_path / "bucket_0")
    options = {"enable_wal": True, "wal_sync_interval": 0, "batch_size": 10**6}
    _, acked = parse(await run_child_until_killed(path, 0, 1, options, 0.3))
    assert acked[0]
    rows = await read_all(path, enable_wal=False)
    assert {r["n"] for r in rows} >= acked[0]
    assert not list((tmp_path / "bucket_0" / "wal").glob("*.wal")), "the retired log was kept"
    assert await read_all(path, enable_wal=False) == rows  # nothing replayed twice
