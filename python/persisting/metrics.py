"""Prometheus metrics of the Go core.

The collectors live in a private registry inside the Go library (never Python's
default registry: both would export the same process metrics for one PID). Three
ways out, all reading that registry:

* :func:`generate_latest` returns the text exposition, like
  ``prometheus_client.generate_latest``;
* :func:`register_prometheus_client` makes the metrics part of prometheus_client's
  default registry (done automatically by ``enable_metrics=True`` when
  prometheus_client is installed), so an app's existing ``/metrics`` shows them;
* :func:`serve` (or the ``metrics_port`` option) serves ``/metrics`` from Go.

Only buckets opened with ``enable_metrics=True`` report; series carry a ``bucket``
label (the bucket directory) and disappear when the bucket is closed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from . import _lib

CONTENT_TYPE_LATEST = "text/plain; version=0.0.4; charset=utf-8"

_registered: set[int] = set()
_register_lock = threading.Lock()


def generate_latest() -> bytes:
    """The text exposition of every metrics-enabled bucket in this process."""
    return _lib.metrics_text().encode()


def serve(addr: str = "127.0.0.1:0") -> str:
    """Serve ``/metrics`` from Go at ``addr`` (``host:port``; port 0 picks one) and
    return the bound address. Serving one address twice returns the same endpoint."""
    return _lib.metrics_serve(addr)


class GoCollector:
    """A prometheus_client collector that yields the Go registry's families."""

    def collect(self) -> Iterator[Any]:
        from prometheus_client.parser import text_string_to_metric_families

        yield from text_string_to_metric_families(_lib.metrics_text())

    def describe(self) -> list[Any]:
        return []  # names vary with the open buckets; nothing to pre-check


def register_prometheus_client(registry: Any = None) -> bool:
    """Add the Go metrics to a prometheus_client registry (default: ``REGISTRY``),
    once per registry. Returns False when prometheus_client is not installed."""
    try:
        import prometheus_client
    except ImportError:
        return False
    target = registry if registry is not None else prometheus_client.REGISTRY
    with _register_lock:
        if id(target) not in _registered:
            target.register(GoCollector())
            _registered.add(id(target))
    return True
