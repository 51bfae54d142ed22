"""``persisting``: look at, check and maintain persisting data from a shell.

Commands (``persisting COMMAND --help`` for each)::

    persisting inspect  PATH                 schema, rows, versions, fragments, WAL, sizes
    persisting verify   PATH                 read every page and WAL frame; exit 1 on damage
    persisting cat      PATH [--from N] [--limit N] [--follow] [--bucket B]
    persisting versions PATH
    persisting export   PATH --to out.parquet | out.jsonl
    persisting compact  PATH                 (takes the bucket's lock, like a writer)
    persisting cleanup  PATH                 (takes the bucket's lock, like a writer)

PATH is a bucket directory (``{storage_path}/bucket_3``), a queue's
``storage_path`` (every ``bucket_*`` under it) or a bucket's ``data.lance``.
Everything but ``compact`` and ``cleanup`` is read-only and never takes the
writer's ``LOCK``: it runs beside a live writer, in any process.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from .exits import (
    EXIT_CODES_HELP,
    EXIT_DAMAGE,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_USAGE,
    CLIError,
)
from .output import dumps
from .parser import build_parser
from .paths import Bucket, lock_holder, resolve

__all__ = [
    "EXIT_CODES_HELP",
    "EXIT_DAMAGE",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_LOCKED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_USAGE",
    "Bucket",
    "CLIError",
    "build_parser",
    "dumps",
    "lock_holder",
    "main",
    "resolve",
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except CLIError as exc:
        return _fail(args, exc.code, str(exc), **exc.extra)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `persisting cat ... | head`: the reader went away.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        from ..errors import LockedError, StorageError

        if isinstance(exc, LockedError):
            return _fail(args, EXIT_LOCKED, str(exc), pid=exc.pid)
        if isinstance(exc, (StorageError, OSError, ValueError)):
            extra = {}
            if isinstance(exc, StorageError):
                extra = {"path": exc.path, "offset": exc.offset}
            return _fail(args, EXIT_ERROR, str(exc), **extra)
        raise


def _fail(args: argparse.Namespace, code: int, message: str, **extra: Any) -> int:
    if getattr(args, "json", False):
        print(dumps({"error": message, "exit_code": code, **extra}), file=sys.stderr)
    else:
        print(message, file=sys.stderr)
    return code
