"""The argument parser: options every command shares, then one function per
command adding its own."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import NoReturn

from .exits import EXIT_CODES_HELP, EXIT_USAGE
from .maintain import cmd_cleanup, cmd_compact
from .paths import key_value
from .read import cmd_cat, cmd_export
from .status import cmd_inspect, cmd_versions
from .verify import cmd_verify

PATH_HELP = (
    "a bucket directory ({storage_path}/bucket_<id>), a queue's storage_path "
    "(every bucket_* under it) or a bucket's data.lance; inspect, versions, cat and "
    "export also take an s3://bucket/prefix URI (see --storage-option)"
)

# Adds one command's parser (with the shared options and PATH); see build_parser.
AddCommand = Callable[[str, str, str], argparse.ArgumentParser]


def _nonneg(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {n}")
    return n


def _positive_float(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not x > 0 or not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return x


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _common() -> argparse.ArgumentParser:
    """The options every command takes."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json",
        action="store_true",
        help="machine-readable output: one JSON document on stdout (cat always prints JSON lines)",
    )
    common.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bars (they are shown only on a terminal anyway)",
    )
    common.add_argument(
        "--bucket", type=_nonneg, metavar="ID", help="only this bucket of a storage_path"
    )
    common.add_argument(
        "--storage-option",
        action="append",
        type=key_value,
        metavar="KEY=VALUE",
        help="for an s3:// PATH (inspect, versions, cat, export): a storage option named as "
        "pylance's (aws_endpoint, aws_region, aws_access_key_id, aws_secret_access_key, "
        "allow_http, ...); repeat it for several; the standard AWS environment variables "
        "and files apply otherwise",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    fmt = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog="persisting",
        description=(
            "Inspect, verify, read, export and maintain persisting queue data.\n"
            "Everything but compact and cleanup is read-only and never takes a bucket's\n"
            "LOCK: safe beside a live writer in another process."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=fmt,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def add(name: str, help: str, description: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            parents=[common],
            help=help,
            description=description,
            epilog=EXIT_CODES_HELP,
            formatter_class=fmt,
        )
        p.add_argument("path", metavar="PATH", help=PATH_HELP)
        return p

    _add_inspect(add)
    _add_verify(add)
    _add_cat(add)
    _add_versions(add)
    _add_export(add)
    _add_maintain(add)
    return parser


def _add_inspect(add: AddCommand) -> None:
    p = add(
        "inspect",
        "schema, rows, versions, fragments, WAL segments, sizes",
        "Describe every bucket under PATH: the live writer (from /proc/locks), the\n"
        "dataset's schema, rows, version, retained versions, fragments and sizes, and\n"
        "the WAL's segments (frames, row offsets, bytes).",
    )
    p.set_defaults(func=cmd_inspect)


def _add_verify(add: AddCommand) -> None:
    p = add(
        "verify",
        "read every page and WAL frame; exit 1 on damage",
        "Read every manifest of every retained version, every page of every data file\n"
        "of every fragment (decoded and validated: offsets, lengths, UTF-8), and every\n"
        "WAL frame (length checks, CRC-32C, row ranges, segment headers and sequence).\n"
        "Nothing is repaired, moved or locked. Each problem names its file and byte\n"
        "offset (-1 when none applies) and a kind: corrupt, torn_tail (a WAL tail the\n"
        "next open cuts), missing, or unsupported (an encoding this checker cannot\n"
        "decode: reported, not counted as damage). Lance 2.0 pages carry no checksum:\n"
        "a changed byte in plain fixed-width values decodes fine and goes unnoticed.",
    )
    p.set_defaults(func=cmd_verify)


def _add_cat(add: AddCommand) -> None:
    p = add(
        "cat",
        "print rows as JSON lines",
        "Print committed rows as JSON lines, each with its row offset in the bucket\n"
        '("_offset"). On a storage_path with several buckets every bucket is printed,\n'
        'bucket by bucket, each line with "_bucket"; --from and --limit then count\n'
        "within each bucket and overall respectively (pass --bucket for one bucket).\n"
        "Only committed (flushed) rows are visible: rows still in a writer's buffer\n"
        'appear once it flushes them. bytes print as {"$base64": ...}, datetimes as\n'
        "ISO 8601, NaN and infinities as strings.",
    )
    p.add_argument(
        "--from",
        dest="start",
        type=_nonneg,
        default=0,
        metavar="N",
        help="first row offset (default 0)",
    )
    p.add_argument(
        "--limit", type=_nonneg, default=None, metavar="N", help="print at most N rows in all"
    )
    p.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="keep polling (refresh) and print rows as they are committed; "
        "rows a writer still buffers appear once flushed; Ctrl-C stops",
    )
    p.add_argument(
        "--interval",
        type=_positive_float,
        default=1.0,
        metavar="SECONDS",
        help="--follow poll interval (default 1.0)",
    )
    p.set_defaults(func=cmd_cat)


def _add_versions(add: AddCommand) -> None:
    p = add(
        "versions",
        "list retained versions",
        "List every retained version of every bucket: bucket, version, commit time\n"
        "(UTC) and rows.",
    )
    p.set_defaults(func=cmd_versions)


def _add_export(add: AddCommand) -> None:
    p = add(
        "export",
        "write the rows to Parquet or JSON lines",
        "Write every committed row to a Parquet or JSON-lines file (written beside\n"
        'the target, then renamed into place). Several buckets add a "_bucket" column.',
    )
    p.add_argument("--to", required=True, metavar="FILE", help="out.parquet or out.jsonl")
    p.add_argument(
        "--format", choices=("parquet", "jsonl"), help="override the format the file name implies"
    )
    p.add_argument("--compression", default="zstd", help="Parquet compression (default zstd)")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    p.set_defaults(func=cmd_export)


def _add_maintain(add: AddCommand) -> None:
    for name, func, what in (
        ("compact", cmd_compact, "merge small fragments, then remove old versions"),
        ("cleanup", cmd_cleanup, "remove versions outside the retention window"),
    ):
        p = add(
            name,
            what,
            f"{what[0].upper()}{what[1:]} in each bucket under PATH.\n"
            "This opens the bucket as a writer would: it takes the bucket's LOCK (and runs\n"
            "recovery, replaying a WAL into Lance). A bucket a live writer holds is\n"
            "refused with exit code 4 naming the holder's pid; other buckets go on.",
        )
        p.add_argument(
            "--keep-versions",
            type=_nonneg,
            metavar="N",
            help="versions cleanup keeps (default 100; the latest always)",
        )
        p.add_argument(
            "--keep-seconds",
            type=float,
            metavar="S",
            help="also keep every version younger than S seconds",
        )
        if name == "compact":
            p.add_argument(
                "--compression",
                choices=("zstd", "lz4", "snappy"),
                help="page compression of the rewritten fragments",
            )
        p.set_defaults(func=func)
