"""put() and put_batch() throughput of PersistingBackend against Pulsing's own
MemoryBackend, measured in the same run on the same records: on the backend
itself, then through Pulsing (one producer awaiting ``writer.put`` of a
``write_queue``, one bucket), where the actor messaging is shared by both.
Last, single puts at ``batch_size=100`` then a flush, against the original
Python persisting backend run from its own published code (original_peer.py).

Machines here are noisy: read the ratio column, not the absolute figures.
Usage: python bench/bench_put.py [--records N] [--repeat R]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import pulsing as pul
import pyarrow as pa
from pulsing.streaming import MemoryBackend, write_queue

import original_peer
from original_peer import record
from persisting import PersistingBackend


async def put_concurrently(backend: Any, producers: int, total: int) -> None:
    per = total // producers

    async def produce(p: int) -> None:
        base = p * per
        for i in range(base, base + per):
            await backend.put(record(i))

    await asyncio.gather(*(produce(p) for p in range(producers)))


async def put_batches(backend: Any, batch: int, total: int) -> None:
    for start in range(0, total, batch):
        await backend.put_batch([record(i) for i in range(start, start + batch)])


def arrow_batches(batch: int, total: int) -> list[pa.RecordBatch]:
    return [
        pa.RecordBatch.from_pylist([record(i) for i in range(start, start + batch)])
        for start in range(0, total, batch)
    ]


async def put_arrow(backend: Any, batches: list[pa.RecordBatch]) -> None:
    for batch in batches:
        await backend.put_batch(batch)


async def measure(make: Callable[[], Any], run: Callable[[Any], Any], total: int) -> float:
    backend = make()
    start = time.perf_counter()
    await run(backend)
    elapsed = time.perf_counter() - start
    assert backend.total_count() == total, (backend.total_count(), total)
    close = getattr(backend, "close", None)
    if close is not None:
        await close()
    return total / elapsed


async def through_pulsing(
    backend: str, storage_path: str, options: dict[str, Any], total: int
) -> float:
    """Records a second of one producer awaiting writer.put through Pulsing."""
    system = await pul.actor_system()
    try:
        writer = await write_queue(
            system,
            "bench",
            backend=backend,
            num_buckets=1,
            storage_path=storage_path,
            backend_options=options,
        )
        await writer.put(record(-1))  # the bucket's backend is created on first use
        start = time.perf_counter()
        for i in range(total):
            await writer.put(record(i))
        elapsed = time.perf_counter() - start
        await writer.flush()
    finally:
        await system.shutdown()
    return total / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=64_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--original-records", type=int, default=100_000, help="records put into each backend"
    )
    args = parser.parse_args()
    total = args.records
    tmp = tempfile.mkdtemp(prefix="persisting-bench-")
    counter = iter(range(1_000_000))

    def persisting(**options: Any) -> Callable[[], PersistingBackend]:
        # batch_size is large so that flushes do not interleave: this measures the put path.
        return lambda: PersistingBackend(
            bucket_id=0, storage_path=f"{tmp}/b{next(counter)}", batch_size=10_000_000, **options
        )

    def memory() -> MemoryBackend:
        return MemoryBackend(bucket_id=0)

    wal0 = {"enable_wal": True, "wal_sync_interval": 0}
    wal = {"enable_wal": True}
    arrow = arrow_batches(1000, total)
    lists = lambda b: put_batches(b, 1000, total)  # noqa: E731
    # (case, options, our run, MemoryBackend's run): MemoryBackend takes no Arrow
    # data, so the RecordBatch case is set against its put_batch of the same dicts.
    cases: list[tuple[str, dict[str, Any], Callable[[Any], Any], Callable[[Any], Any]]] = [
        (name, options, run, run)
        for name, options, run in [
            ("put, 1 producer, WAL off", {}, lambda b: put_concurrently(b, 1, total)),
            ("put, 8 producers, WAL off", {}, lambda b: put_concurrently(b, 8, total)),
            ("put, 64 producers, WAL off", {}, lambda b: put_concurrently(b, 64, total)),
            ("put, 64 producers, WAL, sync 0", wal0, lambda b: put_concurrently(b, 64, total)),
            ("put, 256 producers, WAL, sync 0", wal0, lambda b: put_concurrently(b, 256, total)),
            (
                "put, 1 producer, WAL, default interval",
                wal,
                lambda b: put_concurrently(b, 1, total),
            ),
            ("put_batch, 1000-record lists", {}, lists),
        ]
    ]
    cases.append(("put_batch, 1000-row RecordBatch", {}, lambda b: put_arrow(b, arrow), lists))

    print(f"{total} records per run, median of {args.repeat} runs\n")
    print("| case | persisting rec/s | MemoryBackend rec/s | ratio |")
    print("|---|---:|---:|---:|")
    for name, options, run, peer in cases:
        ours, theirs = [], []
        for _ in range(args.repeat):  # interleaved so drift hits both alike
            ours.append(await measure(persisting(**options), run, total))
            theirs.append(await measure(memory, peer, total))
        o, t = statistics.median(ours), statistics.median(theirs)
        print(f"| {name} | {o:,.0f} | {t:,.0f} | {o / t:.2f} |")

    via = max(1, total // 16)
    print(f"\nThrough Pulsing: {via} records per run, one producer awaiting writer.put\n")
    print("| case | persisting rec/s | MemoryBackend rec/s | ratio |")
    print("|---|---:|---:|---:|")
    for name, options in [("WAL off", {}), ("WAL, sync 0", wal0), ("WAL, default interval", wal)]:
        ours, theirs = [], []
        for _ in range(args.repeat):
            path = f"{tmp}/q{next(counter)}"
            ours.append(await through_pulsing("persisting", path, options, via))
            theirs.append(await through_pulsing("memory", f"{tmp}/m{next(counter)}", {}, via))
        o, t = statistics.median(ours), statistics.median(theirs)
        print(f"| {name} | {o:,.0f} | {t:,.0f} | {o / t:.2f} |")

    await against_original(tmp, args.original_records, args.repeat)


async def against_original(tmp: str, total: int, repeat: int) -> None:
    """Single puts at batch_size=100, then a flush, against the original backend
    (persisting 0.3.0: no log; each flush rewrites the whole dataset)."""
    print(
        f"\nAgainst the original Python backend: {total} single puts at batch_size=100, "
        "then flush()\n"
    )
    print("| case | persisting rec/s | original rec/s | ratio |")
    print("|---|---:|---:|---:|")
    cases = [
        ("default options (no log, as the original)", {}),
        ("WAL, default interval", {"enable_wal": True}),
        ("WAL, sync 0", {"enable_wal": True, "wal_sync_interval": 0}),
    ]
    results: dict[str, list[float]] = {name: [] for name, _ in cases}
    theirs = []
    for _ in range(repeat):
        theirs.append(original_peer.measure(total, 100))
        for name, options in cases:
            path = tempfile.mkdtemp(dir=tmp)
            backend = PersistingBackend(bucket_id=0, storage_path=path, batch_size=100, **options)
            results[name].append(await original_peer.ingest(backend, total))
    t = statistics.median(theirs)
    for name, _ in cases:
        o = statistics.median(results[name])
        print(f"| {name} | {o:,.0f} | {t:,.0f} | {o / t:.2f} |")


if __name__ == "__main__":
    asyncio.run(main())
