"""The cost of widening an int64 column to float64 on a persisted table: the
first flush after a float arrives rewrites the column (one extra data file per
existing fragment, Lance §11). Reported against an ordinary flush of the same
one row in the same run.

Usage: python bench/bench_widening.py [--rows N] [--fragments F]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from persisting import PersistingBackend


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--fragments", type=int, default=100)
    args = parser.parse_args()
    path = Path(tempfile.mkdtemp(prefix="persisting-widen-")) / "b"
    b = PersistingBackend(bucket_id=0, storage_path=str(path), batch_size=10**9)
    per = args.rows // args.fragments
    for f in range(args.fragments):
        ids = pa.array(range(f * per, (f + 1) * per), pa.int64())
        await b.put_batch(pa.table({"id": ids, "n": ids, "name": pa.array(["x"] * per)}))
        await b.flush()
    data = path / "data.lance"

    async def timed_flush(record: dict) -> tuple[float, int]:
        await b.put(record)
        before = size(data)
        start = time.perf_counter()
        await b.flush()
        return time.perf_counter() - start, size(data) - before

    plain_s, plain_b = await timed_flush({"id": -1, "n": 7, "name": "y"})
    widen_s, widen_b = await timed_flush({"id": -2, "n": 7.5, "name": "y"})
    after_s, after_b = await timed_flush({"id": -3, "n": 8, "name": "y"})
    rows = (await b.stats())["persisted_count"]
    await b.close()
    print(f"{rows:,} persisted rows in {args.fragments} fragments; column n int64 -> float64\n")
    print("| flush of one row | seconds | bytes written | vs ordinary flush |")
    print("|---|---:|---:|---:|")
    print(f"| ordinary (int into int64) | {plain_s:.3f} | {plain_b:,} | 1.0 |")
    print(f"| widening (first float) | {widen_s:.3f} | {widen_b:,} | {widen_s / plain_s:.0f}x |")
    print(
        f"| after widening (int into float64) | {after_s:.3f} | {after_b:,} | "
        f"{after_s / plain_s:.1f}x |"
    )


if __name__ == "__main__":
    asyncio.run(main())
