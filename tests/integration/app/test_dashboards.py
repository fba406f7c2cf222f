"""deploy/grafana/: every query of the dashboard names only metrics that a real server's
/metrics exports (a renamed metric would leave a panel silently empty)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.conftest import AppServer
from tests.helpers import http_client

DASHBOARDS = Path(__file__).resolve().parents[3] / "deploy" / "grafana"

# PromQL words that are not metric names
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
    "and", "or", "unless", "inf", "nan",
}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are neither a
    function call, a keyword, a label in a matcher or a grouping, nor a string."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings (label values, legends)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges ([5m], [$__rate_interval])
    # Grafana's label_values(metric, label): the metric only
    text = re.sub(r"label_values\(\s*([^,)]+)(?:,[^)]*)?\)", r"\1", text)
    text = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text
    )  # grouping labels
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        name = match.group(0)
        after = text[match.end():].lstrip()
        if after.startswith("(") or name.lower() in KEYWORDS:
            continue  # a function (rate, sum, histogram_quantile, label_values)
        names.add(name)
    return names


def test_the_expression_parser() -> None:
    assert metric_names(
        'histogram_quantile(0.99, sum by (le) (rate(tidings_commit_duration_seconds_bucket'
        '{instance=~"$instance"}[$__rate_interval])))'
    ) == {"tidings_commit_duration_seconds_bucket"}
    assert metric_names(
        "process_open_fds{a=\"b\"} / process_max_fds"
    ) == {"process_open_fds", "process_max_fds"}
    assert metric_names("label_values(tidings_build_info, instance)") == {"tidings_build_info"}
    assert metric_names("sum by (method, outcome) (rate(tidings_logins_total[5m]))") == {
        "tidings_logins_total"
    }


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, expression) of every panel target and query variable."""
    found: list[tuple[str, str]] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                found.append((panel["title"], target["expr"]))
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            found.append((variable["name"], query["query"] if isinstance(query, dict) else query))
    return found


def exported_names(exposition: str) -> set[str]:
    """Every sample name the exposition can carry, families without samples included."""
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            if kind == "histogram":
                names.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
            else:
                names.add(name)
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


async def test_every_panel_names_exported_metrics(server: AppServer) -> None:
    async with http_client(server.url) as c:
        r = await c.get("/metrics")
    assert r.status_code == 200
    exported = exported_names(r.text)
    files = sorted(DASHBOARDS.glob("*.json"))
    assert files, "no dashboard in deploy/grafana"
    for path in files:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        found = queries(dashboard)
        assert len(found) >= 20, path
        missing = {
            f"{where}: {name}"
            for where, expr in found
            for name in metric_names(expr)
            if name not in exported
        }
        assert missing == set(), f"{path.name} queries metrics /metrics does not export"
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), "panel ids repeat"
