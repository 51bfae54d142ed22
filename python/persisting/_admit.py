"""Admitting a record at once, without a round trip to Go.

Without a write-ahead log a put is acknowledged once its record is readable. A
record whose values are all plain scalars (bool, int, float, str, bytes, None)
that agree with the table's columns can be staged on the Python side and
acknowledged at once: the staged records go to Go together at the end of their
tick, at most once in a few milliseconds, and reads hand them over first. To
keep "a bad record fails its own put", admission knows the kind of every scalar
column, both those Go has and those the staged records introduced, and refuses
(to the slow path, which reports the error) anything it cannot vouch for. With
a log, admitted records still wait for Go, but their batch is built with the
admitted types.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from ._names import GOOD_NAMES
from ._records import column_names

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

_KIND_OF_ARROW = {
    "bool": "bool",
    "int64": "int",
    "double": "float",
    "string": "str",
    "binary": "bytes",
    "null": "null",
}
# The kind of a value by its exact type: subclasses (numpy scalars, enums,
# datetimes) take the slow path, which knows them.
_KIND_OF_TYPE: dict[type, str] = {
    str: "str",
    int: "int",
    float: "float",
    bool: "bool",
    bytes: "bytes",
    type(None): "null",
}
# The Arrow type a column of each kind is built with.
ARROW_OF_KIND = {
    "bool": pa.bool_(),
    "int": pa.int64(),
    "float": pa.float64(),
    "str": pa.string(),
    "bytes": pa.binary(),
    "null": pa.null(),
}


def _utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False  # a lone surrogate
    return True


class ColumnKinds:
    """The scalar kind of every column: Go's table schema plus staged records,
    in the order the columns first appeared."""

    def __init__(self, schema: pa.Schema | None, vectors: Mapping[str, int]) -> None:
        self.kinds: dict[str, str] = {}
        if schema is not None:
            for field in schema:
                self.kinds[field.name] = _KIND_OF_ARROW.get(str(field.type), "other")
        self._vectors = vectors

    def admit(self, record: dict[str, Any]) -> bool:
        """Whether ``record`` (a dict) can be acknowledged at once: non-empty,
        every key a column name known good (a column's, or one checked before:
        :data:`~persisting._names.GOOD_NAMES`), every value a plain scalar that
        agrees with its column. If so, the kinds of the columns it introduces or
        widens are recorded. Anything else takes the slow path, which checks it
        in full and names what is wrong."""
        if not record or (self._vectors and not self._vectors.keys().isdisjoint(record)):
            return False
        kinds = self.kinds
        kind_of = _KIND_OF_TYPE.get
        changes: list[tuple[str, str]] | None = None
        for key, value in record.items():
            kind = kind_of(type(value))
            if kind is None:
                return False  # numpy scalars, datetimes, containers: the slow path
            if kind == "str":
                if not value.isascii() and not _utf8(value):
                    return False
            elif kind == "int":
                if not _INT64_MIN <= value <= _INT64_MAX:
                    return False
            have = kinds.get(key)
            if have == kind or (kind == "null" and have is not None):
                continue
            if have is None:
                if key not in GOOD_NAMES:
                    return False
                if kind == "null":
                    continue
                have = "null"
            elif have == "float" and kind == "int":
                continue
            if have == "null" or (have == "int" and kind == "float"):
                # a new column, or int widening to float
                changes = [*(changes or ()), (key, kind)]
                continue
            return False
        if changes:
            kinds.update(changes)
        return True

    def batch(self, records: list[dict[str, Any]]) -> pa.RecordBatch:
        """The admitted ``records`` as one batch, columns in first-seen order as
        :func:`~persisting._records.to_batch` has them: each built with the type
        its kind names, so nothing is inferred (admission vouched for every value)."""
        names = column_names(records)
        null, kinds = ARROW_OF_KIND["null"], self.kinds
        arrays = [
            # A column never given a kind, or of another kind (a timestamp...),
            # got only None here.
            pa.array([r.get(k) for r in records], type=ARROW_OF_KIND.get(kinds.get(k), null))
            for k in names
        ]
        return pa.RecordBatch.from_arrays(arrays, names=names)
