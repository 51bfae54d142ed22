"""Values pyarrow would silently change when it infers one column from many:
``str`` with ``bytes``, ``date`` with ``datetime``, naive with aware datetimes,
``bool`` with numbers. A batch holding such a mix is refused (a record alone is
refused as a separate put with a conflicting type would be)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import numpy as np
import pyarrow as pa


class MixedTypesError(TypeError):
    """Records that are each valid alone disagree on a field's type within one batch."""


def _category(value: Any) -> str:
    """The stored kind of a scalar: values of one column must share one (an int
    column may take floats: it widens)."""
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "number"
    if isinstance(value, (float, np.floating)):
        return "number"
    if isinstance(value, datetime):
        return "datetime" if value.tzinfo is None else "aware datetime"
    if isinstance(value, date):
        return "date"
    return type(value).__name__


def check_plain(key: str, values: list[Any]) -> None:
    """pyarrow merges str with bytes, dates with datetimes and naive with aware
    datetimes, changing values; refuse such a mix as separate puts are refused."""
    types = set(map(type, values))
    types.discard(type(None))
    if len(types) == 1 and not issubclass(next(iter(types)), datetime):
        return  # one Python type: nothing pyarrow could merge
    kinds = {_category(v) for v in values if v is not None}
    if len(kinds) > 1:
        raise MixedTypesError(
            f"persisting: records disagree on the type of field {key!r}: "
            + " and ".join(sorted(kinds))
        )


def conforms(value: Any, dt: pa.DataType) -> bool:
    """Whether ``value`` reads back as itself from a column of type ``dt``."""
    if value is None:
        return True
    if pa.types.is_list(dt):
        return isinstance(value, list) and all(conforms(v, dt.value_type) for v in value)
    if pa.types.is_struct(dt):
        return isinstance(value, dict) and all(conforms(value.get(f.name), f.type) for f in dt)
    if pa.types.is_fixed_size_list(dt) or pa.types.is_null(dt):
        return True
    kind = _category(value)
    if pa.types.is_timestamp(dt):
        return kind == ("datetime" if dt.tz is None else "aware datetime")
    return kind == _KIND_OF_TYPE.get(str(dt), kind)


_KIND_OF_TYPE = {
    "bool": "bool",
    "int64": "number",
    "double": "number",
    "string": "str",
    "binary": "bytes",
    "date32[day]": "date",
}
