"""What PATH names: the buckets (or bare Lance dataset) under it, their
sizes, and whether a live writer holds a bucket's lock.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from .exits import EXIT_NOT_FOUND, CLIError


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


def bucket_at(directory: str) -> Bucket:
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
            return [bucket_at(os.path.dirname(path))]
        return [Bucket(-1, path, path, None)]
    markers = ("data.lance", "wal", "LOCK")
    if _bucket_id(path) >= 0 or any(os.path.exists(os.path.join(path, m)) for m in markers):
        return [bucket_at(path)]
    found = [
        bucket_at(os.path.join(path, name))
        for name in os.listdir(path)
        if _bucket_id(name) >= 0 and os.path.isdir(os.path.join(path, name))
    ]
    if not found:
        raise CLIError(
            EXIT_NOT_FOUND,
            f"persisting: {path} is not a persisting path: no data.lance, wal/ or bucket_* there",
        )
    return sorted(found, key=lambda b: b.bucket)


def select_buckets(buckets: list[Bucket], wanted: int | None) -> list[Bucket]:
    if wanted is None:
        return buckets
    chosen = [b for b in buckets if b.bucket == wanted]
    if not chosen:
        have = ", ".join(str(b.bucket) for b in buckets)
        raise CLIError(EXIT_NOT_FOUND, f"persisting: no bucket {wanted} here (buckets: {have})")
    return chosen


def tree_bytes(path: str | None) -> tuple[int, int]:
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
