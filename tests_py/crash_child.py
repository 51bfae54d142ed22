"""Writer process for the crash tests: puts records through PersistingBackend and
reports on stdout "S p n" before each put starts and "A p n" once it returned.
The parent kills it with SIGKILL at a moment of its choosing.

Usage: python crash_child.py PATH START PRODUCERS [backend options as JSON]
"""

from __future__ import annotations

import asyncio
import json
import sys

from persisting import PersistingBackend


async def main(path: str, start: int, producers: int, options: dict) -> None:
    backend = PersistingBackend(bucket_id=0, storage_path=path, **options)
    await backend.ready()
    out = sys.stdout

    async def produce(p: int) -> None:
        n = start
        while True:
            out.write(f"S {p} {n}\n")
            out.flush()
            await backend.put({"producer": p, "n": n, "payload": "x" * (n % 50)})
            out.write(f"A {p} {n}\n")
            out.flush()
            n += 1

    out.write("READY\n")
    out.flush()
    await asyncio.gather(*(produce(p) for p in range(producers)))


if __name__ == "__main__":
    opts = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), opts))
