"""PersistingBackend: LanceBackend plus write-ahead log, compression and metrics."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from . import metrics
from ._lance_backend import LanceBackend
from .options import LANCE_OPTIONS, WAL_OPTIONS


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
    OPTION_NAMES: ClassVar[frozenset[str]] = LANCE_OPTIONS | WAL_OPTIONS

    def __init__(
        self,
        bucket_id: int = 0,
        storage_path: str | os.PathLike[str] | None = None,
        batch_size: int = 100,
        **options: Any,
    ) -> None:
        self.metrics_endpoint: str | None = None
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
