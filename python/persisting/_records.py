"""Python records ⇄ Arrow record batches.

The mapping is DESIGN.md's table: bool, int (int64), float (float64), str,
bytes, None, datetime (timestamp[us], tz kept), date (date32), lists of
those, and dicts (structs). A value outside it is a ``TypeError`` naming the
key and the type, never a silent ``str()``; containers whose type would not
survive the round trip (tuple, set) are refused too, because a record read
back must equal the record written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

SUPPORTED = "bool, int, float, str, bytes, None, datetime, date, list and dict"

_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError)
_SCALAR_TYPES = (
    pa.types.is_boolean,
    pa.types.is_int64,
    pa.types.is_float64,
    pa.types.is_string,
    pa.types.is_binary,
    pa.types.is_null,
    pa.types.is_date32,
)


class RecordTypeError(TypeError):
    """A record holds a value persisting cannot store; ``index`` is its position in a batch."""

    def __init__(self, message: str, index: int = 0) -> None:
        super().__init__(message)
        self.index = index


class MixedTypesError(TypeError):
    """Records that are each valid disagree on a field's type within one batch."""


def check_record(record: Any) -> None:
    """Cheap structural checks done before a record is parked: a non-empty dict with str keys."""
    if type(record) is not dict:
        if not isinstance(record, dict):
            raise TypeError(f"persisting: a record must be a dict, got {type(record).__name__}")
    if not record:
        raise ValueError("persisting: a record must have at least one field, got {}")
    for key in record:
        if type(key) is not str:
            raise TypeError(
                f"persisting: record keys must be str, got {type(key).__name__} key {key!r}"
            )


def _allowed(dt: pa.DataType) -> bool:
    if any(is_type(dt) for is_type in _SCALAR_TYPES):
        return True
    if pa.types.is_timestamp(dt):
        return dt.unit == "us"
    if pa.types.is_list(dt):
        return _allowed(dt.value_type)
    if pa.types.is_fixed_size_list(dt):
        return pa.types.is_float32(dt.value_type)
    if pa.types.is_struct(dt):
        return dt.num_fields > 0 and all(_allowed(dt.field(i).type) for i in range(dt.num_fields))
    return False


def _survives(value: Any) -> bool:
    """Whether a container value reads back as itself (lists and dicts, recursively)."""
    if isinstance(value, list):
        return all(_survives(v) for v in value)
    if isinstance(value, dict):
        return all(type(k) is str and _survives(v) for k, v in value.items())
    return not isinstance(value, (tuple, set, frozenset))


def _bad_value(key: str, value: Any) -> str | None:
    """Why ``{key: value}`` cannot be stored, or None if it can."""
    if not _survives(value):
        return f"a {type(value).__name__} (or a value inside it) does not read back as itself"
    try:
        dt = pa.RecordBatch.from_pylist([{key: value}]).schema.field(0).type
    except _ARROW_ERRORS as exc:
        return str(exc)
    if not _allowed(dt):
        return f"it maps to Arrow type {dt}"
    return None


def diagnose(record: dict[str, Any], index: int = 0) -> RecordTypeError | None:
    """The error for the first unstorable value of a record, or None."""
    for key, value in record.items():
        why = _bad_value(key, value)
        if why is not None:
            return RecordTypeError(
                f"persisting: cannot store key {key!r}: value of type {type(value).__name__} "
                f"is not supported ({why}); supported types: {SUPPORTED}",
                index,
            )
    return None


def to_batch(records: Sequence[dict[str, Any]]) -> pa.RecordBatch:
    """Convert records to one batch whose columns are the union of their keys,
    in first-seen order (a record without a key holds None there).

    Raises :class:`RecordTypeError` for the first record holding an unsupported
    value (its ``index`` says which), or :class:`MixedTypesError` when every record
    is valid alone but they disagree on a field's type.
    """
    keys = list(dict.fromkeys(key for record in records for key in record))
    arrays = []
    for key in keys:
        values = [record.get(key) for record in records]
        try:
            arr = pa.array(values)
        except _ARROW_ERRORS as exc:
            raise _first_bad(records, key) or MixedTypesError(
                f"persisting: records disagree on the type of field {key!r}: {exc}"
            ) from None
        dt = arr.type
        if not _allowed(dt) or pa.types.is_list(dt) or pa.types.is_struct(dt):
            err = _first_bad(records, key)
            if err is not None:
                raise err
        arrays.append(arr)
    return pa.RecordBatch.from_arrays(arrays, names=keys)


def _first_bad(records: Sequence[dict[str, Any]], key: str) -> RecordTypeError | None:
    for i, record in enumerate(records):
        value = record.get(key)
        if value is not None:
            err = diagnose({key: value}, i)
            if err is not None:
                return err
    return None


def to_records(table: pa.Table | pa.RecordBatch) -> list[dict[str, Any]]:
    """Fresh dicts, one per row."""
    return table.to_pylist()
