"""persisting: a durable, Lance-backed storage backend for Pulsing's queue.

Example (a complete program; records go write-ahead log -> buffer -> Lance)::

    import asyncio
    import tempfile

    from persisting import PersistingBackend


    async def main(path: str) -> None:
        backend = PersistingBackend(storage_path=path, batch_size=100, enable_wal=True)
        await backend.put({"id": "o-1", "amount": 12.5})
        await backend.put_batch([{"id": "o-2", "amount": 3.0}, {"id": "o-3"}])
        print(await backend.get(limit=10))  # readable as soon as put returns
        await backend.flush()  # one Lance version
        print(await backend.versions())
        await backend.close()


    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(tmp))

With Pulsing, ``import persisting`` registers the backends (``"persisting"`` and
``"persisting_lance"``, and their class names) and a queue uses them by name::

    writer = await write_queue(system, "orders", backend="persisting",
                               storage_path=path, backend_options={"enable_wal": True})

Every constructor argument and option, with its default, is listed in
``help(persisting.PersistingBackend)``. The errors are :class:`StorageError` and its
children :class:`WALError`, :class:`SchemaError`, :class:`CorruptionError`,
:class:`LockedError` and :class:`ClosedError`; recovery that repaired the log says so
with a :class:`RecoveryWarning`. The Prometheus metrics are in :mod:`persisting.metrics`.
"""

from . import queue
from .dataset import Dataset, open_dataset
from .errors import (
    ClosedError,
    CorruptionError,
    FencedError,
    LockedError,
    RecoveryWarning,
    SchemaError,
    StorageError,
    WALError,
)
from .queue import LanceBackend, PersistingBackend, register

__all__ = [
    "ClosedError",
    "CorruptionError",
    "Dataset",
    "FencedError",
    "LanceBackend",
    "LockedError",
    "PersistingBackend",
    "RecoveryWarning",
    "SchemaError",
    "StorageError",
    "WALError",
    "open_dataset",
    "queue",
    "register",
]
