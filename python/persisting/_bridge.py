"""The asyncio side of one bucket: a Go handle, its completion eventfd, and the
group submit of pending puts.

Rules kept here: calls made on the event loop
thread never wait on I/O in Go; completions arrive through an eventfd watched
with ``loop.add_reader`` and are drained with one poll call per wake-up; Go
never calls into Python; anything that can block runs in a dedicated pool.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import itertools
import json
import os
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pyarrow as pa

from . import _lib
from ._capsules import StreamCapsule, array_pointers
from .errors import ClosedError, FencedError, LockedError, StorageError

T = TypeVar("T")
Completion = Callable[[int, "Exception | None"], None]

# Open, flush waits, disk reads and close: rare, possibly slow calls.
_EXECUTOR = ThreadPoolExecutor(max_workers=4, thread_name_prefix="persisting")
_POLL_CAPACITY = 256
_READY_TOKEN = 0


class _Registration:
    """What the finalizer needs, kept apart from the bucket so that neither the
    finalizer nor the event loop's reader keeps the bucket alive."""

    def __init__(self, handle: int, fd: int) -> None:
        self.handle = handle
        self.fd = fd
        self.loop: asyncio.AbstractEventLoop | None = None

    def unregister(self) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.remove_reader(self.fd)
        self.loop = None


def _finalize(reg: _Registration) -> None:
    """Release the Go bucket (and its directory lock) when the backend is
    garbage-collected without close(): Pulsing never calls close().

    A finalizer runs wherever the garbage collector happens to run, so it never
    blocks: Go flushes and closes the bucket in the background, and an open of
    the same directory in this process waits for that close."""
    try:
        reg.unregister()
        _lib.lib().persisting_close_detached(reg.handle)
    except Exception:  # at interpreter exit the loop or library may be gone
        pass


def _on_event(ref: weakref.ReferenceType[NativeBucket]) -> None:
    bucket = ref()
    if bucket is not None:
        bucket.drain()


def open_handle(config: dict[str, Any]) -> int:
    """Open the Go bucket. A held lock is retried once after a garbage collection:
    an actor system that was shut down may still hold unreachable backends whose
    finalizers have not run yet (Go waits for the closes they start)."""
    try:
        return _lib.open_bucket(config)
    except LockedError:
        gc.collect()
        return _lib.open_bucket(config)


class NativeBucket:
    """One open Go bucket, bound lazily to the running event loop."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.handle = open_handle(config)
        path = config["storage_path"]
        self.dir = path.rstrip("/") if path.startswith("s3://") else os.path.normpath(path)
        self._pid = os.getpid()
        self._reg = _Registration(self.handle, _lib.lib().persisting_event_fd(self.handle))
        self._tokens = itertools.count(1)
        # token -> callback(first offset, error): completions are dispatched
        # straight from the eventfd callback, without a future in between.
        self._waiting: dict[int, Completion] = {}
        self._on_wake: list[Callable[[], None]] = []
        self._on_ready: list[Callable[[int], None]] = []
        self._closed = False
        # True while nothing is known to stop Go from taking writes: recovered
        # without error, not closed, not fenced (a newer owner took the bucket:
        # Go refuses every write from then on). What staging needs: nothing
        # may be acknowledged before Go answers once it would refuse.
        self.writable = False
        # Recovery runs in Go after open; its end arrives as completion token 0.
        self.ready = False
        self.ready_error: Exception | None = None
        self._ready_waiters: list[asyncio.Future[None]] = []
        self._finalizer = weakref.finalize(self, _finalize, self._reg)
        # Poll buffers, reused: the eventfd callback runs on the loop thread only.
        self._poll_tokens = (ctypes.c_uint64 * _POLL_CAPACITY)()
        self._poll_status = (ctypes.c_int32 * _POLL_CAPACITY)()
        self._poll_first = (ctypes.c_int64 * _POLL_CAPACITY)()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- loop binding -------------------------------------------------------

    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, with the eventfd reader registered on it."""
        if self._closed:
            raise ClosedError("persisting: the backend is closed")
        if _lib.forked():  # the bucket was opened with the library loaded
            raise StorageError(
                f"persisting: this backend was opened in process {self._pid}; "
                "open a new backend after fork() (use 'spawn' or 'forkserver')"
            )
        loop = asyncio.get_running_loop()
        if loop is not self._reg.loop:
            self._reg.unregister()
            loop.add_reader(self._reg.fd, _on_event, weakref.ref(self))
            self._reg.loop = loop
        return loop

    def on_wake(self, callback: Callable[[], None]) -> None:
        """Run callback on every eventfd wake-up (after completions are resolved)."""
        self._on_wake.append(callback)

    def drain(self) -> None:
        """Resolve every queued completion; runs on the loop when the eventfd fires."""
        try:
            os.read(self._reg.fd, 8)
        except BlockingIOError:
            pass
        so = _lib.lib()
        while True:
            n = so.persisting_poll(
                self.handle, self._poll_tokens, self._poll_status, self._poll_first, _POLL_CAPACITY
            )
            for i in range(n):
                if self._poll_tokens[i] == _READY_TOKEN:
                    self._set_ready(self._poll_status[i], self._poll_first[i])
                    continue
                callback = self._waiting.pop(self._poll_tokens[i], None)
                if callback is None:
                    continue
                status = self._poll_status[i]
                if status < 0:
                    msg = _lib.take_string(
                        so.persisting_take_error(self.handle, self._poll_tokens[i])
                    )
                    error = _lib.error_for(status, msg)
                    if isinstance(error, FencedError):
                        self.writable = False
                    callback(0, error)
                else:
                    callback(self._poll_first[i], None)
            if n < _POLL_CAPACITY:
                break
        for callback in self._on_wake:
            callback()

    def _set_ready(self, status: int, total: int) -> None:
        if self.ready:
            return
        error = None
        if status < 0:
            msg = _lib.take_string(_lib.lib().persisting_take_error(self.handle, _READY_TOKEN))
            error = _lib.error_for(status, msg)
        self._mark_ready(error, total)

    def _mark_ready(self, error: Exception | None, total: int) -> None:
        self.ready_error = error
        self.ready = True
        self.writable = error is None and not self._closed
        for callback in self._on_ready:
            callback(total)
        waiters, self._ready_waiters = self._ready_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def on_ready(self, callback: Callable[[int], None]) -> None:
        """Run callback(total rows) when recovery has finished."""
        self._on_ready.append(callback)

    async def wait_ready(self) -> None:
        """Wait for recovery; raise its error (e.g. CorruptionError) if it failed."""
        if not self.ready:
            fut: asyncio.Future[None] = self.loop().create_future()
            self._ready_waiters.append(fut)
            await fut
        if self.ready_error is not None:
            raise self.ready_error

    def recovered_rows(self) -> int:
        """Block until recovery has finished and return the row count it found
        (raising its error). For synchronous callers that need the count now;
        the loop itself learns of the end of recovery through the eventfd."""
        total = ctypes.c_int64(0)
        err = ctypes.c_char_p()
        _lib.check(
            _lib.lib().persisting_wait_ready(self.handle, ctypes.byref(total), ctypes.byref(err)),
            err,
        )
        return total.value

    def new_token(self) -> int:
        return next(self._tokens)

    def on_completion(self, token: int, callback: Completion) -> None:
        """Call callback(first, error) on the loop when token completes. Register it
        before the loop can drain that completion: on the loop thread, before
        returning to it."""
        self.loop()
        self._waiting[token] = callback

    def new_waiter(self) -> tuple[int, asyncio.Future[int]]:
        token = self.new_token()
        fut: asyncio.Future[int] = self.loop().create_future()

        def settle(first: int, error: Exception | None) -> None:
            if fut.done():
                return
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(first)

        self._waiting[token] = settle
        return token, fut

    # -- operations ---------------------------------------------------------

    def append(self, batch: pa.RecordBatch, token: int = 0) -> tuple[int, int]:
        """Hand one batch to Go (non-blocking). Returns (status, first offset);
        status is OK, PENDING (a completion for token follows) or BUSY."""
        capsules, arr, sch = array_pointers(batch)
        first = ctypes.c_int64(0)
        err = ctypes.c_char_p()
        rc = _lib.lib().persisting_append(
            self.handle, arr, sch, token, ctypes.byref(first), ctypes.byref(err)
        )
        del capsules  # Go moved the structs out; their destructors free the shells
        try:
            return _lib.check(rc, err), first.value
        except FencedError:
            self.writable = False
            raise

    def read(self, offset: int, limit: int, nonblock: bool) -> pa.Table | None:
        """Rows [offset, offset+limit) as a table; None when nonblock and the rows are on disk."""
        stream = StreamCapsule()
        err = ctypes.c_char_p()
        rc = _lib.lib().persisting_read(
            self.handle, offset, limit, int(nonblock), stream.address, ctypes.byref(err)
        )
        if _lib.check(rc, err) == _lib.WOULD_BLOCK:
            return None
        return stream.read_all()

    def table_schema(self) -> pa.Schema | None:
        """The table schema as Go has it now (None before the first row); a call
        that never touches the disk."""
        table = self.read(0, 0, nonblock=True)
        if table is None or len(table.schema) == 0:
            return None
        return table.schema

    def read_version(self, version: int, offset: int, limit: int) -> pa.Table:
        """Rows of an old dataset version (blocking: reads the disk)."""
        stream = StreamCapsule()
        err = ctypes.c_char_p()
        rc = _lib.lib().persisting_read_version(
            self.handle, version, offset, limit, stream.address, ctypes.byref(err)
        )
        _lib.check(rc, err)
        return stream.read_all()

    async def flush(self) -> None:
        token, fut = self.new_waiter()
        err = ctypes.c_char_p()
        _lib.check(_lib.lib().persisting_flush(self.handle, token, ctypes.byref(err)), err)
        await fut

    async def maintain(self, compact: bool, cleanup: bool) -> dict[str, Any]:
        """Compact and/or clean up in Go's flush goroutine; the result as a dict."""
        token, fut = self.new_waiter()
        err = ctypes.c_char_p()
        so = _lib.lib()
        _lib.check(
            so.persisting_maintain(
                self.handle, token, int(compact), int(cleanup), ctypes.byref(err)
            ),
            err,
        )
        await fut
        result: dict[str, Any] = json.loads(
            _lib.take_string(so.persisting_take_result(self.handle, token)) or "{}"
        )
        return result

    def stats(self) -> dict[str, Any]:
        return _lib.stats(self.handle)

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.loop().run_in_executor(_EXECUTOR, fn, *args)

    async def close(self) -> None:
        """Close the Go bucket without blocking the loop: appends already handed
        to Go complete first (stored, or with their error), then the close's own
        completion arrives, then the handle is released. Idempotent. Cancelled
        while waiting, the close goes on in the background (never blocking the
        loop) and the handle is released when it ends."""
        if self._closed:
            return
        token, fut = self.new_waiter()
        err = ctypes.c_char_p()
        self._closed = True
        self.writable = False
        self._finalizer.detach()
        try:
            _lib.check(
                _lib.lib().persisting_close_async(self.handle, token, ctypes.byref(err)), err
            )
            await fut
        finally:
            if fut.done():
                self._release()  # the bucket is closed: releasing does not wait
            else:
                self._reg.unregister()
                _lib.lib().persisting_close_detached(self.handle)
                self._fail_waiting()

    def close_sync(self) -> None:
        """Close from synchronous code (no running loop needed); blocks."""
        if self._closed:
            return
        self._closed = True
        self.writable = False
        self._finalizer.detach()
        self._release()

    def _release(self) -> None:
        """Release the handle (closing the bucket first if that has not happened)
        and fail whatever still waits on a completion."""
        self._reg.unregister()
        try:
            _lib.close_bucket(self.handle)
        finally:
            self._fail_waiting()

    def _fail_waiting(self) -> None:
        waiting, self._waiting = self._waiting, {}
        for callback in waiting.values():
            callback(0, ClosedError("persisting: the backend was closed"))
        if not self.ready:
            self._mark_ready(ClosedError("persisting: the backend was closed"), 0)
