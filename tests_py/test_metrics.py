"""Prometheus metrics, checked with real tools: promtool, prometheus_client and a
real Prometheus server scraping the Go endpoint on loopback."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import urllib.request

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from persisting import PersistingBackend, metrics
from persisting._writes import HANDOFF_DELAY

PROMISED = {
    "persisting_records",  # counter persisting_records_total
    "persisting_buffer_size",
    "persisting_flush_duration_seconds",
    "persisting_wal_size_bytes",
}
OPERATOR = {
    "persisting_wal_fsync_duration_seconds",
    "persisting_wal_group_commit_records",
    "persisting_wal_bytes_written",
    "persisting_compression_ratio",
    "persisting_flush_errors",
    "persisting_wal_recovery_truncated_bytes",
    "persisting_buffer_backpressure",
}


def families(text: str) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text)}


async def write(b: PersistingBackend, n: int) -> None:
    for i in range(n):
        await b.put({"id": i, "text": "metrics " * 8})


def records_total(text: str, bucket: str) -> float:
    fam = families(text)["persisting_records"]
    return sum(
        s.value
        for s in fam.samples
        if s.name == "persisting_records_total" and s.labels["bucket"] == bucket
    )


async def test_text_exposition_is_valid_for_promtool(open_backend):
    b = open_backend(batch_size=20, enable_metrics=True, enable_wal=True, wal_sync_interval=0)
    await write(b, 50)
    await b.flush()
    text = metrics.generate_latest()
    assert PROMISED | OPERATOR <= families(text.decode()).keys()
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: `make test` installs the Debian package prometheus"
    proc = await asyncio.create_subprocess_exec(
        promtool,
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate(text)
    assert proc.returncode == 0, out.decode()
    assert out.decode().strip() == "", f"promtool lint findings: {out.decode()}"


async def test_prometheus_client_sees_the_metrics_and_never_duplicates(tmp_path):
    opened = []
    for round_ in range(2):  # two backends one after the other
        for bucket_id in range(2):  # two buckets at once
            b = PersistingBackend(
                bucket_id=bucket_id,
                storage_path=str(tmp_path / f"r{round_}" / f"bucket_{bucket_id}"),
                enable_metrics=True,
            )
            opened.append(b)
            await write(b, 5)
        # Records acknowledged without a WAL reach Go (and its counters) within
        # HANDOFF_DELAY; this sleep's timer is due after the hand-off's.
        await asyncio.sleep(HANDOFF_DELAY)
        text = prometheus_client.generate_latest().decode()
        for b in opened[-2:]:
            assert records_total(text, b.bucket_dir) == 5
        for b in opened[-2:]:
            await b.close()
    text = prometheus_client.generate_latest().decode()
    assert all(str(tmp_path) not in line for line in text.splitlines()), "closed buckets linger"
    assert metrics.register_prometheus_client() is True  # idempotent


async def test_stats_carry_metrics_when_enabled(open_backend):
    b = open_backend(enable_metrics=True)
    await write(b, 3)
    stats = await b.stats()
    assert stats["metrics"]["persisting_records_total"] == 3
    plain = open_backend(bucket_id=1)
    assert "metrics" not in await plain.stats()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_real_prometheus_scrapes_the_metrics_port(open_backend, tmp_path):
    server = shutil.which("prometheus")
    assert server, "prometheus missing: `make test` installs the Debian package prometheus"
    b = open_backend(enable_metrics=True, metrics_port=0)
    await write(b, 37)
    endpoint = (await b.stats())["metrics_endpoint"]
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n  - job_name: persisting\n"
        f"    static_configs:\n      - targets: ['{endpoint}']\n"
    )
    proc = await asyncio.create_subprocess_exec(
        server,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/v1/query?query=persisting_records_total"
        value = None
        for _ in range(120):  # bounded: at most ~30 s
            await asyncio.sleep(0.25)
            try:
                body = await asyncio.to_thread(
                    lambda: urllib.request.urlopen(url, timeout=2).read()
                )
            except OSError:
                continue
            result = json.loads(body)["data"]["result"]
            mine = [r for r in result if r["metric"].get("bucket") == b.bucket_dir]
            if mine:
                value = float(mine[0]["value"][1])
                break
        assert value == 37
    finally:
        proc.terminate()
        await proc.wait()


async def test_bad_metrics_port_is_a_value_error(tmp_path):
    backend = PersistingBackend(bucket_id=0, storage_path=str(tmp_path / "b"), metrics_port=70000)
    with pytest.raises(ValueError, match="metrics_port"):
        await backend.ready()


STATS_KEYS = {
    "bucket_id",
    "backend",
    "storage_path",
    "total_count",
    "buffer_count",
    "buffer_size",
    "persisted_count",
    "wal_enabled",
    "wal_size",
    "compression",
    "wal_bytes_uncompressed",
    "wal_bytes_written",
    "dataset_version",
    "metrics",
}


async def test_stats_keys_and_values_after_puts_flush_and_restart(tmp_path):
    path = str(tmp_path / "bucket_2")
    options = {"enable_wal": True, "wal_sync_interval": 0, "compression": "zstd"}
    b = PersistingBackend(
        bucket_id=2, storage_path=path, batch_size=10**6, enable_metrics=True, **options
    )
    await write(b, 20)
    stats = await b.stats()
    assert STATS_KEYS <= stats.keys()
    assert (stats["bucket_id"], stats["backend"], stats["storage_path"]) == (2, "persisting", path)
    assert stats["total_count"] == 20 and stats["buffer_count"] == stats["buffer_size"] == 20
    assert stats["persisted_count"] == 0 and stats["dataset_version"] == 0
    assert stats["wal_enabled"] is True and stats["wal_size"] > 0
    assert stats["compression"] == "zstd"
    assert 0 < stats["wal_bytes_written"] < stats["wal_bytes_uncompressed"]
    assert stats["metrics"]["persisting_records_total"] == 20
    assert stats["metrics"]["persisting_buffer_size"] == 20

    await b.flush()
    stats = await b.stats()
    assert stats["persisted_count"] == 20 and stats["buffer_count"] == 0
    assert stats["dataset_version"] == 1 and stats["wal_size"] == 0
    assert stats["metrics"]["persisting_buffer_size"] == 0
    assert stats["metrics"]['persisting_flush_duration_seconds_count{result="ok"}'] == 1
    await b.close()

    b = PersistingBackend(
        bucket_id=2, storage_path=path, batch_size=10**6, enable_metrics=True, **options
    )
    try:
        await b.ready()
        stats = await b.stats()
        assert stats["total_count"] == stats["persisted_count"] == 20
        assert stats["dataset_version"] == 1 and stats["recovered_rows"] == 0
    finally:
        await b.close()
