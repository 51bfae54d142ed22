"""Run `go test -json` output through this: print what `go test` prints without
-v (package results, and the full output of failing tests), and fail the run when
a test was skipped without being listed in tests_go/allowed_skips.txt.

A skip hides a test that CI counts as done; every allowed skip is listed with a
reason that holds on CI too.

Usage: go test -json ./... | python tools/gotest.py tests_go/allowed_skips.txt
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def allowed(path: str) -> dict[str, str]:
    rules: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                name, _, reason = line.partition(" ")
                rules[name] = reason.strip()
    return rules


def main() -> int:
    allow = allowed(sys.argv[1])
    output: dict[tuple[str, str], list[str]] = defaultdict(list)
    failed = False
    skipped: list[tuple[str, str, str]] = []
    for raw in sys.stdin:
        try:
            ev = json.loads(raw)
        except json.JSONDecodeError:
            sys.stdout.write(raw)  # build errors come as plain text
            continue
        pkg, test, action = ev.get("Package", ""), ev.get("Test", ""), ev.get("Action")
        if action == "build-output":
            sys.stdout.write(ev.get("Output", ""))
        elif action == "build-fail":
            failed = True
        elif action == "output":
            output[(pkg, test)].append(ev["Output"])
        elif action == "fail":
            failed = True
            sys.stdout.write("".join(output[(pkg, test)]))
        elif action == "skip" and test:
            lines = "".join(output[(pkg, test)]).splitlines()
            why = [ln.strip() for ln in lines if not ln.lstrip().startswith(("---", "==="))]
            skipped.append((pkg, test, " ".join(why)))
        elif action in ("pass", "skip") and not test:
            sys.stdout.write(
                "".join(line for line in output[(pkg, "")] if line.startswith(("ok", "?")))
            )
        if action in ("pass", "skip", "fail"):
            output.pop((pkg, test), None)
    unexpected = [s for s in skipped if s[1].split("/")[0] not in allow]
    for pkg, test, why in unexpected:
        print(f"UNEXPECTED SKIP {pkg} {test}: {why}")
    if unexpected:
        print(f"{len(unexpected)} test(s) skipped without a listed reason in {sys.argv[1]}")
    return 1 if failed or unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
