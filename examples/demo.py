"""End-to-end demo: a standalone Pulsing actor system writes records through the
persisting backend, reads them back, and prints each bucket's stats."""

from __future__ import annotations

import asyncio
import json
import tempfile

import pulsing as pul
from pulsing.streaming import read_queue, write_queue

import persisting  # noqa: F401  (registers the "persisting" backend with Pulsing)

RECORDS = 1000


async def main() -> None:
    storage = tempfile.mkdtemp(prefix="persisting-demo-")
    system = await pul.actor_system()
    try:
        writer = await write_queue(
            system,
            "demo",
            backend="persisting",
            num_buckets=4,
            batch_size=100,
            storage_path=storage,
            backend_options={"enable_wal": True, "compression": "zstd"},
        )
        for i in range(RECORDS):
            await writer.put({"id": f"order-{i}", "amount": i * 1.5, "tags": ["demo"]})
        await writer.flush()

        reader = await read_queue(system, "demo", backend="persisting", storage_path=storage)
        records = []
        while batch := await reader.get(limit=250):
            records.extend(batch)
        print(f"wrote {RECORDS} records, read back {len(records)}")
        assert len(records) == RECORDS, "records went missing"
        stats = await writer.queue.stats()
        print(json.dumps(stats, indent=2, default=str))
    finally:
        await system.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
