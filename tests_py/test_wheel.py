"""The wheel: `make wheel` builds it, and it installs and runs where there is
neither Go nor gcc.

The test builds the wheel through the Makefile (the same command a user runs),
installs ``persisting-queue[pulsing]`` from it into a fresh venv with only that
venv on PATH and binary packages only (so nothing can be compiled), and runs
the README's Pulsing snippet there, in a directory outside the checkout.
Dependencies come from the package index through pip's cache.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(900)


def readme_pulsing_snippet() -> str:
    """The first Python block of the README's "Use with Pulsing" section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Use with Pulsing") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README: no python block under 'Use with Pulsing'"
    return match.group(1)


@pytest.fixture(scope="module")
def wheel() -> Path:
    subprocess.run(["make", "-s", "-C", str(ROOT), "wheel"], check=True, timeout=600)
    wheels = sorted((ROOT / "dist").glob("persisting_queue-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_tags(wheel: Path) -> None:
    # py3-none: the Go library is loaded with ctypes, so any CPython 3 can use it;
    # manylinux_X_Y: auditwheel checked the glibc symbol versions it needs.
    assert re.fullmatch(
        r"persisting_queue-[\w.]+-py3-none-manylinux_\d+_\d+_x86_64\.whl", wheel.name
    ), wheel.name


def test_wheel_installs_without_go_and_runs_readme(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, symlinks=True).create(env_dir)
    bin_dir = env_dir / "bin"
    assert not any((bin_dir / tool).exists() for tool in ("go", "gcc", "cc"))
    env = {
        "PATH": str(bin_dir),  # no go, no gcc, no cc
        "HOME": os.environ.get("HOME", str(tmp_path)),  # pip's cache
        "CC": "/bin/false",
        "LANG": "C.UTF-8",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
    }
    for name in ("PIP_CACHE_DIR", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        if name in os.environ:
            env[name] = os.environ[name]
    subprocess.run(
        [
            str(bin_dir / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--only-binary=:all:",  # a wheel for everything: nothing is compiled
            f"persisting-queue[pulsing] @ {wheel.as_uri()}",
        ],
        env=env,
        check=True,
        timeout=600,
    )
    work = tmp_path / "work"
    work.mkdir()
    where = subprocess.run(
        [str(bin_dir / "python"), "-c", "import persisting; print(persisting.__file__)"],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(env_dir), where  # the installed copy, not the checkout
    (work / "snippet.py").write_text(readme_pulsing_snippet(), encoding="utf-8")
    done = subprocess.run(
        [str(bin_dir / "python"), "snippet.py"],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "{'id': 'o-1', 'amount': 12.5}" in done.stdout, done.stdout
    assert sorted(p.name for p in work.iterdir()) == ["snippet.py"]  # nothing left behind


def test_readme_snippet_runs_in_checkout(tmp_path: Path) -> None:
    """The same snippet against the development install (fast, no wheel)."""
    (tmp_path / "snippet.py").write_text(readme_pulsing_snippet(), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "snippet.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "{'id': 'o-1', 'amount': 12.5}" in done.stdout, done.stdout
