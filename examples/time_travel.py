"""Versions and time travel: every flush is one Lance dataset version; read the
bucket as it was at any retained version, with persisting or with pylance.

Run: python examples/time_travel.py
"""

from __future__ import annotations

import asyncio
import tempfile

import lance

from persisting import PersistingBackend


async def main(path: str) -> None:
    backend = PersistingBackend(storage_path=path, batch_size=1000)
    for round_ in range(3):
        await backend.put_batch([{"round": round_, "n": n} for n in range(5)])
        await backend.flush()  # one version per flush
    await backend.put({"round": 3, "n": 0, "note": "a new column"})
    await backend.flush()

    for v in await backend.versions():
        print(f"version {v['version']}: {v['rows']} rows at {v['timestamp']:%H:%M:%S}")

    first = await backend.get_version(1, limit=100)
    print("version 1:", first)
    assert [r["round"] for r in first] == [0] * 5
    assert "note" not in first[0]  # each version is read in its own schema

    dataset_path = (await backend.stats())["dataset_path"]
    old = lance.dataset(dataset_path, version=2)
    print(
        f"pylance, version 2: {old.count_rows()} rows; latest: "
        f"{lance.dataset(dataset_path).count_rows()} rows"
    )
    assert old.count_rows() == 10
    await backend.close()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(tmp))
