"""The Grafana fleet dashboard: it parses, has the vat/branch/register variables and one row per
register, and every query reads series the agent really exports (names read from a real
`Metrics` exposition, see exported.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.monitoring.exported import PROMETHEUS_SERIES, exported_series

DASHBOARD = Path(__file__).resolve().parents[2] / "monitoring" / "pos-agent-fleet.json"
SERIES = re.compile(r"\b(pos_agent_[a-z_]+|up)\b")
PER_REGISTER = {"Backlog", "Time to deadline", "Provider", "Printer", "Storage"}


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row keeps its panels inside


def expressions(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    for panel in panels(board):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            yield f"${variable['name']}", query["query"] if isinstance(query, dict) else query


def test_every_query_reads_series_the_agent_exports() -> None:
    exported = exported_series() | PROMETHEUS_SERIES
    seen = list(expressions(dashboard()))
    assert len(seen) > 10
    for where, expr in seen:
        used = set(SERIES.findall(expr))
        assert used, f"{where}: {expr} names no series"
        assert used <= exported, f"{where}: {expr} reads {used - exported}"


def test_variables_and_one_row_per_register() -> None:
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    for name in ("vat", "branch", "register"):
        assert variables[name]["type"] == "query" and variables[name]["multi"], name
        assert f", {name})" in variables[name]["query"]["query"]
    rows = [p for p in board["panels"] if p["type"] == "row"]
    [repeated] = [row for row in rows if row.get("repeat") == "register"]
    after = board["panels"][board["panels"].index(repeated) + 1 :]
    assert {p["title"] for p in after} == PER_REGISTER
    for panel in after:
        for target in panel["targets"]:
            assert 'register="$register"' in target["expr"], (panel["title"], target["expr"])


def test_every_panel_queries_the_chosen_prometheus() -> None:
    for panel in panels(dashboard()):
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["description"], panel["title"]


def test_the_fleet_section_shows_the_versions_of_a_rollout() -> None:
    """Above the per-register rows: how many registers run each version, which version each one
    runs with its build time, and how many are behind the newest (the VersionLagging rule's
    comparison)."""
    board = dashboard()
    repeated = next(p for p in board["panels"] if p.get("repeat") == "register")
    fleet = board["panels"][: board["panels"].index(repeated)]
    queries = {p["title"]: [t["expr"] for t in p["targets"]] for p in fleet if p["type"] != "row"}
    assert any(
        "count by (version) (pos_agent_build_info" in q for q in queries["Registers per version"]
    )
    table = queries["Versions across the fleet"]
    assert any(q.startswith("pos_agent_build_info{") for q in table)
    assert any(q.startswith("pos_agent_build_timestamp_seconds{") for q in table)
    behind = queries["Registers behind the newest version"][0]
    assert "< on () group_left () max(pos_agent_build_timestamp_seconds)" in behind
