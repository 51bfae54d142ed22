"""PersistingBackend: LanceBackend plus write-ahead log, compression and metrics."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from . import metrics
from ._lance_backend import LanceBackend
from ._topics import is_uri
from .options import LANCE_OPTIONS, OBJECT_STORE_OPTIONS, WAL_OPTIONS


class PersistingBackend(LanceBackend):
    """:class:`LanceBackend` plus write-ahead log, compression and metrics.

    ``PersistingBackend(bucket_id=0, storage_path=None, batch_size=100, **options)``;
    with Pulsing, ``write_queue(..., backend="persisting", storage_path=...,
    batch_size=..., backend_options={...})`` passes the same arguments.

    Args:
        bucket_id (0): the bucket number Pulsing assigns.
        storage_path (None): the bucket's directory, created if missing. Pulsing
            passes ``{storage_path}/bucket_{id}`` (the topic is not part of it: give
            each topic its own ``storage_path``). ``None``:
            ``./queue_storage/bucket_{id}``.
        batch_size (100): rows buffered before an automatic flush to Lance (one
            fragment, one dataset version).

    Options (keyword arguments, Pulsing's ``backend_options``), with defaults:
        enable_wal (False): log every batch under ``{storage_path}/wal/`` before
            ``put`` returns.
        wal_sync_interval (1.0): seconds. ``0``: ``put`` returns after its frame is
            fsynced (concurrent puts share one fsync); ``> 0``: after the write, with
            a background fsync at this interval. ``flush()`` and ``close()`` make
            everything durable.
        max_wal_size (104857600, 100 MiB): past it the bucket flushes and drops
            the log segments now in Lance.
        wal_truncate_corrupt (False): on a damaged frame followed by good ones, cut
            the log there (what is cut moves to ``wal/damaged/``) instead of
            refusing to open with :class:`~persisting.CorruptionError`.
        compression (None): ``"zstd"``, ``"lz4"`` or ``"snappy"`` for WAL frames;
            Lance pages use zstd or lz4 (snappy pages use zstd).
        flush_threshold (None, meaning ``batch_size``): overrides the automatic
            flush row count.
        max_buffer_rows (None, meaning ``max(16 * threshold, 2**20)``): bound on
            buffered rows; past it ``put`` waits for a flush (backpressure, never a
            drop).
        vector_columns (None): ``{"name": dim}``; lists of numbers there are stored
            as ``fixed_size_list<float32, dim>`` and read back as numpy arrays.
        field_defaults (None): ``{"name": value}``; a field read back as ``None``
            (a record written before the field existed) reads as ``value``.
        enable_metrics (False): report this bucket in the Prometheus metrics of
            :mod:`persisting.metrics` (and in prometheus_client's default registry
            when it is installed).
        metrics_port (None): also serve ``/metrics`` from Go on this port (``0``
            picks one; ``stats()["metrics_endpoint"]`` says which).
        metrics_addr ('127.0.0.1'): the address for ``metrics_port``.
        compact_every (64): compact small fragments after this many flushes, then
            clean up old versions; ``0``: only on :meth:`compact`.
        compact_target_rows (None, meaning ``max(65536, 16 * threshold)``, at most
            ``2**20``): rows of a compacted fragment.
        keep_versions (100): versions kept by cleanup; the latest is always kept.
        keep_versions_seconds (0): also keep every version younger than this.
        topic (None): the queue's topic, which Pulsing passes (see LanceBackend).
        storage_options (None): for ``storage_path="s3://bucket/prefix"`` (the
            dataset at ``{storage_path}/data.lance`` on the object store): named as
            pylance's (``aws_endpoint``, ``aws_region``, ``aws_access_key_id``,
            ``aws_secret_access_key``, ``aws_session_token``, ``allow_http``,
            ``aws_virtual_hosted_style_request``); the standard AWS environment
            variables and files fill in the rest.
        wal_location (None, meaning ``"object_store"`` for an ``s3://`` path):
            ``"object_store"`` logs each group commit as one object under
            ``{storage_path}/wal/`` before ``put`` returns (``wal_sync_interval``
            defaults to 0 there), so a node that dies loses nothing acknowledged
            and the next owner replays it; ``"local"`` keeps the log in
            ``local_dir``: rows not yet flushed when the bucket moves to another
            node stay behind on this one (the loss window is what was put since
            the last flush).
        local_dir (None): the directory of a local log (``wal_location="local"``).

    On an object store, one writer per bucket is enforced by fencing: opening a
    bucket takes a new epoch (a conditional write) and commits it to the
    dataset, and the previous owner's next write or flush fails with
    :class:`~persisting.FencedError`.

    Unknown options are ignored with one warning per name; types are strict
    (``enable_wal="false"`` is a ``TypeError``, a value out of range a
    ``ValueError``), raised by :meth:`ready` and every later call, never by the
    constructor.

    Durability: with the WAL off a record is durable once a flush wrote it to
    Lance. With ``enable_wal`` and ``wal_sync_interval=0`` an acknowledged record
    is on disk when ``put`` returns. A failed fsync is never retried: the bucket
    refuses writes with :class:`~persisting.WALError`. On open the log is replayed
    from the watermark stored in the Lance manifest, so nothing is lost or
    duplicated. A torn tail is cut (a :class:`~persisting.RecoveryWarning` says how
    many bytes); damage followed by good frames fails the open with
    :class:`~persisting.CorruptionError` unless ``wal_truncate_corrupt=True``.
    """

    backend_name: ClassVar[str] = "persisting"
    OPTION_NAMES: ClassVar[frozenset[str]] = LANCE_OPTIONS | WAL_OPTIONS | OBJECT_STORE_OPTIONS

    def __init__(
        self,
        bucket_id: int = 0,
        storage_path: str | os.PathLike[str] | None = None,
        batch_size: int = 100,
        **options: Any,
    ) -> None:
        self.metrics_endpoint: str | None = None
        # On an object store with the log there, a group is acknowledged once
        # it is an object (interval 0) unless an interval is given.
        self._interval_given = "wal_sync_interval" in options
        super().__init__(bucket_id, storage_path, batch_size, **options)
        if self._error is not None:
            return
        try:
            if self.options.enable_metrics:
                metrics.register_prometheus_client()
            port = self.options.metrics_port
            if port is not None:
                self.metrics_endpoint = metrics.serve(f"{self.options.metrics_addr}:{port}")
        except Exception as exc:  # kept and raised by every call
            self._error = exc
            self._bucket.close_sync()

    def _stages(self) -> bool:
        return not self.options.enable_wal

    def _native_config(self) -> dict[str, Any]:
        config = super()._native_config()
        config.update(
            enable_wal=self.options.enable_wal,
            wal_sync_interval=self.options.wal_sync_interval,
            max_wal_size=self.options.max_wal_size,
            wal_truncate_corrupt=self.options.wal_truncate_corrupt,
            enable_metrics=self.options.enable_metrics,
        )
        if is_uri(self.storage_path) and not self._interval_given:
            del config["wal_sync_interval"]
        for name in ("wal_location", "local_dir"):
            if (value := getattr(self.options, name)) is not None:
                config[name] = value
        if self.options.storage_options:
            config["storage_options"] = dict(self.options.storage_options)
        return config

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
        if native.get("damaged_files"):
            result["damaged_files"] = native["damaged_files"]
        result["wal_codec"] = native["wal_codec"]
        result["wal_bytes_uncompressed"] = native["wal_bytes_uncompressed"]
        result["wal_bytes_written"] = native["wal_bytes_written"]
        if self.options.enable_metrics:
            result["metrics"] = native.get("metrics", {})
        if self.metrics_endpoint is not None:
            result["metrics_endpoint"] = self.metrics_endpoint
        return result
