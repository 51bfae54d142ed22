"""Buckets on an S3-compatible object store: flush cost against pylance writing the
same batches to the same server, durable puts with the log on the store, and the open
time of a bucket that moved (its log replayed by a new owner).

The server is $PERSISTING_S3_SERVER (``make s3-server`` installs moto's server mode):
an in-memory server on loopback, so the numbers count requests and our own work, not
a real network's latency; on S3 add one round trip per request counted here.

    python bench/bench_objstore.py [--flushes 20] [--rows 1000] [--puts 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

import lance
import pyarrow as pa

from persisting import PersistingBackend


def start_server() -> tuple[subprocess.Popen, str]:
    binary = os.environ.get("PERSISTING_S3_SERVER")
    if not binary:
        sys.exit("set PERSISTING_S3_SERVER (make s3-server installs moto's server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    req = urllib.request.Request(f"{endpoint}/bench", method="PUT")
    urllib.request.urlopen(req, timeout=10).close()
    return proc, endpoint


def rows(start: int, n: int) -> list[dict]:
    return [{"id": i, "name": f"record-{i}", "score": i * 0.5} for i in range(start, start + n)]


async def bench(args: argparse.Namespace, endpoint: str) -> None:
    so = {
        "aws_endpoint": endpoint,
        "aws_region": "us-east-1",
        "aws_access_key_id": "bench",
        "aws_secret_access_key": "bench",
        "allow_http": "true",
    }

    def make(path: str, **options) -> PersistingBackend:
        return PersistingBackend(
            bucket_id=0, storage_path=path, storage_options=so, batch_size=10**9, **options
        )

    # 1. Flushes: one fragment and one version each, ours vs pylance's append.
    b = make("s3://bench/flush/bucket_0", compact_every=0)
    await b.ready()
    ours = []
    for f in range(args.flushes):
        await b.put_batch(rows(f * args.rows, args.rows))
        t = time.perf_counter()
        await b.flush()
        ours.append(time.perf_counter() - t)
    await b.close()
    theirs = []
    uri = "s3://bench/pylance/data.lance"
    for f in range(args.flushes):
        table = pa.Table.from_pylist(rows(f * args.rows, args.rows))
        t = time.perf_counter()
        lance.write_dataset(table, uri, mode="append" if f else "create", storage_options=so)
        theirs.append(time.perf_counter() - t)
    print(
        f"flush of {args.rows} rows: persisting median {statistics.median(ours) * 1e3:.1f} ms, "
        f"pylance write_dataset(append) median {statistics.median(theirs) * 1e3:.1f} ms"
    )

    # 2. Durable puts with the log on the object store.
    b = make("s3://bench/wal/bucket_0", enable_wal=True)
    await b.ready()
    lat = []
    for i in range(args.puts):
        t = time.perf_counter()
        await b.put({"id": i, "name": f"record-{i}", "score": 0.5})
        lat.append(time.perf_counter() - t)
    t = time.perf_counter()
    await asyncio.gather(
        *(b.put({"id": i, "name": "c", "score": 0.5}) for i in range(args.puts, 11 * args.puts))
    )
    conc = time.perf_counter() - t
    print(
        f"durable put, log on the store: sequential median {statistics.median(lat) * 1e3:.2f} ms "
        f"(p99 {sorted(lat)[int(len(lat) * 0.99) - 1] * 1e3:.2f} ms); "
        f"{10 * args.puts} concurrent puts: {10 * args.puts / conc:,.0f} puts/s"
    )
    # 3. The bucket moves: a new owner takes it (fences this one) and replays the log.
    t = time.perf_counter()
    moved = make("s3://bench/wal/bucket_0", enable_wal=True)
    await moved.ready()
    opened = time.perf_counter() - t
    n = moved.total_count()
    groups = (await moved.stats())["wal_segments"]
    print(
        f"open of a moved bucket ({n} rows in {groups} log groups, none flushed): "
        f"{opened * 1e3:.0f} ms"
    )
    await moved.close()
    try:
        await b.close()
    except Exception:  # fenced: the new owner has the rows
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flushes", type=int, default=20)
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--puts", type=int, default=200)
    args = ap.parse_args()
    proc, endpoint = start_server()
    try:
        asyncio.run(bench(args, endpoint))
    finally:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    main()
