"""``cat`` and ``export``: the committed rows, as JSON lines on stdout or
to a Parquet or JSON-lines file.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

from .exits import EXIT_OK, EXIT_USAGE, CLIError
from .native import open_reader
from .output import Progress, dumps, human
from .paths import Bucket, bucket_at, normalize, resolve, select_buckets, storage_options


def _rows(ds: Any, skip: int, limit: int | None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(offset, row) for rows from offset ``skip``, at most ``limit``."""
    if limit is not None and limit <= 0:
        return
    seen = 0
    sent = 0
    for batch in ds.scan():
        n = batch.num_rows
        if seen + n <= skip:
            seen += n
            continue
        start = max(0, skip - seen)
        part = batch.slice(start)
        for i, row in enumerate(part.to_pylist()):
            yield seen + start + i, row
            sent += 1
            if limit is not None and sent >= limit:
                return
        seen += n


def cmd_cat(args: argparse.Namespace) -> int:
    options = storage_options(args)
    buckets = [b for b in select_buckets(resolve(args.path, options), args.bucket)]
    multi = len(buckets) > 1
    printed: dict[int, int] = {}  # bucket -> next offset to print
    remaining = [args.limit]

    def emit(b: Bucket, ds: Any) -> bool:
        """Print what is new in one bucket; False once --limit is reached."""
        start = printed.get(b.bucket, args.start)
        for offset, row in _rows(ds, start, remaining[0]):
            line = {"_offset": offset}
            if multi:
                line["_bucket"] = b.bucket
            line.update(row)
            sys.stdout.write(dumps(line) + "\n")
            printed[b.bucket] = offset + 1
            if remaining[0] is not None:
                remaining[0] -= 1
                if remaining[0] <= 0:
                    sys.stdout.flush()
                    return False
        sys.stdout.flush()
        return True

    opened: dict[int, Any] = {}
    try:
        for b in buckets:
            if b.dataset:
                opened[b.bucket] = open_reader(b.dataset, options)
                if not emit(b, opened[b.bucket]):
                    return EXIT_OK
        while args.follow:
            time.sleep(args.interval)
            if args.bucket is None and multi:
                buckets = _merge_new(buckets, resolve(args.path, options))
            for b in buckets:
                if b.bucket not in opened:
                    fresh = bucket_at(b.dir, options) if b.is_bucket else b
                    if not fresh.dataset:
                        continue
                    b.dataset = fresh.dataset
                    opened[b.bucket] = open_reader(b.dataset, options)
                else:
                    opened[b.bucket].refresh()
                ds = opened[b.bucket]
                if ds.count() > printed.get(b.bucket, args.start) and not emit(b, ds):
                    return EXIT_OK
    finally:
        for ds in opened.values():
            ds.close()
    return EXIT_OK


def _merge_new(old: list[Bucket], new: list[Bucket]) -> list[Bucket]:
    have = {b.bucket for b in old}
    return old + [b for b in new if b.bucket not in have]


def _format_of(path: str, given: str | None) -> str:
    if given:
        return given
    lower = path.lower()
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    raise CLIError(
        EXIT_USAGE,
        f"persisting export: cannot tell the format of {path}: "
        "name it .parquet or .jsonl, or pass --format",
    )


def cmd_export(args: argparse.Namespace) -> int:
    import pyarrow as pa

    options = storage_options(args)
    buckets = select_buckets(resolve(args.path, options), args.bucket)
    fmt = _format_of(args.to, args.format)
    target = os.path.abspath(args.to)
    if os.path.exists(target) and not args.force:
        raise CLIError(EXIT_USAGE, f"persisting export: {args.to} exists (pass --force to replace)")
    datasets = [b for b in buckets if b.dataset]
    tmp = f"{target}.tmp-{os.getpid()}"
    rows = 0
    try:
        multi = len(buckets) > 1
        source = (
            normalize(args.path)
            if multi and args.bucket is None
            else (datasets[0].dataset if datasets else None)
        )
        if source is None:
            schema = pa.schema([])
            batches: Iterator[Any] = iter(())
            total = 0
            ds = None
        else:
            ds = open_reader(source, options)
            total = ds.count()
            reader = ds.scan(with_row_id=multi and args.bucket is None)
            schema = reader.schema
            if "_rowid" in schema.names:
                schema = schema.remove(schema.get_field_index("_rowid"))
            batches = iter(reader)
        with Progress(not args.json and not args.no_progress) as progress:
            advance = progress.task(f"export {fmt}", total or None)
            if fmt == "parquet":
                import pyarrow.parquet as pq

                with pq.ParquetWriter(tmp, schema, compression=args.compression) as w:
                    for batch in batches:
                        if "_rowid" in batch.schema.names:
                            batch = batch.drop_columns(["_rowid"])
                        w.write_batch(batch)
                        rows += batch.num_rows
                        advance(batch.num_rows)
            else:
                with open(tmp, "w", encoding="utf-8") as f:
                    for batch in batches:
                        if "_rowid" in batch.schema.names:
                            batch = batch.drop_columns(["_rowid"])
                        for row in batch.to_pylist():
                            f.write(dumps(row) + "\n")
                        rows += batch.num_rows
                        advance(batch.num_rows)
        if ds is not None:
            ds.close()
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    report = {
        "path": normalize(args.path),
        "to": args.to,
        "format": fmt,
        "rows": rows,
        "bytes": os.path.getsize(target),
    }
    if args.json:
        print(dumps(report))
    else:
        print(f"exported {rows} rows to {args.to} ({fmt}, {human(report['bytes'])})")
    return EXIT_OK
