"""docs/grafana-dashboard.json: every query names metrics the Go core exports
(core/metrics: Names() and the maintenance names), with the series suffixes their
types give them in a real exposition, only labels they carry, and valid PromQL
(promtool checks each query as a recording rule); every metric is on a panel."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from persisting import metrics

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"
LABELS = {"bucket", "codec", "result", "le", "version", "go_version"}
METRIC = re.compile(r"\bpersisting_[a-z_]+\b")


def go_names() -> set[str]:
    """The names Names() returns, read from the Go source."""
    source = "\n".join(
        p.read_text(encoding="utf-8")
        for p in sorted((ROOT / "core" / "metrics").glob("*.go"))
        if not p.name.endswith("_test.go")
    )
    constants = dict(re.findall(r"\b(Name\w+)\s*=\s*\"(persisting_\w+)\"", source))
    body = re.search(r"func Names\(\) \[\]string \{(.*?)\n\}", source, re.S)
    assert body, "core/metrics: Names() not found"
    listed = re.findall(r"\bName\w+\b", body.group(1))
    assert set(listed) == set(constants), set(constants) ^ set(listed)
    return {constants[name] for name in listed}


def queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            exprs.append(var["query"]["query"])
    assert len(exprs) > 10
    return exprs


async def exposition_series(open_backend) -> dict[str, str]:
    """Sample name -> family type, from a bucket that used every metric."""
    backend = open_backend(
        batch_size=10, enable_wal=True, wal_sync_interval=0, compression="zstd", enable_metrics=True
    )
    for i in range(3):
        await backend.put_batch([{"id": i * 10 + j} for j in range(10)])
        await backend.flush()
    await backend.compact()
    series = {}
    for family in text_string_to_metric_families(metrics.generate_latest().decode()):
        for sample in family.samples:
            series[sample.name] = family.type
    return series


async def test_dashboard_queries_match_exported_metrics(open_backend) -> None:
    names = go_names()
    series = await exposition_series(open_backend)
    assert names <= {re.sub(r"_(bucket|sum|count)$", "", s) for s in series} | set(series)
    used: set[str] = set()
    for expr in queries():
        for name in METRIC.findall(expr):
            assert name in series, f"{name!r} in {expr!r} is not an exported series"
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            if base != name and series[name] == "histogram":
                used.add(base)
            else:
                assert name in names, f"{name!r} in {expr!r} is not in core/metrics Names()"
                used.add(name)
        for label in re.findall(r"(\w+)\s*(?:=~|!=|!~|=)\s*\"", expr):
            assert label in LABELS, f"label {label!r} in {expr!r}"
        for group in re.findall(r"\bby \(([^)]*)\)", expr):
            for label in group.split(","):
                assert label.strip() in LABELS, f"label {label!r} in {expr!r}"
    assert used == names, f"metrics on no panel: {sorted(names - used)}"


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: `make test` installs the Debian package prometheus"
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {
                        "record": f"dashboard:query_{i}",
                        # Grafana's variables, as Grafana substitutes them.
                        "expr": expr.replace("$__rate_interval", "1m").replace("$bucket", ".*"),
                    }
                    for i, expr in enumerate(queries())
                    if not expr.startswith("label_values(")
                ],
            }
        ]
    }
    path = tmp_path / "rules.yml"
    path.write_text(json.dumps(rules), encoding="utf-8")  # JSON is YAML
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
