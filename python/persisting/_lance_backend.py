"""LanceBackend: a bucket persisted as a Lance dataset (see :mod:`persisting.queue`)."""

from __future__ import annotations

import asyncio
import operator
import os
import warnings
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any, ClassVar

from . import _lib
from ._bridge import NativeBucket
from ._mixing import MixedTypesError
from ._records import (
    RecordSchemaError,
    RecordTypeError,
    arrow_batch,
    checked_batch,
)
from ._rows import to_records
from ._topics import bucket_dir, is_uri
from ._writes import WriteQueue
from .errors import ClosedError, RecoveryWarning, SchemaError
from .options import LANCE_OPTIONS, Options, parse, positive_int

#: Largest list ``get_stream`` yields, as Pulsing's MemoryBackend does.
STREAM_CHUNK = 100

_INT64_MAX = 2**63 - 1


class LanceBackend:
    """A bucket persisted as a Lance dataset under ``storage_path``.

    Args:
        bucket_id (0): the bucket number Pulsing assigns.
        storage_path (None): the bucket's directory, created if missing. Pulsing
            passes ``{storage_path}/bucket_{id}``; the topic is not part of it, so
            give each topic its own ``storage_path``. ``None``:
            ``./queue_storage/bucket_{id}``.
        batch_size (100): rows buffered before an automatic flush.
        **options: below. Unknown options are ignored with one warning per name,
            so options meant for other backends or newer versions do not break a
            deployment. Types are strict: ``enable_wal="false"`` is a
            ``TypeError``, not ``True``.

    Options, with defaults (:class:`PersistingBackend` adds the log and metrics):
        flush_threshold (None, meaning ``batch_size``): rows buffered before an
            automatic flush (Pulsing users set the threshold through
            ``write_queue(batch_size=...)``).
        max_buffer_rows (None, meaning ``max(16 * threshold, 2**20)``): bound on
            buffered rows before ``put`` waits for a flush (backpressure, never a
            drop).
        vector_columns (None): ``{"name": dim}``; lists of numbers in these columns
            are stored as ``fixed_size_list<float32, dim>`` vectors. Values given
            as 1-D numpy float32 arrays are vectors without being declared.
            Vectors read back as numpy float32 arrays.
        compression (None): ``"zstd"``, ``"lz4"`` or ``"snappy"``: Lance pages are
            compressed with zstd or lz4 (Lance has no snappy page scheme, so
            snappy pages use zstd).
        field_defaults (None): ``{"name": value}``; a record read back with that
            field ``None`` (typically an old record written before the field
            existed) gets ``value`` instead.
        compact_every (64): merge small fragments after this many flushes, then
            remove old versions; ``0``: only on :meth:`compact`.
        compact_target_rows (None, meaning ``max(65536, 16 * threshold)``, at most
            ``2**20``): rows of a compacted fragment.
        keep_versions (100): versions kept by cleanup; the latest is always kept.
        keep_versions_seconds (0): also keep every version younger than this (for
            time travel or slow readers of old versions).
        topic (None): the queue's topic. Pulsing (0.1.2) leaves it out of a
            bucket's path; persisting has Pulsing pass it, and a topic whose
            bucket directory another topic owns gets
            ``{storage_path}/topics/{topic}/bucket_{id}`` instead.

    Rows are persisted to ``{storage_path}/data.lance`` (Lance file format 2.0),
    one fragment and one dataset version per flush: when ``batch_size`` rows are
    buffered, on :meth:`flush`, and on :meth:`close`. The constructor returns at
    once; opening the dataset and replaying the write-ahead log run in Go, and
    :meth:`ready` waits for them.

    The constructor never raises: Pulsing builds backends inside an actor, where
    an exception would only say "actor dropped". A bad option, a directory held by
    another backend (:class:`~persisting.LockedError`, naming the holder's pid) or
    a failed recovery is raised by :meth:`ready` and by every later call,
    :meth:`total_count` included, so the words reach the caller. The directory
    hold ends on :meth:`close` or when the backend is garbage-collected.
    """

    backend_name: ClassVar[str] = "lance"
    OPTION_NAMES: ClassVar[frozenset[str]] = LANCE_OPTIONS

    def __init__(
        self,
        bucket_id: int = 0,
        storage_path: str | os.PathLike[str] | None = None,
        batch_size: int = 100,
        **options: Any,
    ) -> None:
        if storage_path is None:
            storage_path = os.path.join("queue_storage", f"bucket_{bucket_id}")
        self.bucket_id = bucket_id
        self.storage_path: str = storage_path if isinstance(storage_path, str) else ""
        self.batch_size = batch_size
        self.options = Options()
        self.bucket_dir = ""
        # Acknowledged rows: the recovered count, then the end of every append.
        self._total = 0
        self._readers: list[asyncio.Future[None]] = []
        self._error: Exception | None = None
        try:
            self.storage_path = os.fspath(storage_path)
            positive_int("batch_size", batch_size)
            self.options = parse(type(self).__name__, options, type(self).OPTION_NAMES)
            if self.options.topic is not None:
                self.storage_path = bucket_dir(self.storage_path, self.options.topic)
            self._bucket = NativeBucket(self._native_config())
        except Exception as exc:  # kept and raised by every call
            self._error = exc
            return
        #: The bucket's absolute directory: the ``bucket`` label of its metrics.
        self.bucket_dir = self._bucket.dir
        self._bucket.on_ready(self._recovered)
        self._writes = WriteQueue(
            self._bucket,
            self.options.vector_columns,
            self._stored,
            self._staged,
            stage=self._stages(),
        )
        self._bucket.on_wake(self._wake_readers)

    def _native_config(self) -> dict[str, Any]:
        return {
            "storage_path": self.storage_path
            if is_uri(self.storage_path)
            else os.path.abspath(self.storage_path),
            "bucket_id": self.bucket_id,
            "batch_size": self.options.flush_threshold or self.batch_size,
            "max_buffer_rows": self.options.max_buffer_rows or 0,
            "compression": self.options.compression,
            **{
                name: value
                for name in (
                    "compact_every",
                    "compact_target_rows",
                    "keep_versions",
                    "keep_versions_seconds",
                )
                if (value := getattr(self.options, name)) is not None
            },
        }

    def _stages(self) -> bool:
        """Whether a put may be acknowledged before Go has it (see _writes): only
        without a write-ahead log, where "acknowledged" means "readable"."""
        return True

    def _live(self) -> NativeBucket:
        """The Go bucket, or the error that keeps this backend from working: the
        constructor's, :class:`~persisting.ClosedError`, or the recovery's."""
        if self._error is not None:
            raise self._error.with_traceback(None)
        bucket = self._bucket
        if bucket.closed:
            raise ClosedError(f"persisting: bucket {self.bucket_dir}: the backend is closed")
        if bucket.ready_error is not None:
            raise bucket.ready_error.with_traceback(None)
        if self._writes.lost is not None:
            raise self._writes.lost.with_traceback(None)
        return bucket

    async def _ready(self) -> NativeBucket:
        bucket = self._live()
        if not bucket.ready:
            await bucket.wait_ready()
        return self._live()

    def _recovered(self, total: int) -> None:
        self._total = max(self._total, total)
        self._wake_readers()
        if self._bucket.ready_error is not None:
            return
        native = self._bucket.stats()
        if native["truncated_bytes"] or native["dropped_frames"] or native.get("damaged_files"):
            kept = native.get("damaged_files") or []
            warnings.warn(
                f"persisting: bucket {self.storage_path}: recovery cut "
                f"{native['truncated_bytes']} bytes ({native['dropped_frames']} whole frames "
                f"after a torn one) from the end of {native.get('truncated_file', '?')}; "
                "records whose put never returned may be among them"
                + (f"; what was cut is kept in {', '.join(kept)}" if kept else ""),
                RecoveryWarning,
                stacklevel=2,
            )

    def _staged(self) -> None:
        self._total += 1
        if self._readers:
            self._wake_readers()

    def _stored(self, first: int, rows: int) -> None:
        self._total = max(self._total, first + rows)
        self._wake_readers()

    async def ready(self) -> None:
        """Wait until the bucket has recovered its dataset and log. Recovery starts
        in the constructor and runs in Go; its failure (say a
        :class:`~persisting.CorruptionError`), or the constructor's, is raised here
        and by every later call."""
        await self._ready()

    # -- writes -------------------------------------------------------------

    async def put(self, record: dict[str, Any]) -> None:
        """Append one record; returns once it is stored and readable.

        Concurrent puts in one loop tick travel to Go as one Arrow batch, but each
        fails alone: a record with an unsupported value raises ``TypeError`` naming
        the key and type, a bad field name or too deep a nesting ``ValueError``, one
        whose field type conflicts with the table :class:`~persisting.SchemaError`,
        and the others are stored. A put still waiting when :meth:`close` runs is
        either stored or fails with :class:`~persisting.ClosedError`, never both.
        """
        self._live()
        if self._writes.stage(record):
            return
        await self._writes.put(record)  # checks the record

    async def put_batch(self, records: list[dict[str, Any]] | Any) -> None:
        """Append records in order, all or nothing: if any record is refused, none
        is stored and the error names the bad record's index. Empty is a no-op.

        ``records`` may also be Arrow data (a pyarrow ``RecordBatch`` or ``Table``,
        or any object with ``__arrow_c_stream__`` or ``__arrow_c_array__``), which
        goes to storage without a detour through dicts."""
        self._live()
        if isinstance(records, list):
            if not records:
                return
            batch = self._records_batch(records)
        else:
            batch = arrow_batch(records)
            if batch.num_rows == 0:
                return
        await self._writes.send_batch(batch)

    def _records_batch(self, records: list[dict[str, Any]]) -> Any:
        try:
            return checked_batch(records, self.options.vector_columns, "put_batch record")
        except RecordTypeError as exc:
            raise TypeError(f"persisting: put_batch record {exc.index}: {exc}") from None
        except RecordSchemaError as exc:
            raise SchemaError(f"persisting: put_batch record {exc.index}: {exc}") from None
        except MixedTypesError as exc:
            raise SchemaError(
                f"{exc}; put_batch stored none of its {len(records)} records"
            ) from None

    def _wake_readers(self) -> None:
        readers, self._readers = self._readers, []
        for fut in readers:
            if not fut.done():
                fut.set_result(None)

    # -- reads --------------------------------------------------------------

    def total_count(self) -> int:
        """Records stored (persisted and buffered); never goes backwards.

        Pulsing calls this synchronously, before every put, as the record's
        position, so it is exact from the moment the constructor returns: while
        recovery still runs, this call waits for it (in Go, for as long as the
        write-ahead log takes to replay: bounded by ``max_wal_size``)."""
        bucket = self._live()
        if not bucket.ready:
            self._total = max(self._total, bucket.recovered_rows())
        return self._total

    async def get(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Up to ``limit`` records from ``offset``, in append order; ``[]`` past the end
        or for ``limit == 0``. Each call returns fresh dicts. ``limit`` and
        ``offset`` are ints in ``[0, 2**63)``."""
        limit, offset = _count("limit", limit), _count("offset", offset)
        await self._ready()
        if limit == 0 or offset >= self._total:
            return []
        return await self._read(offset, limit)

    async def _read(self, offset: int, limit: int) -> list[dict[str, Any]]:
        await self._writes.hand_over()  # staged records are readable: Go gets them first
        bucket = self._live()
        table = bucket.read(offset, limit, nonblock=True)
        if table is None:  # rows on disk: read them in a worker thread
            table = await bucket.run_blocking(bucket.read, offset, limit, False)
        assert table is not None
        return to_records(table, self.options.field_defaults)

    async def get_stream(
        self, limit: int = 100, offset: int = 0, wait: bool = False, timeout: float | None = None
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Yield lists of 1..100 records, ``limit`` in all, from ``offset``.

        At the end of the data: with ``wait=False`` the stream ends; with
        ``wait=True`` it waits for new records, up to ``timeout`` seconds per wait
        (a falsy timeout, ``None`` or ``0``, waits forever), and ends silently
        when a wait times out. :meth:`close` ends a waiting stream with
        :class:`~persisting.ClosedError`. No lock is held across a yield, so the
        consumer may abandon the stream at any point.
        """
        limit, offset = _count("limit", limit), _count("offset", offset)
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0
        ):
            raise ValueError(f"persisting: timeout must be None or seconds >= 0, got {timeout!r}")
        bucket = await self._ready()
        cursor, remaining = offset, limit
        while remaining > 0:
            if cursor >= self._total:
                if not wait:
                    return
                waiter: asyncio.Future[None] = bucket.loop().create_future()
                self._readers.append(waiter)
                try:
                    if timeout:
                        await asyncio.wait_for(waiter, timeout)
                    else:
                        await waiter
                except TimeoutError:
                    return
                self._live()
                continue
            rows = await self._read(cursor, min(remaining, STREAM_CHUNK))
            if not rows:
                return
            yield rows
            cursor += len(rows)
            remaining -= len(rows)

    # -- versions -----------------------------------------------------------

    async def versions(self) -> list[dict[str, Any]]:
        """The dataset's versions, oldest first: ``{"version", "timestamp", "rows"}``
        (timestamp a timezone-aware datetime, rows the live rows of that version).
        One version is created per flush; ``[]`` before the first flush."""
        bucket = await self._ready()
        raw = await bucket.run_blocking(_lib.versions, bucket.handle)
        return [
            {
                "version": v["version"],
                "timestamp": datetime.fromtimestamp(v["timestamp_us"] / 1e6, tz=timezone.utc),
                "rows": v["rows"],
            }
            for v in raw
        ]

    async def get_version(
        self, version: int, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Time travel: up to ``limit`` records from ``offset`` of the bucket as it
        was persisted at ``version``, in that version's schema. The live bucket is
        not disturbed; buffered records are not part of any version."""
        version = _count("version", version)
        limit, offset = _count("limit", limit), _count("offset", offset)
        bucket = await self._ready()
        if limit == 0:
            return []
        table = await bucket.run_blocking(bucket.read_version, version, offset, limit)
        return to_records(table, self.options.field_defaults)

    # -- search -------------------------------------------------------------

    async def search(
        self,
        column: str,
        vector: Any,
        k: int = 10,
        metric: str = "l2",
        filter: str | None = None,
        columns: list[str] | None = None,
        *,
        use_index: bool = False,
    ) -> Any:
        """Exact k-nearest-neighbour search over this bucket: the persisted
        rows and the buffered ones (one consistent snapshot), as a
        ``pyarrow.Table`` sorted by ``_distance`` (``_rowid`` is null for
        buffered rows). Same arguments as :meth:`persisting.Dataset.search`;
        runs in a thread."""
        from .dataset import bucket_search

        bucket = await self._ready()
        await self._writes.hand_over()  # staged records are buffered rows too
        return await bucket.run_blocking(
            bucket_search,
            bucket.handle,
            column,
            vector,
            k,
            metric,
            filter,
            columns,
            use_index,
            dict(self.options.storage_options),
        )

    # -- maintenance --------------------------------------------------------

    async def flush(self) -> None:
        """Persist every record whose put has returned."""
        self._live()
        await self._writes.hand_over()
        bucket = await self._ready()
        await bucket.flush()
        # Rows another writer (real Lance) committed meanwhile now count too.
        self._total = max(self._total, bucket.stats()["total_count"])

    async def compact(self) -> dict[str, Any]:
        """Merge small fragments now (one Lance Rewrite commit; every record keeps
        its offset), then remove old versions; what it did, as a dict. Runs in Go
        beside flushes, puts and reads. It also runs by itself every
        ``compact_every`` flushes."""
        bucket = await self._ready()
        return await bucket.maintain(compact=True, cleanup=True)

    async def cleanup(self) -> dict[str, Any]:
        """Remove the versions outside the retention window (``keep_versions``,
        ``keep_versions_seconds``; never the latest) and the files no kept version
        uses, now; what it removed, as a dict."""
        bucket = await self._ready()
        return await bucket.maintain(compact=False, cleanup=True)

    async def stats(self) -> dict[str, Any]:
        """Per-bucket statistics; Pulsing returns this dict unchanged."""
        bucket = await self._ready()
        self._writes.submit_pending()  # Go counts what it has
        return self._stats(bucket.stats())

    def _stats(self, native: dict[str, Any]) -> dict[str, Any]:
        """The stats dict built from the Go bucket's own; subclasses add keys."""
        return {
            "bucket_id": self.bucket_id,
            "backend": self.backend_name,
            "storage_path": self.storage_path,
            "total_count": self._total,
            "buffer_count": native["buffer_count"],
            "buffer_size": native["buffer_count"],
            "buffer_bytes": native["buffer_bytes"],
            "persisted_count": native["persisted_count"],
            "flushes": native["flushes"],
            "flush_errors": native["flush_errors"],
            "schema_changes": native["schema_changes"],
            "backpressure": native["backpressure"],
            "dataset_path": native["dataset_path"],
            "dataset_version": native["dataset_version"],
            "last_flush_seconds": native["last_flush_seconds"],
            "compression": native["compression"],
            "lance_page_codec": native["lance_page_codec"],
            "fragments": native["fragments"],
            "maintenances": native["maintenances"],
            "maintenance_errors": native["maintenance_errors"],
            "fragments_compacted": native["fragments_compacted"],
            "versions_removed": native["versions_removed"],
            "bytes_reclaimed": native["bytes_reclaimed"],
            "last_maintenance": native.get("last_maintenance"),
            "options": self.options.as_dict(),
        }

    async def close(self) -> None:
        """Flush and release the directory. Idempotent. Pulsing never calls it; the
        backend is released when garbage-collected too.

        Puts still pending are either stored or fail with
        :class:`~persisting.ClosedError`; streams waiting for records end with
        :class:`~persisting.ClosedError`; every later call raises it."""
        if self._error is not None or self._bucket.closed:
            return
        await self._writes.hand_over()  # acknowledged rows may wait for room
        self._writes.close()
        try:
            await self._bucket.close()
        finally:
            self._wake_readers()

    def close_sync(self) -> None:
        """:meth:`close` for synchronous code; blocks. Call it from the thread of
        the backend's event loop, or once that loop has stopped."""
        if self._error is None and not self._bucket.closed:
            self._writes.close()  # staged records go to Go first
            self._bucket.close_sync()


def _count(name: str, value: Any) -> int:
    """An offset, limit or version: an int (not a bool) in ``[0, 2**63)``."""
    if isinstance(value, bool):
        raise TypeError(f"persisting: {name} must be an int, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(
            f"persisting: {name} must be an int, got {type(value).__name__} {value!r}"
        ) from None
    if not 0 <= number <= _INT64_MAX:
        raise ValueError(f"persisting: {name} must be in [0, 2**63), got {number}")
    return number
