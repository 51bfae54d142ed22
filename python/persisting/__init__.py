"""persisting: a durable, Lance-backed storage backend for Pulsing's queue.

``import persisting`` makes :mod:`persisting.queue` and the backend classes
reachable directly and registers them with Pulsing when Pulsing is installed::

    import persisting
    from pulsing.streaming import write_queue

    writer = await write_queue(system, "orders", backend="persisting",
                               storage_path="/data/orders")
"""

from . import queue
from .dataset import Dataset, open_dataset
from .errors import (
    ClosedError,
    CorruptionError,
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
