"""The ``persisting`` command line, on real buckets written through the backend:
each command's text and --json output, verify on healthy and damaged data,
cat --follow beside a live writer in another process, export read back with
pyarrow, compact/cleanup refused on a held bucket."""

from __future__ import annotations

import asyncio
import glob
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from persisting import PersistingBackend, cli
from test_wal import FRAME_HEADER, frame_offsets

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m persisting ARGS`` in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "persisting", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
    )


def js(proc: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(proc.stdout)


async def write_bucket(path: Path, rows: int = 120, flushes: int = 2, **options: Any) -> None:
    backend = PersistingBackend(bucket_id=0, storage_path=str(path), batch_size=10_000, **options)
    for f in range(flushes):
        await backend.put_batch(
            [
                {
                    "id": f * rows + i,
                    "name": f"name-{f * rows + i}",
                    "tags": ["a", "b"],
                    "amount": float(i),
                    "blob": b"\x00\x01",
                }
                for i in range(rows)
            ]
        )
        await backend.flush()
    await backend.close()


@pytest.fixture
def queue(tmp_path: Path) -> Path:
    """A storage_path with two buckets, two flushes each."""
    root = tmp_path / "orders"
    for b in range(2):
        asyncio.run(write_bucket(root / f"bucket_{b}"))
    return root


WAL_CHILD = textwrap.dedent("""
    import asyncio, os, sys
    from persisting import PersistingBackend

    async def main(path):
        b = PersistingBackend(bucket_id=0, storage_path=path, batch_size=100_000,
                              enable_wal=True, wal_sync_interval=0)
        for i in range(20):
            await b.put_batch([{"id": i * 10 + k, "name": "x" * 50} for k in range(10)])
        os._exit(0)  # no flush, no close: the records live in the WAL only

    asyncio.run(main(sys.argv[1]))
""")


def wal_bucket(path: Path) -> list[str]:
    """A bucket whose records are only in its WAL (a writer that died)."""
    subprocess.run([sys.executable, "-c", WAL_CHILD, str(path)], check=True, timeout=120)
    segs = sorted(glob.glob(str(path / "wal" / "*.wal")))
    assert segs
    return segs


# -- help, entry points -------------------------------------------------------


def test_help_documents_commands_and_exit_codes():
    proc = run("--help")
    assert proc.returncode == 0
    for word in ("inspect", "verify", "cat", "versions", "export", "compact", "cleanup"):
        assert word in proc.stdout
    assert "exit codes:" in proc.stdout and "4    locked" in proc.stdout
    cat = run("cat", "--help")
    assert "appear once" in cat.stdout and "--follow" in cat.stdout


def test_usage_error_is_exit_2(tmp_path):
    assert run().returncode == 2
    assert run("cat", str(tmp_path), "--limit", "-1").returncode == 2
    assert run("frobnicate", str(tmp_path)).returncode == 2


def test_console_script_is_installed(queue):
    scripts = Path(sysconfig.get_path("scripts"))
    exe = scripts / "persisting"
    assert exe.exists(), f"no console script in {scripts}"
    proc = subprocess.run(
        [str(exe), "versions", str(queue), "--json"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)) == 4


def test_not_a_persisting_path_is_exit_3(tmp_path):
    (tmp_path / "empty").mkdir()
    for cmd in ("inspect", "verify", "cat", "versions", "compact"):
        proc = run(cmd, str(tmp_path / "empty"))
        assert proc.returncode == 3, (cmd, proc.stderr)
        assert "not a persisting path" in proc.stderr
    proc = run("inspect", str(tmp_path / "missing"), "--json")
    assert proc.returncode == 3
    assert json.loads(proc.stderr)["exit_code"] == 3


# -- inspect, versions ----------------------------------------------------------


def test_inspect_every_bucket_of_a_storage_path(queue, tmp_path):
    proc = run("inspect", str(queue))
    assert proc.returncode == 0, proc.stderr
    assert "2 bucket(s), 480 rows" in proc.stdout
    assert "bucket 1" in proc.stdout and "name: string" in proc.stdout
    report = js(run("inspect", str(queue), "--json"))
    assert report["rows"] == 480 and [b["bucket"] for b in report["buckets"]] == [0, 1]
    b0 = report["buckets"][0]
    assert b0["dataset"]["rows"] == 240 and b0["dataset"]["version"] == 2
    assert b0["dataset"]["fragments"] == 2 and b0["dataset"]["versions"] == 2
    assert {"name": "tags", "type": "list<item: string>"} in b0["dataset"]["schema"]
    assert b0["writer"] == {"held": False, "pid": b0["writer"]["pid"]}
    assert b0["dataset"]["data_files"] == 2 and b0["bytes"] > 0
    # A bucket with only a WAL: its segments, frames and offsets.
    wal_bucket(tmp_path / "walq" / "bucket_0")
    w = js(run("inspect", str(tmp_path / "walq"), "--json"))["buckets"][0]
    assert w["dataset"] is None
    assert w["wal"]["frames"] == 20 and w["wal"]["rows"] == 200
    assert w["wal"]["segments"][0]["first_offset"] == 0
    assert "20 frames, 200 rows" in run("inspect", str(tmp_path / "walq")).stdout


def test_versions(queue):
    proc = run("versions", str(queue / "bucket_1"))
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["bucket", "version", "timestamp", "(UTC)", "rows"]
    assert [ln.split()[1] for ln in lines[1:]] == ["1", "2"]
    out = js(run("versions", str(queue), "--json"))
    assert [(v["bucket"], v["version"], v["rows"]) for v in out] == [
        (0, 1, 120),
        (0, 2, 240),
        (1, 1, 120),
        (1, 2, 240),
    ]


# -- verify ---------------------------------------------------------------------


def test_verify_healthy(queue, tmp_path):
    proc = run("verify", str(queue))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok: no damage found" in proc.stdout
    report = js(run("verify", str(queue), "--json"))
    assert report["ok"] and report["problems"] == []
    assert report["data_files"] == 4 and report["pages"] > 0 and report["versions"] == 4
    wal_bucket(tmp_path / "w" / "bucket_0")
    report = js(run("verify", str(tmp_path / "w"), "--json"))
    assert report["ok"] and report["frames"] == 20 and report["wal_segments"] >= 1


def test_verify_flipped_byte_in_a_data_page(queue):
    data = sorted(glob.glob(str(queue / "bucket_1" / "data.lance" / "data" / "*.lance")))
    target = next(f for f in data if b"name-239" in Path(f).read_bytes())
    raw = bytearray(Path(target).read_bytes())
    at = raw.index(b"name-239")
    raw[at] = 0xFF  # not UTF-8 any more: the page fails validation
    Path(target).write_bytes(bytes(raw))
    proc = run("verify", str(queue))
    assert proc.returncode == 1
    assert target in proc.stdout and "DAMAGED: 1 problem(s)" in proc.stdout
    report = js(run("verify", str(queue), "--json"))
    assert not report["ok"]
    (p,) = report["problems"]
    assert p["file"] == target and p["what"] == "data" and p["kind"] == "corrupt"
    assert p["bucket"] == 1 and "name" in p["reason"]
    assert p["offset"] <= at < p["offset"] + p["length"]  # the damaged page
    # Nothing was repaired or moved.
    assert Path(target).read_bytes() == bytes(raw)


def test_verify_truncated_data_file(queue):
    target = sorted(glob.glob(str(queue / "bucket_0" / "data.lance" / "data" / "*.lance")))[0]
    with open(target, "r+b") as f:
        f.truncate(os.path.getsize(target) - 10)
    report = js(run("verify", str(queue), "--json"))
    assert not report["ok"]
    assert any(p["file"] == target and "manifest gives" in p["reason"] for p in report["problems"])


def test_verify_flipped_byte_in_a_wal_frame(tmp_path):
    bucket = tmp_path / "q" / "bucket_0"
    segs = wal_bucket(bucket)
    seg = segs[0]
    raw = bytearray(Path(seg).read_bytes())
    at = 32 + 24 + 5  # inside the first frame's payload
    raw[at] ^= 0x40
    Path(seg).write_bytes(bytes(raw))
    before = sorted(os.listdir(bucket / "wal"))
    proc = run("verify", str(bucket))
    assert proc.returncode == 1
    assert "frame checksum mismatch" in proc.stdout and seg in proc.stdout
    report = js(run("verify", str(bucket), "--json"))
    (p,) = report["problems"]
    assert p["file"] == seg and p["offset"] == 32 and p["kind"] == "corrupt"
    assert p["what"] == "wal" and "a valid frame follows" in p["reason"]
    # Read-only: nothing cut, nothing moved to wal/damaged/.
    assert sorted(os.listdir(bucket / "wal")) == before
    assert Path(seg).read_bytes() == bytes(raw)


def test_verify_truncated_wal(tmp_path):
    bucket = tmp_path / "q" / "bucket_0"
    seg = wal_bucket(bucket)[-1]
    last = frame_offsets(Path(seg))[-1]
    # Inside the last frame (with the zeros the dead writer kept preallocated after it).
    cut = last + FRAME_HEADER + 3
    with open(seg, "r+b") as f:
        f.truncate(cut)
    report = js(run("verify", str(bucket), "--json"))
    assert not report["ok"]
    (p,) = report["problems"]
    assert p["file"] == seg and p["kind"] == "torn_tail" and "truncated frame" in p["reason"]
    assert p["offset"] == last
    assert os.path.getsize(seg) == cut  # not repaired
    assert run("verify", str(bucket)).returncode == 1


# -- cat --------------------------------------------------------------------------


def test_cat_one_bucket_from_limit(queue):
    proc = run("cat", str(queue / "bucket_0"), "--from", "118", "--limit", "3")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["_offset"] for r in rows] == [118, 119, 120]
    assert [r["id"] for r in rows] == [118, 119, 120]
    assert rows[0]["tags"] == ["a", "b"] and rows[0]["blob"] == {"$base64": "AAE="}
    assert "_bucket" not in rows[0]


def test_cat_storage_path_prints_every_bucket(queue):
    rows = [json.loads(x) for x in run("cat", str(queue)).stdout.splitlines()]
    assert len(rows) == 480
    assert [r["_bucket"] for r in rows] == [0] * 240 + [1] * 240
    assert rows[240]["_offset"] == 0
    one = [
        json.loads(x)
        for x in run("cat", str(queue), "--bucket", "1", "--limit", "2").stdout.splitlines()
    ]
    assert [r["_offset"] for r in one] == [0, 1] and "_bucket" not in one[0]
    assert run("cat", str(queue), "--bucket", "7").returncode == 3


LIVE_WRITER = textwrap.dedent("""
    import asyncio, sys
    from persisting import PersistingBackend

    async def main(path):
        b = PersistingBackend(bucket_id=0, storage_path=path, batch_size=100_000,
                              enable_wal=True)
        print("open", flush=True)
        for n in range(3):
            line = await asyncio.to_thread(sys.stdin.readline)  # one batch per line
            if not line:
                break
            await b.put_batch([{"id": n * 10 + k, "n": n} for k in range(10)])
            await b.flush()
            print("flushed", n, flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        await b.close()

    asyncio.run(main(sys.argv[1]))
""")


def test_cat_follow_beside_a_live_writer(tmp_path):
    """A writer in another process holds the bucket's LOCK; cat --follow and the
    read-only commands run beside it (never LockedError) and see each flush."""
    bucket = tmp_path / "live" / "bucket_0"
    writer = subprocess.Popen(
        [sys.executable, "-c", LIVE_WRITER, str(bucket)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    follower = None
    try:
        assert writer.stdout is not None and writer.stdin is not None
        assert writer.stdout.readline().strip() == "open"
        writer.stdin.write("go\n")
        writer.stdin.flush()
        assert writer.stdout.readline().split() == ["flushed", "0"]
        follower = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "persisting",
                "cat",
                str(bucket),
                "--follow",
                "--interval",
                "0.1",
                "--from",
                "5",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        assert follower.stdout is not None
        got = [json.loads(follower.stdout.readline()) for _ in range(5)]
        assert [r["id"] for r in got] == [5, 6, 7, 8, 9]
        # Read-only commands beside the live writer.
        report = js(run("inspect", str(bucket), "--json"))["buckets"][0]
        assert report["writer"] == {"held": True, "pid": writer.pid}
        assert run("verify", str(bucket)).returncode == 0
        for n in (1, 2):
            writer.stdin.write("go\n")
            writer.stdin.flush()
            assert writer.stdout.readline().split() == ["flushed", str(n)]
            got = [json.loads(follower.stdout.readline()) for _ in range(10)]
            assert [r["_offset"] for r in got] == list(range(n * 10, n * 10 + 10))
            assert {r["n"] for r in got} == {n}
        # compact/cleanup refuse the held bucket: exit 4, the holder named.
        for cmd in ("compact", "cleanup"):
            proc = run(cmd, str(bucket))
            assert proc.returncode == 4, proc.stderr
            assert f"pid {writer.pid}" in proc.stderr
        out = json.loads(run("compact", str(bucket.parent), "--json").stdout)
        assert out["buckets"][0]["locked"] and out["buckets"][0]["pid"] == writer.pid
    finally:
        if follower is not None:
            follower.terminate()
            follower.communicate(timeout=30)
        writer.communicate("\n", timeout=60)
    assert writer.returncode == 0
    assert follower.returncode is not None


# -- export -----------------------------------------------------------------------


def test_export_parquet_and_jsonl(queue, tmp_path):
    out = tmp_path / "out.parquet"
    proc = run("export", str(queue / "bucket_0"), "--to", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "exported 240 rows" in proc.stdout
    table = pq.read_table(out)
    assert table.num_rows == 240 and table.column("id").to_pylist() == list(range(240))
    assert table.column("tags")[0].as_py() == ["a", "b"]
    # Several buckets: a _bucket column.
    both = tmp_path / "both.parquet"
    report = js(run("export", str(queue), "--to", str(both), "--json"))
    assert report["rows"] == 480 and report["format"] == "parquet"
    t = pq.read_table(both)
    assert sorted(set(t.column("_bucket").to_pylist())) == [0, 1] and "_rowid" not in t.column_names
    # JSON lines, read back with pyarrow.
    import pyarrow.json as pj

    jl = tmp_path / "out.jsonl"
    assert run("export", str(queue / "bucket_1"), "--to", str(jl)).returncode == 0
    back = pj.read_json(jl)
    assert back.num_rows == 240 and back.column("name")[239].as_py() == "name-239"
    # An existing target needs --force; an unknown extension is a usage error.
    assert run("export", str(queue), "--to", str(jl)).returncode == 2
    assert run("export", str(queue), "--to", str(jl), "--force").returncode == 0
    assert run("export", str(queue), "--to", str(tmp_path / "x.csv")).returncode == 2
    assert not glob.glob(str(tmp_path / "*.tmp-*"))


# -- compact / cleanup ------------------------------------------------------------


def test_compact_and_cleanup_idle_bucket(tmp_path):
    bucket = tmp_path / "q" / "bucket_0"
    asyncio.run(write_bucket(bucket, rows=20, flushes=6))
    proc = run("compact", str(bucket), "--json")
    assert proc.returncode == 0, proc.stderr
    (res,) = js(proc)["buckets"]
    assert res["compact"]["fragments_removed"] == 6 and res["compact"]["fragments"] == 1
    inspect = js(run("inspect", str(bucket), "--json"))["buckets"][0]["dataset"]
    assert inspect["fragments"] == 1 and inspect["rows"] == 120
    proc = run("cleanup", str(bucket), "--keep-versions", "1")
    assert proc.returncode == 0, proc.stderr
    assert "bucket 0: cleanup done" in proc.stdout and "versions_removed=6" in proc.stdout
    versions = js(run("versions", str(bucket), "--json"))
    assert len(versions) == 1 and versions[0]["rows"] == 120
    assert run("verify", str(bucket)).returncode == 0
    rows = [json.loads(x) for x in run("cat", str(bucket)).stdout.splitlines()]
    assert [r["id"] for r in rows] == list(range(120))


def test_main_in_process(tmp_path, capsys):
    """cli.main returns the exit code (the console script's entry point)."""
    (tmp_path / "nothing").mkdir()
    assert cli.main(["inspect", str(tmp_path / "nothing")]) == cli.EXIT_NOT_FOUND
    assert "not a persisting path" in capsys.readouterr().err


def test_lock_holder_reads_proc_locks_only(tmp_path):
    assert cli.lock_holder(str(tmp_path)) == {"held": False, "pid": None}
    shutil.rmtree(tmp_path)
