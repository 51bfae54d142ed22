"""Harness side of the vendored Pulsing suite (not part of the vendored files).

Active only when pytest runs with this directory as rootdir, as
``tests_py/test_pulsing_suite.py`` does (``-c tests_py/pulsing_suite/pytest.ini``);
in any other run (``cd tests_py && pytest``) the vendored tests are not collected,
so they run only through that harness.

Environment:
    PULSING_SUITE_BACKEND: ``memory`` (default: Pulsing's own MemoryBackend) or
        ``persisting``: the name ``"memory"``, which every queue uses unless told
        otherwise, is registered to :class:`persisting.PersistingBackend`.
        Pulsing's ``get_backend_class`` looks in the registered backends before
        the built-in ones, so no Pulsing or vendored file is changed.
    PULSING_SUITE_REPORT: a file that gets one JSON line when each test starts
        and one per test phase report, written as they happen, so the harness
        knows which test was running if the process has to be killed; SIGUSR1
        then dumps every thread's Python stack to the same path + ``.stacks``.

Each test runs in its own empty working directory: queues opened without
``storage_path`` use Pulsing's default ``./queue_storage/{topic}``, and a
persistent backend must not find the data of an earlier test there.
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

SUITE_DIR = Path(__file__).resolve().parent
BACKENDS = ("memory", "persisting")


def _active(config: pytest.Config) -> bool:
    return Path(config.rootpath).resolve() == SUITE_DIR


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if not _active(config):
        return True  # run only through tests_py/test_pulsing_suite.py
    return None


def pytest_configure(config: pytest.Config) -> None:
    if not _active(config):
        return
    backend = os.environ.get("PULSING_SUITE_BACKEND", "memory")
    if backend not in BACKENDS:
        raise pytest.UsageError(f"PULSING_SUITE_BACKEND must be one of {BACKENDS}, got {backend!r}")
    if backend == "persisting":
        from pulsing.streaming import register_backend

        from persisting import PersistingBackend

        register_backend("memory", PersistingBackend)
    global _REPORT
    path = os.environ.get("PULSING_SUITE_REPORT")
    _REPORT = _Report(path)
    if path:
        # The harness sends SIGUSR1 before it kills a stalled run: the Python
        # stacks of every thread land next to the report.
        global _STACKS
        _STACKS = open(path + ".stacks", "a", encoding="utf-8")
        faulthandler.register(signal.SIGUSR1, file=_STACKS, all_threads=True)


def pytest_report_header(config: pytest.Config) -> str | None:
    if not _active(config):
        return None
    from pulsing.streaming import get_backend_class

    cls = get_backend_class("memory")
    return f"pulsing suite: default backend 'memory' -> {cls.__module__}.{cls.__qualname__}"


class _Report:
    def __init__(self, path: str | None) -> None:
        self._file = open(path, "a", encoding="utf-8") if path else None

    def write(self, **event: Any) -> None:
        if self._file is not None:
            self._file.write(json.dumps(event) + "\n")
            self._file.flush()


_REPORT: _Report | None = None
_STACKS: Any = None


def pytest_runtest_logstart(nodeid: str, location: Any) -> None:
    if _REPORT is not None:
        _REPORT.write(event="start", nodeid=nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if _REPORT is None:
        return
    message = ""
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        message = crash.message if crash is not None else str(report.longrepr)
        message = message.strip().splitlines()[0][:300] if message.strip() else ""
    _REPORT.write(
        event="report",
        nodeid=report.nodeid,
        when=report.when,
        outcome=report.outcome,
        duration=round(report.duration, 3),
        message=message,
    )


@pytest.fixture(autouse=True)
def _fresh_cwd(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
