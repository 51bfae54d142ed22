"""Admitting a record at once, without a round trip to Go.

Without a write-ahead log a put is acknowledged once its record is readable. A
record whose values are all plain scalars (bool, int, float, str, bytes, None)
that agree with the table's columns can be staged on the Python side and
acknowledged at once: the staged records go to Go as one batch per loop tick,
and reads hand them over first. To keep "a bad record fails its own put",
admission knows the kind of every scalar column, both those Go has and those the
staged records introduced, and refuses (to the slow path, which reports the
error) anything it cannot vouch for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

_KIND_OF_ARROW = {
    "bool": "bool",
    "int64": "int",
    "double": "float",
    "string": "str",
    "binary": "bytes",
    "null": "null",
}


class ColumnKinds:
    """The scalar kind of every column: Go's table schema plus staged records."""

    def __init__(self, schema: pa.Schema | None, vectors: Mapping[str, int]) -> None:
        self._kinds: dict[str, str] = {}
        if schema is not None:
            for field in schema:
                self._kinds[field.name] = _KIND_OF_ARROW.get(str(field.type), "other")
        self._vectors = vectors

    def admit(self, record: Mapping[str, Any]) -> bool:
        """Whether ``record`` can be acknowledged at once; if so, the kinds of the
        columns it introduces or widens are recorded."""
        if self._vectors and not self._vectors.keys().isdisjoint(record):
            return False
        kinds = self._kinds
        changes: list[tuple[str, str]] | None = None
        for key, value in record.items():
            t = type(value)
            if t is str:
                if not value.isascii():
                    try:
                        value.encode("utf-8")
                    except UnicodeEncodeError:
                        return False
                kind = "str"
            elif t is int:
                if not _INT64_MIN <= value <= _INT64_MAX:
                    return False
                kind = "int"
            elif t is float:
                kind = "float"
            elif value is None:
                continue
            elif t is bool:
                kind = "bool"
            elif t is bytes:
                kind = "bytes"
            else:
                return False  # numpy scalars, datetimes, containers: the slow path
            have = kinds.get(key, "null")
            if have == kind or (have == "float" and kind == "int"):
                continue
            if have == "null" or (have == "int" and kind == "float"):
                # a new column, or int widening to float
                changes = [*(changes or ()), (key, kind)]
                continue
            return False
        if changes:
            kinds.update(changes)
        return True
