"""Python records ⇄ Arrow record batches.

The mapping is DESIGN.md's table: bool, int (int64), float (float64), str,
bytes, None, datetime (timestamp[us], timezone kept), date (date32), lists of
those, dicts (structs), and vectors: a 1-D numpy float32 array, or a list of
numbers in a column declared in ``vector_columns``, stored as
``fixed_size_list<float32, dim>`` and read back as a numpy float32 array. numpy
scalars are taken as their Python equivalents.

A value outside the mapping is a ``TypeError`` naming the key and the type, never
a silent ``str()``; containers whose type would not survive the round trip
(tuple, set) are refused too, because a record read back must equal the record
written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import pyarrow as pa

from ._mixing import MixedTypesError, check_plain, conforms
from ._names import GOOD_NAMES, MAX_DEPTH, check_name
from .errors import SchemaError

SUPPORTED = (
    "bool, int, float, str, bytes, None, datetime, date, list, dict, "
    "and 1-D numpy float32 arrays (vectors)"
)

# What pyarrow raises for a value it cannot convert (UnicodeEncodeError: a
# lone surrogate in a string).
_ARROW_ERRORS = (
    pa.ArrowInvalid,
    pa.ArrowTypeError,
    pa.ArrowNotImplementedError,
    OverflowError,
    UnicodeError,
)
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


class RecordSchemaError(SchemaError):
    """One record's values disagree with a declared type (a vector column's
    dimension) or among themselves (a list holding both str and bytes);
    ``index`` is its position in a batch."""

    def __init__(self, message: str, index: int = 0) -> None:
        super().__init__(message)
        self.index = index


def check_record(record: Any) -> None:
    """Structural checks done before a record is parked: a non-empty dict whose
    keys, at every depth, are valid field names (see :mod:`persisting._names`), and
    no deeper than :data:`~persisting._names.MAX_DEPTH`. Raises ``TypeError`` or
    ``ValueError`` naming the field."""
    if not isinstance(record, dict):
        raise TypeError(f"persisting: a record must be a dict, got {type(record).__name__}")
    if not record:
        raise ValueError("persisting: a record must have at least one field, got {}")
    good = GOOD_NAMES
    for key, value in record.items():
        if key not in good:
            if type(key) is not str:
                raise TypeError(
                    f"persisting: record keys must be str, got {type(key).__name__} key {key!r}"
                )
            check_name(key, key)
        if isinstance(value, (dict, list)):
            _check_nested(value, key, 2)


def check_records(records: Sequence[Any], label: str) -> None:
    """:func:`check_record` for every record of a batch; the error names the first
    bad record: "{label} {index}"."""
    for i, record in enumerate(records):
        try:
            check_record(record)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"persisting: {label} {i}: {exc}") from None


def checked_batch(records: Sequence[Any], vectors: Mapping[str, int], label: str) -> pa.RecordBatch:
    """:func:`check_records` then :func:`to_batch`. A batch of non-empty dicts
    whose keys are all known good names and whose values hold no dict or list
    (the common case) is vouched for at C speed, column by column, without a
    Python loop per record; any other batch is checked record by record, so
    the error is the first bad record's."""
    if set(map(type, records)) == {dict} and all(records):
        keys = set().union(*records)
        if GOOD_NAMES.issuperset(keys):
            if len(keys) == len(records[0]) and vectors.keys().isdisjoint(keys):
                batch = _scalar_batch(records)
                if batch is not None:
                    return batch
            try:
                return to_batch(records, vectors, containers_checked=False)
            except _Containers:
                pass
    check_records(records, label)
    return to_batch(records, vectors)


_NUMBERS = frozenset({int, float, type(None)})


def _scalar_batch(records: Sequence[dict[str, Any]]) -> pa.RecordBatch | None:
    """What :func:`to_batch` makes of ``records`` (dicts with known good names,
    the first holding every key, no vector column), converted by pyarrow in one
    call; or None when a column needs to_batch's closer look. A column that
    comes out as int64, string, bool or null can only have held values of one
    kind; a float64 one may also have taken bools (as 1.0 and 0.0), so its
    values are checked to be numbers. Nested values, bytes, datetimes and
    anything pyarrow refuses take to_batch's path, which names what is wrong."""
    try:
        batch = pa.RecordBatch.from_pylist(records)
    except Exception:  # to_batch sorts it out and raises the typed error
        return None
    for field in batch.schema:
        if field.type in _UNMIXED:
            continue
        if field.type == pa.float64() and _numbers_only(records, field.name):
            continue
        return None
    return batch


def _numbers_only(records: Sequence[dict[str, Any]], name: str) -> bool:
    try:
        return _NUMBERS.issuperset(map(type, map(itemgetter(name), records)))
    except KeyError:  # a record without the key: None there
        return _NUMBERS.issuperset(map(type, (r.get(name) for r in records)))


class _Containers(Exception):
    """A column holds dicts or lists that check_record has not seen."""


_CONTAINERS = (dict, list)


def _has_containers(values: list[Any]) -> bool:
    return any(issubclass(t, _CONTAINERS) for t in set(map(type, values)))


def _check_nested(value: dict[Any, Any] | list[Any], path: str, depth: int) -> None:
    """Names and depth inside a dict or list whose items sit at ``depth``."""
    if depth > MAX_DEPTH:
        raise ValueError(
            f"persisting: field {path!r}: nested deeper than {MAX_DEPTH} levels "
            "(a top-level field is level 1; each dict or list adds one)"
        )
    if isinstance(value, dict):
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(
                    f"persisting: field {path!r}: dict keys must be str, got "
                    f"{type(key).__name__} key {key!r}"
                )
            check_name(key, f"{path}.{key}")
            if isinstance(item, (dict, list)):
                _check_nested(item, f"{path}.{key}", depth + 1)
        return
    for item in value:
        if isinstance(item, (dict, list)):
            _check_nested(item, f"{path}[]", depth + 1)


def allowed(dt: pa.DataType) -> bool:
    """Whether an Arrow type is in persisting's mapping."""
    if any(is_type(dt) for is_type in _SCALAR_TYPES):
        return True
    if pa.types.is_timestamp(dt):
        return dt.unit == "us"
    if pa.types.is_list(dt):
        return allowed(dt.value_type)
    if pa.types.is_fixed_size_list(dt):
        return pa.types.is_float32(dt.value_type)
    if pa.types.is_struct(dt):
        return dt.num_fields > 0 and all(allowed(dt.field(i).type) for i in range(dt.num_fields))
    return False


def _survives(value: Any) -> bool:
    """Whether a container value reads back as itself (lists and dicts, recursively)."""
    if isinstance(value, list):
        return all(_survives(v) for v in value)
    if isinstance(value, dict):
        return all(type(k) is str and _survives(v) for k, v in value.items())
    if isinstance(value, np.ndarray):
        return False  # only as a whole column value (a vector), handled before
    return not isinstance(value, (tuple, set, frozenset))


def _plain(value: Any) -> Any:
    """numpy scalars as their Python equivalents, recursively inside lists and dicts."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _bad_value(key: str, value: Any) -> str | None:
    """Why ``{key: value}`` cannot be stored, or None if it can."""
    if isinstance(value, np.ndarray):
        if value.ndim == 1 and value.dtype == np.float32:
            return None
        return f"a numpy array is a vector only when 1-D float32, got {value.ndim}-D {value.dtype}"
    if not _survives(value):
        return f"a {type(value).__name__} (or a value inside it) does not read back as itself"
    try:
        dt = pa.array([_plain(value)]).type
    except _ARROW_ERRORS as exc:
        return str(exc)
    if not allowed(dt):
        return f"it maps to Arrow type {dt}"
    return None


def diagnose(record: Mapping[str, Any], index: int = 0) -> RecordTypeError | None:
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


def _vector_array(key: str, values: list[Any], dim: int | None) -> pa.Array:
    """A fixed_size_list<float32, dim> column; dim None takes the first vector's length."""
    rows: list[np.ndarray | None] = []
    declared = dim
    for i, value in enumerate(values):
        if value is None:
            rows.append(None)
            continue
        try:
            vec = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError):
            raise RecordTypeError(
                f"persisting: vector column {key!r} needs numbers, got {type(value).__name__}", i
            ) from None
        if vec.ndim != 1:
            raise RecordTypeError(
                f"persisting: vector column {key!r} needs 1-D values, got {vec.ndim}-D", i
            )
        if len(vec) == 0:
            raise RecordTypeError(
                f"persisting: vector column {key!r} needs at least one element, got none", i
            )
        if declared is not None and len(vec) != declared:
            raise RecordSchemaError(
                f"persisting: field {key!r}: the table has type "
                f"fixed_size_list<float32, {declared}> (declared in vector_columns), the "
                f"record has a vector of dimension {len(vec)}",
                i,
            )
        if dim is None:
            dim = len(vec)
        if len(vec) != dim:
            raise MixedTypesError(
                f"persisting: vector column {key!r} has dimension {dim}, record {i} has {len(vec)}"
            )
        rows.append(vec)
    assert dim is not None
    flat = np.zeros(len(rows) * dim, dtype=np.float32)
    for i, vec in enumerate(rows):
        if vec is not None:
            flat[i * dim : (i + 1) * dim] = vec
    mask = pa.array([vec is None for vec in rows]) if any(v is None for v in rows) else None
    return pa.FixedSizeListArray.from_arrays(pa.array(flat), dim, mask=mask)


_PLAIN, _NESTED, _OUTSIDE = 0, 1, 2
# Types pyarrow infers only from values of one kind (it refuses bool with int,
# str with int...): no mix to look for. It merges silently into the others:
# bool into double, str into binary, date with datetime.
_UNMIXED = frozenset({pa.int64(), pa.string(), pa.bool_(), pa.null()})
_KINDS: dict[pa.DataType, int] = {}


def _kind(dt: pa.DataType) -> int:
    """PLAIN: a scalar type of the mapping; NESTED: a list, struct or vector, whose
    Python values need a closer look; OUTSIDE: not in the mapping. Cached: the
    same few types come back on every put."""
    kind = _KINDS.get(dt)
    if kind is None:
        if not allowed(dt):
            kind = _OUTSIDE
        elif pa.types.is_list(dt) or pa.types.is_struct(dt) or pa.types.is_fixed_size_list(dt):
            kind = _NESTED
        else:
            kind = _PLAIN
        _KINDS[dt] = kind
    return kind


def _column(
    key: str,
    values: list[Any],
    records: Sequence[Mapping[str, Any]],
    vectors: Mapping[str, int],
) -> pa.Array:
    if key in vectors:
        return _vector_array(key, values, vectors[key])
    try:
        arr = pa.array(values)
    except _ARROW_ERRORS as exc:
        err = _first_bad(records, key)
        if err is not None:
            raise err from None
        raise MixedTypesError(
            f"persisting: records disagree on the type of field {key!r}: {exc}"
        ) from None
    kind = _kind(arr.type)
    if kind == _PLAIN:  # a numpy array never infers to a scalar type
        if len(values) > 1 and arr.type not in _UNMIXED:
            check_plain(key, values)
        return arr
    if any(isinstance(v, np.ndarray) for v in values):
        return _numpy_vectors(key, values)
    if kind == _OUTSIDE and any(_has_numpy_scalar(v) for v in values):
        return _column(key, [_plain(v) for v in values], records, vectors)
    err = _first_bad(records, key)
    if err is not None:
        raise err
    for i, value in enumerate(values):
        if not conforms(value, arr.type):
            if len(values) == 1:
                raise RecordSchemaError(
                    f"persisting: field {key!r}: its values disagree on their types (pyarrow "
                    f"would store them all as {arr.type}, changing some); make them agree",
                    i,
                )
            raise MixedTypesError(f"persisting: records disagree on the type of field {key!r}")
    return arr


def _numpy_vectors(key: str, values: list[Any]) -> pa.Array:
    """A column holding numpy arrays: every value must be a 1-D float32 vector."""
    for i, value in enumerate(values):
        if value is None:
            continue
        why = _bad_value(key, value) if isinstance(value, np.ndarray) else "not a vector"
        if why is not None:
            raise RecordTypeError(
                f"persisting: cannot store key {key!r}: value of type "
                f"{type(value).__name__} in a vector column ({why}); supported types: "
                f"{SUPPORTED}",
                i,
            )
    return _vector_array(key, values, None)


def _has_numpy_scalar(value: Any) -> bool:
    if isinstance(value, np.generic):
        return True
    if isinstance(value, list):
        return any(_has_numpy_scalar(v) for v in value)
    if isinstance(value, dict):
        return any(_has_numpy_scalar(v) for v in value.values())
    return False


def to_batch(
    records: Sequence[Mapping[str, Any]],
    vectors: Mapping[str, int] | None = None,
    containers_checked: bool = True,
) -> pa.RecordBatch:
    """Convert records to one batch whose columns are the union of their keys,
    in first-seen order (a record without a key holds None there).

    Raises :class:`RecordTypeError` for the first record holding an unsupported
    value (its ``index`` says which), or :class:`MixedTypesError` when every record
    is valid alone but they disagree on a field's type. ``containers_checked``
    False: raise :class:`_Containers` before converting a column that holds a
    dict or list (their names and depth are unchecked).
    """
    vectors = vectors or {}
    keys = column_names(records)
    arrays = []
    for k in keys:
        values = [r.get(k) for r in records]
        if not containers_checked and _has_containers(values):
            raise _Containers
        arrays.append(_column(k, values, records, vectors))
    return pa.RecordBatch.from_arrays(arrays, names=keys)


def column_names(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """The union of the records' keys in first-seen order."""
    first = list(records[0]) if records else []
    if len(set().union(*records)) == len(first):  # the first record has them all
        return first
    return list(dict.fromkeys(chain.from_iterable(records)))


def _first_bad(records: Sequence[Mapping[str, Any]], key: str) -> RecordTypeError | None:
    for i, record in enumerate(records):
        value = record.get(key)
        if value is not None:
            err = diagnose({key: value}, i)
            if err is not None:
                return err
    return None


def arrow_batch(data: Any) -> pa.RecordBatch:
    """One record batch from a pyarrow ``RecordBatch`` or ``Table``, or anything that
    speaks the Arrow PyCapsule protocol (``__arrow_c_stream__``, ``__arrow_c_array__``).
    Every column type must be in the mapping."""
    if isinstance(data, pa.RecordBatch):
        batch = data
    else:
        if isinstance(data, pa.Table):
            table = data
        elif hasattr(data, "__arrow_c_stream__"):
            table = pa.RecordBatchReader.from_stream(data).read_all()
        elif hasattr(data, "__arrow_c_array__"):
            table = pa.Table.from_batches([pa.record_batch(data)])
        else:
            raise TypeError(f"persisting: not an Arrow object: {type(data).__name__}")
        table = table.combine_chunks()
        batches = table.to_batches()
        batch = batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)
    for field in batch.schema:
        if not allowed(field.type):
            raise TypeError(
                f"persisting: column {field.name!r} has Arrow type {field.type}, which is "
                f"outside persisting's mapping ({SUPPORTED}); cast it first"
            )
    return batch
