"""put() and put_batch() throughput of PersistingBackend against Pulsing's own
MemoryBackend, measured in the same run on the same records.

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

from pulsing.streaming import MemoryBackend

from persisting import PersistingBackend


def record(i: int) -> dict[str, Any]:
    return {"id": i, "user": f"user-{i % 977}", "amount": i * 0.25, "ok": i % 3 == 0}


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


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=64_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    total = args.records
    tmp = tempfile.mkdtemp(prefix="persisting-bench-")
    counter = iter(range(1_000_000))

    def persisting() -> PersistingBackend:
        # batch_size is large so that flushes do not interleave: this measures the put path.
        return PersistingBackend(
            bucket_id=0, storage_path=f"{tmp}/b{next(counter)}", batch_size=10_000_000
        )

    def memory() -> MemoryBackend:
        return MemoryBackend(bucket_id=0)

    cases: list[tuple[str, Callable[[Any], Any]]] = [
        (f"put, {p} producer{'s' if p > 1 else ''}", lambda b, p=p: put_concurrently(b, p, total))
        for p in (1, 8, 64)
    ]
    cases.append(("put_batch, 1000-record lists", lambda b: put_batches(b, 1000, total)))

    print(f"{total} records per run, median of {args.repeat} runs\n")
    print("| case | persisting rec/s | MemoryBackend rec/s | ratio |")
    print("|---|---:|---:|---:|")
    for name, run in cases:
        ours, theirs = [], []
        for _ in range(args.repeat):  # interleaved so drift hits both alike
            ours.append(await measure(persisting, run, total))
            theirs.append(await measure(memory, run, total))
        o, t = statistics.median(ours), statistics.median(theirs)
        print(f"| {name} | {o:,.0f} | {t:,.0f} | {o / t:.2f} |")


if __name__ == "__main__":
    asyncio.run(main())
