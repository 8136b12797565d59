"""A real Prometheus (Debian's package) scrapes two real registers and evaluates the shipped rules.

Two sandbox + daemon stacks serve their metrics-only listeners on 127.0.0.1; Prometheus scrapes
them every second and evaluates `monitoring/pos-agent.rules.yml`, rendered with every `for:` at 0
so the test does not wait minutes. Register A issues a receipt while its provider is down; then
its daemon is restarted with its wall clock moved (libfaketime, a static offset: cheap) to 6 h
before that receipt's legal deadline, which ages the backlog exactly as time would. Through
Prometheus' HTTP API: both registers' series are there with their labels, A's time to deadline is
under 12 h, DeadlineNear fires for A and not for B, every dashboard query evaluates, and a
stopped register raises AgentDown named by its register label.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from agent.clock import athens_now
from agent.tools.local_stack import (
    LocalStack,
    StackSettings,
    cash_receipt,
    free_tcp_port,
    post_json,
)
from tests.e2e.stack import E2E_DEFAULTS, wait_for

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "pos-agent.rules.yml"
DASHBOARD = ROOT / "monitoring" / "pos-agent-fleet.json"
PROMETHEUS = shutil.which("prometheus")
LIBFAKETIME = next(iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketimeMT.so.1"))), None)
HOURS_LEFT = 6


@dataclass
class Fleet:
    aged: LocalStack  # register A: one offline receipt, 6 h from its deadline
    healthy: LocalStack  # register B: online
    prometheus: str  # http://127.0.0.1:PORT

    def query(self, expr: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.prometheus}/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        assert body["status"] == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        assert len(result) <= 1, (expr, result)
        return float(result[0]["value"][1]) if result else None

    def alerts(self, name: str) -> list[dict[str, Any]]:
        body = httpx.get(f"{self.prometheus}/api/v1/alerts", timeout=10).json()
        return [a for a in body["data"]["alerts"] if a["labels"]["alertname"] == name]


def rules_without_waiting(target: Path) -> Path:
    """The shipped rules with every `for:` at 0: the expressions are what is under test."""
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    for group in rules["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            rule["for"] = "0s"
    target.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    return target


def register(root: Path, name: str) -> LocalStack:
    settings = StackSettings(
        **E2E_DEFAULTS,
        metrics_listen=f"127.0.0.1:{free_tcp_port()}",
        register_name=name,
        sync_interval_s=1.0,
    )
    return LocalStack(root / name, settings)


def faked_clock_env(target: datetime) -> dict[str, str]:
    """The daemon's wall clock moved by a fixed offset to `target` (monotonic left alone)."""
    assert LIBFAKETIME is not None
    offset = round((target - athens_now()).total_seconds())
    return {
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME": f"{offset:+d}",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


def start_prometheus(root: Path, targets: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    assert PROMETHEUS is not None
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
        "rule_files": [str(rules_without_waiting(root / "rules.yml"))],
        "scrape_configs": [{"job_name": "pos-agent", "static_configs": [{"targets": targets}]}],
    }
    (root / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_tcp_port()
    with (root / "prometheus.log").open("ab") as log:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={root / 'prometheus.yml'}",
                f"--storage.tsdb.path={root / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"prometheus exited: {(root / 'prometheus.log').read_text()}")
        try:
            return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(ready, timeout_s=30, what="prometheus ready")
    return process, url


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    if PROMETHEUS is None:
        pytest.skip("prometheus not installed (Debian package prometheus; make test installs it)")
    if LIBFAKETIME is None:
        pytest.skip("libfaketime not installed (Debian package faketime; make test installs it)")
    root = tmp_path_factory.mktemp("fleet")
    aged, healthy = register(root, "till-a"), register(root, "till-b")
    prometheus: subprocess.Popen[bytes] | None = None
    try:
        healthy.start()
        with healthy.client() as client:
            assert post_json(client, "/v1/receipts", cash_receipt("b-1")).status_code == 201
        aged.start()
        aged.set_faults("down")
        with aged.client() as client:
            answer = post_json(client, "/v1/receipts", cash_receipt("a-1")).json()
        assert answer["state"] == "delayed", answer
        due = datetime.fromisoformat(answer["due_at"])
        aged.stop_daemon()
        aged.start_daemon(extra_env=faked_clock_env(due - timedelta(hours=HOURS_LEFT)))
        targets = [s.settings.metrics_listen for s in (aged, healthy)]
        prometheus, url = start_prometheus(root, [t for t in targets if t])
        yield Fleet(aged, healthy, url)
    finally:
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(timeout=30)
        aged.stop()
        healthy.stop()


def test_prometheus_scrapes_both_registers_with_their_labels(fleet: Fleet) -> None:
    def both_up() -> bool:
        return len(fleet.query('up{job="pos-agent"} == 1')) == 2

    wait_for(both_up, timeout_s=30, what="both registers scraped")
    builds = fleet.query("pos_agent_build_info")
    assert {b["metric"]["register"] for b in builds} == {"till-a", "till-b"}
    assert {b["metric"]["vat"] for b in builds} == {"094019245"}
    for name in (
        "pos_agent_backlog_documents",
        "pos_agent_breaker_open",
        "pos_agent_print_jobs",
        "pos_agent_printer_state",
        "pos_agent_storage_free_bytes",
        "pos_agent_integrity_check_ok",
        "pos_agent_overdue_documents",
    ):
        registers = {s["metric"]["register"] for s in fleet.query(name)}
        assert registers == {"till-a", "till-b"}, name
    # Counters start at each daemon's start: A restarted after its receipt, B did not.
    b = 'register="till-b"'
    assert fleet.value(f'pos_agent_receipts_total{{{b},type="11.1",outcome="accepted"}}') == 1
    assert fleet.value(f"pos_agent_oldest_delayed_deadline_seconds{{{b}}}") is None


def test_an_aged_backlog_raises_deadline_near_for_that_register_only(fleet: Fleet) -> None:
    a = 'register="till-a"'

    def deadline_near() -> list[dict[str, Any]]:
        return [
            alert
            for alert in fleet.alerts("DeadlineNear")
            if alert["state"] in ("pending", "firing")
        ]

    [alert] = wait_for(deadline_near, timeout_s=30, what="DeadlineNear for till-a")
    assert alert["labels"]["register"] == "till-a"
    assert alert["labels"]["severity"] == "warning"
    assert "Runbook" not in alert["annotations"]["runbook"]  # the line itself, not its header
    assert fleet.value(f'pos_agent_backlog_documents{{{a},state="delayed",delayed_code="1"}}') == 1
    left = fleet.value(f"pos_agent_oldest_delayed_deadline_seconds{{{a}}}")
    assert left is not None and 0 < left < HOURS_LEFT * 3600 + 60
    assert fleet.value(f"pos_agent_breaker_open{{{a}}}") == 1
    assert fleet.alerts("DeadlineMissed") == []


def test_every_dashboard_query_evaluates(fleet: Fleet) -> None:
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    values = {"$vat": ".*", "$branch": ".*", "$register": "till-a"}
    empty = []
    for expr in exprs:
        for variable, value in values.items():
            expr = expr.replace(variable, value)
        if not fleet.query(expr):
            empty.append(expr)
    # Empty by design here: one of the two per-register times (the deadline of a register
    # without backlog, the last success of one whose provider is down) and the build time,
    # which only a package carries (packaging/deb/build stamps it; a source checkout has none).
    unstamped = [expr for expr in empty if "pos_agent_build_timestamp_seconds" in expr]
    assert len(empty) - len(unstamped) <= 1, empty


def test_a_stopped_register_raises_agent_down_by_its_name(fleet: Fleet) -> None:
    fleet.healthy.stop_daemon()

    def down() -> list[dict[str, Any]]:
        return fleet.alerts("AgentDown")

    [alert] = wait_for(down, timeout_s=30, what="AgentDown for till-b")
    assert alert["labels"]["register"] == "till-b"
    assert alert["labels"]["instance"] == fleet.healthy.settings.metrics_listen
