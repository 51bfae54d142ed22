"""Write coalescing and backpressure for one bucket.

Puts made in one loop tick travel to Go as one Arrow batch; each still fails
alone. A batch Go refuses as busy waits, in order, for the eventfd wake-up that
says room was freed. Every future this module hands out is resolved: with
success once Go reports the rows stored, with the record's own error, or with
:class:`~persisting.ClosedError` when the bucket closes first (and then the
record was not stored).

A record of plain scalars that agrees with the table (:mod:`._admit`) is
admitted: checked here once, and its group built with the admitted types.
Without a write-ahead log an admitted record is staged instead: acknowledged at
once, handed to Go with the others of its tick (at most once in HANDOFF_DELAY),
and handed over before any read, so that it is readable from the moment its put
returns. A put that cannot be staged waits for Go as above, and nothing is
staged while such a put is waiting, so that order is kept.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa

from . import _lib
from ._admit import ColumnKinds
from ._bridge import NativeBucket
from ._mixing import MixedTypesError
from ._records import RecordSchemaError, RecordTypeError, check_record, to_batch
from .errors import ClosedError, FencedError, SchemaError, StorageError

Futures = list["asyncio.Future[None]"]
# Errors a record can cause on its own while it is converted.
_RECORD_ERRORS = (RecordTypeError, MixedTypesError, RecordSchemaError)
# Staged records go to Go once this many wait...
STAGE_LIMIT = 4096
# ... or at the end of their tick, but at most one hand-off in this many
# seconds: a producer awaiting each put would otherwise pay a hand-off (an
# Arrow batch and a call into Go) per record, while staged records need none
# to be readable (reads hand over first) or counted. Records staged after a
# quiet spell go at the end of their tick, as soon as before.
HANDOFF_DELAY = 0.01
# The smallest half a group of puts is split into (see WriteQueue._send_now).
MIN_HALF = 16


class WriteQueue:
    """The pending puts and refused batches of one bucket, on its event loop.

    ``on_stored(first, rows)`` runs when rows ``[first, first+rows)`` are stored,
    ``on_staged()`` when one record is staged (before any hand-over)."""

    def __init__(
        self,
        bucket: NativeBucket,
        vectors: Mapping[str, int],
        on_stored: Callable[[int, int], None],
        on_staged: Callable[[], None],
        stage: bool,
    ) -> None:
        self._bucket = bucket
        self._vectors = vectors
        self._on_stored = on_stored
        self._on_staged = on_staged
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        # Every parked record was admitted (ColumnKinds): the group is built
        # with the admitted types, without inference or a second check.
        self._pending_admitted = True
        self._last_group = 0  # records in the last group sent
        self._in_go = 0  # puts sent to Go and not yet answered (a put_batch is one)
        # The loop a submit is scheduled on for this tick; None: none is.
        self._tick_loop: asyncio.AbstractEventLoop | None = None
        self._handoff: asyncio.TimerHandle | asyncio.Handle | None = None  # while staged
        self._handed_at = float("-inf")  # time.monotonic() of the last hand-off
        self._blocked: deque[tuple[pa.RecordBatch, Futures]] = deque()
        # Staging (no write-ahead log only): acknowledged records not yet in Go.
        self._stage = stage
        self._staged: list[dict[str, Any]] = []
        self._kinds: ColumnKinds | None = None  # None: read Go's schema again
        self._unblocked: list[asyncio.Future[None]] = []
        # An error that lost staged records after their puts returned (only an
        # internal failure can: admission vouched for them); every later call
        # raises it.
        self.lost: StorageError | None = None
        bucket.on_wake(self._retry_blocked)

    def stage(self, record: Any) -> bool:
        """Acknowledge a record at once if that is safe (see the module
        docstring and :meth:`ColumnKinds.admit`, which checks it); False sends it
        down the slow path, which checks it in full."""
        if not self._stage or self._pending or not self._admit(record):
            return False
        self._staged.append(dict(record))  # values are immutable scalars
        self._on_staged()  # counted before a hand-over reports it stored
        if len(self._staged) >= STAGE_LIMIT:
            self.submit_pending()
        elif self._handoff is None:
            loop = self._bucket.loop()
            wait = self._handed_at + HANDOFF_DELAY - time.monotonic()
            if wait > 0:
                self._handoff = loop.call_later(wait, self.submit_pending)
            else:
                self._handoff = loop.call_soon(self.submit_pending)
        return True

    def _admit(self, record: Any) -> bool:
        """Whether record can be vouched for here, in order behind everything
        admitted before it (see ColumnKinds.admit)."""
        if type(record) is not dict or self._blocked or not self._bucket.writable:
            return False
        kinds = self._kinds
        if kinds is None:
            kinds = self._kinds = ColumnKinds(self._bucket.table_schema(), self._vectors)
        return kinds.admit(record)

    def _schedule(self) -> asyncio.AbstractEventLoop:
        """The running loop, with one submit scheduled on it for this tick."""
        loop = self._tick_loop
        if loop is None:
            loop = self._tick_loop = self._bucket.loop()
            loop.call_soon(self.submit_pending)
        return loop

    async def hand_over(self) -> None:
        """Give Go every record acknowledged or parked so far, and wait while a
        batch of them waits for room in its buffer (or until the bucket closes):
        what a read, a flush or a close must see first. Returns without
        suspending when nothing waits for room."""
        self.submit_pending()
        while self._blocked:
            fut: asyncio.Future[None] = self._bucket.loop().create_future()
            self._unblocked.append(fut)
            await fut

    def put(self, record: Any) -> asyncio.Future[None]:
        """Park a record until Go reports it stored; the first put of a tick
        schedules one submit. A record admission cannot vouch for is checked in
        full here (``TypeError``/``ValueError`` for a bad one, nothing parked),
        and the group it joins is then converted with inference."""
        if not (self._pending_admitted and self._admit(record)):
            check_record(record)
            self._pending_admitted = False
        # Scheduled even when sent at once below: the empty submit left
        # scheduled has the loop poll once more before it sleeps, which was
        # measured to take a quick completion sooner (one producer, WAL
        # default: ~60 against ~85 µs a put without it).
        fut: asyncio.Future[None] = self._schedule().create_future()
        self._pending.append((record, fut))
        if not self._stage and self._send_now(len(self._pending)):
            self.submit_pending()
        return fut

    def _send_now(self, pending: int) -> bool:
        """With a log, whether ``pending`` parked puts go to Go now rather than at the
        end of the tick (an append with a log always completes later, so the
        put still yields to the loop). One producer awaiting each put (the
        last group held one record) saves a loop iteration. Many producers
        awaiting theirs are split in two groups that take turns: one is
        written and synced while the loop turns the other's completions into
        new puts, instead of the loop and the log waiting for each other."""
        if self._last_group == 1:
            return pending == 1
        if self._in_go:
            return pending >= self._in_go
        return self._last_group >= 2 * MIN_HALF and pending >= self._last_group // 2

    def send_batch(self, batch: pa.RecordBatch) -> asyncio.Future[None]:
        """Append a whole batch, after the puts that came first."""
        fut: asyncio.Future[None] = self._bucket.loop().create_future()
        self.submit_pending()
        self._send(batch, [fut])
        return fut

    def submit_pending(self) -> None:
        """Send every record staged or parked so far (staged ones first: they came
        first), each kind as one batch."""
        self._tick_loop = None
        if self._handoff is not None:
            self._handoff.cancel()
            self._handoff = None
        if self._staged:
            self._hand_off()
        group = [(r, f) for r, f in self._pending if not f.done()]
        kinds = self._kinds if self._pending_admitted else None
        if len(group) < len(self._pending):
            # A cancelled put's record widened or added a kind that the others
            # may not need: infer from the records that go.
            kinds = self._kinds = None
        self._pending = []
        self._pending_admitted = True
        if not group:
            return
        records = [r for r, _ in group]
        self._last_group = len(records)
        try:
            batch = kinds.batch(records) if kinds is not None else to_batch(records, self._vectors)
        except Exception:  # sorted out record by record below
            self._submit_each(group)
            return
        self._send(batch, [f for _, f in group], admitted=kinds is not None)

    def _hand_off(self) -> None:
        staged, self._staged = self._staged, []
        self._handed_at = time.monotonic()
        kinds = self._kinds  # the admission of these (no batch sent since)
        try:
            batch = kinds.batch(staged) if kinds is not None else to_batch(staged, self._vectors)
        except Exception as exc:  # admission vouched for these: an internal failure
            self._lose(len(staged), exc)
            return
        self._send(batch, [])

    def _lose(self, rows: int, exc: BaseException) -> None:
        if self.lost is None and isinstance(exc, FencedError):
            # Without a log, rows not flushed when a newer owner took the
            # bucket are the stated loss window: say so in the fence's words.
            self.lost = exc
        elif self.lost is None:
            self.lost = StorageError(
                f"persisting: bucket {self._bucket.dir}: {rows} acknowledged records that "
                f"had no write-ahead log could not be stored ({type(exc).__name__}: {exc}); "
                "reopen the bucket"
            )

    def _submit_each(self, group: list[tuple[dict[str, Any], asyncio.Future[None]]]) -> None:
        """Slow path: one batch per record, so a bad record fails alone."""
        for record, fut in group:
            try:
                batch = to_batch([record], self._vectors)
            except _RECORD_ERRORS as exc:
                fut.set_exception(exc)
                continue
            except Exception as exc:  # any failure must reach its put
                fut.set_exception(
                    TypeError(
                        f"persisting: the record could not be converted to Arrow "
                        f"({type(exc).__name__}: {exc})"
                    )
                )
                continue
            self._send(batch, [fut])

    def _send(self, batch: pa.RecordBatch, futs: Futures, admitted: bool = False) -> None:
        """Append batch; resolve futs (one per record, or one for a whole
        put_batch) when it is stored. Keeps order behind refused batches.
        ``admitted``: built from admitted records (staged ones always are)."""
        if self._blocked:
            self._blocked.append((batch, futs))
            return
        # The completion of a pending append is drained by the loop, which is
        # not running while this code is: registering the waiter after the
        # call cannot miss it.
        if futs and not admitted:
            self._kinds = None  # a batch not admitted here may change Go's schema
        token = self._bucket.new_token()
        try:
            status, first = self._bucket.append(batch, token)
        except Exception as exc:  # typed errors from Go, reported per put
            self._failed(batch, futs, exc)
            return
        if status == _lib.PENDING:
            waiting = len(futs)
            self._in_go += waiting
            self._bucket.on_completion(
                token, lambda first, err: self._committed(batch, futs, first, err, waiting)
            )
        elif status == _lib.BUSY:
            self._blocked.append((batch, futs))
        else:
            self._stored(batch, futs, first)

    def _committed(
        self,
        batch: pa.RecordBatch,
        futs: Futures,
        first: int,
        error: Exception | None,
        waiting: int,
    ) -> None:
        self._in_go -= waiting
        if error is not None:
            self._failed(batch, futs, error)
        else:
            self._stored(batch, futs, first)

    def _stored(self, batch: pa.RecordBatch, futs: Futures, first: int) -> None:
        self._on_stored(first, batch.num_rows)
        for fut in futs:
            if not fut.done():
                fut.set_result(None)

    def _failed(self, batch: pa.RecordBatch, futs: Futures, exc: BaseException) -> None:
        if not self._staged:
            # Go may have refused what admission vouched for: ask Go again
            # (staged records keep the kinds they were admitted with).
            self._kinds = None
        if isinstance(exc, SchemaError) and len(futs) > 1 and not self._bucket.closed:
            # Several puts shared the batch: retry one by one so only the
            # offenders fail.
            for i, fut in enumerate(futs):
                self._send(batch.slice(i, 1), [fut])
            return
        if not futs:
            self._lose(batch.num_rows, exc)
        fail(futs, exc)

    def _retry_blocked(self) -> None:
        while self._blocked:
            batch, futs = self._blocked.popleft()
            self._send(batch, futs)
            if self._blocked and self._blocked[-1][0] is batch:
                break  # still busy; wait for the next wake-up
        if not self._blocked:
            self._wake_unblocked()

    def _wake_unblocked(self) -> None:
        waiters, self._unblocked = self._unblocked, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def close(self) -> None:
        """Before the bucket closes: send what is parked (it may still be stored)
        and fail what Go refused as busy (it was not stored)."""
        self.submit_pending()
        blocked, self._blocked = self._blocked, deque()
        for batch, futs in blocked:
            if not futs:  # staged: their puts returned
                self._lose(batch.num_rows, ClosedError("closed while Go's buffer was full"))
            fail(
                futs,
                ClosedError("persisting: the backend was closed before this record was stored"),
            )
        self._wake_unblocked()  # hand_over() waiters see nothing blocked, then the close


def fail(futs: Futures, exc: BaseException) -> None:
    for fut in futs:
        if not fut.done():
            fut.set_exception(exc)
