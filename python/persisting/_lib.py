"""ctypes binding to the Go core (``_native*.so``), loaded lazily, once per process.

Every function here is a thin, typed wrapper over one C export. Status codes
are mapped to persisting's exceptions in :func:`check`. The library is never
imported as a Python module (it has no ``PyInit``) and never unloaded.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import json
import os
import threading
from pathlib import Path
from typing import Any

from .errors import (
    ClosedError,
    CorruptionError,
    FencedError,
    LockedError,
    SchemaError,
    StorageError,
    WALError,
)

# Status codes: the numbers come from the library (cbridge/persisting.h is the
# one definition), read when it is loaded; these names are what this module uses.
OK, PENDING, BUSY, WOULD_BLOCK = "OK", "PENDING", "BUSY", "WOULD_BLOCK"
_ERRORS: dict[str, type[Exception]] = {
    "ERROR": StorageError,
    "SCHEMA": SchemaError,
    "WAL": WALError,
    "CORRUPT": CorruptionError,
    "LOCKED": LockedError,
    "CLOSED": ClosedError,
    "POISONED": StorageError,
    "INVALID": ValueError,
    "FENCED": FencedError,
}
#: Status number -> name, filled from the library.
STATUS: dict[int, str] = {}

_c_char_pp = ctypes.POINTER(ctypes.c_char_p)
_lib: ctypes.CDLL | None = None
_lib_pid: int | None = None
# Set in a child forked after the library was loaded: the Go runtime did not
# survive the fork. A flag set at fork time, not os.getpid() (a system call)
# on every call into Go.
_forked_after_load = False
_load_lock = threading.Lock()


def _mark_fork() -> None:
    global _forked_after_load
    if _lib is not None:
        _forked_after_load = True


os.register_at_fork(after_in_child=_mark_fork)


def _library_path() -> Path:
    here = Path(__file__).resolve().parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = here / f"_native{suffix}"
        if candidate.exists():
            return candidate
    raise StorageError(
        f"persisting: the Go core library _native*.so is missing from {here}; "
        "reinstall the package with Go available (pip install .)"
    )


def forked() -> bool:
    """Whether this process was forked after the library was loaded (anything
    opened before the fork is unusable here)."""
    return _forked_after_load


def lib() -> ctypes.CDLL:
    """The loaded library. Refuses use in a process forked after loading it:
    the Go runtime does not survive fork()."""
    global _lib, _lib_pid
    if _lib is not None:
        if _forked_after_load:
            raise StorageError(
                "persisting: the Go core was loaded in process "
                f"{_lib_pid} and cannot be used after fork(); "
                "use the 'spawn' or 'forkserver' start method"
            )
        return _lib
    with _load_lock:
        if _lib is None:
            loaded = ctypes.CDLL(str(_library_path()))
            _declare(loaded)
            _load_status_codes(loaded)
            _lib_pid = os.getpid()
            _lib = loaded
    return _lib


def _declare(so: ctypes.CDLL) -> None:
    u64, i64, i32, vp, up = (
        ctypes.c_uint64,
        ctypes.c_int64,
        ctypes.c_int32,
        ctypes.c_void_p,
        ctypes.c_size_t,
    )
    sigs: dict[str, tuple[list[Any], Any]] = {
        "persisting_open": ([ctypes.c_char_p, ctypes.POINTER(up), _c_char_pp], i32),
        "persisting_event_fd": ([up], i32),
        "persisting_append": ([up, vp, vp, u64, ctypes.POINTER(i64), _c_char_pp], i32),
        "persisting_poll": (
            [up, ctypes.POINTER(u64), ctypes.POINTER(i32), ctypes.POINTER(i64), i32],
            i32,
        ),
        "persisting_take_error": ([up, u64], vp),
        "persisting_read": ([up, i64, i64, i32, vp, _c_char_pp], i32),
        "persisting_flush": ([up, u64, _c_char_pp], i32),
        "persisting_stats": ([up, _c_char_pp, _c_char_pp], i32),
        "persisting_versions": ([up, _c_char_pp, _c_char_pp], i32),
        "persisting_metrics_text": ([_c_char_pp, _c_char_pp], i32),
        "persisting_metrics_serve": ([ctypes.c_char_p, _c_char_pp, _c_char_pp], i32),
        "persisting_read_version": ([up, u64, i64, i64, vp, _c_char_pp], i32),
        "persisting_close": ([up, _c_char_pp], i32),
        "persisting_close_async": ([up, u64, _c_char_pp], i32),
        "persisting_close_detached": ([up], i32),
        "persisting_wait_ready": ([up, ctypes.POINTER(i64), _c_char_pp], i32),
        "persisting_free": ([vp], None),
        "persisting_status_codes": ([_c_char_pp], i32),
        "persisting_maintain": ([up, u64, i32, i32, _c_char_pp], i32),
        "persisting_take_result": ([up, u64], vp),
        # readers and search (cbridge/dataset.go)
        "persisting_dataset_open": (
            [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(up), _c_char_pp],
            i32,
        ),
        "persisting_dataset_close": ([up], i32),
        "persisting_dataset_refresh": ([up, _c_char_pp], i32),
        "persisting_dataset_checkout": ([up, ctypes.c_char_p, _c_char_pp], i32),
        "persisting_dataset_info": ([up, _c_char_pp, _c_char_pp], i32),
        "persisting_dataset_versions": ([up, _c_char_pp, _c_char_pp], i32),
        "persisting_verify_plan": ([ctypes.c_char_p, _c_char_pp, _c_char_pp], i32),
        "persisting_verify_item": ([ctypes.c_char_p, _c_char_pp, _c_char_pp], i32),
        "persisting_dataset_scan": ([up, ctypes.c_char_p, vp, _c_char_pp], i32),
        "persisting_dataset_count": ([up, ctypes.c_char_p, ctypes.POINTER(i64), _c_char_pp], i32),
        "persisting_dataset_search": (
            [up, ctypes.c_char_p, ctypes.POINTER(ctypes.c_float), i64, vp, _c_char_pp],
            i32,
        ),
        "persisting_bucket_search": (
            [
                up,
                ctypes.c_char_p,
                ctypes.POINTER(ctypes.c_float),
                i64,
                ctypes.POINTER(u64),
                vp,
                _c_char_pp,
            ],
            i32,
        ),
    }
    for name, (argtypes, restype) in sigs.items():
        fn = getattr(so, name)
        fn.argtypes = argtypes
        fn.restype = restype


def _load_status_codes(so: ctypes.CDLL) -> None:
    out = ctypes.c_char_p()
    if so.persisting_status_codes(ctypes.byref(out)) != 0 or not out.value:
        raise StorageError("persisting: the Go core library did not report its status codes")
    codes: dict[str, int] = json.loads(out.value)
    so.persisting_free(ctypes.cast(out, ctypes.c_void_p))
    STATUS.clear()
    STATUS.update({number: name for name, number in codes.items()})


def status(number: int) -> str:
    """The name of a status number (as in persisting.h, without the prefix)."""
    lib()
    return STATUS.get(number, "ERROR")


def take_string(ptr: int | None) -> str:
    """Copy a C string returned by the library and free it."""
    if not ptr:
        return ""
    try:
        return ctypes.string_at(ptr).decode("utf-8", "replace")
    finally:
        lib().persisting_free(ptr)


def error_for(number: int, data: str) -> Exception:
    """The typed exception for an error the library reported as JSON (see
    persisting.h). Its fields become attributes: ``path``, ``offset`` (-1 when
    none), ``pid`` (of a lock's holder) and ``field``."""
    try:
        info: dict[str, Any] = json.loads(data) if data else {}
    except ValueError:
        info = {"message": data}
    name = STATUS.get(number, "ERROR")
    exc = _ERRORS.get(name, StorageError)(info.get("message") or f"persisting: status {name}")
    for attr, default in (("path", None), ("offset", -1), ("pid", None), ("field", None)):
        setattr(exc, attr, info.get(attr, default))
    return exc


def take(out: ctypes.c_char_p) -> str:
    """Copy and free a string the library wrote into an out-parameter."""
    return take_string(ctypes.cast(out, ctypes.c_void_p).value)


def check(number: int, err: ctypes.c_char_p) -> str:
    """Return the name of a non-negative status; raise the typed error of a negative one."""
    if number >= 0:
        return STATUS.get(number, OK)
    raise error_for(number, take(err))


def open_bucket(config: dict[str, Any]) -> int:
    handle = ctypes.c_size_t(0)
    err = ctypes.c_char_p()
    rc = lib().persisting_open(json.dumps(config).encode(), ctypes.byref(handle), ctypes.byref(err))
    check(rc, err)
    return handle.value


def close_bucket(handle: int) -> None:
    err = ctypes.c_char_p()
    check(lib().persisting_close(handle, ctypes.byref(err)), err)


def _json_call(name: str, handle: int) -> Any:
    out = ctypes.c_char_p()
    err = ctypes.c_char_p()
    check(getattr(lib(), name)(handle, ctypes.byref(out), ctypes.byref(err)), err)
    return json.loads(take(out))


def stats(handle: int) -> dict[str, Any]:
    result: dict[str, Any] = _json_call("persisting_stats", handle)
    return result


def versions(handle: int) -> list[dict[str, Any]]:
    """Dataset versions, oldest first (reads the disk)."""
    result: list[dict[str, Any]] = _json_call("persisting_versions", handle)
    return result


def metrics_text() -> str:
    out = ctypes.c_char_p()
    err = ctypes.c_char_p()
    check(lib().persisting_metrics_text(ctypes.byref(out), ctypes.byref(err)), err)
    return take(out)


def metrics_serve(addr: str) -> str:
    out = ctypes.c_char_p()
    err = ctypes.c_char_p()
    check(lib().persisting_metrics_serve(addr.encode(), ctypes.byref(out), ctypes.byref(err)), err)
    return take(out)
