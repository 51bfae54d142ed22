"""Exit codes of the ``persisting`` command and the error that carries one."""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_DAMAGE = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_LOCKED = 4
EXIT_ERROR = 5
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = """\
exit codes:
  0    success (verify: no damage found)
  1    verify found damage (corrupt pages or frames, a torn WAL tail, a missing file)
  2    usage error (bad arguments, an output file that exists without --force)
  3    not found: PATH holds no persisting data (no data.lance, wal/ or bucket_*)
  4    locked: compact/cleanup found a bucket held by a live writer (its pid is named)
  5    any other error (damage met while reading in cat/export/inspect, I/O errors)
  130  interrupted (Ctrl-C)
"""


class CLIError(Exception):
    """An error with its exit code; the message is printed, no traceback."""

    def __init__(self, code: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.extra = extra
