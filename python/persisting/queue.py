"""Pulsing storage backends: :class:`LanceBackend` and :class:`PersistingBackend`.

Both implement Pulsing's ``StorageBackend`` protocol (pulsing-contract.md §3):
``put``, ``put_batch``, ``get(limit, offset)``, the async generator
``get_stream(limit, offset, wait=False, timeout=None)``, ``flush``, ``stats`` and
the synchronous, O(1) ``total_count``. Importing this module registers them
with Pulsing (see :func:`register`).

Offsets form one space per bucket: persisted rows first, then buffered rows,
in append order. A record is readable as soon as its ``put`` returns.
"""

from __future__ import annotations

import asyncio
import os
import warnings
from collections import deque
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any, ClassVar

import pyarrow as pa

from . import _lib, metrics
from ._bridge import NativeBucket
from ._records import (
    MixedTypesError,
    RecordTypeError,
    arrow_batch,
    check_record,
    to_batch,
    to_records,
)
from .errors import RecoveryWarning, SchemaError

#: Largest list ``get_stream`` yields, as Pulsing's MemoryBackend does.
STREAM_CHUNK = 100

COMPRESSIONS = ("none", "zstd", "lz4", "snappy")
# Lance has no snappy page scheme: with snappy, pages are written with zstd.
_LANCE_PAGE_CODEC = {"none": "none", "zstd": "zstd", "lz4": "lz4", "snappy": "zstd"}

_Group = list["asyncio.Future[None]"]


class LanceBackend:
    """A bucket persisted as a Lance dataset under ``storage_path``.

    Args:
        bucket_id: the bucket number Pulsing assigns.
        storage_path: the bucket's directory, created if missing. Pulsing passes
            ``{storage_path}/bucket_{id}``; the topic is not part of it, so give
            each topic its own ``storage_path``. Defaults to
            ``./queue_storage/bucket_{id}``.
        batch_size: rows buffered before an automatic flush.
        **options: see :attr:`OPTIONS`. Unknown options are ignored with one
            warning per name, so options meant for other backends or newer
            versions do not break a deployment.

    Options:
        flush_threshold: rows buffered before an automatic flush; defaults to
            ``batch_size`` (the original docs said 1000, but Pulsing users set the
            threshold through ``write_queue(batch_size=...)``).
        max_buffer_rows: bound on buffered rows before ``put`` waits for a flush
            (backpressure, never a drop); default ``max(16 * threshold, 2**20)``.

        vector_columns: ``{"name": dim}``; lists of numbers in these columns are
            stored as ``fixed_size_list<float32, dim>`` vectors. Values given as 1-D
            numpy float32 arrays are vectors without being declared. Vectors read
            back as numpy float32 arrays.
        compression: ``"zstd"``, ``"lz4"`` or ``"snappy"``: Lance pages are
            compressed with zstd or lz4 (Lance has no snappy page scheme, so
            snappy pages use zstd).
        field_defaults: ``{"name": value}``; a record read back with that field
            ``None`` (typically an old record written before the field existed)
            gets ``value`` instead.

    Rows are persisted to ``{storage_path}/data.lance`` (Lance file format 2.0),
    one fragment and one dataset version per flush: when ``batch_size`` rows are
    buffered, on :meth:`flush`, and on :meth:`close`. The constructor returns at
    once; opening the dataset and replaying the write-ahead log run in Go, and
    :meth:`ready` waits for them.

    A directory can be held by one live backend only; a second open raises
    :class:`~persisting.LockedError` naming the holder's pid. The hold ends on
    :meth:`close` or when the backend is garbage-collected.
    """

    backend_name: ClassVar[str] = "lance"
    OPTIONS: ClassVar[dict[str, Any]] = {
        "flush_threshold": None,
        "max_buffer_rows": None,
        "vector_columns": None,
        "field_defaults": None,
        "compression": None,
    }
    _warned: ClassVar[set[str]] = set()

    def __init__(
        self,
        bucket_id: int = 0,
        storage_path: str | os.PathLike[str] | None = None,
        batch_size: int = 100,
        **options: Any,
    ) -> None:
        if storage_path is None:
            storage_path = os.path.join("queue_storage", f"bucket_{bucket_id}")
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"persisting: batch_size must be a positive int, got {batch_size!r}")
        self.bucket_id = bucket_id
        self.storage_path = os.fspath(storage_path)
        self.batch_size = batch_size
        self.options = self._take_options(options)
        self._bucket = NativeBucket(self._native_config())
        #: The bucket's absolute directory: the ``bucket`` label of its metrics.
        self.bucket_dir = self._bucket.dir
        # Acknowledged rows; set from the recovered count when recovery ends.
        self._total = 0
        self._bucket.on_ready(self._recovered)
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._submit_scheduled = False
        self._blocked: deque[tuple[pa.RecordBatch, _Group]] = deque()
        self._readers: list[asyncio.Future[None]] = []
        self._bucket.on_wake(self._retry_blocked)

    def _native_config(self) -> dict[str, Any]:
        return {
            "storage_path": os.path.abspath(self.storage_path),
            "bucket_id": self.bucket_id,
            "batch_size": self.options["flush_threshold"] or self.batch_size,
            "max_buffer_rows": self.options["max_buffer_rows"] or 0,
            "compression": self.options["compression"] or "none",
        }

    def _recovered(self, total: int) -> None:
        self._total = max(self._total, total)
        self._wake_readers()
        if self._bucket.ready_error is not None:
            return
        native = self._bucket.stats()
        if native["truncated_bytes"] or native["dropped_frames"]:
            warnings.warn(
                f"persisting: bucket {self.storage_path}: recovery cut "
                f"{native['truncated_bytes']} bytes ({native['dropped_frames']} whole frames "
                f"after a torn one) from the end of {native.get('truncated_file', '?')}; "
                "records whose put never returned may be among them",
                RecoveryWarning,
                stacklevel=2,
            )

    async def ready(self) -> None:
        """Wait until the bucket has recovered its dataset and log. Recovery starts
        in the constructor and runs in Go; its failure (say a
        :class:`~persisting.CorruptionError`) is raised here and by every later call."""
        await self._bucket.wait_ready()

    def _take_options(self, given: dict[str, Any]) -> dict[str, Any]:
        known = type(self).OPTIONS
        for name in given.keys() - known.keys():
            key = f"{type(self).__name__}.{name}"
            if key not in LanceBackend._warned:
                LanceBackend._warned.add(key)
                warnings.warn(
                    f"persisting: {type(self).__name__} ignores unknown option {name!r}",
                    stacklevel=3,
                )
        options = {name: given.get(name, default) for name, default in known.items()}
        self._validate(options)
        return options

    def _validate(self, options: dict[str, Any]) -> None:
        for name in ("flush_threshold", "max_buffer_rows"):
            value = options[name]
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ValueError(f"persisting: {name} must be a positive int, got {value!r}")
        vectors = options["vector_columns"] or {}
        if not isinstance(vectors, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and v > 0 for k, v in vectors.items()
        ):
            raise ValueError(
                f"persisting: vector_columns must map column names to positive dimensions, "
                f"got {vectors!r}"
            )
        defaults = options["field_defaults"] or {}
        if not isinstance(defaults, dict) or not all(isinstance(k, str) for k in defaults):
            raise ValueError(
                f"persisting: field_defaults must map column names to values, got {defaults!r}"
            )
        self._vectors: dict[str, int] = dict(vectors)
        self._defaults: dict[str, Any] = dict(defaults)
        codec = options["compression"]
        if codec is not None and codec not in COMPRESSIONS:
            raise ValueError(
                f"persisting: unknown compression {codec!r}; valid: None, "
                + ", ".join(repr(c) for c in COMPRESSIONS)
            )

    # -- writes -------------------------------------------------------------

    async def put(self, record: dict[str, Any]) -> None:
        """Append one record; returns once it is stored and readable.

        Concurrent puts in one loop tick travel to Go as one Arrow batch, but each
        fails alone: a record with an unsupported value raises ``TypeError`` naming
        the key and type, one whose field type conflicts with the table raises
        :class:`~persisting.SchemaError`, and the others are stored.
        """
        check_record(record)
        loop = self._bucket.loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._pending.append((record, fut))
        if not self._submit_scheduled:
            self._submit_scheduled = True
            loop.call_soon(self._submit_pending)
        await fut

    async def put_batch(self, records: list[dict[str, Any]] | Any) -> None:
        """Append records in order, all or nothing: if any record is refused, none
        is stored and the error names the bad record's index. Empty is a no-op.

        ``records`` may also be Arrow data (a pyarrow ``RecordBatch`` or ``Table``,
        or any object with ``__arrow_c_stream__`` or ``__arrow_c_array__``), which
        goes to storage without a detour through dicts."""
        if isinstance(records, list):
            if not records:
                return
            batch = self._records_batch(records)
        else:
            batch = arrow_batch(records)
            if batch.num_rows == 0:
                return
        loop = self._bucket.loop()
        if self._pending:
            self._submit_pending()  # puts that came first go first
        fut: asyncio.Future[None] = loop.create_future()
        self._send(batch, [fut])
        await fut

    def _records_batch(self, records: list[dict[str, Any]]) -> pa.RecordBatch:
        for i, record in enumerate(records):
            try:
                check_record(record)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"persisting: put_batch record {i}: {exc}") from None
        try:
            return to_batch(records, self._vectors)
        except RecordTypeError as exc:
            raise TypeError(f"persisting: put_batch record {exc.index}: {exc}") from None
        except MixedTypesError as exc:
            raise SchemaError(
                f"{exc}; put_batch stored none of its {len(records)} records"
            ) from None

    def _submit_pending(self) -> None:
        """Send every record parked this tick as one batch."""
        self._submit_scheduled = False
        group = [(r, f) for r, f in self._pending if not f.cancelled()]
        self._pending = []
        if not group:
            return
        try:
            batch = to_batch([r for r, _ in group], self._vectors)
        except (RecordTypeError, MixedTypesError):
            self._submit_each(group)
            return
        self._send(batch, [f for _, f in group])

    def _submit_each(self, group: list[tuple[dict[str, Any], asyncio.Future[None]]]) -> None:
        """Slow path: one batch per record, so a bad record fails alone."""
        for record, fut in group:
            try:
                batch = to_batch([record], self._vectors)
            except (RecordTypeError, MixedTypesError) as exc:
                fut.set_exception(exc)
                continue
            self._send(batch, [fut])

    def _send(self, batch: pa.RecordBatch, futs: _Group) -> None:
        """Append batch; resolve futs (one per record, or one for a whole
        put_batch) when it is stored. Keeps order behind refused batches."""
        if self._blocked:
            self._blocked.append((batch, futs))
            return
        # The completion of a pending append is drained by the loop, which is
        # not running while this code is: registering the waiter after the
        # call cannot miss it.
        token = self._bucket.new_token()
        try:
            status, first = self._bucket.append(batch, token)
        except Exception as exc:
            self._failed(batch, futs, exc)
            return
        if status == _lib.PENDING:
            self._bucket.on_completion(
                token, lambda first, err: self._committed(batch, futs, first, err)
            )
            return
        if status == _lib.BUSY:
            self._blocked.append((batch, futs))
            return
        self._stored(batch, futs, first)

    def _committed(
        self, batch: pa.RecordBatch, futs: _Group, first: int, error: Exception | None
    ) -> None:
        if error is not None:
            self._failed(batch, futs, error)
        else:
            self._stored(batch, futs, first)

    def _stored(self, batch: pa.RecordBatch, futs: _Group, first: int) -> None:
        self._total = max(self._total, first + batch.num_rows)
        for fut in futs:
            if not fut.done():
                fut.set_result(None)
        self._wake_readers()

    def _failed(self, batch: pa.RecordBatch, futs: _Group, exc: BaseException) -> None:
        if isinstance(exc, SchemaError) and len(futs) > 1:
            # Several puts shared the batch: retry one by one so only the
            # offenders fail.
            for i, fut in enumerate(futs):
                self._send(batch.slice(i, 1), [fut])
            return
        _fail(futs, exc)

    def _retry_blocked(self) -> None:
        while self._blocked:
            batch, futs = self._blocked.popleft()
            self._send(batch, futs)
            if self._blocked and self._blocked[-1][1] is futs:
                break  # still busy; wait for the next wake-up

    def _wake_readers(self) -> None:
        readers, self._readers = self._readers, []
        for fut in readers:
            if not fut.done():
                fut.set_result(None)

    # -- reads --------------------------------------------------------------

    def total_count(self) -> int:
        """Records stored (persisted and buffered). O(1); never goes backwards."""
        return self._total

    async def get(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Up to ``limit`` records from ``offset``, in append order; ``[]`` past the end
        or for ``limit <= 0``. Each call returns fresh dicts."""
        if offset < 0:
            raise ValueError(f"persisting: offset must be >= 0, got {offset}")
        if not self._bucket.ready:
            await self._bucket.wait_ready()
        if limit <= 0 or offset >= self._total:
            return []
        return await self._read(offset, limit)

    async def _read(self, offset: int, limit: int) -> list[dict[str, Any]]:
        table = self._bucket.read(offset, limit, nonblock=True)
        if table is None:  # rows on disk: read them in a worker thread
            table = await self._bucket.run_blocking(self._bucket.read, offset, limit, False)
        assert table is not None
        return to_records(table, self._defaults)

    async def get_stream(
        self, limit: int = 100, offset: int = 0, wait: bool = False, timeout: float | None = None
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Yield lists of 1..100 records, ``limit`` in all, from ``offset``.

        At the end of the data: with ``wait=False`` the stream ends; with
        ``wait=True`` it waits for new records, up to ``timeout`` seconds per wait
        (a falsy timeout, ``None`` or ``0``, waits forever), and ends silently
        when a wait times out. No lock is held across a yield, so the consumer
        may abandon the stream at any point.
        """
        if offset < 0:
            raise ValueError(f"persisting: offset must be >= 0, got {offset}")
        if not self._bucket.ready:
            await self._bucket.wait_ready()
        cursor, remaining = offset, limit
        while remaining > 0:
            if cursor >= self._total:
                if not wait:
                    return
                waiter: asyncio.Future[None] = self._bucket.loop().create_future()
                self._readers.append(waiter)
                try:
                    if timeout:
                        await asyncio.wait_for(waiter, timeout)
                    else:
                        await waiter
                except TimeoutError:
                    return
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
        await self._bucket.wait_ready()
        raw = await self._bucket.run_blocking(_lib.versions, self._bucket.handle)
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
        if offset < 0:
            raise ValueError(f"persisting: offset must be >= 0, got {offset}")
        await self._bucket.wait_ready()
        if limit <= 0:
            return []
        table = await self._bucket.run_blocking(self._bucket.read_version, version, offset, limit)
        return to_records(table, self._defaults)

    # -- maintenance --------------------------------------------------------

    async def flush(self) -> None:
        """Persist every record whose put has returned."""
        if self._pending:
            self._submit_pending()
        await self._bucket.wait_ready()
        await self._bucket.flush()
        # Rows another writer (real Lance) committed meanwhile now count too.
        self._total = max(self._total, self._bucket.stats()["total_count"])

    async def stats(self) -> dict[str, Any]:
        """Per-bucket statistics; Pulsing returns this dict unchanged."""
        await self._bucket.wait_ready()
        return self._stats(self._bucket.stats())

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
            "compression": self.options["compression"] or "none",
            "lance_page_codec": _LANCE_PAGE_CODEC[self.options["compression"] or "none"],
            "options": dict(self.options),
        }

    async def close(self) -> None:
        """Flush and release the directory. Idempotent. Pulsing never calls it; the
        backend is released when garbage-collected too."""
        await self._bucket.close()

    def close_sync(self) -> None:
        """:meth:`close` for synchronous code; blocks until done."""
        self._bucket.close_sync()


class PersistingBackend(LanceBackend):
    """:class:`LanceBackend` plus write-ahead log, compression and metrics.

    Options (pulsing-contract.md §11.2; defaults as documented there):
        enable_wal (False), wal_sync_interval (1.0 s; 0 = fsync every put),
        max_wal_size (100 MiB), compression (None; "zstd", "lz4", "snappy"),
        enable_metrics (False), plus those of :class:`LanceBackend`.

    With ``enable_wal`` every batch is logged under ``{storage_path}/wal/`` before
    ``put`` returns: after its fsync when ``wal_sync_interval`` is 0 (concurrent
    puts share one fsync), else after the write, with a background fsync every
    ``wal_sync_interval`` seconds. A failed fsync is never retried: the bucket
    refuses writes with :class:`~persisting.WALError`. On open the log is replayed
    from the watermark stored in the Lance manifest, so nothing is lost or
    duplicated. A torn tail is cut (a :class:`~persisting.RecoveryWarning` says how
    many bytes); damage followed by good frames fails the open with
    :class:`~persisting.CorruptionError` unless ``wal_truncate_corrupt=True``.
    ``compression`` ("zstd", "lz4", "snappy") applies to WAL frames and to Lance
    pages (zstd or lz4; Lance has no snappy page scheme, so snappy pages use zstd).
    ``enable_metrics`` reports the bucket in the Prometheus metrics of
    :mod:`persisting.metrics` (and in prometheus_client's default registry when it is
    installed); ``metrics_port`` also serves ``/metrics`` from Go on
    ``metrics_addr`` (default 127.0.0.1).
    """

    backend_name: ClassVar[str] = "persisting"
    OPTIONS: ClassVar[dict[str, Any]] = {
        **LanceBackend.OPTIONS,
        "enable_wal": False,
        "wal_sync_interval": 1.0,
        "max_wal_size": 100 * 1024 * 1024,
        "wal_truncate_corrupt": False,
        "enable_metrics": False,
        "metrics_port": None,
        "metrics_addr": "127.0.0.1",
    }

    def _native_config(self) -> dict[str, Any]:
        config = super()._native_config()
        config.update(
            enable_wal=bool(self.options["enable_wal"]),
            wal_sync_interval=float(self.options["wal_sync_interval"]),
            max_wal_size=self.options["max_wal_size"],
            wal_truncate_corrupt=bool(self.options["wal_truncate_corrupt"]),
            enable_metrics=bool(self.options["enable_metrics"]),
        )
        return config

    def __init__(
        self,
        bucket_id: int = 0,
        storage_path: str | os.PathLike[str] | None = None,
        batch_size: int = 100,
        **options: Any,
    ) -> None:
        super().__init__(bucket_id, storage_path, batch_size, **options)
        self.metrics_endpoint: str | None = None
        if self.options["enable_metrics"]:
            metrics.register_prometheus_client()
        port = self.options["metrics_port"]
        if port is not None:
            self.metrics_endpoint = metrics.serve(f"{self.options['metrics_addr']}:{port}")

    def _validate(self, options: dict[str, Any]) -> None:
        super()._validate(options)
        interval = options["wal_sync_interval"]
        if not isinstance(interval, (int, float)) or interval < 0:
            raise ValueError(
                f"persisting: wal_sync_interval must be >= 0 seconds, got {interval!r}"
            )
        port = options["metrics_port"]
        if port is not None and (not isinstance(port, int) or not 0 <= port < 65536):
            raise ValueError(f"persisting: metrics_port must be a port number, got {port!r}")
        size = options["max_wal_size"]
        if not isinstance(size, int) or size <= 0:
            raise ValueError(f"persisting: max_wal_size must be a positive int, got {size!r}")

    def _stats(self, native: dict[str, Any]) -> dict[str, Any]:
        result = super()._stats(native)
        for key in (
            "wal_enabled",
            "wal_size",
            "wal_segments",
            "wal_syncs",
            "wal_groups",
            "wal_records",
            "recovered_frames",
            "recovered_rows",
            "truncated_bytes",
            "dropped_frames",
        ):
            result[key] = native[key]
        if native.get("wal_error"):
            result["wal_error"] = native["wal_error"]
        if native.get("truncated_file"):
            result["truncated_file"] = native["truncated_file"]
        result["wal_codec"] = native["wal_codec"]
        result["wal_bytes_uncompressed"] = native["wal_bytes_uncompressed"]
        result["wal_bytes_written"] = native["wal_bytes_written"]
        if self.options["enable_metrics"]:
            result["metrics"] = metrics.bucket_samples(self._bucket.dir)
        if self.metrics_endpoint is not None:
            result["metrics_endpoint"] = self.metrics_endpoint
        return result


def _fail(futs: _Group, exc: BaseException) -> None:
    for fut in futs:
        if not fut.done():
            fut.set_exception(exc)


def register() -> list[str]:
    """Register the backends with Pulsing under ``"persisting"``, ``"persisting_lance"``
    and their class names. Returns the names registered ([] without Pulsing).

    Pulsing 0.1.2+ exposes the registry in ``pulsing.streaming``; the January 2026
    layout had it in ``pulsing.queue``. Passing the class to ``write_queue`` works
    only because the class name is registered too (Pulsing sends the name).
    """
    try:
        from pulsing.streaming import register_backend
    except ImportError:
        try:
            from pulsing.queue import register_backend  # type: ignore[no-redef]
        except ImportError:
            return []
    names = {
        "persisting": PersistingBackend,
        "persisting_lance": LanceBackend,
        PersistingBackend.__name__: PersistingBackend,
        LanceBackend.__name__: LanceBackend,
    }
    for name, cls in names.items():
        register_backend(name, cls)
    return list(names)


REGISTERED = register()
