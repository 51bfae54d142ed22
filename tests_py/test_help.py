"""help(): the module docstring starts with a program that runs, and the backend
classes list every constructor argument and option with its default."""

from __future__ import annotations

import dataclasses
import pydoc
import re
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

import persisting
from persisting.options import LANCE_OPTIONS, OBJECT_STORE_OPTIONS, WAL_OPTIONS, Options

ARGUMENTS = {"bucket_id": 0, "storage_path": None, "batch_size": 100}
# Defaults the docstring states in words because the Go core computes them.
COMPUTED = {"flush_threshold", "max_buffer_rows", "compact_target_rows"}
# Options whose None in Options means the Go core's default, stated here.
GO_DEFAULTS = {"compact_every": 64, "keep_versions": 100, "keep_versions_seconds": 0}


def documented(doc: str) -> dict[str, str]:
    """``name (default)`` entries at the start of a line of the docstring."""
    return dict(re.findall(r"^\s+(\w+) \(([^)]*(?:\([^)]*\)[^)]*)?)\)", doc, re.M))


def expected_default(name: str) -> object:
    if name in GO_DEFAULTS:
        return GO_DEFAULTS[name]
    value = {f.name: f for f in dataclasses.fields(Options)}[name]
    if value.default is not dataclasses.MISSING:
        default = value.default
    else:
        default = value.default_factory()  # type: ignore[misc]
    if name == "compression" or (isinstance(default, Mapping) and not default):
        return None  # "none" and {} are what None becomes
    return default


@pytest.mark.parametrize(
    "cls,names",
    [
        (persisting.PersistingBackend, LANCE_OPTIONS | WAL_OPTIONS | OBJECT_STORE_OPTIONS),
        (persisting.LanceBackend, LANCE_OPTIONS),
    ],
)
def test_class_docstring_lists_every_argument_and_option(cls: type, names: frozenset) -> None:
    doc = cls.__doc__ or ""
    entries = documented(doc)
    assert set(cls.OPTION_NAMES) == set(names)
    for name, default in ARGUMENTS.items():
        assert name in entries, f"{cls.__name__} docstring lacks argument {name}"
        assert entries[name] == repr(default), (name, entries[name])
    for name in sorted(names):
        assert name in entries, f"{cls.__name__} docstring lacks option {name}"
        if name in COMPUTED:
            assert entries[name].startswith("None, meaning"), (name, entries[name])
        else:
            first = entries[name].split(",")[0]
            assert first == repr(expected_default(name)), (name, entries[name])
    rendered = pydoc.render_doc(cls, renderer=pydoc.plaintext)
    for name in names:
        assert name in rendered


def test_every_option_is_a_backend_option() -> None:
    fields = {f.name for f in dataclasses.fields(Options)}
    assert fields == set(persisting.PersistingBackend.OPTION_NAMES)
    assert all(name in (persisting.PersistingBackend.__doc__ or "") for name in fields)


def module_example() -> str:
    doc = persisting.__doc__ or ""
    head, _, rest = doc.partition("::\n\n")
    assert len(head.splitlines()) <= 3, "help(persisting) must start with the example"
    lines = []
    for line in rest.splitlines():
        if line and not line.startswith(" "):
            break
        lines.append(line)
    return textwrap.dedent("\n".join(lines))


def test_module_docstring_example_runs(tmp_path: Path) -> None:
    program = module_example()
    assert "asyncio.run(" in program
    (tmp_path / "example.py").write_text(program, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "'id': 'o-1'" in done.stdout
    assert "'version': 1" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["example.py"]
