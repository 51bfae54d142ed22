"""One directory per topic and bucket, although Pulsing 0.1.2 gives a bucket
``{storage_path}/bucket_{id}`` without its topic.

Two queues with the same ``storage_path`` would otherwise share (and lock) one
directory per bucket. :func:`pass_topic_to_backends` makes Pulsing's storage
manager hand the topic to persisting's backends (only to them, only when a
``storage_path`` was given), and :func:`bucket_dir` picks the directory: the one
Pulsing named, claimed by the first topic that opens it (a marker file holds the
topic, so a restart finds the same directory), or, for any other topic,
``{storage_path}/topics/{topic}/bucket_{id}``. A directory written before
markers existed belongs to the first topic that opens it.
"""

from __future__ import annotations

import functools
import os
import urllib.parse
from typing import Any

#: The file in a bucket directory naming the topic that owns it.
TOPIC_MARKER = ".persisting-topic"


def is_uri(path: str) -> bool:
    """Whether ``path`` names an object store location (``s3://bucket/prefix``)."""
    return path.startswith("s3://")


def bucket_dir(path: str, topic: str) -> str:
    """The directory of ``topic``'s bucket, given the path Pulsing chose for it.
    On an object store there is no marker file: the topic is always part of the
    path, ``{parent}/topics/{topic}/{leaf}``."""
    if is_uri(path):
        parent, _, leaf = path.rstrip("/").rpartition("/")
        return f"{parent}/topics/{urllib.parse.quote(topic, safe='')}/{leaf}"
    os.makedirs(path, exist_ok=True)
    marker = os.path.join(path, TOPIC_MARKER)
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        with open(marker, encoding="utf-8") as f:
            owner = f.read()
        if owner == topic:
            return path
        parent, leaf = os.path.split(os.path.normpath(path))
        other = os.path.join(parent, "topics", urllib.parse.quote(topic, safe=""), leaf)
        os.makedirs(other, exist_ok=True)
        return other
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(topic)
        f.flush()
        os.fsync(f.fileno())
    return path


def pass_topic_to_backends(backend_types: tuple[type, ...]) -> bool:
    """Wrap Pulsing's StorageManager so that buckets of ``backend_types`` get
    ``topic`` in their options. Returns False when this Pulsing has no such hook
    (nothing is changed then)."""
    try:
        from pulsing.streaming import manager
        from pulsing.streaming.backend import get_backend_class

        cls = manager.StorageManager._cls
        original = cls._get_or_create_bucket
    except (ImportError, AttributeError):
        return False
    if getattr(original, "_passes_topic", False):
        return True

    @functools.wraps(original)
    async def with_topic(
        self: Any,
        topic: str,
        bucket_id: int,
        batch_size: int,
        storage_path: str | None = None,
        backend: str | type | None = None,
        backend_options: dict[str, Any] | None = None,
    ) -> Any:
        try:
            chosen = get_backend_class(backend or self.default_backend)
        except ValueError:
            chosen = None
        if storage_path and isinstance(chosen, type) and issubclass(chosen, backend_types):
            backend_options = {**(backend_options or {}), "topic": topic}
        return await original(
            self, topic, bucket_id, batch_size, storage_path, backend, backend_options
        )

    with_topic._passes_topic = True  # type: ignore[attr-defined]
    cls._get_or_create_bucket = with_topic
    return True
