"""Backend options: one frozen dataclass, checked strictly when a backend is made.

Types are strict because a lenient check turns a typo into a silent change of
behaviour: ``enable_wal="false"`` is a string, not ``False``, and
``wal_sync_interval=True`` is not one second. Every refusal is a ``TypeError``
or ``ValueError`` that names the option and says what it takes.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._names import check_name

#: Codec names the ``compression`` option takes (``None`` is the same as "none").
COMPRESSIONS = ("none", "zstd", "lz4", "snappy")

#: The longest ``wal_sync_interval`` accepted, in seconds.
MAX_SYNC_INTERVAL = 3600.0

#: Options both backends take.
LANCE_OPTIONS = frozenset(
    {
        "flush_threshold",
        "max_buffer_rows",
        "vector_columns",
        "field_defaults",
        "compression",
        "compact_every",
        "compact_target_rows",
        "keep_versions",
        "keep_versions_seconds",
        "topic",
    }
)
#: Options only :class:`~persisting.PersistingBackend` takes.
WAL_OPTIONS = frozenset(
    {
        "enable_wal",
        "wal_sync_interval",
        "max_wal_size",
        "wal_truncate_corrupt",
        "enable_metrics",
        "metrics_port",
        "metrics_addr",
    }
)

#: Options of a bucket on an object store (``storage_path="s3://bucket/prefix"``),
#: which :class:`~persisting.PersistingBackend` takes: ``storage_options`` as
#: pylance names them (``aws_endpoint``, ``aws_region``, ``aws_access_key_id``,
#: ``aws_secret_access_key``, ``allow_http``, ...; the standard AWS environment and
#: files otherwise), ``wal_location`` ("object_store", the default there, or "local")
#: and ``local_dir`` (the directory of a local log).
OBJECT_STORE_OPTIONS = frozenset({"storage_options", "wal_location", "local_dir"})

#: Where the write-ahead log of a bucket on an object store lives.
WAL_LOCATIONS = ("object_store", "local")

_warned: set[str] = set()


@dataclass(frozen=True)
class Options:
    """A backend's options, with their defaults (see the README's table)."""

    flush_threshold: int | None = None
    max_buffer_rows: int | None = None
    vector_columns: Mapping[str, int] = field(default_factory=dict)
    field_defaults: Mapping[str, Any] = field(default_factory=dict)
    compression: str = "none"
    enable_wal: bool = False
    wal_sync_interval: float = 1.0
    max_wal_size: int = 100 * 1024 * 1024
    wal_truncate_corrupt: bool = False
    enable_metrics: bool = False
    metrics_port: int | None = None
    metrics_addr: str = "127.0.0.1"
    # Maintenance; None takes the Go core's default (see the README).
    compact_every: int | None = None
    compact_target_rows: int | None = None
    keep_versions: int | None = None
    keep_versions_seconds: float | None = None
    # The queue's topic, which Pulsing (0.1.2) leaves out of a bucket's path;
    # persisting.queue passes it (see _topics).
    topic: str | None = None
    # A bucket on an object store (see OBJECT_STORE_OPTIONS).
    storage_options: Mapping[str, str] = field(default_factory=dict)
    wal_location: str | None = None
    local_dir: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The options as a plain dict (what ``stats()["options"]`` shows); the
        secrets among the storage options are masked."""
        out = {
            name: (dict(value) if isinstance(value, Mapping) else value)
            for name, value in self.__dict__.items()
        }
        out["storage_options"] = {
            k: "***" if any(s in k.lower() for s in ("secret", "token", "password")) else v
            for k, v in self.storage_options.items()
        }
        return out


def parse(owner: str, given: Mapping[str, Any], known: frozenset[str]) -> Options:
    """Check ``given`` and return the options. Names outside ``known`` are ignored
    with one warning per owner and name, so that options meant for another backend
    or a newer version do not break a deployment."""
    for name in sorted(given.keys() - known):
        key = f"{owner}.{name}"
        if key not in _warned:
            _warned.add(key)
            warnings.warn(f"persisting: {owner} ignores unknown option {name!r}", stacklevel=4)
    values = {name: given[name] for name in given.keys() & known}
    for name in ("flush_threshold", "max_buffer_rows"):
        if values.get(name) is not None:
            positive_int(name, values[name])
    if values.get("compression") is None:
        values.pop("compression", None)
    elif values["compression"] not in COMPRESSIONS:
        raise ValueError(
            f"persisting: unknown compression {values['compression']!r}; valid: None, "
            + ", ".join(repr(c) for c in COMPRESSIONS)
        )
    values["vector_columns"] = _vector_columns(values.get("vector_columns"))
    values["field_defaults"] = _field_defaults(values.get("field_defaults"))
    for name in ("enable_wal", "wal_truncate_corrupt", "enable_metrics"):
        if name in values and type(values[name]) is not bool:
            raise TypeError(
                f"persisting: {name} must be True or False, got {type(values[name]).__name__} "
                f"{values[name]!r}"
            )
    if "wal_sync_interval" in values:
        values["wal_sync_interval"] = _interval(values["wal_sync_interval"])
    if "max_wal_size" in values:
        positive_int("max_wal_size", values["max_wal_size"])
    if values.get("compact_every") is not None:
        _count_option("compact_every", values["compact_every"], 0)
    for name in ("compact_target_rows", "keep_versions"):
        if values.get(name) is not None:
            positive_int(name, values[name])
    if values.get("keep_versions_seconds") is not None:
        seconds = values["keep_versions_seconds"]
        if type(seconds) not in (int, float):
            raise TypeError(f"persisting: keep_versions_seconds must be a number, got {seconds!r}")
        if not seconds >= 0:
            raise ValueError(f"persisting: keep_versions_seconds must be >= 0, got {seconds!r}")
        values["keep_versions_seconds"] = float(seconds)
    topic = values.get("topic")
    if topic is not None and (type(topic) is not str or not topic):
        raise TypeError(f"persisting: topic must be a non-empty str, got {topic!r}")
    values["storage_options"] = storage_options(values.get("storage_options"))
    location = values.get("wal_location")
    if location is not None and location not in WAL_LOCATIONS:
        raise ValueError(
            f"persisting: wal_location must be one of {WAL_LOCATIONS}, got {location!r}"
        )
    local_dir = values.get("local_dir")
    if local_dir is not None:
        if not isinstance(local_dir, (str, os.PathLike)):
            raise TypeError(f"persisting: local_dir must be a path, got {local_dir!r}")
        values["local_dir"] = os.path.abspath(os.fspath(local_dir))
    port = values.get("metrics_port")
    if port is not None and (type(port) is not int or not 0 <= port < 65536):
        raise ValueError(f"persisting: metrics_port must be a port number (0-65535), got {port!r}")
    if "metrics_addr" in values and type(values["metrics_addr"]) is not str:
        raise TypeError(f"persisting: metrics_addr must be a str, got {values['metrics_addr']!r}")
    return Options(**values)


def storage_options(value: Any) -> dict[str, str]:
    """``value`` (None or a mapping of str to str, as pylance's ``storage_options``) as
    a dict; the names are checked by the Go core (an unknown one is a ``ValueError``)."""
    if value is not None and (
        not isinstance(value, Mapping)
        or not all(type(k) is str and type(v) is str for k, v in value.items())
    ):
        raise TypeError(
            f"persisting: storage_options must map str to str (as pylance's), got {value!r}"
        )
    return dict(value or {})


def positive_int(name: str, value: Any) -> int:
    """``value`` if it is an int above 0 (``bool`` is refused), else a typed error."""
    if type(value) is not int:
        raise TypeError(f"persisting: {name} must be a positive int, got {value!r}")
    if value <= 0:
        raise ValueError(f"persisting: {name} must be a positive int, got {value!r}")
    return value


def _count_option(name: str, value: Any, least: int) -> int:
    if type(value) is not int:
        raise TypeError(f"persisting: {name} must be an int, got {value!r}")
    if value < least:
        raise ValueError(f"persisting: {name} must be >= {least}, got {value!r}")
    return value


def _interval(value: Any) -> float:
    if type(value) not in (int, float):
        raise TypeError(f"persisting: wal_sync_interval must be a number of seconds, got {value!r}")
    if not (0 <= value <= MAX_SYNC_INTERVAL) or math.isnan(value):
        raise ValueError(
            f"persisting: wal_sync_interval must be between 0 and {MAX_SYNC_INTERVAL:g} "
            f"seconds, got {value!r}"
        )
    return float(value)


def _vector_columns(value: Any) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        type(k) is str and type(v) is int and v > 0 for k, v in value.items()
    ):
        raise ValueError(
            f"persisting: vector_columns must map column names to positive dimensions, "
            f"got {value!r}"
        )
    for name in value:
        check_name(name, name)
    return dict(value)


def _field_defaults(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(type(k) is str for k in value):
        raise ValueError(
            f"persisting: field_defaults must map column names to values, got {value!r}"
        )
    return dict(value)
