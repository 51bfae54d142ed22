"""Search and scan against pylance on the same Lance 2.0 dataset.

For each size: N x DIM float32 vectors (written once by pylance, 2.0 file
format, fragments of 250,000 rows), then p50 over --repeat runs of

* exact k-NN search, ours (``open_dataset(...).search``) against pylance's
  flat search (``to_table(nearest={..., "use_index": False})``), l2;
* the same with a filter keeping 10% of the rows (prefilter);
* a full scan: ours ``to_arrow()`` against ``lance.dataset(...).to_table()``.

    python bench/bench_search.py                      # 100k and 1M
    python bench/bench_search.py --sizes 100000 --repeat 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

import lance
import numpy as np
import pyarrow as pa

import persisting

DIM = 128
K = 10
FRAGMENT_ROWS = 250_000


def build(path: str, n: int) -> None:
    rng = np.random.default_rng(0)

    def batches():
        for start in range(0, n, 50_000):
            m = min(50_000, n - start)
            vecs = rng.standard_normal((m, DIM), dtype=np.float32)
            ids = np.arange(start, start + m)
            yield pa.record_batch(
                {
                    "id": pa.array(ids, pa.int64()),
                    "tenth": pa.array(ids % 10, pa.int64()),
                    "v": pa.FixedSizeListArray.from_arrays(pa.array(vecs.ravel()), DIM),
                }
            )

    schema = next(batches()).schema
    reader = pa.RecordBatchReader.from_batches(schema, batches())
    lance.write_dataset(reader, path, data_storage_version="2.0", max_rows_per_file=FRAGMENT_ROWS)


def p50(fn, repeat: int) -> float:
    fn()  # warm: page cache, file metadata
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run(n: int, repeat: int, workdir: str) -> list[tuple[str, float, float]]:
    path = os.path.join(workdir, f"vec{n}.lance")
    t = time.perf_counter()
    build(path, n)
    print(f"  built {n:,} x {DIM} in {time.perf_counter() - t:.1f}s", flush=True)
    ours = persisting.open_dataset(path)
    theirs = lance.dataset(path)
    q = np.random.default_rng(1).standard_normal(DIM).astype(np.float32)
    flt = "tenth = 3"

    def pylance_search(f=None):
        return theirs.to_table(
            columns=["id"],
            filter=f,
            nearest={"column": "v", "q": q, "k": K, "metric": "l2", "use_index": False},
            prefilter=True,
            with_row_id=True,
        )

    a = ours.search("v", q, k=K, columns=["id"])
    b = pylance_search()
    assert a["_rowid"].to_pylist() == b["_rowid"].to_pylist(), "results differ"
    rows = []
    rows.append(
        (
            "search k=10",
            p50(lambda: ours.search("v", q, k=K, columns=["id"]), repeat),
            p50(pylance_search, repeat),
        )
    )
    rows.append(
        (
            "search k=10, filter 10%",
            p50(lambda: ours.search("v", q, k=K, columns=["id"], filter=flt), repeat),
            p50(lambda: pylance_search(flt), repeat),
        )
    )
    rows.append(
        (
            "scan (all columns)",
            p50(lambda: ours.to_arrow(), max(1, repeat // 3)),
            p50(lambda: theirs.to_table(), max(1, repeat // 3)),
        )
    )
    shutil.rmtree(path)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="100000,1000000", help="comma-separated row counts")
    ap.add_argument("--repeat", type=int, default=9, help="timed runs per measurement")
    ap.add_argument("--dir", default=None, help="working directory (default: a temp dir)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    workdir = args.dir or tempfile.mkdtemp(prefix="bench_search_")
    print(f"bench_search: dim {DIM}, k {K}, {os.cpu_count()} CPUs, pylance {lance.__version__}")
    print()
    print("| rows | what | ours p50 (ms) | pylance p50 (ms) | ours/pylance |")
    print("|---:|---|---:|---:|---:|")
    try:
        for n in sizes:
            for what, mine, ref in run(n, args.repeat, workdir):
                print(
                    f"| {n:,} | {what} | {mine * 1e3:.1f} | {ref * 1e3:.1f} | {mine / ref:.2f}x |",
                    flush=True,
                )
    finally:
        if args.dir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
