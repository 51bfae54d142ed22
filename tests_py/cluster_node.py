"""One node of the Pulsing cluster test (test_cluster.py), a process of its own.

It starts ``pul.actor_system(addr=..., seeds=[...])``, imports persisting (which
registers the backend on this node), waits until it sees ``--members`` nodes
Alive (Pulsing's gossip; every node must agree on the members before bucket
owners are computed), creates its StorageManager (which hosts the buckets this
node owns) and prints ``READY <node_id> <JSON list of the buckets it owns>``.
Then it waits for a line on stdin:

- ``--role idle``: nothing more; it serves the buckets it owns until killed.
- ``--role writer``, on ``GO``: ``--writers`` tasks put records through one
  ``write_queue`` each, ids ``{name}.{seq}``. Each task prints ``T name seq``
  before a put and ``A name seq`` once it was acknowledged (``E name seq error``
  when it failed; the task goes on with the next seq, with the same
  ``write_queue``: Pulsing 0.1.2 lists a SIGKILLed node as Alive for about 15 s,
  so its buckets stay with it and fail until the cluster restarts). On ``STOP``
  the tasks stop and it prints ``DONE``.
- ``--role reader``, on ``GO``: reads every bucket through ``read_queue`` and
  prints one JSON line per bucket (``B {...}``: its rows as ``[writer, seq, id]``
  in read order, the node that owns it now and its dataset), then ``DONE``.

Every line is flushed as printed. The test kills the process; Pulsing 0.1.2 may
crash at interpreter exit, so nothing here depends on a clean exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import pulsing as pul
from pulsing.streaming import read_queue, write_queue
from pulsing.streaming.manager import _compute_owner, ensure_storage_managers

import persisting

PUT_TIMEOUT = 5.0


def say(*parts: object) -> None:
    sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
    sys.stdout.flush()


def bucket_key(args: argparse.Namespace, bucket: int) -> str:
    """The key Pulsing's StorageManager hashes to pick a bucket's owner."""
    return f"{args.topic}:bucket_{bucket}"


async def wait_members(system, expect: int, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        members = await system.members()
        alive = [m for m in members if (m.get("status") or m.get("state")) == "Alive"]
        if len(alive) == expect and len(members) == expect:
            return members
        if time.monotonic() > deadline:
            raise SystemExit(f"cluster did not converge: {members}")
        await asyncio.sleep(0.1)


async def stdin_lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def write(system, args, queue_args: dict, stop: asyncio.Event) -> None:
    async def task(k: int) -> None:
        name = f"{args.name}w{k}"
        writer = await write_queue(system, **queue_args)
        seq = 0
        while not stop.is_set():
            say("T", name, seq)
            record = {"id": f"{name}.{seq}", "writer": name, "seq": seq, "pad": "x" * (seq % 40)}
            try:
                await asyncio.wait_for(writer.put(record), PUT_TIMEOUT)
            except Exception as e:  # the bucket's owner died: not acknowledged
                say("E", name, seq, type(e).__name__, str(e).replace("\n", " ")[:200])
                await asyncio.sleep(0.05)
            else:
                say("A", name, seq)
            seq += 1

    await asyncio.gather(*(task(k) for k in range(args.writers)))


async def read(system, args, queue_args: dict) -> None:
    members = await system.members()
    addrs = {str(m["node_id"]): m.get("addr") for m in members}
    queue_args = {k: v for k, v in queue_args.items() if k != "batch_size"}
    for b in range(args.buckets):
        reader = await read_queue(system, bucket_id=b, **queue_args)
        rows = []
        while batch := await asyncio.wait_for(reader.get(limit=1000), 60):
            rows.extend([r["writer"], r["seq"], r["id"]] for r in batch)
        stats = (await reader.queue.stats())["buckets"][b]
        owner = _compute_owner(bucket_key(args, b), members)
        say(
            "B",
            json.dumps(
                {
                    "bucket": b,
                    "owner": addrs.get(owner),
                    "dataset": stats["dataset_path"],
                    "rows": rows,
                }
            ),
        )


async def main(args: argparse.Namespace) -> None:
    system = await pul.actor_system(addr=args.addr, seeds=args.seeds)
    assert "persisting" in persisting.queue.REGISTERED
    members = await wait_members(system, args.members, 30)
    await ensure_storage_managers(system)
    me = str(system.node_id.id)
    owns = [b for b in range(args.buckets) if _compute_owner(bucket_key(args, b), members) == me]
    say("READY", me, json.dumps(owns))
    queue_args = {
        "topic": args.topic,
        "backend": "persisting",
        "num_buckets": args.buckets,
        "batch_size": args.batch_size,
        "storage_path": args.storage_path,
        "backend_options": json.loads(args.backend_options),
    }
    lines = await stdin_lines()
    if args.role == "idle":
        await lines.read()  # until the test kills it or closes stdin
        return
    command = (await lines.readline()).strip()
    if command != b"GO":
        return
    if args.role == "reader":
        await read(system, args, queue_args)
        say("DONE")
        return
    stop = asyncio.Event()
    writing = asyncio.create_task(write(system, args, queue_args, stop))
    await lines.readline()  # STOP, or EOF
    stop.set()
    await asyncio.wait_for(writing, PUT_TIMEOUT + 5)
    say("DONE")
    await lines.read()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--addr", required=True)
    parser.add_argument("--seeds", nargs="*", default=[])
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--role", choices=["writer", "reader", "idle"], required=True)
    parser.add_argument("--name", default="n")
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--topic", default="cluster")
    parser.add_argument("--buckets", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--storage-path", required=True)
    parser.add_argument("--backend-options", default="{}")
    asyncio.run(main(parser.parse_args()))
