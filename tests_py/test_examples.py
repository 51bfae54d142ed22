"""Every program in examples/ runs to completion and leaves nothing behind: each
runs in its own working directory with its own TMPDIR, both empty afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PROGRAMS = sorted(EXAMPLES.glob("*.py"))


def test_examples_are_there() -> None:
    names = {p.stem for p in PROGRAMS}
    assert {
        "demo",
        "restart_recovery",
        "time_travel",
        "arrow_batch",
        "read_with_pylance_duckdb",
        "prometheus_metrics",
    } <= names


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.stem)
def test_example_runs(program: Path, tmp_path: Path) -> None:
    work, tmp = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))
    done = subprocess.run(
        [sys.executable, str(program)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip(), "an example says what it did"
    assert list(work.iterdir()) == [], "left files in the working directory"
    assert list(tmp.iterdir()) == [], "left files in TMPDIR"
