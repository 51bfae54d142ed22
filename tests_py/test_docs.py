"""Every ```python block of the guides (docs/guide.md, docs/guide.zh.md) and of the
README is a complete program that runs: each in its own subprocess, with a fresh
working directory and TMPDIR that must be empty afterwards. Other blocks are
marked (sh, text, json) and not run. The docs cite only files that ship."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "docs" / "guide.md", ROOT / "docs" / "guide.zh.md", ROOT / "README.md"]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)
RUN = "python"
NOT_RUN = {"sh", "text", "json"}


def blocks() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for n, match in enumerate(FENCE.finditer(text), 1):
            lang = match.group(1)
            assert lang == RUN or lang in NOT_RUN, f"{doc.name} block {n}: mark it python or sh"
            if lang == RUN:
                line = text.count("\n", 0, match.start()) + 1
                found.append((f"{doc.name}:{line}", match.group(2)))
    return found


BLOCKS = blocks()


def test_guides_have_code() -> None:
    names = [name.split(":")[0] for name, _ in BLOCKS]
    assert names.count("guide.md") >= 10
    assert names.count("guide.zh.md") == names.count("guide.md")


@pytest.mark.parametrize("code", [code for _, code in BLOCKS], ids=[name for name, _ in BLOCKS])
def test_block_runs(code: str, tmp_path: Path) -> None:
    assert "asyncio.run(" in code, "a block is a whole program"
    work, tmp = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    tmp.mkdir()
    (tmp_path / "block.py").write_text(code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(tmp_path / "block.py")],
        cwd=work,
        env=dict(os.environ, TMPDIR=str(tmp)),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert list(work.iterdir()) == [] and list(tmp.iterdir()) == [], "left files behind"


def test_docs_cite_only_shipped_files() -> None:
    banned = re.compile(r"pulsing-contract|lance-format|bridge-and-durability|§|shared/docs")
    files = [
        *DOCS,
        *(ROOT / "python" / "persisting").glob("*.py"),
        *(ROOT / "examples").glob("*.py"),
    ]
    for path in files:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            assert not banned.search(line), f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"
        for cited in re.findall(r"`((?:examples|docs|tests_py|core|python)/[\w./-]+)`", text):
            assert (ROOT / cited).exists(), f"{doc.name} cites missing {cited}"
