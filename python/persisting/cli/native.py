"""Calls into the Go library: its JSON-returning verify exports and the
reader (imported on use, so ``--help`` needs no native library).
"""

from __future__ import annotations

import ctypes
import json
from typing import Any


def call_json(fn_name: str, arg: str) -> Any:
    from .. import _lib

    out = ctypes.c_char_p()
    err = ctypes.c_char_p()
    fn = getattr(_lib.lib(), fn_name)
    _lib.check(fn(arg.encode(), ctypes.byref(out), ctypes.byref(err)), err)
    return json.loads(_lib.take(out))


def open_reader(path: str, storage_options: dict[str, str] | None = None) -> Any:
    from ..dataset import open_dataset

    return open_dataset(path, storage_options=storage_options)
