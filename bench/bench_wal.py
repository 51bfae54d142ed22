"""Durable put() throughput of PersistingBackend with its write-ahead log, set
against the disk's own fsync latency, the WAL switched off and Pulsing's
MemoryBackend, all measured in the same run; then WAL replay speed on open.

Three tables:

1. Raw fsync latency of the scratch directory's disk: write 1 KiB and
   ``os.fdatasync`` in a loop, appending to a file that grows, and overwriting
   blocks written with zeros and synced beforehand (the WAL keeps its active
   segment zero-filled ahead of its frames, so this is its kind of sync).
   1 / p50 of the latter is the physical ceiling of "one fsync per write". It
   is measured before and after the put runs, so drift shows.
2. put() throughput, each producer awaiting one put() at a time until the
   time window ends, for wal_sync_interval 0 (fsync before put returns; the
   concurrent puts of one event-loop tick share one frame and one fsync), 0.1
   and 1.0 s (put returns once the frame is written; a background fsync follows
   within the interval). "rec/fsync" is stats() wal_records / wal_syncs over the
   window; "fsync/s / ceiling" is how much of the disk's sync capacity the WAL
   used, and "rec/s / ceiling" how far group commit goes past one fsync per
   write (> 1 means beyond what a sync-per-write log could do on this disk).
   The WAL-off and MemoryBackend columns are measured interleaved with the WAL
   runs of the same producer count and repeat on each of its rows. batch_size
   is huge so no Lance flush runs inside the window; rows are flushed at close,
   outside it.
3. WAL replay on open: a child process writes N records with the WAL on
   (wal_sync_interval 0, batch_size and max_wal_size huge so nothing reaches
   Lance) and is SIGKILLed once every put has returned. Opening a backend on
   the directory is then timed up to ``await ready()`` and up to the end of
   ``await flush()``. Recovery (core/engine/recover.go) replays the WAL into the
   buffer and only *starts* a flush of the recovered rows; ready() returns
   before that flush is done, so the "ready" columns are replay alone and the
   "ready+flush" columns include writing the recovered rows to Lance. MB/s
   counts WAL bytes (apparent size of the wal/ directory). The child's own
   write time is the peer: "write / replay" > 1 means replay is faster than
   writing was.

Machines here are noisy: read the ratio columns, not the absolute figures.
Usage: python bench/bench_wal.py [--seconds S] [--repeat R] [--replay-records N]
       [--replay-repeat R] [--fsync-samples N] [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulsing.streaming import MemoryBackend

from persisting import PersistingBackend

NEVER = 1 << 40  # a batch size and WAL bound no run reaches
INTERVALS = (0.0, 0.1, 1.0)
PRODUCERS = (1, 8, 64)


def record(i: int) -> dict[str, Any]:
    return {"id": i, "user": f"user-{i % 977}", "amount": i * 0.25, "ok": i % 3 == 0}


def du_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(root, name)).st_size
    return total


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- 1. raw fsync -----------------------------------------------------------


def fsync_latencies(directory: Path, samples: int, budget: float, prezeroed: bool) -> list[float]:
    """Seconds per (write 1 KiB + fdatasync): appending to a fresh file, or
    overwriting blocks written with zeros and synced beforehand (what the WAL
    does: it keeps its active segment zero-filled ahead of its frames)."""
    path = directory / "fsync-probe"
    block = b"x" * 1024
    out: list[float] = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        if prezeroed:
            os.write(fd, bytes(len(block) * samples))
            os.fdatasync(fd)
            os.lseek(fd, 0, os.SEEK_SET)
        deadline = time.perf_counter() + budget
        while len(out) < samples and time.perf_counter() < deadline:
            start = time.perf_counter()
            os.write(fd, block)
            os.fdatasync(fd)
            out.append(time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()
    return out


def print_fsync(runs: dict[str, list[float]]) -> float:
    """Print the fsync table; return the p50 in seconds of the WAL's kind of sync
    (over pre-zeroed blocks, before and after pooled)."""
    print("### Raw fsync latency (write 1 KiB + fdatasync)\n")
    print("| file | when | samples | p50 µs | mean µs | p99 µs | ceiling 1/p50 (syncs/s) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    pooled: dict[str, list[float]] = {}
    for key, ts in runs.items():
        pooled.setdefault(key.split("/")[0], []).extend(ts)
    for key, ts in [*runs.items(), *((f"{k}/pooled", v) for k, v in pooled.items())]:
        kind, when = key.split("/")
        p50 = pct(ts, 0.5)
        print(
            f"| {kind} | {when} | {len(ts):,} | {p50 * 1e6:,.0f} | "
            f"{statistics.fmean(ts) * 1e6:,.0f} | {pct(ts, 0.99) * 1e6:,.0f} | {1 / p50:,.0f} |"
        )
    print()
    return pct(pooled[PREZEROED], 0.5)


PREZEROED = "pre-zeroed (as the WAL)"
APPENDING = "appending"


def fsync_runs(args: argparse.Namespace, root: Path, when: str) -> dict[str, list[float]]:
    return {
        f"{kind}/{when}": fsync_latencies(
            root, args.fsync_samples, args.fsync_budget, prezeroed=kind == PREZEROED
        )
        for kind in (APPENDING, PREZEROED)
    }


# -- 2. put throughput ------------------------------------------------------


@dataclass
class Run:
    rate: float
    records: int = 0
    syncs: int = 0
    elapsed: float = 0.0


@dataclass
class Case:
    rates: list[float] = field(default_factory=list)
    records: list[int] = field(default_factory=list)
    syncs: list[int] = field(default_factory=list)
    elapsed: list[float] = field(default_factory=list)

    def add(self, run: Run) -> None:
        self.rates.append(run.rate)
        self.records.append(run.records)
        self.syncs.append(run.syncs)
        self.elapsed.append(run.elapsed)


async def put_for(backend: Any, producers: int, seconds: float) -> tuple[int, float]:
    """Each producer awaits one put() at a time until the window ends."""
    counts = [0] * producers
    deadline = time.perf_counter() + seconds

    async def produce(p: int) -> None:
        n, i = 0, p
        while time.perf_counter() < deadline:
            await backend.put(record(i))
            n += 1
            i += producers
        counts[p] = n

    start = time.perf_counter()
    await asyncio.gather(*(produce(p) for p in range(producers)))
    elapsed = time.perf_counter() - start
    total = sum(counts)
    assert backend.total_count() == total, (backend.total_count(), total)
    return total, elapsed


async def run_persisting(path: Path, producers: int, seconds: float, **options: Any) -> Run:
    backend = PersistingBackend(bucket_id=0, storage_path=str(path), batch_size=NEVER, **options)
    await backend.ready()
    before = await backend.stats()
    total, elapsed = await put_for(backend, producers, seconds)
    after = await backend.stats()
    await backend.close()
    shutil.rmtree(path, ignore_errors=True)
    return Run(
        total / elapsed,
        after["wal_records"] - before["wal_records"],
        after["wal_syncs"] - before["wal_syncs"],
        elapsed,
    )


async def run_memory(producers: int, seconds: float) -> Run:
    total, elapsed = await put_for(MemoryBackend(bucket_id=0), producers, seconds)
    return Run(total / elapsed)


Row = tuple[int, dict[str, Case], Case, Case]


async def put_throughput(args: argparse.Namespace, root: Path) -> list[Row]:
    counter = iter(range(1 << 30))

    def fresh() -> Path:
        return root / f"put-{next(counter)}"

    rows: list[Row] = []
    for producers in PRODUCERS:
        wal = {f"{s:g}": Case() for s in INTERVALS}
        off, mem = Case(), Case()
        runs: list[tuple[Case, Callable[[], Awaitable[Run]]]] = [
            (
                wal[f"{s:g}"],
                lambda s=s, p=producers: run_persisting(
                    fresh(), p, args.seconds, enable_wal=True, wal_sync_interval=s
                ),
            )
            for s in INTERVALS
        ]
        runs.append((off, lambda p=producers: run_persisting(fresh(), p, args.seconds)))
        runs.append((mem, lambda p=producers: run_memory(p, args.seconds)))
        for rep in range(args.repeat):  # interleaved, order rotated
            k = rep % len(runs)
            for case, run in runs[k:] + runs[:k]:
                case.add(await run())
        rows.append((producers, wal, off, mem))
    return rows


def print_put(rows: list[Row], ceiling: float, seconds: float, repeat: int) -> None:
    print(
        f"### put() with the WAL on, {seconds:g} s windows, median of {repeat} interleaved runs\n"
    )
    print(
        "| producers | wal_sync_interval | rec/s | rec/fsync | fsync/s | fsync/s / ceiling | "
        "rec/s / ceiling | WAL off rec/s | MemoryBackend rec/s | on / off | on / Memory |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for producers, wal, off, mem in rows:
        o, m = statistics.median(off.rates), statistics.median(mem.rates)
        for interval, case in wal.items():
            r = statistics.median(case.rates)
            syncs, records = sum(case.syncs), sum(case.records)
            per = f"{records / syncs:,.1f}" if syncs else "—"
            sps = statistics.median(s / e for s, e in zip(case.syncs, case.elapsed, strict=True))
            print(
                f"| {producers} | {interval} | {r:,.0f} | {per} | {sps:,.0f} | "
                f"{sps / ceiling:.2f} | {r / ceiling:.2f} | {o:,.0f} | {m:,.0f} | "
                f"{r / o:.2f} | {r / m:.2f} |"
            )
    print()


# -- 3. replay --------------------------------------------------------------


async def child_write(path: str, records: int, mode: str) -> None:
    """Runs in the child: write, report, then wait to be killed."""
    backend = PersistingBackend(
        bucket_id=0,
        storage_path=path,
        batch_size=NEVER,
        enable_wal=True,
        wal_sync_interval=0,
        max_wal_size=NEVER,
    )
    await backend.ready()
    start = time.perf_counter()
    if mode == "batch":
        for s in range(0, records, 1000):
            await backend.put_batch([record(i) for i in range(s, min(s + 1000, records))])
    else:
        producers = 64

        async def produce(p: int) -> None:
            for i in range(p, records, producers):
                await backend.put(record(i))

        await asyncio.gather(*(produce(p) for p in range(producers)))
    elapsed = time.perf_counter() - start
    stats = await backend.stats()
    assert stats["persisted_count"] == 0 and stats["total_count"] == records, stats
    print(f"written {elapsed} {stats['wal_groups']}", flush=True)
    await asyncio.Event().wait()


def write_and_kill(path: Path, records: int, mode: str) -> tuple[float, int]:
    """Start a child that fills the WAL, SIGKILL it; return its write time and frames."""
    cmd = [sys.executable, __file__, "--child", str(path), str(records), mode]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None
        line = child.stdout.readline().split()
        child.send_signal(signal.SIGKILL)
        child.wait()
    if not line or line[0] != "written":
        raise SystemExit(f"replay child failed (exit {child.returncode})")
    return float(line[1]), int(line[2])


@dataclass
class Replay:
    wal_bytes: int
    frames: int
    write: float
    ready: float
    flushed: float
    persisted_at_ready: int
    count: float  # constructor + the first total_count(), which waits for recovery


async def replay_once(path: Path, records: int, mode: str) -> Replay:
    write, frames = write_and_kill(path, records, mode)
    wal_bytes = du_bytes(path / "wal")
    start = time.perf_counter()
    backend = PersistingBackend(
        bucket_id=0,
        storage_path=str(path),
        batch_size=NEVER,
        enable_wal=True,
        wal_sync_interval=0,
        max_wal_size=NEVER,
    )
    total = backend.total_count()  # what Pulsing calls first, synchronously
    count = time.perf_counter() - start
    if total != records:
        raise SystemExit(f"replay of {path}: total_count() {total}, expected {records}")
    await backend.ready()
    ready = time.perf_counter() - start
    at_ready = (await backend.stats())["persisted_count"]
    await backend.flush()
    flushed = time.perf_counter() - start
    stats = await backend.stats()
    await backend.close()
    expect = {"recovered_rows": records, "persisted_count": records, "total_count": records}
    got = {k: stats[k] for k in expect}
    if got != expect:
        raise SystemExit(f"replay of {path}: expected {expect}, got {got}")
    shutil.rmtree(path, ignore_errors=True)
    return Replay(wal_bytes, frames, write, ready, flushed, at_ready, count)


async def replay(args: argparse.Namespace, root: Path) -> None:
    print(
        f"### WAL replay on open (child SIGKILLed after writing; median of {args.replay_repeat})\n"
    )
    print(
        "| written by | records | frames | WAL MB | first total_count s | ready s | MB/s | "
        "rec/s | persisted at ready | ready+flush s | MB/s | rec/s | child write s | "
        "write / replay (ready) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    cases = (
        ("put_batch(1000)", "batch", args.replay_records),
        ("put(), 64 producers", "put", args.replay_put_records),
    )
    n = 0
    for label, mode, records in cases:
        if records <= 0:
            continue
        results = []
        for _ in range(args.replay_repeat):
            results.append(await replay_once(root / f"replay-{n}", records, mode))
            n += 1
        mb = statistics.median(r.wal_bytes for r in results) / 1e6
        frames = statistics.median(r.frames for r in results)
        ready = statistics.median(r.ready for r in results)
        flushed = statistics.median(r.flushed for r in results)
        write = statistics.median(r.write for r in results)
        at_ready = statistics.median(r.persisted_at_ready for r in results)
        count = statistics.median(r.count for r in results)
        print(
            f"| {label} | {records:,} | {frames:,.0f} | {mb:.1f} | {count:.3f} | {ready:.3f} | "
            f"{mb / ready:,.0f} | {records / ready:,.0f} | {at_ready:,.0f} | "
            f"{flushed:.3f} | {mb / flushed:,.0f} | "
            f"{records / flushed:,.0f} | {write:.3f} | {write / ready:.1f} |"
        )
    print(
        "\nready() returns once the WAL is replayed into the buffer: the ready columns do "
        "NOT include writing the recovered rows to Lance. Recovery only starts that flush "
        "(\"persisted at ready\" is stats()['persisted_count'] read just after ready()); it "
        'ends inside the ready+flush time. "first total_count" is the constructor plus '
        "the first total_count(), which Pulsing calls synchronously before every put: it "
        "waits for the replay, blocking the event loop that long, once per open.\n"
    )


# -- main -------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="persisting-bench-wal-", dir=args.dir))
    try:
        print(f"scratch {root}\n")
        before = fsync_runs(args, root, "before the put runs")
        rows = await put_throughput(args, root)
        after = fsync_runs(args, root, "after")
        p50 = print_fsync({**before, **after})
        print_put(rows, 1 / p50, args.seconds, args.repeat)
        await replay(args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=1.5, help="window per put run")
    parser.add_argument("--repeat", type=int, default=3, help="put runs per case")
    parser.add_argument("--fsync-samples", type=int, default=2_000)
    parser.add_argument("--fsync-budget", type=float, default=3.0, help="max seconds per probe")
    parser.add_argument("--replay-records", type=int, default=500_000, help="via put_batch")
    parser.add_argument("--replay-put-records", type=int, default=50_000, help="via put()")
    parser.add_argument("--replay-repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="parent of the scratch directory")
    return parser.parse_args()


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        asyncio.run(child_write(sys.argv[2], int(sys.argv[3]), sys.argv[4]))
    else:
        asyncio.run(main(parse()))
