"""Typed errors raised by persisting.

Every message says what happened, to which bucket directory, and what the user
can do. Across a Pulsing actor boundary only the message survives (Pulsing
re-raises it as ``PulsingActorError``), so messages must stand on their own.
"""

from __future__ import annotations


class StorageError(Exception):
    """A storage operation failed; nothing the caller was not told about was lost.

    Errors from the Go core carry their details as attributes, never only in the
    message: ``path`` (the file or directory concerned), ``offset`` (a byte offset
    in it, -1 when none), ``pid`` (the holder of a lock) and ``field`` (the field
    of a record)."""

    path: str | None = None
    offset: int = -1
    pid: int | None = None
    field: str | None = None


class WALError(StorageError):
    """The write-ahead log failed. The bucket refuses further writes until reopened;
    records acknowledged before the failure stay recoverable."""


class SchemaError(StorageError, TypeError):
    """A record's field type cannot be reconciled with the table's type.

    Only the offending record is refused; the bucket keeps working. It is also a
    ``TypeError`` because the record, not the storage, is at fault."""


class CorruptionError(StorageError):
    """Stored data is damaged; ``path`` and ``offset`` (and the message) say where."""


class LockedError(StorageError):
    """Another live backend, in this process or another, holds the bucket directory
    (``path``); ``pid`` is the holder's process id."""


class ClosedError(StorageError):
    """The backend was closed."""


class FencedError(StorageError):
    """A newer owner took the bucket (on an object store, another node opened it):
    this backend no longer writes. What it was writing when it learnt that was not
    acknowledged; everything acknowledged before is the new owner's to serve.
    Close this backend; to write to the bucket again here, open it again (which
    fences the other owner in turn). ``path`` is the bucket's log or dataset."""


class RecoveryWarning(UserWarning):
    """Recovery repaired the write-ahead log: a torn or zero-filled tail was cut.
    The message names the file and the bytes cut; ``stats()`` reports them too."""


__all__ = [
    "ClosedError",
    "CorruptionError",
    "FencedError",
    "LockedError",
    "RecoveryWarning",
    "SchemaError",
    "StorageError",
    "WALError",
]
