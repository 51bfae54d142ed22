"""put_batch with Arrow data: a pyarrow RecordBatch or Table (or anything with
__arrow_c_stream__ / __arrow_c_array__) goes to storage without a detour through
Python dicts. A batch is all or nothing.

Run: python examples/arrow_batch.py
"""

from __future__ import annotations

import asyncio
import tempfile

import numpy as np
import pyarrow as pa

from persisting import PersistingBackend, SchemaError


async def main(path: str) -> None:
    backend = PersistingBackend(storage_path=path, batch_size=10_000, compression="zstd")
    n = 1000
    batch = pa.record_batch(
        {
            "id": pa.array(np.arange(n, dtype=np.int64)),
            "price": pa.array(np.linspace(1.0, 2.0, n)),
            "sku": pa.array([f"sku-{i % 17}" for i in range(n)]),
        }
    )
    await backend.put_batch(batch)
    await backend.put_batch(pa.Table.from_batches([batch]).slice(0, 10))  # a Table works too
    print("stored:", backend.total_count())
    assert backend.total_count() == n + 10

    bad = pa.record_batch({"id": pa.array(["not", "an", "int"])})
    try:
        await backend.put_batch(bad)
    except SchemaError as exc:  # int64 column vs strings: nothing of this batch is stored
        print("refused:", exc)
    assert backend.total_count() == n + 10

    rows = await backend.get(limit=3, offset=998)
    print(rows)
    assert [r["id"] for r in rows] == [998, 999, 0]
    await backend.close()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(tmp))
