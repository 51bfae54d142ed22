"""Vector search helpers for readers (:meth:`Dataset.search`) and writers
(:func:`bucket_search`): the spec Go takes, the query as C floats, pylance's
indexed search of one persisted version, and the merge of several results
into one top k.

Filters are also checked here (``_filter_text``), and Go's Arrow streams
are wrapped (``_stream``), as scan and count share them.
"""

from __future__ import annotations

import ctypes
import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from . import _lib
from ._capsules import StreamCapsule

_METRICS = ("l2", "cosine", "dot")


def _query_vector(vector: Any) -> tuple[Any, int]:
    """The query as a C float array (copied)."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy comes with pyarrow users
        values = [float(x) for x in vector]
        return (ctypes.c_float * len(values))(*values), len(values)
    arr = np.asarray(vector, dtype=np.float32)
    if arr.ndim != 1:
        raise ValueError(f"persisting: the query vector must be 1-D, got shape {arr.shape}")
    arr = np.ascontiguousarray(arr)
    buf = (ctypes.c_float * len(arr)).from_buffer_copy(arr.tobytes())
    return buf, len(arr)


def _search_spec(
    column: str,
    k: int,
    metric: str,
    filter: str | None,
    columns: Sequence[str] | None,
    skip_persisted: bool = False,
) -> bytes:
    if not isinstance(column, str):
        raise TypeError("persisting: search column must be a str")
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"persisting: k must be an int, got {type(k).__name__}")
    if k <= 0:
        raise ValueError(f"persisting: k must be positive, got {k}")
    if not isinstance(metric, str) or metric.lower() not in _METRICS:
        raise ValueError(f"persisting: unknown metric {metric!r} (use 'l2', 'cosine' or 'dot')")
    spec = {
        "column": column,
        "k": k,
        "metric": metric.lower(),
        "filter": _filter_text(filter),
        "columns": None if columns is None else list(columns),
        "skip_persisted": skip_persisted,
    }
    return json.dumps(spec).encode()


def _filter_text(filter: str | None) -> str:
    if filter is None:
        return ""
    if not isinstance(filter, str):
        raise TypeError(f"persisting: filter must be a str, got {type(filter).__name__}")
    return filter


def _stream(fn: Any, *args: Any) -> pa.RecordBatchReader:
    capsule = StreamCapsule()
    err = ctypes.c_char_p()
    _lib.check(fn(*args, ctypes.c_void_p(capsule.address), ctypes.byref(err)), err)
    return pa.RecordBatchReader.from_stream(capsule)


def _merge(tables: list[pa.Table], k: int) -> pa.Table:
    """The k best rows of several search results (distance, bucket, row id)."""
    tables = [t for t in tables if t is not None]
    if not tables:
        raise ValueError("persisting: nothing to merge")
    if len(tables) == 1:
        return tables[0].slice(0, k)
    schema = tables[0].schema
    tables = [t.select(schema.names).cast(schema) for t in tables]
    merged = pa.concat_tables(tables)
    keys = [("_distance", "ascending")]
    if "_bucket" in merged.column_names:
        keys.append(("_bucket", "ascending"))
    keys.append(("_rowid", "ascending"))
    return merged.sort_by(keys).slice(0, k)


def _pylance_search(
    path: str,
    version: int,
    column: str,
    q: Any,
    k: int,
    metric: str,
    filter: str | None,
    columns: Sequence[str] | None,
    *,
    storage_options: dict[str, str] | None = None,
) -> pa.Table:
    """Search one Lance dataset version through pylance, with its index."""
    import lance
    import numpy as np

    ds = lance.dataset(path, version=version, storage_options=storage_options or None)
    table = ds.to_table(
        columns=None if columns is None else list(columns),
        filter=filter or None,
        nearest={
            "column": column,
            "q": np.frombuffer(bytes(q), dtype=np.float32),
            "k": k,
            "metric": metric.lower(),
            "use_index": True,
        },
        prefilter=True,
        with_row_id=True,
    )
    return table.cast(
        pa.schema(
            [pa.field(f.name, pa.float32()) if f.name == "_distance" else f for f in table.schema]
        )
    )


def _have_pylance() -> bool:
    try:
        import lance  # noqa: F401
    except ImportError:
        return False
    return True


def bucket_search(
    handle: int,
    column: str,
    vector: Any,
    k: int,
    metric: str,
    filter: str | None,
    columns: Sequence[str] | None,
    use_index: bool,
    storage_options: dict[str, str] | None = None,
) -> pa.Table:
    """A writer's search: its dataset and its buffer, one snapshot (blocking;
    the backend runs it in a thread). ``storage_options`` reach pylance for a
    dataset on an object store."""
    q, dim = _query_vector(vector)
    version = ctypes.c_uint64(0)
    indexed = use_index and _have_pylance()
    spec = _search_spec(column, k, metric, filter, columns, skip_persisted=indexed)
    buffered = _bucket_search_go(handle, spec, q, dim, version)
    if not indexed or version.value == 0:
        return buffered
    path = _dataset_path_of(handle)
    import lance

    ds = lance.dataset(path, version=version.value, storage_options=storage_options or None)
    if not ds.describe_indices():
        spec = _search_spec(column, k, metric, filter, columns)
        return _bucket_search_go(handle, spec, q, dim, version)
    persisted = _pylance_search(
        path,
        version.value,
        column,
        q,
        k,
        metric,
        filter,
        columns,
        storage_options=storage_options,
    )
    return _merge([persisted, buffered], k)


def _dataset_path_of(handle: int) -> str:
    path: str = _lib.stats(handle)["dataset_path"]
    return path


def _bucket_search_go(
    handle: int, spec: bytes, q: Any, dim: int, version: ctypes.c_uint64
) -> pa.Table:
    """Go's search of a writer's bucket; ``version`` receives the dataset
    version it read, for pylance to search the same one."""
    capsule = StreamCapsule()
    err = ctypes.c_char_p()
    rc = _lib.lib().persisting_bucket_search(
        handle,
        spec,
        q,
        dim,
        ctypes.byref(version),
        ctypes.c_void_p(capsule.address),
        ctypes.byref(err),
    )
    _lib.check(rc, err)
    return pa.RecordBatchReader.from_stream(capsule).read_all()
