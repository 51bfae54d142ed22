"""Readers: scan, count, search and time-travel a persisting dataset without
the writer's lock, from any process, beside a live writer.

``open_dataset(path)`` takes a Lance dataset, a bucket directory, or a queue's
``storage_path`` holding ``bucket_<id>`` directories (every bucket is read),
on local disk or on an S3-compatible object store (``s3://bucket/prefix``, with
``storage_options`` named as pylance's, as a backend takes them).
The reader sees one committed version per bucket; :meth:`Dataset.refresh`
moves it to the latest ones and :meth:`Dataset.checkout` to older ones. The
work runs in Go; every method blocks the calling thread, so from asyncio call
them through ``asyncio.to_thread`` (or use a writer's ``await
backend.search(...)``, which does).

Filters (``filter=``) use the predicate language described in the README
("Filters"): ``price >= 10 AND tag IN ('a', 'b') AND note IS NOT NULL``.
"""

from __future__ import annotations

import ctypes
import json
import os
import weakref
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

from . import _lib
from ._search import (
    _filter_text,
    _have_pylance,
    _merge,
    _pylance_search,
    _query_vector,
    _search_spec,
    _stream,
)
from ._search import bucket_search as bucket_search  # the writer's search (_lance_backend)
from .errors import ClosedError
from .options import storage_options as _storage_options

__all__ = ["Dataset", "open_dataset"]


def open_dataset(
    path: str | os.PathLike[str],
    version: Any = None,
    *,
    storage_options: dict[str, str] | None = None,
) -> Dataset:
    """Open a dataset for reading (no lock is taken). ``version`` checks out
    a version at once: an int (one dataset or bucket), a ``{bucket_id:
    version}`` dict, or a ``datetime`` (each bucket's newest version committed
    at or before it). ``path`` may be an ``s3://bucket/prefix`` URI: then
    ``storage_options`` (named as pylance's: ``aws_endpoint``, ``aws_region``,
    ``aws_access_key_id``, ``aws_secret_access_key``, ``allow_http``, ...) override
    the standard AWS environment variables and files; an unknown name is a
    ``ValueError``."""
    ds = Dataset(path, storage_options=storage_options)
    if version is not None:
        ds.checkout(version)
    return ds


def _close(handle: int) -> None:
    try:
        _lib.lib().persisting_dataset_close(handle)
    except Exception:  # interpreter shutdown, fork: nothing to do
        pass


class Dataset:
    """A read-only view of a persisting dataset (see :func:`open_dataset`)."""

    def __init__(
        self, path: str | os.PathLike[str], *, storage_options: dict[str, str] | None = None
    ) -> None:
        self.path = os.fspath(path)
        self.storage_options = _storage_options(storage_options)
        options = json.dumps({"storage_options": self.storage_options}).encode()
        handle = ctypes.c_size_t(0)
        err = ctypes.c_char_p()
        rc = _lib.lib().persisting_dataset_open(
            self.path.encode(), options, ctypes.byref(handle), ctypes.byref(err)
        )
        _lib.check(rc, err)
        self._handle = handle.value
        self._finalizer = weakref.finalize(self, _close, self._handle)

    # -- lifecycle ----------------------------------------------------------

    def close(self) -> None:
        """Forget the handle (no lock to release; idempotent)."""
        self._finalizer()

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _h(self) -> int:
        if not self._finalizer.alive:
            raise ClosedError(f"persisting: dataset {self.path} is closed")
        return self._handle

    # -- versions -----------------------------------------------------------

    def refresh(self) -> Dataset:
        """Move to the latest committed version of every bucket (and pick up
        buckets that appeared since)."""
        err = ctypes.c_char_p()
        _lib.check(_lib.lib().persisting_dataset_refresh(self._h(), ctypes.byref(err)), err)
        return self

    def checkout(self, version: Any) -> Dataset:
        """Time travel: an int (one dataset or bucket), ``{bucket_id:
        version}`` (only the named buckets are read), or a ``datetime`` (each
        bucket's newest version committed at or before it; naive means UTC).
        :meth:`refresh` returns to the latest."""
        if isinstance(version, datetime):
            when = version if version.tzinfo else version.replace(tzinfo=timezone.utc)
            spec: dict[str, Any] = {"as_of_us": int(when.timestamp() * 1_000_000)}
        elif isinstance(version, dict):
            spec = {"versions": {str(int(b)): _version(v) for b, v in version.items()}}
        else:
            v = _version(version)
            parts = self._parts()
            if len({p["bucket"] for p in parts}) > 1:
                raise ValueError(
                    f"persisting: {self.path} holds several buckets; checkout takes "
                    "{bucket_id: version} or a datetime"
                )
            spec = {"versions": {str(parts[0]["bucket"] if parts else -1): v}}
        err = ctypes.c_char_p()
        rc = _lib.lib().persisting_dataset_checkout(
            self._h(), json.dumps(spec).encode(), ctypes.byref(err)
        )
        _lib.check(rc, err)
        return self

    def _info(self) -> dict[str, Any]:
        """``{"parts": [...], "sources": [{"bucket", "path"}]}``: the parts read and
        every dataset found under the path (with committed data or not)."""
        out = ctypes.c_char_p()
        err = ctypes.c_char_p()
        rc = _lib.lib().persisting_dataset_info(self._h(), ctypes.byref(out), ctypes.byref(err))
        _lib.check(rc, err)
        info: dict[str, Any] = json.loads(_lib.take(out))
        return info

    def _parts(self) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = self._info()["parts"]
        return parts

    @property
    def version(self) -> int | dict[int, int] | None:
        """The version read: an int for one dataset or bucket, else
        ``{bucket_id: version}``; None when nothing is committed yet."""
        parts = self._parts()
        if not parts:
            return None
        if len(parts) == 1:
            return int(parts[0]["version"])
        return {p["bucket"]: p["version"] for p in parts}

    @property
    def buckets(self) -> list[dict[str, Any]]:
        """One entry per bucket read: bucket, path, version, rows, fragments,
        indexed (whether the manifest lists an index)."""
        return self._parts()

    def versions(self) -> list[dict[str, Any]]:
        """Every retained version of every bucket, oldest first per bucket:
        ``{"bucket", "version", "timestamp", "rows"}``."""
        out = ctypes.c_char_p()
        err = ctypes.c_char_p()
        rc = _lib.lib().persisting_dataset_versions(self._h(), ctypes.byref(out), ctypes.byref(err))
        _lib.check(rc, err)
        return [
            {
                "bucket": v["bucket"],
                "version": v["version"],
                "timestamp": datetime.fromtimestamp(v["timestamp_us"] / 1e6, tz=timezone.utc),
                "rows": v["rows"],
            }
            for v in json.loads(_lib.take(out))
        ]

    # -- reads --------------------------------------------------------------

    def scan(
        self,
        columns: Sequence[str] | None = None,
        filter: str | None = None,
        *,
        with_row_id: bool = False,
        batch_rows: int | None = None,
    ) -> pa.RecordBatchReader:
        """Stream the rows (of the selected ``columns``, matching ``filter``)
        as a ``pyarrow.RecordBatchReader``: Go reads fragment chunks of
        ``batch_rows`` physical rows (default 65536) a little ahead of the
        consumer; nothing is materialized beyond that. ``with_row_id`` adds
        ``_rowid`` (Lance row address) and, over several buckets, ``_bucket``."""
        spec = {
            "columns": None if columns is None else list(columns),
            "filter": _filter_text(filter),
            "with_row_id": bool(with_row_id),
            "batch_rows": int(batch_rows or 0),
        }
        if batch_rows is not None and batch_rows <= 0:
            raise ValueError(f"persisting: batch_rows must be positive, got {batch_rows}")
        return _stream(_lib.lib().persisting_dataset_scan, self._h(), json.dumps(spec).encode())

    def to_arrow(
        self,
        columns: Sequence[str] | None = None,
        filter: str | None = None,
        *,
        with_row_id: bool = False,
    ) -> pa.Table:
        """The whole scan as one ``pyarrow.Table``."""
        return self.scan(columns, filter, with_row_id=with_row_id).read_all()

    to_table = to_arrow

    @property
    def schema(self) -> pa.Schema:
        """The schema of the rows (the union over buckets)."""
        reader = self.scan(batch_rows=1)
        schema = reader.schema
        reader.close()
        return schema

    def count(self, filter: str | None = None) -> int:
        """The number of live rows matching ``filter`` (all without one)."""
        out = ctypes.c_int64(0)
        err = ctypes.c_char_p()
        text = _filter_text(filter)
        rc = _lib.lib().persisting_dataset_count(
            self._h(), text.encode(), ctypes.byref(out), ctypes.byref(err)
        )
        _lib.check(rc, err)
        return out.value

    count_rows = count

    def search(
        self,
        column: str,
        vector: Any,
        k: int = 10,
        metric: str = "l2",
        filter: str | None = None,
        columns: Sequence[str] | None = None,
        *,
        use_index: bool = False,
    ) -> pa.Table:
        """The ``k`` rows nearest to ``vector`` in ``column`` (a
        fixed_size_list<float32> column) among those ``filter`` selects,
        best first: the ``columns`` (default all), ``_distance`` (l2:
        squared Euclidean; cosine: 1 - cos; dot: 1 - x·q), ``_rowid`` and,
        over several buckets, ``_bucket``. Exact, in Go, unless
        ``use_index`` is set, pylance is installed and a bucket has an
        index: then pylance searches each bucket through its index (and
        flat-searches what the index does not cover)."""
        q, dim = _query_vector(vector)
        spec = _search_spec(column, k, metric, filter, columns, skip_persisted=use_index)
        # Always called: it checks the column, query and filter, and with
        # use_index it searches nothing (there is no buffer here).
        result = _stream(_lib.lib().persisting_dataset_search, self._h(), spec, q, dim).read_all()
        if not use_index:
            return result
        parts = self._parts()
        if not any(p["indexed"] for p in parts) or not _have_pylance():
            spec = _search_spec(column, k, metric, filter, columns)
            return _stream(_lib.lib().persisting_dataset_search, self._h(), spec, q, dim).read_all()
        tables = []
        multi = len({p["bucket"] for p in parts}) > 1
        for p in parts:
            t = _pylance_search(
                p["path"],
                p["version"],
                column,
                q,
                k,
                metric,
                filter,
                columns,
                storage_options=self.storage_options,
            )
            if multi:
                t = t.append_column("_bucket", pa.array([p["bucket"]] * len(t), pa.int32()))
            tables.append(t)
        return _merge(tables, k)


def _version(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"persisting: a version is an int, got {type(v).__name__}")
    if v <= 0:
        raise ValueError(f"persisting: versions start at 1, got {v}")
    return v
