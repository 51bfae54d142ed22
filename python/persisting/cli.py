"""``persisting``: look at, check and maintain persisting data from a shell.

Commands (``persisting COMMAND --help`` for each)::

    persisting inspect  PATH                 schema, rows, versions, fragments, WAL, sizes
    persisting verify   PATH                 read every page and WAL frame; exit 1 on damage
    persisting cat      PATH [--from N] [--limit N] [--follow] [--bucket B]
    persisting versions PATH
    persisting export   PATH --to out.parquet | out.jsonl
    persisting compact  PATH                 (takes the bucket's lock, like a writer)
    persisting cleanup  PATH                 (takes the bucket's lock, like a writer)

PATH is a bucket directory (``{storage_path}/bucket_3``), a queue's
``storage_path`` (every ``bucket_*`` under it) or a bucket's ``data.lance``.
Everything but ``compact`` and ``cleanup`` is read-only and never takes the
writer's ``LOCK``: it runs beside a live writer, in any process.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import ctypes
import datetime as _dt
import decimal
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn

EXIT_OK = 0
EXIT_DAMAGE = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_LOCKED = 4
EXIT_ERROR = 5
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = """\
exit codes:
  0    success (verify: no damage found)
  1    verify found damage (corrupt pages or frames, a torn WAL tail, a missing file)
  2    usage error (bad arguments, an output file that exists without --force)
  3    not found: PATH holds no persisting data (no data.lance, wal/ or bucket_*)
  4    locked: compact/cleanup found a bucket held by a live writer (its pid is named)
  5    any other error (damage met while reading in cat/export/inspect, I/O errors)
  130  interrupted (Ctrl-C)
"""


class CLIError(Exception):
    """An error with its exit code; the message is printed, no traceback."""

    def __init__(self, code: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.extra = extra


# -- paths ------------------------------------------------------------------


class Bucket:
    """One bucket (or a bare Lance dataset: id -1) found under PATH."""

    def __init__(self, bucket: int, directory: str, dataset: str | None, wal: str | None) -> None:
        self.bucket = bucket
        self.dir = directory
        self.dataset = dataset
        self.wal = wal

    @property
    def is_bucket(self) -> bool:
        return self.dataset is None or os.path.basename(self.dataset) == "data.lance"


def _bucket_id(path: str) -> int:
    name = os.path.basename(os.path.normpath(path))
    if name.startswith("bucket_") and name[7:].isdigit():
        return int(name[7:])
    return -1


def _is_dataset(path: str) -> bool:
    return os.path.isdir(os.path.join(path, "_versions"))


def _one(directory: str) -> Bucket:
    ds = os.path.join(directory, "data.lance")
    wal = os.path.join(directory, "wal")
    return Bucket(
        _bucket_id(directory),
        directory,
        ds if _is_dataset(ds) else None,
        wal if os.path.isdir(wal) else None,
    )


def resolve(path: str) -> list[Bucket]:
    """The buckets under ``path`` (see the module doc); CLIError(3) when none."""
    path = os.path.normpath(path)
    if not os.path.exists(path):
        raise CLIError(EXIT_NOT_FOUND, f"persisting: {path}: no such file or directory")
    if not os.path.isdir(path):
        raise CLIError(EXIT_NOT_FOUND, f"persisting: {path} is not a directory")
    if _is_dataset(path):
        if os.path.basename(path) == "data.lance":
            return [_one(os.path.dirname(path))]
        return [Bucket(-1, path, path, None)]
    markers = ("data.lance", "wal", "LOCK")
    if _bucket_id(path) >= 0 or any(os.path.exists(os.path.join(path, m)) for m in markers):
        return [_one(path)]
    found = [
        _one(os.path.join(path, name))
        for name in os.listdir(path)
        if _bucket_id(name) >= 0 and os.path.isdir(os.path.join(path, name))
    ]
    if not found:
        raise CLIError(
            EXIT_NOT_FOUND,
            f"persisting: {path} is not a persisting path: no data.lance, wal/ or bucket_* there",
        )
    return sorted(found, key=lambda b: b.bucket)


def _select(buckets: list[Bucket], wanted: int | None) -> list[Bucket]:
    if wanted is None:
        return buckets
    chosen = [b for b in buckets if b.bucket == wanted]
    if not chosen:
        have = ", ".join(str(b.bucket) for b in buckets)
        raise CLIError(EXIT_NOT_FOUND, f"persisting: no bucket {wanted} here (buckets: {have})")
    return chosen


def _tree_bytes(path: str | None) -> tuple[int, int]:
    """(files, bytes) under path."""
    if not path or not os.path.isdir(path):
        return 0, 0
    files = size = 0
    for root, _dirs, names in os.walk(path):
        for n in names:
            with contextlib.suppress(OSError):
                size += os.stat(os.path.join(root, n)).st_size
                files += 1
    return files, size


def lock_holder(directory: str) -> dict[str, Any]:
    """Whether a live writer holds ``{directory}/LOCK``, found in /proc/locks
    (the flock is never taken or tested here) and the pid the file names."""
    path = os.path.join(directory, "LOCK")
    out: dict[str, Any] = {"held": False, "pid": None}
    try:
        st = os.stat(path)
    except OSError:
        return out
    with contextlib.suppress(OSError, ValueError), open(path, "rb") as f:
        out["pid"] = int(f.read(32).strip() or b"0") or None
    try:
        with open("/proc/locks") as f:
            lines = f.read().splitlines()
    except OSError:
        out["held"] = None  # unknown
        return out
    want = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in lines:
        parts = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == want:
            out["held"] = True
            with contextlib.suppress(ValueError):
                out["pid"] = int(parts[4])
            break
    return out


# -- output -----------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$base64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, decimal.Decimal):
        return str(value)
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)


def _clean(value: Any) -> Any:
    """NaN and infinities as strings: JSON has no literal for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def dumps(value: Any) -> str:
    return json.dumps(_clean(value), default=_json_default, ensure_ascii=False, allow_nan=False)


def _human(n: int | float | None) -> str:
    if n is None:
        return "-"
    x = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(x) < 1024 or unit == "TiB":
            return f"{int(x)} B" if unit == "B" else f"{x:.1f} {unit}"
        x /= 1024
    return f"{n} B"  # pragma: no cover


class Progress:
    """A rich progress bar on stderr, shown only when stderr is a terminal and
    output is not ``--json`` (or never, with ``--no-progress``)."""

    def __init__(self, enabled: bool) -> None:
        self._bar: Any = None
        if not enabled or not sys.stderr.isatty():
            return
        try:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress
        except ImportError:  # pragma: no cover - rich is a dependency
            return
        self._bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._rows = False

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def task(self, description: str, total: float | None) -> Callable[[float], None]:
        if self._bar is None:
            return lambda _n: None
        tid = self._bar.add_task(description, total=total)
        return lambda n: self._bar.advance(tid, n)


# -- native calls -----------------------------------------------------------


def _call_json(fn_name: str, arg: str) -> Any:
    from . import _lib

    out = ctypes.c_char_p()
    err = ctypes.c_char_p()
    fn = getattr(_lib.lib(), fn_name)
    _lib.check(fn(arg.encode(), ctypes.byref(out), ctypes.byref(err)), err)
    return json.loads(_lib.take(out))


def _open(path: str) -> Any:
    from .dataset import open_dataset

    return open_dataset(path)


# -- inspect ----------------------------------------------------------------


def _inspect_bucket(b: Bucket) -> dict[str, Any]:
    info: dict[str, Any] = {"bucket": b.bucket, "dir": b.dir}
    if b.is_bucket:
        info["writer"] = lock_holder(b.dir)
    ds_info: dict[str, Any] | None = None
    if b.dataset:
        files, size = _tree_bytes(b.dataset)
        data_files, data_bytes = _tree_bytes(os.path.join(b.dataset, "data"))
        with _open(b.dataset) as ds:
            parts = ds.buckets
            versions = ds.versions()
            schema = ds.schema
            part = parts[0] if parts else {}
            ds_info = {
                "path": b.dataset,
                "version": part.get("version"),
                "rows": part.get("rows", 0),
                "fragments": part.get("fragments", 0),
                "indexed": part.get("indexed", False),
                "versions": len(versions),
                "oldest_version": versions[0]["version"] if versions else None,
                "first_commit": versions[0]["timestamp"] if versions else None,
                "last_commit": versions[-1]["timestamp"] if versions else None,
                "schema": [{"name": f.name, "type": str(f.type)} for f in schema],
                "files": files,
                "bytes": size,
                "data_files": data_files,
                "data_bytes": data_bytes,
            }
    info["dataset"] = ds_info
    wal_info: dict[str, Any] | None = None
    if b.wal:
        res = _call_json(
            "persisting_verify_item",
            json.dumps({"kind": "wal", "bucket": b.bucket, "path": b.wal, "size": 0}),
        )
        rep = res.get("wal") or {"segments": [], "damaged": [], "temporary": []}
        segs = [s for s in rep["segments"] if not s.get("gone")]
        wal_info = {
            "path": b.wal,
            "segments": [
                {
                    "file": os.path.basename(s["file"]),
                    "bytes": s["size"],
                    "frames": s["frames"],
                    "rows": s["rows"],
                    "first_offset": s["first_row"] if s["frames"] else None,
                    "end_offset": s["end_row"] if s["frames"] else None,
                }
                for s in segs
            ],
            "bytes": sum(s["size"] for s in segs),
            "frames": sum(s["frames"] for s in segs),
            "rows": sum(s["rows"] for s in segs),
            "damaged_files": rep.get("damaged", []),
            "problems": len(res.get("problems", [])),
        }
    info["wal"] = wal_info
    info["bytes"] = _tree_bytes(b.dir)[1]
    return info


def cmd_inspect(args: argparse.Namespace) -> int:
    buckets = _select(resolve(args.path), args.bucket)
    report = {"path": os.path.normpath(args.path), "buckets": []}
    with Progress(not args.json and not args.no_progress) as progress:
        advance = progress.task("inspect", len(buckets))
        for b in buckets:
            report["buckets"].append(_inspect_bucket(b))
            advance(1)
    report["rows"] = sum((x["dataset"] or {}).get("rows", 0) for x in report["buckets"])
    report["bytes"] = sum(x["bytes"] for x in report["buckets"])
    if args.json:
        print(dumps(report))
        return EXIT_OK
    print(
        f"{report['path']}: {len(buckets)} bucket(s), {report['rows']} rows, "
        f"{_human(report['bytes'])}"
    )
    for x in report["buckets"]:
        name = f"bucket {x['bucket']}" if x["bucket"] >= 0 else "dataset"
        print(f"\n{name}  {x['dir']}")
        w = x.get("writer")
        if w is not None:
            state = {True: "live writer", False: "no live writer", None: "unknown"}[w["held"]]
            pid = f" (pid {w['pid']})" if w["held"] and w["pid"] else ""
            print(f"  lock:       {state}{pid}")
        d = x["dataset"]
        if d is None:
            print("  dataset:    none yet (nothing flushed)")
        else:
            print(f"  dataset:    {d['path']}")
            print(f"  rows:       {d['rows']}")
            print(
                f"  version:    {d['version']} ({d['versions']} retained, oldest "
                f"{d['oldest_version']}; last commit {d['last_commit']})"
            )
            print(f"  fragments:  {d['fragments']}{' (indexed)' if d['indexed'] else ''}")
            print(
                f"  size:       {_human(d['bytes'])} in {d['files']} files "
                f"({d['data_files']} data files, {_human(d['data_bytes'])})"
            )
            print("  schema:")
            for f in d["schema"]:
                print(f"    {f['name']}: {f['type']}")
        wl = x["wal"]
        if wl is None:
            print("  wal:        none")
        else:
            print(
                f"  wal:        {len(wl['segments'])} segment(s), {_human(wl['bytes'])}, "
                f"{wl['frames']} frames, {wl['rows']} rows"
            )
            for s in wl["segments"]:
                rng = (
                    f"offsets {s['first_offset']}..{s['end_offset']}"
                    if s["frames"]
                    else "no frames"
                )
                print(f"    {s['file']}  {_human(s['bytes'])}  {s['frames']} frames  {rng}")
            if wl["damaged_files"]:
                print(
                    f"    damaged/ holds {len(wl['damaged_files'])} file(s) an earlier "
                    "recovery moved aside"
                )
            if wl["problems"]:
                print(f"    {wl['problems']} problem(s): run `persisting verify`")
    return EXIT_OK


# -- verify -----------------------------------------------------------------


def cmd_verify(args: argparse.Namespace) -> int:
    resolve(args.path)  # exit 3 before any native call
    plan = _call_json("persisting_verify_plan", os.path.normpath(args.path))
    if args.bucket is not None:
        _select(resolve(args.path), args.bucket)
        plan["items"] = [i for i in plan["items"] if i["bucket"] == args.bucket]
        plan["problems"] = [p for p in plan["problems"] if p["bucket"] == args.bucket]
        plan["buckets"] = [b for b in plan["buckets"] if b["bucket"] == args.bucket]
    problems: list[dict[str, Any]] = list(plan["problems"])
    totals = {"data_files": 0, "pages": 0, "wal_segments": 0, "frames": 0, "bytes": 0, "gone": 0}
    total_bytes = sum(max(i["size"], 0) for i in plan["items"])
    with Progress(not args.json and not args.no_progress) as progress:
        advance = progress.task("verify", total_bytes or None)
        for item in plan["items"]:
            res = _call_json("persisting_verify_item", json.dumps(item))
            problems.extend(res["problems"])
            totals["pages"] += res["pages"]
            totals["frames"] += res["frames"]
            totals["bytes"] += res["bytes"]
            totals["gone"] += bool(res.get("gone"))
            if item["kind"] == "data":
                totals["data_files"] += 1
            elif res.get("wal"):
                totals["wal_segments"] += len(res["wal"]["segments"])
            advance(max(item["size"], 0))
    damage = [p for p in problems if p["kind"] != "unsupported"]
    report = {
        "path": os.path.normpath(args.path),
        "ok": not damage,
        "buckets": len(plan["buckets"]),
        "versions": sum(b["versions"] for b in plan["buckets"]),
        **totals,
        "problems": problems,
    }
    if args.json:
        print(dumps(report))
    else:
        print(
            f"{report['path']}: {report['buckets']} bucket(s), {report['versions']} versions, "
            f"{totals['data_files']} data files ({totals['pages']} pages), "
            f"{totals['wal_segments']} WAL segments ({totals['frames']} frames), "
            f"{_human(totals['bytes'])} read"
        )
        for p in problems:
            off = f" at offset {p['offset']}" if p["offset"] >= 0 else ""
            print(f"{p['kind'].upper()} {p['what']}: {p['file']}{off}: {p['reason']}")
        print("ok: no damage found" if not damage else f"DAMAGED: {len(damage)} problem(s)")
    return EXIT_OK if not damage else EXIT_DAMAGE


# -- cat --------------------------------------------------------------------


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
    buckets = [b for b in _select(resolve(args.path), args.bucket)]
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
                opened[b.bucket] = _open(b.dataset)
                if not emit(b, opened[b.bucket]):
                    return EXIT_OK
        while args.follow:
            time.sleep(args.interval)
            if args.bucket is None and multi:
                buckets = _merge_new(buckets, resolve(args.path))
            for b in buckets:
                if b.bucket not in opened:
                    fresh = _one(b.dir) if b.is_bucket else b
                    if not fresh.dataset:
                        continue
                    b.dataset = fresh.dataset
                    opened[b.bucket] = _open(b.dataset)
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


# -- versions ---------------------------------------------------------------


def cmd_versions(args: argparse.Namespace) -> int:
    buckets = _select(resolve(args.path), args.bucket)
    out: list[dict[str, Any]] = []
    for b in buckets:
        if not b.dataset:
            continue
        with _open(b.dataset) as ds:
            for v in ds.versions():
                out.append(
                    {
                        "bucket": b.bucket,
                        "version": v["version"],
                        "timestamp": v["timestamp"],
                        "rows": v["rows"],
                    }
                )
    if args.json:
        print(dumps(out))
        return EXIT_OK
    print(f"{'bucket':>6}  {'version':>7}  {'timestamp (UTC)':<32}  {'rows':>10}")
    for v in out:
        print(
            f"{v['bucket']:>6}  {v['version']:>7}  {v['timestamp'].isoformat():<32}  "
            f"{v['rows']:>10}"
        )
    return EXIT_OK


# -- export -----------------------------------------------------------------


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

    buckets = _select(resolve(args.path), args.bucket)
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
            os.path.normpath(args.path)
            if multi and args.bucket is None
            else (datasets[0].dataset if datasets else None)
        )
        if source is None:
            schema = pa.schema([])
            batches: Iterator[Any] = iter(())
            total = 0
            ds = None
        else:
            ds = _open(source)
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
        "path": os.path.normpath(args.path),
        "to": args.to,
        "format": fmt,
        "rows": rows,
        "bytes": os.path.getsize(target),
    }
    if args.json:
        print(dumps(report))
    else:
        print(f"exported {rows} rows to {args.to} ({fmt}, {_human(report['bytes'])})")
    return EXIT_OK


# -- compact / cleanup -------------------------------------------------------


async def _maintain_bucket(b: Bucket, compact: bool, options: dict[str, Any]) -> dict[str, Any]:
    from ._persisting_backend import PersistingBackend
    from .errors import LockedError

    has_wal = bool(b.wal) and any(n.endswith(".wal") for n in os.listdir(b.wal))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backend = PersistingBackend(
            bucket_id=max(b.bucket, 0),
            storage_path=b.dir,
            enable_wal=has_wal,
            compact_every=0,
            **options,
        )
        try:
            await backend.ready()
            result = await (backend.compact() if compact else backend.cleanup())
        except LockedError as exc:
            raise CLIError(
                EXIT_LOCKED,
                f"persisting: bucket {b.dir} is held by a live writer (pid {exc.pid}); "
                f"{'compact' if compact else 'cleanup'} needs its lock: the writer does it "
                "itself (compact_every, backend.compact()), or run this after it closes",
                pid=exc.pid,
                bucket=b.bucket,
            ) from None
        finally:
            await backend.close()
    result = dict(result)
    notes = [str(w.message) for w in caught if "Unknown option" not in str(w.message)]
    if notes:
        result["warnings"] = notes
    return result


def _maintain(args: argparse.Namespace, compact: bool) -> int:
    buckets = _select(resolve(args.path), args.bucket)
    for b in buckets:
        if not b.is_bucket:
            raise CLIError(
                EXIT_NOT_FOUND,
                f"persisting: {b.dir} is a bare Lance dataset, not a "
                "persisting bucket: compact it with pylance's compact_files()",
            )
    options: dict[str, Any] = {}
    if args.keep_versions is not None:
        options["keep_versions"] = args.keep_versions
    if args.keep_seconds is not None:
        options["keep_versions_seconds"] = args.keep_seconds
    if getattr(args, "compression", None):
        options["compression"] = args.compression
    results: list[dict[str, Any]] = []
    locked: list[CLIError] = []
    for b in buckets:
        if not b.dataset:
            results.append({"bucket": b.bucket, "dir": b.dir, "skipped": "nothing flushed yet"})
            continue
        try:
            res = asyncio.run(_maintain_bucket(b, compact, options))
        except CLIError as exc:
            if exc.code != EXIT_LOCKED:
                raise
            locked.append(exc)
            results.append(
                {
                    "bucket": b.bucket,
                    "dir": b.dir,
                    "locked": True,
                    "pid": exc.extra.get("pid"),
                    "error": str(exc),
                }
            )
            continue
        results.append({"bucket": b.bucket, "dir": b.dir, **res})
    name = "compact" if compact else "cleanup"
    if args.json:
        print(dumps({"command": name, "buckets": results}))
    else:
        for r in results:
            label = f"bucket {r['bucket']}"
            if r.get("locked"):
                print(f"{label}: LOCKED: {r['error']}", file=sys.stderr)
            elif "skipped" in r:
                print(f"{label}: skipped ({r['skipped']})")
            else:
                print(f"{label}: {name} done in {r.get('seconds', 0):.3f} s")
                for section in ("compact", "cleanup"):
                    if isinstance(r.get(section), dict):
                        detail = ", ".join(f"{k}={v}" for k, v in r[section].items())
                        print(f"  {section}: {detail}")
                for w in r.get("warnings", []):
                    print(f"{label}: warning: {w}", file=sys.stderr)
    return EXIT_LOCKED if locked else EXIT_OK


def cmd_compact(args: argparse.Namespace) -> int:
    return _maintain(args, compact=True)


def cmd_cleanup(args: argparse.Namespace) -> int:
    return _maintain(args, compact=False)


# -- parser -----------------------------------------------------------------

PATH_HELP = (
    "a bucket directory ({storage_path}/bucket_<id>), a queue's storage_path "
    "(every bucket_* under it) or a bucket's data.lance"
)


def _nonneg(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {n}")
    return n


def _positive_float(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not x > 0 or not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return x


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json",
        action="store_true",
        help="machine-readable output: one JSON document on stdout (cat always prints JSON lines)",
    )
    common.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bars (they are shown only on a terminal anyway)",
    )
    common.add_argument(
        "--bucket", type=_nonneg, metavar="ID", help="only this bucket of a storage_path"
    )
    fmt = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog="persisting",
        description=(
            "Inspect, verify, read, export and maintain persisting queue data.\n"
            "Everything but compact and cleanup is read-only and never takes a bucket's\n"
            "LOCK: safe beside a live writer in another process."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=fmt,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def add(name: str, help: str, description: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            parents=[common],
            help=help,
            description=description,
            epilog=EXIT_CODES_HELP,
            formatter_class=fmt,
        )
        p.add_argument("path", metavar="PATH", help=PATH_HELP)
        return p

    p = add(
        "inspect",
        "schema, rows, versions, fragments, WAL segments, sizes",
        "Describe every bucket under PATH: the live writer (from /proc/locks), the\n"
        "dataset's schema, rows, version, retained versions, fragments and sizes, and\n"
        "the WAL's segments (frames, row offsets, bytes).",
    )
    p.set_defaults(func=cmd_inspect)

    p = add(
        "verify",
        "read every page and WAL frame; exit 1 on damage",
        "Read every manifest of every retained version, every page of every data file\n"
        "of every fragment (decoded and validated: offsets, lengths, UTF-8), and every\n"
        "WAL frame (length checks, CRC-32C, row ranges, segment headers and sequence).\n"
        "Nothing is repaired, moved or locked. Each problem names its file and byte\n"
        "offset (-1 when none applies) and a kind: corrupt, torn_tail (a WAL tail the\n"
        "next open cuts), missing, or unsupported (an encoding this checker cannot\n"
        "decode: reported, not counted as damage). Lance 2.0 pages carry no checksum:\n"
        "a changed byte in plain fixed-width values decodes fine and goes unnoticed.",
    )
    p.set_defaults(func=cmd_verify)

    p = add(
        "cat",
        "print rows as JSON lines",
        "Print committed rows as JSON lines, each with its row offset in the bucket\n"
        '("_offset"). On a storage_path with several buckets every bucket is printed,\n'
        'bucket by bucket, each line with "_bucket"; --from and --limit then count\n'
        "within each bucket and overall respectively (pass --bucket for one bucket).\n"
        "Only committed (flushed) rows are visible: rows still in a writer's buffer\n"
        'appear once it flushes them. bytes print as {"$base64": ...}, datetimes as\n'
        "ISO 8601, NaN and infinities as strings.",
    )
    p.add_argument(
        "--from",
        dest="start",
        type=_nonneg,
        default=0,
        metavar="N",
        help="first row offset (default 0)",
    )
    p.add_argument(
        "--limit", type=_nonneg, default=None, metavar="N", help="print at most N rows in all"
    )
    p.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="keep polling (refresh) and print rows as they are committed; "
        "rows a writer still buffers appear once flushed; Ctrl-C stops",
    )
    p.add_argument(
        "--interval",
        type=_positive_float,
        default=1.0,
        metavar="SECONDS",
        help="--follow poll interval (default 1.0)",
    )
    p.set_defaults(func=cmd_cat)

    p = add(
        "versions",
        "list retained versions",
        "List every retained version of every bucket: bucket, version, commit time\n"
        "(UTC) and rows.",
    )
    p.set_defaults(func=cmd_versions)

    p = add(
        "export",
        "write the rows to Parquet or JSON lines",
        "Write every committed row to a Parquet or JSON-lines file (written beside\n"
        'the target, then renamed into place). Several buckets add a "_bucket" column.',
    )
    p.add_argument("--to", required=True, metavar="FILE", help="out.parquet or out.jsonl")
    p.add_argument(
        "--format", choices=("parquet", "jsonl"), help="override the format the file name implies"
    )
    p.add_argument("--compression", default="zstd", help="Parquet compression (default zstd)")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    p.set_defaults(func=cmd_export)

    for name, func, what in (
        ("compact", cmd_compact, "merge small fragments, then remove old versions"),
        ("cleanup", cmd_cleanup, "remove versions outside the retention window"),
    ):
        p = add(
            name,
            what,
            f"{what[0].upper()}{what[1:]} in each bucket under PATH.\n"
            "This opens the bucket as a writer would: it takes the bucket's LOCK (and runs\n"
            "recovery, replaying a WAL into Lance). A bucket a live writer holds is\n"
            "refused with exit code 4 naming the holder's pid; other buckets go on.",
        )
        p.add_argument(
            "--keep-versions",
            type=_nonneg,
            metavar="N",
            help="versions cleanup keeps (default 100; the latest always)",
        )
        p.add_argument(
            "--keep-seconds",
            type=float,
            metavar="S",
            help="also keep every version younger than S seconds",
        )
        if name == "compact":
            p.add_argument(
                "--compression",
                choices=("zstd", "lz4", "snappy"),
                help="page compression of the rewritten fragments",
            )
        p.set_defaults(func=func)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except CLIError as exc:
        return _fail(args, exc.code, str(exc), **exc.extra)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `persisting cat ... | head`: the reader went away.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        from .errors import LockedError, StorageError

        if isinstance(exc, LockedError):
            return _fail(args, EXIT_LOCKED, str(exc), pid=exc.pid)
        if isinstance(exc, (StorageError, OSError, ValueError)):
            extra = {}
            if isinstance(exc, StorageError):
                extra = {"path": exc.path, "offset": exc.offset}
            return _fail(args, EXIT_ERROR, str(exc), **extra)
        raise


def _fail(args: argparse.Namespace, code: int, message: str, **extra: Any) -> int:
    if getattr(args, "json", False):
        print(dumps({"error": message, "exit_code": code, **extra}), file=sys.stderr)
    else:
        print(message, file=sys.stderr)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
