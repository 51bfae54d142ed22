"""``compact`` and ``cleanup``: open each bucket as a writer would (its
lock, recovery) and run the maintenance there.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import warnings
from typing import Any

from .exits import EXIT_LOCKED, EXIT_NOT_FOUND, EXIT_OK, CLIError
from .output import dumps
from .paths import Bucket, local_only, resolve, select_buckets


async def _maintain_bucket(b: Bucket, compact: bool, options: dict[str, Any]) -> dict[str, Any]:
    from .._persisting_backend import PersistingBackend
    from ..errors import LockedError

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
    local_only(args)
    buckets = select_buckets(resolve(args.path), args.bucket)
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
