"""A queue that runs for months, in fast motion: N records at batch_size=100 (one
flush per 100 records) with default options, so compaction and version cleanup
run as they would in production. The peer is pylance appending the same batches
to its own dataset, with ``optimize.compact_files()`` and
``cleanup_old_versions()`` every ``--peer-every`` appends, in the same run.

Reported for both: disk at the end against one pylance write of all the rows;
flush (append) p50/p99 over the first and the last ``--window`` flushes and their
ratio (flat means ~1); ``get(100, random offset)`` p50 early and late (ours) and
``take`` of 100 consecutive rows (pylance).

Machines here are noisy: read the ratios.
Usage: python bench/bench_longqueue.py [--records N] [--window W] [--peer-every K]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import lance
import pyarrow as pa

from persisting import PersistingBackend

BATCH = 100


def rows(start: int) -> list[dict]:
    return [{"id": i, "name": f"user-{i}", "score": i * 0.5} for i in range(start, start + BATCH)]


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def get_p50(b: PersistingBackend, total: int, samples: int = 300) -> float:
    times = []
    for _ in range(samples):
        offset = random.randrange(max(1, total - BATCH))
        start = time.perf_counter()
        await b.get(BATCH, offset)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def ours(root: Path, flushes: int, window: int) -> dict:
    path = root / "ours"
    b = PersistingBackend(bucket_id=0, storage_path=str(path), batch_size=BATCH)
    await b.ready()
    times, early_get = [], 0.0
    for n in range(flushes):
        await b.put_batch(rows(n * BATCH))
        start = time.perf_counter()
        await b.flush()
        times.append(time.perf_counter() - start)
        if n == window:
            early_get = await get_p50(b, (n + 1) * BATCH)
    late_get = await get_p50(b, flushes * BATCH)
    stats = await b.stats()
    await b.close()
    return {
        "times": times,
        "disk": du(path / "data.lance"),
        "get": (early_get, late_get),
        "fragments": stats["fragments"],
        "versions": len(list((path / "data.lance" / "_versions").iterdir())),
    }


def peer(root: Path, flushes: int, window: int, every: int) -> dict:
    uri = str(root / "peer")
    times, early_get = [], 0.0
    ds = None
    for n in range(flushes):
        table = pa.Table.from_pylist(rows(n * BATCH))
        start = time.perf_counter()
        ds = lance.write_dataset(table, uri, mode="append", data_storage_version="2.0")
        if (n + 1) % every == 0:
            ds.optimize.compact_files()
            ds.cleanup_old_versions(older_than=dt.timedelta(seconds=0))
        times.append(time.perf_counter() - start)
        if n == window:
            early_get = take_p50(ds, (n + 1) * BATCH)
    assert ds is not None
    return {
        "times": times,
        "disk": du(Path(uri)),
        "get": (early_get, take_p50(ds, flushes * BATCH)),
        "fragments": len(ds.get_fragments()),
        "versions": len(ds.versions()),
    }


def take_p50(ds: lance.LanceDataset, total: int, samples: int = 300) -> float:
    times = []
    for _ in range(samples):
        offset = random.randrange(max(1, total - BATCH))
        start = time.perf_counter()
        ds.take(list(range(offset, offset + BATCH))).to_pylist()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def one_write(root: Path, records: int) -> int:
    uri = root / "single"
    table = pa.Table.from_pylist([r for n in range(records // BATCH) for r in rows(n * BATCH)])
    lance.write_dataset(table, str(uri), data_storage_version="2.0")
    return du(uri)


def report(name: str, r: dict, single: int, window: int) -> None:
    first, last = r["times"][:window], r["times"][-window:]
    p99_ratio = pct(last, 0.99) / pct(first, 0.99)
    print(
        f"| {name} | {r['disk'] / 1e6:.2f} | {r['disk'] / single:.2f} | {r['fragments']} | "
        f"{r['versions']} | {pct(first, 0.5) * 1e3:.2f} | {pct(last, 0.5) * 1e3:.2f} | "
        f"{pct(first, 0.99) * 1e3:.2f} | {pct(last, 0.99) * 1e3:.2f} | {p99_ratio:.2f} | "
        f"{r['get'][0] * 1e3:.2f} | {r['get'][1] * 1e3:.2f} | {r['get'][1] / r['get'][0]:.2f} |"
    )


async def main(args: argparse.Namespace) -> None:
    flushes = args.records // BATCH
    window = min(args.window, flushes // 2)
    root = Path(tempfile.mkdtemp(prefix="longqueue-", dir=args.dir))
    try:
        single = one_write(root, args.records)
        mine = await ours(root, flushes, window)
        theirs = peer(root, flushes, window, args.peer_every)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"### {args.records:,} records, {flushes:,} flushes of {BATCH}; one pylance write of "
        f"the same rows: {single / 1e6:.2f} MB; peer compacts+cleans every {args.peer_every}\n"
    )
    print(
        "| writer | disk MB | disk / one write | fragments | versions | flush p50 first ms | "
        "flush p50 last ms | flush p99 first ms | flush p99 last ms | p99 last/first | "
        "get p50 early ms | get p50 late ms | late/early |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    report("persisting (defaults)", mine, single, window)
    report("pylance append + compact/cleanup", theirs, single, window)
    print(
        "\nOur flush times include the fsyncs of data file, manifest and directory; a "
        "compaction runs after a flush and delays the next one. get is ours through "
        "the backend (a list of dicts); the peer is take() + to_pylist().\n"
    )


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--window", type=int, default=1_000, help="flushes in first/last window")
    parser.add_argument("--peer-every", type=int, default=64, help="peer maintenance interval")
    parser.add_argument("--dir", default=os.environ.get("TMPDIR"))
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))
