"""The rules for field names and nesting, checked when a record is put.

The Go core checks the same rules on every batch it receives (it is the
authority, for callers of the C ABI too); checking them here as well lets a bad
record fail its own ``put`` at once, with the field named.
"""

from __future__ import annotations

#: Deepest nesting of a record: a top-level scalar field is depth 1 and every
#: dict or list level adds one.
MAX_DEPTH = 32

#: Longest field name, in UTF-8 bytes.
MAX_NAME_BYTES = 256

#: Column names Lance gives a meaning of its own.
RESERVED_NAMES = frozenset(
    {
        "_rowid",
        "_rowaddr",
        "_rowoffset",
        "_row_created_at_version",
        "_row_last_updated_at_version",
        "_distance",
        "_score",
        "_relevance_score",
        "_fragid",
    }
)

#: Names already found good: the same few keys come back on every put, and a
#: set lookup is all they cost then.
GOOD_NAMES: set[str] = set()
_GOOD_LIMIT = 65536


def check_name(name: str, path: str) -> None:
    """Raise ``ValueError`` naming ``path`` if ``name`` cannot be a field name:
    empty, not encodable as UTF-8 (a lone surrogate), longer than
    :data:`MAX_NAME_BYTES`, holding NUL, ``.`` (Lance addresses nested fields
    with dotted paths) or a backtick (Lance quotes paths with it), or one of
    :data:`RESERVED_NAMES`."""
    if name in GOOD_NAMES:
        return
    why = _why_bad(name)
    if why is not None:
        raise ValueError(f"persisting: field {path!r}: {why}")
    if len(GOOD_NAMES) < _GOOD_LIMIT:
        GOOD_NAMES.add(name)


def _why_bad(name: str) -> str | None:
    if not name:
        return "field names must not be empty"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "field names must be valid Unicode text (this one holds a lone surrogate)"
    if size > MAX_NAME_BYTES:
        return f"field names are at most {MAX_NAME_BYTES} bytes, this one has {size}"
    if "\x00" in name:
        return "field names must not contain NUL"
    if "." in name:
        return "field names must not contain '.' (Lance addresses nested fields with dotted paths)"
    if "`" in name:
        return "field names must not contain '`' (Lance quotes field paths with it)"
    if name in RESERVED_NAMES:
        return "the name is reserved by Lance for a column of its own"
    return None
