"""Metrics served to Prometheus by prometheus_client: with enable_metrics=True a
bucket's series appear in prometheus_client's default registry, so the app's own
/metrics endpoint shows them next to its other metrics.

Run: python examples/prometheus_metrics.py
"""

from __future__ import annotations

import asyncio
import tempfile
import urllib.request

from prometheus_client import start_http_server

from persisting import PersistingBackend


def scrape(url: str) -> str:
    """What Prometheus does: GET the app's /metrics."""
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


async def main(path: str) -> None:
    server, thread = start_http_server(0, addr="127.0.0.1")  # the app's /metrics
    port = server.server_address[1]
    try:
        backend = PersistingBackend(
            storage_path=path, batch_size=100, enable_wal=True, enable_metrics=True
        )
        await backend.put_batch([{"id": i} for i in range(250)])
        await backend.flush()

        text = await asyncio.to_thread(scrape, f"http://127.0.0.1:{port}/metrics")
        ours = [line for line in text.splitlines() if line.startswith("persisting_records_total")]
        print("\n".join(ours))
        assert ours and ours[0].endswith(" 250.0"), ours
        assert "persisting_flush_duration_seconds_bucket" in text
        await backend.close()
    finally:
        server.shutdown()
        thread.join()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(tmp))
