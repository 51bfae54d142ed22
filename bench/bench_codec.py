"""Compression on a realistic record mix (text, numbers, a 64-d vector): for each
codec, WAL bytes per record, dataset bytes, compression ratio and durable put
throughput, side by side with no compression in the same run.

Read the ratio columns: absolute speeds drift on a shared 2-core machine.
Usage: python bench/bench_codec.py [--records N] [--repeat R]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from persisting import PersistingBackend

CODECS = ["none", "zstd", "lz4", "snappy"]
WORDS = "order shipped warehouse customer refund pending delivered invoice payment".split()


def records(n: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        words = rng.choice(WORDS, size=12)
        out.append(
            {
                "id": i,
                "user": f"user-{i % 977}",
                "note": " ".join(words),
                "amount": round(float(rng.normal(100, 20)), 2),
                "qty": int(rng.integers(1, 10)),
                "embedding": rng.normal(size=64).astype(np.float32),
            }
        )
    return out


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


async def one_run(root: str, codec: str, data: list[dict[str, Any]]) -> dict[str, float]:
    path = Path(tempfile.mkdtemp(dir=root))
    b = PersistingBackend(
        bucket_id=0,
        storage_path=str(path),
        batch_size=10**9,
        max_wal_size=10**12,
        enable_wal=True,
        wal_sync_interval=0.1,
        compression=codec,
    )
    await b.ready()

    async def produce(chunk: list[dict[str, Any]]) -> None:
        for r in chunk:
            await b.put(r)

    start = time.perf_counter()
    await asyncio.gather(*(produce(data[p::16]) for p in range(16)))
    elapsed = time.perf_counter() - start
    stats = await b.stats()
    wal = size(path / "wal")
    await b.flush()
    await b.close()
    return {
        "rate": len(data) / elapsed,
        "wal_per_record": wal / len(data),
        "dataset": size(path / "data.lance"),
        "ratio": stats["wal_bytes_uncompressed"] / max(stats["wal_bytes_written"], 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = records(args.records)
    root = tempfile.mkdtemp(prefix="persisting-codec-")
    runs: dict[str, list[dict[str, float]]] = {c: [] for c in CODECS}
    for _ in range(args.repeat):  # interleaved so drift hits every codec alike
        for codec in CODECS:
            runs[codec].append(await one_run(root, codec, data))
    med = {c: {k: statistics.median(r[k] for r in runs[c]) for k in runs[c][0]} for c in CODECS}
    base = med["none"]
    print(
        f"{args.records} records (text, numbers, 64-d float32 vector), 16 producers, "
        f"wal_sync_interval=0.1, median of {args.repeat}\n"
    )
    print(
        "| codec | WAL bytes/record | WAL ratio (raw/stored) | dataset bytes | "
        "dataset vs none | put rec/s | put vs none |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for c in CODECS:
        m = med[c]
        vs_data, vs_rate = m["dataset"] / base["dataset"], m["rate"] / base["rate"]
        print(
            f"| {c} | {m['wal_per_record']:.0f} | {m['ratio']:.2f} | {m['dataset']:,.0f} | "
            f"{vs_data:.2f} | {m['rate']:,.0f} | {vs_rate:.2f} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
