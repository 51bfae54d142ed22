"""Arrow record batches back to Python records (the other half of :mod:`._records`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa


def _has_struct(dt: pa.DataType) -> bool:
    if pa.types.is_struct(dt):
        return True
    return pa.types.is_list(dt) and _has_struct(dt.value_type)


def _absent_structs(value: Any) -> Any:
    """A dict whose fields are all None reads as None, at any depth.

    Lance 2.0 cannot store a null struct, so a dict a record did not have comes
    back from disk as a dict of Nones; reading both the same way keeps a record
    identical before and after a flush. The price: a dict written with only None
    values reads back as None."""
    if isinstance(value, dict):
        cleaned = {k: _absent_structs(v) for k, v in value.items()}
        return None if all(v is None for v in cleaned.values()) else cleaned
    if isinstance(value, list):
        return [_absent_structs(v) for v in value]
    return value


def to_records(
    table: pa.Table | pa.RecordBatch, defaults: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Fresh dicts, one per row; vectors as numpy float32 arrays; fields that are
    None take their declared default."""
    rows: list[dict[str, Any]] = table.to_pylist()
    for i, field in enumerate(table.schema):
        if _has_struct(field.type):
            name = field.name
            for row in rows:
                row[name] = _absent_structs(row[name])
        if pa.types.is_fixed_size_list(field.type):
            column = table.column(i)
            for row, value in zip(rows, column.to_pylist(), strict=True):
                if value is not None:
                    row[field.name] = np.array(value, dtype=np.float32)
    if defaults:
        for row in rows:
            for key, default in defaults.items():
                if row.get(key) is None:
                    row[key] = default
    return rows
