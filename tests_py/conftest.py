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


# A skipped test counts as done on CI while proving nothing: a skip fails the
# run unless it is listed here, by test id, with a reason that holds on CI too.
ALLOWED_SKIPS: dict[str, str] = {}
_skipped: list[tuple[str, str]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and report.nodeid not in ALLOWED_SKIPS:
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped.append((report.nodeid, reason))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped:
        for nodeid, reason in _skipped:
            print(f"\nUNEXPECTED SKIP {nodeid}: {reason}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
