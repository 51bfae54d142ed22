"""Pulsing storage backends: :class:`LanceBackend` and :class:`PersistingBackend`.

Both implement Pulsing's ``StorageBackend`` protocol
(``pulsing.streaming.backend.StorageBackend``):
``put``, ``put_batch``, ``get(limit, offset)``, the async generator
``get_stream(limit, offset, wait=False, timeout=None)``, ``flush``, ``stats`` and
the synchronous, O(1) ``total_count``. Importing this module registers them
with Pulsing (see :func:`register`).

Offsets form one space per bucket: persisted rows first, then buffered rows,
in append order. A record is readable as soon as its ``put`` returns.
"""

from __future__ import annotations

from ._lance_backend import STREAM_CHUNK, LanceBackend
from ._persisting_backend import PersistingBackend
from ._topics import pass_topic_to_backends

__all__ = ["REGISTERED", "STREAM_CHUNK", "LanceBackend", "PersistingBackend", "register"]


def register() -> list[str]:
    """Register the backends with Pulsing under ``"persisting"``, ``"persisting_lance"``
    and their class names. Returns the names registered ([] without Pulsing).

    Pulsing 0.1.2+ exposes the registry in ``pulsing.streaming``; the January 2026
    layout had it in ``pulsing.queue``. Passing the class to ``write_queue`` works
    only because the class name is registered too (Pulsing sends the name). It
    also has Pulsing hand each bucket its topic, so that queues sharing a
    ``storage_path`` get a directory each (see :mod:`persisting._topics`).
    """
    try:
        from pulsing.streaming import register_backend
    except ImportError:
        try:
            from pulsing.queue import register_backend  # type: ignore[no-redef]
        except ImportError:
            return []
    names = {
        "persisting": PersistingBackend,
        "persisting_lance": LanceBackend,
        PersistingBackend.__name__: PersistingBackend,
        LanceBackend.__name__: LanceBackend,
    }
    for name, cls in names.items():
        register_backend(name, cls)
    pass_topic_to_backends((LanceBackend,))
    return list(names)


REGISTERED = register()
