"""One live backend per directory, in this process or another; the hold ends
with close() or garbage collection."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import textwrap

import pytest

from persisting import LockedError, PersistingBackend, StorageError


async def test_second_open_in_process_fails_naming_path_and_pid(tmp_path):
    path = str(tmp_path / "bucket_0")
    first = PersistingBackend(bucket_id=0, storage_path=path)
    try:
        second = PersistingBackend(bucket_id=0, storage_path=path)  # never raises
        with pytest.raises(LockedError) as info:
            await second.ready()
        with pytest.raises(LockedError):
            second.total_count()  # what Pulsing calls first, synchronously
        with pytest.raises(LockedError):
            await second.put({"a": 1})
        assert path in str(info.value)
        assert info.value.pid == os.getpid() and info.value.path == path  # data, not wording
        assert f"pid {os.getpid()}" in str(info.value)
    finally:
        await first.close()
    again = PersistingBackend(bucket_id=0, storage_path=path)  # released by close()
    await again.close()


def test_open_held_by_another_process_fails_with_its_pid(tmp_path):
    path = str(tmp_path / "bucket_0")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
                import sys
                from persisting import PersistingBackend
                b = PersistingBackend(bucket_id=0, storage_path={path!r})
                print("held", flush=True)
                sys.stdin.read()
            """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockedError, match=f"pid {holder.pid}") as info:
            PersistingBackend(bucket_id=0, storage_path=path).total_count()
        assert info.value.pid == holder.pid
    finally:
        holder.communicate("", timeout=30)
    # The holder exited without close(): the kernel dropped its lock.
    PersistingBackend(bucket_id=0, storage_path=path).close_sync()


async def test_garbage_collected_backend_releases_directory(tmp_path):
    path = str(tmp_path / "bucket_0")
    b = PersistingBackend(bucket_id=0, storage_path=path)
    await b.put({"id": 1})  # binds the event loop reader too
    del b
    gc.collect()
    again = PersistingBackend(bucket_id=0, storage_path=path)
    await again.close()


async def test_unreachable_but_uncollected_backend_is_reclaimed_on_open(tmp_path):
    path = str(tmp_path / "bucket_0")

    class Cycle:
        pass

    gc.disable()  # so that only the open's own retry can reclaim the cycle
    try:
        holder = Cycle()
        holder.self = holder
        holder.backend = PersistingBackend(bucket_id=0, storage_path=path)
        await holder.backend.put({"id": 1})
        del holder
        again = PersistingBackend(bucket_id=0, storage_path=path)
    finally:
        gc.enable()
    await again.close()


# pylance, imported by other tests, warns at every fork; that fork is the point here.
@pytest.mark.filterwarnings("ignore:lance is not fork-safe")
def test_backend_refuses_use_after_fork(tmp_path):
    b = PersistingBackend(bucket_id=0, storage_path=str(tmp_path / "bucket_0"))
    try:
        pid = os.fork()
        if pid == 0:  # the child: the Go runtime did not survive fork()
            code = 1
            try:
                asyncio.run(b.put({"id": 1}))
            except StorageError as exc:
                code = 0 if "fork" in str(exc) else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        b.close_sync()


def test_a_bucket_directory_belongs_to_the_first_topic_that_opens_it(tmp_path):
    from persisting._topics import TOPIC_MARKER, bucket_dir

    path = str(tmp_path / "bucket_0")
    assert bucket_dir(path, "a") == path
    assert (tmp_path / "bucket_0" / TOPIC_MARKER).read_text() == "a"
    other = bucket_dir(path, "b/c")
    assert other == str(tmp_path / "topics" / "b%2Fc" / "bucket_0")
    assert bucket_dir(path, "a") == path and bucket_dir(path, "b/c") == other
