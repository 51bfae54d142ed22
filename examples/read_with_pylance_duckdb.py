"""The bucket's data is a plain Lance dataset: pylance and DuckDB read it as it
is, with no export step and without the writer's lock.

Run: python examples/read_with_pylance_duckdb.py
"""

from __future__ import annotations

import asyncio
import tempfile

import duckdb
import lance

from persisting import PersistingBackend


async def main(path: str) -> None:
    backend = PersistingBackend(storage_path=path, batch_size=500, enable_wal=True)
    cities = ["Lyon", "Oslo", "Pune"]
    await backend.put_batch(
        [{"id": i, "city": cities[i % 3], "amount": float(i)} for i in range(1500)]
    )
    await backend.flush()  # what is flushed is in the Lance dataset
    dataset_path = (await backend.stats())["dataset_path"]

    ds = lance.dataset(dataset_path)
    print(f"pylance: {ds.count_rows()} rows, version {ds.version}, schema {ds.schema}")
    oslo = ds.to_table(columns=["id", "amount"], filter="city = 'Oslo'")
    assert oslo.num_rows == 500

    # DuckDB scans the dataset through its Arrow interface.
    totals = duckdb.sql(
        "SELECT city, count(*) AS n, sum(amount) AS total FROM ds GROUP BY city ORDER BY city"
    ).fetchall()
    print("duckdb:", totals)
    assert [(c, n) for c, n, _ in totals] == [("Lyon", 500), ("Oslo", 500), ("Pune", 500)]
    await backend.close()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(tmp))
