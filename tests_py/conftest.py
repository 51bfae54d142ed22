"""Shared fixtures: a bucket directory per test, backends closed after the test,
and a real standalone Pulsing actor system."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pulsing as pul
import pytest

from persisting import PersistingBackend


@pytest.fixture
async def open_backend(tmp_path: Path) -> AsyncIterator[Callable[..., PersistingBackend]]:
    """Factory for backends over tmp_path/bucket_N; all are closed at teardown."""
    opened: list[PersistingBackend] = []

    def make(bucket_id: int = 0, batch_size: int = 100, **options: Any) -> PersistingBackend:
        path = options.pop("storage_path", tmp_path / f"bucket_{bucket_id}")
        backend = PersistingBackend(
            bucket_id=bucket_id, storage_path=str(path), batch_size=batch_size, **options
        )
        opened.append(backend)
        return backend

    yield make
    for backend in opened:
        await backend.close()


@pytest.fixture
async def system() -> AsyncIterator[Any]:
    actor_system = await pul.actor_system()
    yield actor_system
    await actor_system.shutdown()
    gc.collect()
