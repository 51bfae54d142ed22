"""The original Python persisting backend as a benchmark peer, run from its own code.

It is ``persisting`` 0.3.0 as published on the package index: its ``put`` appends
the record to a list, and every ``batch_size`` records its ``flush`` reads the
whole dataset back and rewrites it with pylance. Its package has our package's
name, so it runs in a child process whose import path starts with its unpacked
wheel (downloaded once, into ``~/.cache/persisting/``): nothing of ours is imported
there.

As a child: ``python bench/original_peer.py --records N --batch-size B`` prints
the records per second of N single ``put`` calls and a final ``flush``.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

VERSION = "0.3.0"
CACHE = Path.home() / ".cache" / "persisting" / f"original-persisting-{VERSION}"


def record(i: int) -> dict[str, Any]:
    return {"id": i, "user": f"user-{i % 977}", "amount": i * 0.25, "ok": i % 3 == 0}


async def ingest(backend: Any, total: int) -> float:
    """N single puts awaited in turn, then a flush: records per second."""
    start = time.perf_counter()
    for i in range(total):
        await backend.put(record(i))
    await backend.flush()
    elapsed = time.perf_counter() - start
    assert backend.total_count() == total, (backend.total_count(), total)
    closed = backend.close()
    if inspect.isawaitable(closed):
        await closed
    return total / elapsed


def unpacked() -> Path:
    """The original's pure-Python package directory, fetched on first use.

    Only ``purelib`` is unpacked: the wheel also carries unrelated binaries of
    that project (about 160 MB) that the queue backend never loads.
    """
    root = CACHE / "purelib"
    if (root / "persisting" / "queue" / "backend.py").exists():
        return root
    with tempfile.TemporaryDirectory() as download:
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
        subprocess.run([*pip, "--dest", download, f"persisting=={VERSION}"], check=True)
        (wheel,) = Path(download).glob("*.whl")
        prefix = f"persisting-{VERSION}.data/purelib/"
        staging = CACHE / "purelib.partial"
        shutil.rmtree(staging, ignore_errors=True)
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                if name.startswith(prefix) and not name.endswith("/"):
                    target = staging / name[len(prefix) :]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.read(name))
        staging.rename(root)
    return root


def measure(total: int, batch_size: int) -> float:
    """Runs the original in a child process; its records per second."""
    child = subprocess.run(
        [sys.executable, __file__, "--records", str(total), "--batch-size", str(batch_size)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(json.loads(child.stdout.splitlines()[-1])["records_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    args = parser.parse_args()
    sys.path.insert(0, str(unpacked()))
    from persisting.queue.backend import PersistingBackend  # the original's

    with tempfile.TemporaryDirectory(prefix="persisting-original-") as path:
        backend = PersistingBackend(bucket_id=0, storage_path=path, batch_size=args.batch_size)
        rate = asyncio.run(ingest(backend, args.records))
    print(json.dumps({"records_per_s": rate}))


if __name__ == "__main__":
    main()
