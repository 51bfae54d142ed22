"""Property-based round trip: random records over every supported type, with
nulls, nested structs, new fields and int→float widening at random points,
flushed at random points, reopened, and read back as written; pylance agrees."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import tempfile
from typing import Any

import lance
import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from persisting import PersistingBackend
from persisting._names import check_name
from persisting._records import check_records, checked_batch, to_batch

INT64 = st.integers(-(2**63), 2**63 - 1)
FLOATS = st.floats(allow_nan=False, width=64)
TEXT = st.text(max_size=20)
KINDS: dict[str, st.SearchStrategy[Any]] = {
    "bool": st.booleans(),
    "int": INT64,
    "float": FLOATS,
    "str": TEXT,
    "bytes": st.binary(max_size=20),
    "ints": st.lists(INT64, max_size=4),
    "strs": st.lists(st.one_of(st.none(), TEXT), max_size=4),
    "struct": st.fixed_dictionaries({"a": st.one_of(st.none(), INT64), "b": TEXT}),
    "time": st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2100, 1, 1)).map(
        lambda d: d.replace(tzinfo=dt.timezone.utc)
    ),
    "date": st.dates(min_value=dt.date(1970, 1, 1), max_value=dt.date(2100, 1, 1)),
    "num": INT64,  # an int column that may start receiving floats: widening
}


@st.composite
def workloads(draw: st.DrawFn) -> tuple[list[dict[str, Any]], set[int], str]:
    columns = draw(st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=6, unique=True))
    n = draw(st.integers(1, 40))
    # Column j becomes available at record intro[j]: fields appear over time.
    intro = {c: draw(st.integers(0, n - 1)) for c in columns}
    widen_at = draw(st.integers(0, n))
    records = []
    for i in range(n):
        record: dict[str, Any] = {}
        for c in columns:
            if i < intro[c] or not draw(st.booleans()):
                continue
            if draw(st.integers(0, 5)) == 0:
                record[c] = None
            elif c == "num" and i >= widen_at:
                record[c] = draw(FLOATS)
            else:
                record[c] = draw(KINDS[c])
        if not record:
            record["always"] = i
        records.append(record)
    flushes = set(draw(st.lists(st.integers(0, n), max_size=3)))
    codec = draw(st.sampled_from(["none", "zstd", "lz4", "snappy"]))
    return records, flushes, codec


def expected(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What reading back must give: every field of the table in each row (None
    where a record lacked it), ints widened where the column saw a float."""
    keys = list(dict.fromkeys(k for r in records for k in r))
    widened = {
        k
        for k in keys
        if any(isinstance(r.get(k), float) for r in records)
        and any(type(r.get(k)) is int for r in records)
    }
    out = []
    for r in records:
        row = {}
        for k in keys:
            v = r.get(k)
            row[k] = float(v) if k in widened and type(v) is int else v
        out.append(row)
    return out


def normal(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """pylance's view: Lance 2.0 stores no null structs, so a missing dict reads
    there as a dict of Nones, which persisting reads back as None (documented)."""
    return [{k: _none_dicts(v) for k, v in row.items()} for row in rows]


def _none_dicts(v: Any) -> Any:
    if isinstance(v, dict):
        inner = {k: _none_dicts(x) for k, x in v.items()}
        return None if all(x is None for x in inner.values()) else inner
    if isinstance(v, list):
        return [_none_dicts(x) for x in v]
    return v


async def run(records: list[dict[str, Any]], flushes: set[int], codec: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/b"
        options = {"enable_wal": True, "wal_sync_interval": 0, "compression": codec}
        b = PersistingBackend(bucket_id=0, storage_path=path, batch_size=10**6, **options)
        try:
            for i, record in enumerate(records):
                if i in flushes:
                    await b.flush()
                await b.put(dict(record))
            want = normal(expected(records))  # written all-None dicts read as None
            assert await b.get(10**6, 0) == want
        finally:
            await b.close()
        b = PersistingBackend(bucket_id=0, storage_path=path, batch_size=10**6, **options)
        try:
            await b.ready()
            got = await b.get(10**6, 0)
        finally:
            await b.close()
        assert got == want
        theirs = lance.dataset(f"{path}/data.lance").to_table().to_pylist()
        assert normal(theirs) == got


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(workloads())
def test_random_records_round_trip(workload):
    records, flushes, codec = workload
    assert not any(isinstance(v, float) and math.isnan(v) for r in records for v in r.values())
    asyncio.run(run(records, flushes, codec))


# Plain scalars pyarrow may mix up in one column: bools among numbers, str with
# bytes, ints beyond int64, lone surrogates, numpy scalars.
SCALARS = [
    st.none(),
    st.booleans(),
    INT64,
    st.integers(2**63, 2**64),
    FLOATS,
    TEXT,
    st.just("a\ud800"),
    st.binary(max_size=4),
    INT64.map(np.int64),
    st.booleans().map(np.bool_),
]


@st.composite
def plain_batches(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Records of plain scalars, each column drawing from one or two kinds (so
    that mixes are common); the first record usually holds every column."""
    names = draw(st.lists(st.sampled_from("abcd"), min_size=1, max_size=4, unique=True))
    palettes = {
        n: st.one_of(draw(st.lists(st.sampled_from(SCALARS), min_size=1, max_size=2)))
        for n in names
    }
    record = st.fixed_dictionaries({}, optional=palettes).filter(bool)
    first = draw(st.fixed_dictionaries(palettes) | record)
    return [first, *draw(st.lists(record, max_size=6))]


@settings(max_examples=400, deadline=None)
@given(plain_batches())
@example([{"a": 1.5}, {"a": True}])  # pyarrow stores the bool as 1.0
@example([{"a": 1.5, "b": "x"}, {"a": 2, "b": None}])  # an int among floats widens
@example([{"a": "x"}, {"a": b"y"}])  # pyarrow stores both as binary
@example([{"a": 1}, {"a": 2**64}])
@example([{"a": 1.5}, {"a": np.float32(2.5)}])
def test_put_batch_conversion_matches_the_record_by_record_path(records):
    """put_batch converts a list of plain records in one pyarrow call when it can
    vouch for the result; it must store exactly what checking and converting
    column by column stores, and refuse exactly what that refuses."""
    for name in "abcd":
        check_name(name, name)  # known good, as after a first put
    try:
        check_records(records, "record")
        careful = to_batch(records)
    except (TypeError, ValueError) as exc:
        careful = exc
    try:
        fast = checked_batch(records, {}, "record")
    except (TypeError, ValueError) as exc:
        fast = exc
    if isinstance(careful, Exception):
        assert type(fast) is type(careful) and str(fast) == str(careful)
    else:
        assert isinstance(fast, pa.RecordBatch), fast
        assert fast.schema == careful.schema and fast.equals(careful)
