"""``inspect`` and ``versions``: describe what each bucket holds."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from .exits import EXIT_OK
from .native import call_json, open_reader
from .output import Progress, dumps, human
from .paths import (
    Bucket,
    is_uri,
    lock_holder,
    normalize,
    resolve,
    select_buckets,
    storage_options,
    tree_bytes,
)


def _inspect_bucket(b: Bucket, options: dict[str, str] | None) -> dict[str, Any]:
    info: dict[str, Any] = {"bucket": b.bucket, "dir": b.dir}
    remote = is_uri(b.dir)
    if b.is_bucket and not remote:  # an object store has no lock: writers are fenced
        info["writer"] = lock_holder(b.dir)
    ds_info: dict[str, Any] | None = None
    if b.dataset:
        # Sizes are counted on local disk only (None on an object store).
        files, size = (None, None) if remote else tree_bytes(b.dataset)
        data_files, data_bytes = (
            (None, None) if remote else tree_bytes(os.path.join(b.dataset, "data"))
        )
        with open_reader(b.dataset, options) as ds:
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
        res = call_json(
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
    info["bytes"] = None if remote else tree_bytes(b.dir)[1]
    return info


def cmd_inspect(args: argparse.Namespace) -> int:
    options = storage_options(args)
    buckets = select_buckets(resolve(args.path, options), args.bucket)
    report = {"path": normalize(args.path), "buckets": []}
    with Progress(not args.json and not args.no_progress) as progress:
        advance = progress.task("inspect", len(buckets))
        for b in buckets:
            report["buckets"].append(_inspect_bucket(b, options))
            advance(1)
    report["rows"] = sum((x["dataset"] or {}).get("rows", 0) for x in report["buckets"])
    sizes = [x["bytes"] for x in report["buckets"]]
    report["bytes"] = None if None in sizes else sum(sizes)
    if args.json:
        print(dumps(report))
        return EXIT_OK
    size = "" if report["bytes"] is None else f", {human(report['bytes'])}"
    print(f"{report['path']}: {len(buckets)} bucket(s), {report['rows']} rows{size}")
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
            if d["bytes"] is not None:
                print(
                    f"  size:       {human(d['bytes'])} in {d['files']} files "
                    f"({d['data_files']} data files, {human(d['data_bytes'])})"
                )
            print("  schema:")
            for f in d["schema"]:
                print(f"    {f['name']}: {f['type']}")
        wl = x["wal"]
        if wl is None and is_uri(x["dir"]):
            print("  wal:        not inspected on an object store")
        elif wl is None:
            print("  wal:        none")
        else:
            print(
                f"  wal:        {len(wl['segments'])} segment(s), {human(wl['bytes'])}, "
                f"{wl['frames']} frames, {wl['rows']} rows"
            )
            for s in wl["segments"]:
                rng = (
                    f"offsets {s['first_offset']}..{s['end_offset']}"
                    if s["frames"]
                    else "no frames"
                )
                print(f"    {s['file']}  {human(s['bytes'])}  {s['frames']} frames  {rng}")
            if wl["damaged_files"]:
                print(
                    f"    damaged/ holds {len(wl['damaged_files'])} file(s) an earlier "
                    "recovery moved aside"
                )
            if wl["problems"]:
                print(f"    {wl['problems']} problem(s): run `persisting verify`")
    return EXIT_OK


def cmd_versions(args: argparse.Namespace) -> int:
    options = storage_options(args)
    buckets = select_buckets(resolve(args.path, options), args.bucket)
    out: list[dict[str, Any]] = []
    for b in buckets:
        if not b.dataset:
            continue
        with open_reader(b.dataset, options) as ds:
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
