"""What PATH names: the buckets (or bare Lance dataset) under it, their
sizes, and whether a live writer holds a bucket's lock. PATH may be an
``s3://bucket/prefix`` URI: its buckets are then listed by the Go reader
through the object store, with the storage options given.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from typing import Any

from .exits import EXIT_NOT_FOUND, EXIT_USAGE, CLIError


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


def is_uri(path: str) -> bool:
    """Whether ``path`` names an object-store location rather than a local path."""
    return path.startswith("s3://")


def normalize(path: str) -> str:
    """A local path normalized; an s3:// URI without trailing slashes."""
    return path.rstrip("/") if is_uri(path) else os.path.normpath(path)


def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"not KEY=VALUE: {text!r}")
    return key, value


def storage_options(args: argparse.Namespace) -> dict[str, str] | None:
    """The ``--storage-option KEY=VALUE`` pairs given (None when none)."""
    pairs = getattr(args, "storage_option", None) or []
    return dict(pairs) or None


def local_only(args: argparse.Namespace) -> None:
    """CLIError(2) for an s3:// PATH given to a command that reads local files only."""
    if is_uri(args.path):
        raise CLIError(
            EXIT_USAGE,
            f"persisting {args.command}: {args.path}: only local paths (inspect, versions, "
            "cat and export read s3:// paths)",
        )


def _remote(path: str, options: dict[str, str] | None) -> list[Bucket]:
    """The buckets under an s3:// URI, as the Go reader finds them."""
    from ..errors import StorageError
    from .native import open_reader

    try:
        ds = open_reader(path, options)
    except StorageError as exc:
        if "nothing there" in str(exc) or "no Lance dataset" in str(exc):
            raise CLIError(EXIT_NOT_FOUND, str(exc)) from None
        raise
    with ds:
        info = ds._info()
    with_data = {p["path"] for p in info["parts"]}
    out = []
    for src in info.get("sources") or []:
        ds_path = src["path"]
        if src["bucket"] < 0:
            out.append(Bucket(-1, ds_path, ds_path, None))
        else:
            directory = ds_path.rsplit("/", 1)[0]
            out.append(
                Bucket(src["bucket"], directory, ds_path if ds_path in with_data else None, None)
            )
    return out


def _bucket_id(path: str) -> int:
    name = os.path.basename(os.path.normpath(path))
    if name.startswith("bucket_") and name[7:].isdigit():
        return int(name[7:])
    return -1


def _is_dataset(path: str) -> bool:
    return os.path.isdir(os.path.join(path, "_versions"))


def bucket_at(directory: str, options: dict[str, str] | None = None) -> Bucket:
    if is_uri(directory):
        return _remote(directory, options)[0]
    ds = os.path.join(directory, "data.lance")
    wal = os.path.join(directory, "wal")
    return Bucket(
        _bucket_id(directory),
        directory,
        ds if _is_dataset(ds) else None,
        wal if os.path.isdir(wal) else None,
    )


def resolve(path: str, options: dict[str, str] | None = None) -> list[Bucket]:
    """The buckets under ``path`` (see the module doc); CLIError(3) when none.
    ``options``: the storage options of an s3:// path."""
    if is_uri(path):
        return _remote(normalize(path), options)
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
