"""Records round-trip exactly, and bad input is a clear, typed error that costs
nothing already accepted."""

from __future__ import annotations

import asyncio
import decimal
from typing import Any

import pytest

from persisting import SchemaError

SCALARS = [
    {"b": True, "i": 7, "f": 2.5, "s": "héllo", "y": b"\x00\xff", "n": None},
    {"b": False, "i": -(2**63), "f": -0.0, "s": "", "y": b"", "n": None},
    {"b": True, "i": 2**63 - 1, "f": 1e308, "s": "x" * 10_000, "y": bytes(range(256)), "n": None},
]
LISTS = [
    {"li": [1, 2, 3], "lf": [0.5], "ls": ["a", "b"], "ly": [b"x"], "lb": [True, False]},
    {"li": [], "lf": [1.0, None], "ls": [None], "ly": [], "lb": []},
]


@pytest.mark.parametrize("records", [SCALARS, LISTS], ids=["scalars", "lists"])
async def test_round_trip_exact(open_backend, records):
    b = open_backend()
    for record in records:
        await b.put(dict(record))
    got = await b.get(100, 0)
    assert got == records
    for g, r in zip(got, records, strict=True):
        assert g is not r
        assert {k: type(v) for k, v in g.items()} == {k: type(v) for k, v in r.items()}


@pytest.mark.parametrize(
    ("record", "error", "match"),
    [
        (["not", "a", "dict"], TypeError, "must be a dict, got list"),
        ({1: "x"}, TypeError, "keys must be str, got int"),
        ({}, ValueError, "at least one field"),
        ({"v": object()}, TypeError, "key 'v': value of type object"),
        ({"v": decimal.Decimal("1.5")}, TypeError, "key 'v': value of type Decimal"),
        ({"v": {1, 2}}, TypeError, "key 'v': value of type set"),
        ({"v": (1, 2)}, TypeError, "key 'v': value of type tuple"),
        ({"v": 2**70}, TypeError, "key 'v': value of type int"),
        ({"v": 1j}, TypeError, "key 'v': value of type complex"),
    ],
)
async def test_bad_record_is_typed_error_and_bucket_keeps_working(
    open_backend, record, error, match
):
    b = open_backend()
    await b.put({"v": None, "ok": 1})
    with pytest.raises(error, match=match):
        await b.put(record)
    await b.put({"ok": 2})
    assert [r["ok"] for r in await b.get(10, 0)] == [1, 2]
    assert b.total_count() == 2


async def test_concurrent_puts_in_one_group_fail_alone(open_backend):
    b = open_backend()
    await b.put({"id": 0, "name": "seed"})
    records = [
        {"id": 1, "name": "a"},
        {"id": 2, "name": object()},  # unsupported value
        {"id": 3, "name": "c"},
        {"id": "four", "name": "d"},  # int column meets str
        {"id": 5, "name": "e"},
    ]
    results = await asyncio.gather(*(b.put(r) for r in records), return_exceptions=True)
    assert results[0] is None and results[2] is None and results[4] is None
    assert isinstance(results[1], TypeError) and "'name'" in str(results[1])
    assert isinstance(results[3], SchemaError) and '"id"' in str(results[3])
    assert "int64" in str(results[3]) and "utf8" in str(results[3])
    assert [r["id"] for r in await b.get(10, 0)] == [0, 1, 3, 5]


async def test_put_batch_is_all_or_nothing_and_names_the_bad_index(open_backend):
    b = open_backend()
    await b.put({"id": 0})
    batch = [{"id": 1}, {"id": 2}, {"id": 3, "x": object()}, {"id": 4}]
    with pytest.raises(TypeError, match="record 2"):
        await b.put_batch(batch)
    with pytest.raises(TypeError, match="record 1"):
        await b.put_batch([{"id": 5}, "nope"])
    with pytest.raises(SchemaError):
        await b.put_batch([{"id": 6}, {"id": "seven"}])
    with pytest.raises(SchemaError, match="id"):
        await b.put_batch([{"id": "eight"}])  # conflicts with the table, not within the batch
    assert await b.get(10, 0) == [{"id": 0}]
    await b.put_batch([{"id": 9}])
    assert b.total_count() == 2


def deep(levels: int) -> Any:
    """A value nested ``levels`` deep (lists in lists)."""
    value: Any = 1
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("batch", "error", "match"),
    [
        # names: a known column beside a bad one, the first bad record named
        ([{"id": 1}, {"id": 2, "a.b": 1}, {"c.d": 3}], ValueError, r"record 1: .*'\.'"),
        ([{"id": 1}, {"id": 2, 7: 1}], TypeError, "record 1: .*keys must be str"),
        ([{"id": 1}, {}], ValueError, "record 1: .*at least one field"),
        # inside containers, met only once a column is converted
        ([{"id": 1, "n": {"ok": 1}}, {"id": 2, "n": {"b.c": 1}}], ValueError, "record 1: .*n.b.c"),
        ([{"id": 1, "n": [1]}, {"id": 2, "n": deep(40)}], ValueError, "record 1: .*deeper"),
        # the first bad record wins, whichever column holds its fault
        ([{"id": 1, "n": {"": 1}}, {"id": 2, "z.z": 1}], ValueError, "record 0: .*empty"),
    ],
)
async def test_put_batch_checks_names_and_nesting_of_every_record(
    open_backend, batch, error, match
):
    b = open_backend()
    await b.put({"id": 0})
    with pytest.raises(error, match=match):
        await b.put_batch(batch)
    assert await b.get(10, 0) == [{"id": 0}]
    await b.put_batch([{"id": 1, "n": {"ok": 1}}, {"id": 2}])  # good ones still go
    assert b.total_count() == 3


async def test_int_column_widens_to_float(open_backend):
    b = open_backend()
    await b.put({"x": 1})
    await b.put({"x": 2.5})
    assert await b.get(10, 0) == [{"x": 1.0}, {"x": 2.5}]
    assert isinstance((await b.get(1, 0))[0]["x"], float)


async def test_a_cancelled_put_widens_nothing(open_backend):
    """A put cancelled before its tick ends is not stored, and the float it held
    does not widen the int column the others are stored in."""
    b = open_backend(enable_wal=True)
    await asyncio.gather(b.put({"x": 1}), b.put({"x": 0}))  # puts of one tick travel together
    cancelled = asyncio.ensure_future(b.put({"x": 2.5}))
    kept = asyncio.ensure_future(b.put({"x": 3}))
    await asyncio.sleep(0)  # both parked, their group not yet sent
    cancelled.cancel()
    await kept
    rows = await b.get(10, 0)
    assert rows == [{"x": 1}, {"x": 0}, {"x": 3}]
    assert all(type(r["x"]) is int for r in rows)
