"""``verify``: read every page and WAL frame through the Go checker."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from .exits import EXIT_DAMAGE, EXIT_OK
from .native import call_json
from .output import Progress, dumps, human
from .paths import local_only, resolve, select_buckets


def cmd_verify(args: argparse.Namespace) -> int:
    local_only(args)
    resolve(args.path)  # exit 3 before any native call
    plan = call_json("persisting_verify_plan", os.path.normpath(args.path))
    if args.bucket is not None:
        select_buckets(resolve(args.path), args.bucket)
        plan["items"] = [i for i in plan["items"] if i["bucket"] == args.bucket]
        plan["problems"] = [p for p in plan["problems"] if p["bucket"] == args.bucket]
        plan["buckets"] = [b for b in plan["buckets"] if b["bucket"] == args.bucket]
    problems: list[dict[str, Any]] = list(plan["problems"])
    totals = {"data_files": 0, "pages": 0, "wal_segments": 0, "frames": 0, "bytes": 0, "gone": 0}
    total_bytes = sum(max(i["size"], 0) for i in plan["items"])
    with Progress(not args.json and not args.no_progress) as progress:
        advance = progress.task("verify", total_bytes or None)
        for item in plan["items"]:
            res = call_json("persisting_verify_item", json.dumps(item))
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
            f"{human(totals['bytes'])} read"
        )
        for p in problems:
            off = f" at offset {p['offset']}" if p["offset"] >= 0 else ""
            print(f"{p['kind'].upper()} {p['what']}: {p['file']}{off}: {p['reason']}")
        print("ok: no damage found" if not damage else f"DAMAGED: {len(damage)} problem(s)")
    return EXIT_OK if not damage else EXIT_DAMAGE
