"""Our Go Lance writer and reader against pylance, measured in the same run on the
same Arrow data.

Three tables:

1. Flush throughput. The same rows are put into a PersistingBackend whose batch
   size never triggers a flush (not timed), then ``await flush()`` is timed; the
   peer is ``lance.write_dataset(table, uri, mode="append",
   data_storage_version="2.0")`` on the same Arrow table. Our flush fsyncs the
   data file, the manifest and their directories before it returns; pylance does
   not fsync at all, so a second peer, "pylance+fsync", fsyncs the files and
   directories pylance wrote, inside its timing. MB/s counts the Arrow in-memory
   bytes of the table (the same figure for both sides, so the ratio of MB/s is
   the ratio of rows/s). Median of interleaved runs; ratio > 1 means we are
   faster.
2. ``get(limit, offset)`` latency on a dataset of fragments x fragment-rows rows
   written by as many flushes (so a random offset must first find its fragment),
   against pylance ``take`` of the same consecutive rows and
   ``to_table(offset=, limit=)`` on the very same dataset. ``get`` returns a list
   of dicts and goes through an executor thread; "take + to_pylist" is the peer
   that returns the same objects. Ratio < 1 means we are faster.
3. Size on disk (apparent bytes, ``du -b``) of the datasets written in (1): both
   hold the same rows in the same number of fragments and versions. Our
   ``compression="zstd"`` is compared with pylance's zstd (field metadata
   ``lance-encoding:compression=zstd``) and with our uncompressed files. Flushes
   compress string data only, as pylance does; compaction (not run here)
   compresses every buffer.

Machines here are noisy: read the ratio columns, not the absolute figures.
Usage: python bench/bench_lance.py [--narrow-rows N] [--wide-rows N] [--repeat R]
       [--fragments F] [--fragment-rows N] [--samples S] [--dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lance
import pyarrow as pa

from persisting import PersistingBackend

NEVER = 1 << 40  # a batch size (and WAL bound) no benchmark reaches
PUT_CHUNK = 10_000  # rows per put_batch while loading the buffer (not timed)
ZSTD_FIELD = {"lance-encoding:compression": "zstd"}

Record = dict[str, Any]


# -- data -------------------------------------------------------------------


def narrow_records(start: int, count: int, rng: random.Random) -> list[Record]:
    """id is the row's offset in the bucket, so reads can be checked."""
    return [
        {"id": i, "ts": 1_700_000_000_000_000 + i * 37, "name": f"user-{rng.randrange(100_000)}"}
        for i in range(start, start + count)
    ]


def wide_records(start: int, count: int, rng: random.Random) -> list[Record]:
    """40 columns: 14 int64, 13 float64, 13 strings."""
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    out = []
    for i in range(start, start + count):
        row: Record = {"id": i}
        for c in range(1, 14):
            row[f"i{c:02d}"] = rng.randrange(1 << 40)
        for c in range(13):
            row[f"f{c:02d}"] = rng.random() * 1000
        for c in range(13):
            row[f"s{c:02d}"] = f"{rng.choice(words)}-{rng.randrange(1_000_000):06d}"
        out.append(row)
    return out


def with_zstd_fields(table: pa.Table) -> pa.Table:
    """The table with pylance's per-field zstd request on every column."""
    schema = pa.schema([f.with_metadata(ZSTD_FIELD) for f in table.schema])
    return table.cast(schema)


# -- helpers ----------------------------------------------------------------


def du_bytes(path: Path) -> int:
    """Apparent size of a tree, as ``du -sb``."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(root, name)).st_size
    return total


def fsync_tree(path: Path, done: set[str]) -> None:
    """fsync every file under path not in done, then every directory: what our
    flush does for its own files before it returns."""
    for root, dirs, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            if full in done:
                continue
            fd = os.open(full, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            done.add(full)
        for name in [*dirs, "."]:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def open_backend(path: Path, **options: Any) -> PersistingBackend:
    return PersistingBackend(bucket_id=0, storage_path=str(path), batch_size=NEVER, **options)


async def put_all(backend: PersistingBackend, records: list[Record]) -> None:
    for start in range(0, len(records), PUT_CHUNK):
        await backend.put_batch(records[start : start + PUT_CHUNK])


# -- 1. flush throughput ----------------------------------------------------


@dataclass
class FlushResult:
    label: str
    rows: int
    arrow_bytes: int
    ours: list[float] = field(default_factory=list)
    pylance: list[float] = field(default_factory=list)
    pylance_fsync: list[float] = field(default_factory=list)
    ours_path: Path = Path()
    pylance_path: Path = Path()


async def flush_case(
    label: str, records: list[Record], zstd: bool, repeat: int, root: Path
) -> FlushResult:
    table = pa.Table.from_pylist(records)
    peer_table = with_zstd_fields(table) if zstd else table
    tag = label.replace(" ", "-").replace(",", "")
    ours_dir, py_uri, pys_uri = root / f"{tag}-ours", root / f"{tag}.lance", root / f"{tag}-s.lance"
    res = FlushResult(label, table.num_rows, table.nbytes)
    res.ours_path, res.pylance_path = ours_dir / "data.lance", py_uri

    backend = open_backend(ours_dir, compression="zstd" if zstd else None)
    await backend.ready()
    # Warm-up, not timed: both sides then append to an existing dataset.
    await put_all(backend, records)
    await backend.flush()
    got = lance.dataset(str(res.ours_path)).schema
    if not got.equals(table.schema):
        raise SystemExit(f"schema differs from pylance's table:\n{got}\nvs\n{table.schema}")
    lance.write_dataset(peer_table, str(py_uri), mode="create", data_storage_version="2.0")
    lance.write_dataset(peer_table, str(pys_uri), mode="create", data_storage_version="2.0")
    synced: set[str] = set()
    fsync_tree(pys_uri, synced)

    async def ours() -> None:
        await put_all(backend, records)  # not timed
        start = time.perf_counter()
        await backend.flush()
        res.ours.append(time.perf_counter() - start)

    async def plain() -> None:
        start = time.perf_counter()
        lance.write_dataset(peer_table, str(py_uri), mode="append", data_storage_version="2.0")
        res.pylance.append(time.perf_counter() - start)

    async def synced_write() -> None:
        start = time.perf_counter()
        lance.write_dataset(peer_table, str(pys_uri), mode="append", data_storage_version="2.0")
        fsync_tree(pys_uri, synced)
        res.pylance_fsync.append(time.perf_counter() - start)

    runs: list[Callable[[], Any]] = [ours, plain, synced_write]
    for rep in range(repeat):  # interleaved, order rotated, so drift hits all alike
        for run in runs[rep % 3 :] + runs[: rep % 3]:
            await run()
    stats = await backend.stats()
    assert stats["persisted_count"] == (repeat + 1) * table.num_rows, stats
    await backend.close()
    return res


def print_flush(results: list[FlushResult], repeat: int) -> None:
    print(f"### Flush throughput (median of {repeat} interleaved runs)\n")
    print(
        "| schema | rows/flush | Arrow MB | ours MB/s | ours rows/s | pylance MB/s | "
        "pylance rows/s | ours / pylance | pylance+fsync rows/s | ours / pylance+fsync |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        o, p, s = (statistics.median(x) for x in (r.ours, r.pylance, r.pylance_fsync))
        mb = r.arrow_bytes / 1e6
        print(
            f"| {r.label} | {r.rows:,} | {mb:.1f} | {mb / o:,.0f} | {r.rows / o:,.0f} | "
            f"{mb / p:,.0f} | {r.rows / p:,.0f} | {p / o:.2f} | {r.rows / s:,.0f} | {s / o:.2f} |"
        )
    print()


def print_sizes(results: list[FlushResult], repeat: int) -> None:
    by = {r.label: r for r in results}
    print(
        f"### Size on disk (du -b of the datasets above: {repeat + 1} flushes of the same rows "
        "each)\n"
    )
    print(
        "| schema | rows | pylance | ours | ours / pylance | pylance zstd | ours zstd | "
        "ours zstd / pylance zstd | ours zstd / ours |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for schema in ("narrow", "wide"):
        plain, zstd = by[schema], by[f"{schema}, zstd"]
        po, pp = du_bytes(plain.ours_path), du_bytes(plain.pylance_path)
        zo, zp = du_bytes(zstd.ours_path), du_bytes(zstd.pylance_path)
        rows = (repeat + 1) * plain.rows
        print(
            f"| {schema} | {rows:,} | {pp / 1e6:.2f} MB | {po / 1e6:.2f} MB | {po / pp:.3f} | "
            f"{zp / 1e6:.2f} MB | {zo / 1e6:.2f} MB | {zo / zp:.3f} | {zo / po:.3f} |"
        )
    print()


# -- 2. get latency ---------------------------------------------------------


async def build_dataset(path: Path, fragments: int, per: int, rng: random.Random) -> float:
    backend = open_backend(path)
    await backend.ready()
    start = time.perf_counter()
    for f in range(fragments):
        await backend.put_batch(narrow_records(f * per, per, rng))
        await backend.flush()
    elapsed = time.perf_counter() - start
    await backend.close()
    return elapsed


def check_ids(rows: list[Record], offset: int, limit: int, who: str) -> None:
    ids = [r["id"] for r in rows]
    if ids != list(range(offset, offset + limit)):
        raise SystemExit(f"{who}: offset {offset} returned ids {ids[:3]}..{ids[-3:]}")


async def get_latency(args: argparse.Namespace, root: Path) -> None:
    rng = random.Random(7)
    path = root / "get-ours"
    total = args.fragments * args.fragment_rows
    built = await build_dataset(path, args.fragments, args.fragment_rows, rng)
    backend = open_backend(path)
    await backend.ready()
    stats = await backend.stats()
    assert stats["persisted_count"] == total, stats
    ds = lance.dataset(str(path / "data.lance"))
    fragments = len(ds.get_fragments())
    limit = args.limit

    async def ours(offset: int) -> float:
        start = time.perf_counter()
        rows = await backend.get(limit=limit, offset=offset)
        elapsed = time.perf_counter() - start
        check_ids(rows, offset, limit, "persisting get")
        return elapsed

    async def take(offset: int) -> tuple[float, float]:
        start = time.perf_counter()
        table = ds.take(list(range(offset, offset + limit)))
        took = time.perf_counter() - start
        rows = table.to_pylist()
        elapsed = time.perf_counter() - start
        check_ids(rows, offset, limit, "pylance take")
        return took, elapsed

    async def scan(offset: int) -> float:
        start = time.perf_counter()
        table = ds.to_table(offset=offset, limit=limit)
        elapsed = time.perf_counter() - start
        check_ids(table.to_pylist(), offset, limit, "pylance to_table")
        return elapsed

    for _ in range(20):  # warm-up
        o = rng.randrange(total - limit + 1)
        await ours(o)
        await take(o)
        await scan(o)
    t_ours: list[float] = []
    t_take: list[float] = []
    t_take_py: list[float] = []
    t_scan: list[float] = []
    for i in range(args.samples):
        o = rng.randrange(total - limit + 1)
        for j in range(3):  # order rotated per sample
            k = (i + j) % 3
            if k == 0:
                t_ours.append(await ours(o))
            elif k == 1:
                a, b = await take(o)
                t_take.append(a)
                t_take_py.append(b)
            else:
                t_scan.append(await scan(o))
    await backend.close()

    print(
        f"### get(limit={limit}, offset=random): {total:,} rows in {fragments} fragments "
        f"(built by {args.fragments} flushes in {built:.1f} s), {args.samples} random offsets\n"
    )
    print("| read | p50 ms | p99 ms | mean ms | persisting / this, p50 | persisting / this, p99 |")
    print("|---|---:|---:|---:|---:|---:|")
    o50, o99 = pct(t_ours, 0.5), pct(t_ours, 0.99)
    for name, ts in (
        ("persisting get()", t_ours),
        ("pylance take()", t_take),
        ("pylance take() + to_pylist()", t_take_py),
        ("pylance to_table(offset, limit)", t_scan),
    ):
        p50, p99 = pct(ts, 0.5), pct(ts, 0.99)
        print(
            f"| {name} | {p50 * 1e3:.3f} | {p99 * 1e3:.3f} | {statistics.fmean(ts) * 1e3:.3f} | "
            f"{o50 / p50:.2f} | {o99 / p99:.2f} |"
        )
    print()


# -- main -------------------------------------------------------------------


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--narrow-rows", type=int, default=100_000, help="rows per flush")
    parser.add_argument("--wide-rows", type=int, default=20_000, help="rows per flush")
    parser.add_argument("--repeat", type=int, default=9, help="timed flushes per case")
    parser.add_argument("--fragments", type=int, default=400, help="flushes building the get set")
    parser.add_argument("--fragment-rows", type=int, default=2_500)
    parser.add_argument("--samples", type=int, default=2_000, help="random offsets read")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--dir", default=None, help="parent of the scratch directory")
    parser.add_argument("--keep", action="store_true", help="keep the datasets")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="persisting-bench-lance-", dir=args.dir))
    try:
        rng = random.Random(1)
        narrow = narrow_records(0, args.narrow_rows, rng)
        wide = wide_records(0, args.wide_rows, rng)
        results = [
            await flush_case("narrow", narrow, False, args.repeat, root),
            await flush_case("narrow, zstd", narrow, True, args.repeat, root),
            await flush_case("wide", wide, False, args.repeat, root),
            await flush_case("wide, zstd", wide, True, args.repeat, root),
        ]
        print(f"pylance {lance.__version__}, pyarrow {pa.__version__}; scratch {root}\n")
        print_flush(results, args.repeat)
        print_sizes(results, args.repeat)
        await get_latency(args, root)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
