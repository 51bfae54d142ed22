"""Property test of a hostile caller: random values (nested dicts and lists, strings
with surrogates and NULs, bytes, numpy arrays of random dtypes and shapes, naive and
aware datetimes, odd keys) thrown at put and put_batch from concurrent tasks.

Every call answers within a deadline, with success or a typed error; the bucket
stays readable and flushable; pylance reads the dataset; everything accepted reads
back equal, before and after a reopen."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import os
import tempfile
from collections import Counter
from typing import Any

import lance
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from persisting import PersistingBackend, StorageError

DEADLINE = 30
TYPED = (TypeError, ValueError, StorageError)

ODD_KEYS = st.sampled_from(
    ["", "a.b", "a`b", "a\x00b", "_rowid", "_distance", "x" * 300, "\ud800", "é", " "]
)
KEYS = st.one_of(
    st.sampled_from(["a", "b", "c", "d", "e"]),
    ODD_KEYS,
    st.text(st.characters(exclude_categories=()), max_size=4),
)
TEXT = st.text(st.characters(exclude_categories=()), max_size=8)
UTC = dt.timezone.utc
TZ = dt.timezone(dt.timedelta(hours=5, minutes=30))
NAIVE = st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    TEXT,
    st.binary(max_size=8),
    NAIVE,
    NAIVE.map(lambda d: d.replace(tzinfo=UTC)),
    NAIVE.map(lambda d: d.replace(tzinfo=TZ)),
    st.dates(),
    st.tuples(st.integers()),
    st.frozensets(st.integers(), max_size=2),
)
ARRAYS = st.builds(
    lambda dtype, shape: np.zeros(shape, dtype=dtype),
    st.sampled_from([np.float32, np.float64, np.int32, np.uint8, np.bool_]),
    st.one_of(st.tuples(st.integers(0, 4)), st.tuples(st.integers(0, 2), st.integers(0, 2))),
)
VALUES = st.recursive(
    st.one_of(SCALARS, ARRAYS),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, min_size=1, max_size=3)
    ),
    max_leaves=8,
)
RECORDS = st.dictionaries(KEYS, VALUES, min_size=1, max_size=4)
# One call: a single put, or a put_batch of a few records.
CALLS = st.one_of(
    RECORDS.map(lambda r: ("put", r)), st.lists(RECORDS, max_size=3).map(lambda b: ("batch", b))
)


def canonical(value: Any) -> Any:
    """A hashable form in which a value equals its read-back: numbers as floats
    (int columns widen), dicts whose fields are all None as None (Lance 2.0 stores
    no null struct), None fields dropped (a missing field reads as None), vectors
    as tuples, datetimes as instants."""
    if isinstance(value, dict):
        items = {k: canonical(v) for k, v in value.items()}
        items = {k: v for k, v in items.items() if v is not None}
        return tuple(sorted(items.items())) if items else None
    if isinstance(value, (list, np.ndarray)):
        return ("list", *(canonical(v) for v in list(value)))
    if isinstance(value, (bool, np.bool_)):
        return ("bool", bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        return ("nan",) if math.isnan(number) else ("num", number)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return ("instant", value.timestamp())
    return value


async def bounded(aw: Any) -> Any:
    try:
        await asyncio.wait_for(aw, DEADLINE)
    except TYPED as exc:
        return exc
    return None


async def scenario(path: str, calls: list[tuple[str, Any]], wal: bool) -> int:
    """Run the calls; return how many records the dataset holds in the end."""
    options = {"enable_wal": wal, "wal_sync_interval": 0} if wal else {}
    b = PersistingBackend(bucket_id=0, storage_path=path, batch_size=5, **options)
    await b.ready()

    async def call(kind: str, arg: Any) -> Any:
        return await bounded(b.put(arg) if kind == "put" else b.put_batch(arg))

    # Any other exception type, or a hang, fails the test right here.
    outcomes = await asyncio.gather(*(call(k, a) for k, a in calls))
    accepted: Counter[Any] = Counter()
    for (kind, arg), outcome in zip(calls, outcomes, strict=True):
        if outcome is None:
            for record in [arg] if kind == "put" else arg:
                accepted[canonical(record)] += 1
    assert b.total_count() == sum(accepted.values())
    await asyncio.wait_for(b.flush(), DEADLINE)
    rows = await asyncio.wait_for(b.get(10**6, 0), DEADLINE)
    assert Counter(canonical(r) for r in rows) == accepted
    await b.close()

    b = PersistingBackend(bucket_id=0, storage_path=path, **options)
    rows = await asyncio.wait_for(b.get(10**6, 0), DEADLINE)
    assert Counter(canonical(r) for r in rows) == accepted
    await asyncio.wait_for(b.put({"after": 1}), DEADLINE)  # still writable
    await b.close()
    return sum(accepted.values()) + 1


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(calls=st.lists(CALLS, min_size=1, max_size=10), wal=st.booleans())
def test_hostile_values_from_concurrent_tasks(calls: list[tuple[str, Any]], wal: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bucket_0")
        rows = asyncio.run(scenario(path, calls, wal))
        assert lance.dataset(os.path.join(path, "data.lance")).to_table().num_rows == rows
