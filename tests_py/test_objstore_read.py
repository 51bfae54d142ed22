"""open_dataset on an object store: buckets written through PersistingBackend at an
``s3://`` storage_path on the S3-compatible test server ($PERSISTING_S3_SERVER, see
test_objstore.py), read back by s3 URI (a storage_path with bucket_* under it, a
bucket, a data.lance) from this process and from another one, and compared with the
same rows written to a local directory and with pylance."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import lance
import numpy as np
import pyarrow as pa
import pytest

import persisting
from persisting import PersistingBackend, open_dataset
from test_objstore import S3Server, running_s3

DIM = 4
QUERY = [0.5, 0.25, -0.5, 1.0]


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    yield from running_s3(tmp_path_factory.mktemp("s3"))


def _rows(start: int, n: int) -> list[dict]:
    rng = np.random.default_rng(start)
    return [
        {
            "id": i,
            "status": "paid" if i % 3 else "open",
            "amount": float(i % 17),
            "embedding": rng.standard_normal(DIM).astype(np.float32).tolist(),
        }
        for i in range(start, start + n)
    ]


async def _write(storage_path: str, bucket: int, batches: list[list[dict]], **options) -> None:
    """One flush (one version) per batch, as the same backend writes locally or on S3."""
    b = PersistingBackend(
        bucket_id=bucket,
        storage_path=f"{storage_path}/bucket_{bucket}",
        batch_size=10**6,
        vector_columns={"embedding": DIM},
        **options,
    )
    for rows in batches:
        await b.put_batch(rows)
        await b.flush()
    await b.close()


async def _write_both(s3: S3Server, prefix: str, local: Path) -> str:
    """Two buckets of two versions each at an s3:// storage_path and in a local directory."""
    uri = s3.uri(prefix)
    plan = {0: [_rows(0, 300), _rows(300, 200)], 1: [_rows(1000, 250), _rows(1250, 50)]}
    for bucket, batches in plan.items():
        await _write(uri, bucket, batches, storage_options=s3.storage_options)
        await _write(str(local), bucket, batches)
    return uri


def _sorted(t: pa.Table) -> pa.Table:
    return t.sort_by([(c, "ascending") for c in ("_bucket", "id") if c in t.column_names])


def _assert_same_reads(remote: persisting.Dataset, local: persisting.Dataset) -> None:
    assert remote.count() == local.count() > 0
    for expr in ("status = 'paid' AND amount >= 10", "id < 5 OR id >= 1290", "amount > 99"):
        assert remote.count(expr) == local.count(expr)
    assert remote.schema == local.schema
    assert _sorted(remote.to_arrow(with_row_id=True)).equals(
        _sorted(local.to_arrow(with_row_id=True))
    )
    cols = ["id", "amount"]
    assert remote.to_arrow(cols, "amount > 15").equals(local.to_arrow(cols, "amount > 15"))
    for metric in ("l2", "cosine", "dot"):
        hits = remote.search("embedding", QUERY, k=7, metric=metric, filter="status = 'paid'")
        assert hits.equals(
            local.search("embedding", QUERY, k=7, metric=metric, filter="status = 'paid'")
        )
        assert len(hits) == 7
    assert remote.version == local.version
    strip = [{k: v for k, v in x.items() if k != "timestamp"} for x in remote.versions()]
    assert strip == [{k: v for k, v in x.items() if k != "timestamp"} for x in local.versions()]


async def test_storage_path_bucket_and_dataset_read_like_a_local_copy(s3, tmp_path):
    uri = await _write_both(s3, "reads/orders", tmp_path)
    opts = s3.storage_options
    for sub in ("", "/bucket_1", "/bucket_0/data.lance"):
        remote = open_dataset(uri + sub, storage_options=opts)
        local = open_dataset(str(tmp_path) + sub)
        _assert_same_reads(remote, local)
        assert [p["path"] for p in remote.buckets] == [
            p["path"].replace(str(tmp_path), uri) for p in local.buckets
        ]
    # A trailing slash names the same place.
    assert open_dataset(uri + "/", storage_options=opts).count() == 800
    # pylance, given the same storage options, reads the same rows.
    ds = lance.dataset(uri + "/bucket_0/data.lance", storage_options=opts)
    mine = open_dataset(uri + "/bucket_0", storage_options=opts)
    assert mine.to_arrow(with_row_id=True).equals(
        ds.to_table(with_row_id=True).select([*mine.schema.names, "_rowid"])
    )


async def test_checkout_and_time_travel_on_s3(s3, tmp_path):
    uri = await _write_both(s3, "travel/orders", tmp_path)
    opts = s3.storage_options
    remote = open_dataset(uri, storage_options=opts)
    local = open_dataset(tmp_path)
    assert remote.version == {0: 2, 1: 2}
    remote.checkout({0: 1, 1: 1})
    local.checkout({0: 1, 1: 1})
    _assert_same_reads(remote, local)
    assert remote.count() == 550
    remote.checkout({1: 1})
    assert remote.version == 1 and remote.count() == 250
    versions = remote.versions()
    remote.checkout(versions[0]["timestamp"])  # bucket 0 at version 1; bucket 1 came later
    assert remote.version == 1 and remote.count() == 300
    remote.refresh()
    assert remote.count() == 800
    one = open_dataset(uri + "/bucket_0", version=1, storage_options=opts)
    assert one.version == 1 and one.count() == 300
    with pytest.raises(ValueError, match="no version 9"):
        one.checkout(9)


async def test_refresh_sees_a_new_flush_and_a_new_bucket(s3):
    uri = s3.uri("refresh/orders")
    opts = s3.storage_options
    await _write(uri, 0, [_rows(0, 100)], storage_options=opts)
    ds = open_dataset(uri, storage_options=opts)
    assert (ds.version, ds.count()) == (1, 100)
    writer = PersistingBackend(
        bucket_id=0,
        storage_path=f"{uri}/bucket_0",
        storage_options=opts,
        enable_wal=True,
        batch_size=10**6,
        vector_columns={"embedding": DIM},
    )
    await writer.put_batch(_rows(100, 40))
    assert ds.refresh().count() == 100  # buffered (in the log), not in a version
    await writer.flush()
    assert ds.count() == 100  # the view stays until refresh
    assert ds.refresh().count() == 140
    await writer.close()
    await _write(uri, 3, [_rows(500, 10)], storage_options=opts)
    ds.refresh()
    assert ds.version == {0: ds.buckets[0]["version"], 3: 1}
    assert ds.count() == 150
    assert ds.to_arrow(["id"], "id >= 500", with_row_id=True)["_bucket"].to_pylist() == [3] * 10


_READER = textwrap.dedent(
    """
    import json, sys
    import persisting
    ds = persisting.open_dataset(sys.argv[1], storage_options=json.loads(sys.argv[2]))
    hits = ds.search("embedding", json.loads(sys.argv[3]), k=5, metric="cosine")
    print(json.dumps({
        "count": ds.count(),
        "paid": ds.count("status = 'paid'"),
        "version": {str(k): v for k, v in ds.version.items()},
        "ids": sorted(ds.to_arrow(["id"])["id"].to_pylist()),
        "hits": hits.select(["id", "_rowid", "_bucket"]).to_pylist(),
        "versions": [[v["bucket"], v["version"], v["rows"]] for v in ds.versions()],
    }))
    """
)


async def test_another_process_reads_what_a_local_copy_holds(s3, tmp_path):
    uri = await _write_both(s3, "child/orders", tmp_path)
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", _READER, uri, json.dumps(s3.storage_options), json.dumps(QUERY)],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    got = json.loads(proc.stdout)
    local = open_dataset(tmp_path)
    hits = local.search("embedding", QUERY, k=5, metric="cosine")
    assert got == {
        "count": local.count(),
        "paid": local.count("status = 'paid'"),
        "version": {str(k): v for k, v in local.version.items()},
        "ids": sorted(local.to_arrow(["id"])["id"].to_pylist()),
        "hits": hits.select(["id", "_rowid", "_bucket"]).to_pylist(),
        "versions": [[v["bucket"], v["version"], v["rows"]] for v in local.versions()],
    }


async def test_bad_storage_options_and_missing_data(s3):
    uri = s3.uri("bad/orders")
    await _write(uri, 0, [_rows(0, 10)], storage_options=s3.storage_options)
    with pytest.raises(ValueError, match="aws_endpoint_typo"):
        open_dataset(uri, storage_options={**s3.storage_options, "aws_endpoint_typo": "x"})
    with pytest.raises(ValueError, match="allow_http"):
        open_dataset(uri, storage_options={**s3.storage_options, "allow_http": "maybe"})
    plain = {k: v for k, v in s3.storage_options.items() if k != "allow_http"}
    with pytest.raises(ValueError, match="allow_http"):
        open_dataset(uri, storage_options=plain)
    with pytest.raises(TypeError, match="storage_options"):
        open_dataset(uri, storage_options={"allow_http": True})
    with pytest.raises(ValueError, match="s3://"):
        open_dataset("gs://elsewhere/orders", storage_options=s3.storage_options)
    # Local paths check the names too (as a backend does) and read as before.
    with pytest.raises(ValueError, match="aws_endpoint_typo"):
        open_dataset("/nonexistent", storage_options={"aws_endpoint_typo": "x"})
    with pytest.raises(persisting.StorageError, match="nothing there"):
        open_dataset(s3.uri("bad/missing"), storage_options=s3.storage_options)
    assert open_dataset(uri, storage_options=s3.storage_options).count() == 10


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "persisting", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def _opt_args(options: dict[str, str]) -> list[str]:
    return [a for k, v in options.items() for a in ("--storage-option", f"{k}={v}")]


def test_cli_reads_s3_paths(s3, tmp_path):
    local = tmp_path / "local"
    uri = asyncio.run(_write_both(s3, "cli/orders", local))
    opts = _opt_args(s3.storage_options)

    def both(*args: str) -> tuple[subprocess.CompletedProcess[str], ...]:
        procs = (_cli(args[0], uri, *args[1:], *opts), _cli(args[0], str(local), *args[1:]))
        for p in procs:
            assert p.returncode == 0, p.stderr
        return procs

    remote, here = both("inspect", "--json")
    r, h = json.loads(remote.stdout), json.loads(here.stdout)
    assert r["rows"] == h["rows"] == 800 and r["bytes"] is None
    assert [b["bucket"] for b in r["buckets"]] == [0, 1]
    for rb, hb in zip(r["buckets"], h["buckets"], strict=True):
        assert rb["dir"] == hb["dir"].replace(str(local), uri)
        for key in ("version", "rows", "fragments", "versions", "schema"):
            assert rb["dataset"][key] == hb["dataset"][key]
    remote, here = both("inspect")
    assert "bucket 1" in remote.stdout and "not inspected on an object store" in remote.stdout

    remote, local_versions = both("versions", "--json")

    def strip(out: str) -> list[dict]:
        return [{k: v for k, v in x.items() if k != "timestamp"} for x in json.loads(out)]

    assert strip(remote.stdout) == strip(local_versions.stdout)
    assert len(strip(remote.stdout)) == 4

    remote, here = both("cat", "--bucket", "1", "--from", "10", "--limit", "5")
    assert remote.stdout == here.stdout
    assert [json.loads(line)["_offset"] for line in remote.stdout.splitlines()] == list(
        range(10, 15)
    )
    remote, here = both("cat", "--limit", "400")  # both buckets, each line with _bucket
    assert remote.stdout == here.stdout

    for sub, out in (("", "all.parquet"), ("/bucket_0", "b0.jsonl")):
        p = _cli("export", uri + sub, "--to", str(tmp_path / f"r-{out}"), "--json", *opts)
        assert p.returncode == 0, p.stderr
        p = _cli("export", f"{local}{sub}", "--to", str(tmp_path / f"l-{out}"), "--json")
        assert p.returncode == 0, p.stderr
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "r-all.parquet").equals(
        pq.read_table(tmp_path / "l-all.parquet")
    )
    assert (tmp_path / "r-b0.jsonl").read_text() == (tmp_path / "l-b0.jsonl").read_text()

    # The standard AWS environment variables reach the store as well.
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": s3.endpoint,
        "AWS_ACCESS_KEY_ID": s3.storage_options["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": s3.storage_options["aws_secret_access_key"],
        "AWS_REGION": "us-east-1",
    }
    p = _cli("versions", uri, "--json", "--storage-option", "allow_http=true", env=env)
    assert p.returncode == 0, p.stderr
    assert strip(p.stdout) == strip(local_versions.stdout)


def test_cli_s3_errors(s3):
    opts = _opt_args(s3.storage_options)
    p = _cli("inspect", s3.uri("cli-missing/orders"), *opts)
    assert p.returncode == 3, p.stderr
    p = _cli("versions", s3.uri("x"), *opts, "--storage-option", "aws_endpoint_typo=1", "--json")
    assert p.returncode == 5 and "aws_endpoint_typo" in json.loads(p.stderr)["error"]
    p = _cli("cat", s3.uri("x"), "--storage-option", "no-equals-sign")
    assert p.returncode == 2 and "KEY=VALUE" in p.stderr
    for command in ("verify", "compact", "cleanup"):
        p = _cli(command, s3.uri("x"), *opts)
        assert p.returncode == 2 and "only local paths" in p.stderr, (command, p.stderr)


async def test_search_use_index_through_pylance_on_s3(s3):
    uri = s3.uri("indexed/orders")
    opts = s3.storage_options
    await _write(uri, 0, [_rows(0, 600)], storage_options=opts)
    lance.dataset(uri + "/bucket_0/data.lance", storage_options=opts).create_index(
        "embedding", index_type="IVF_FLAT", num_partitions=1, metric="l2"
    )
    ds = open_dataset(uri, storage_options=opts)
    assert ds.buckets[0]["indexed"]
    hits = ds.search("embedding", QUERY, k=5, columns=["id"], use_index=True)
    exact = ds.search("embedding", QUERY, k=5, columns=["id"])
    assert hits["id"].to_pylist() == exact["id"].to_pylist()  # one partition: exact
    # A writer's own search goes through the same index, on the store too.
    writer = PersistingBackend(
        bucket_id=0,
        storage_path=uri + "/bucket_0",
        storage_options=opts,
        vector_columns={"embedding": DIM},
    )
    try:
        mine = await writer.search("embedding", QUERY, k=5, columns=["id"], use_index=True)
        assert mine["id"].to_pylist() == exact["id"].to_pylist()
    finally:
        await writer.close()
