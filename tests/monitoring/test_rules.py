"""The shipped alert rules, checked and unit-tested with Prometheus' own promtool.

CI installs Debian's `prometheus` package (Makefile APT_PACKAGES), which ships promtool; where it
is missing these tests skip and say so."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitoring.exported import PROMETHEUS_SERIES, exported_series

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "pos-agent.rules.yml"
RULE_TESTS = Path(__file__).with_name("pos-agent.rules.test.yml")
# The alerts whose `for:` is days long, evaluated hourly (minute by minute takes minutes).
DAYS_RULE_TESTS = Path(__file__).with_name("pos-agent.rules.days.test.yml")
MONITORING_DOC = ROOT / "docs" / "monitoring.md"
ALERTS = {
    "AgentDown",
    "DeadlineNear",
    "DeadlineMissed",
    "BacklogGrowing",
    "ProviderUnreachableLong",
    "CredentialsRefused",
    "ReceiptsRejected",
    "PrinterFailing",
    "StorageLow",
    "StorageFailing",
    "IntegrityFailed",
    "ClockSkew",
    "VersionLagging",
    "RegistrationUnproven",
    "UnheldOrderSlip",
}
SERIES = re.compile(r"\b(pos_agent_[a-z_]+|up)\b")
GREEK = re.compile(r"[\u0370-\u03ff]")


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip(
            "promtool not installed (Debian package prometheus; make test installs it as root)"
        )
    return found


def rules() -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def test_promtool_checks_the_rules() -> None:
    done = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_pass() -> None:
    done = subprocess.run(
        [promtool(), "test", "rules", str(RULE_TESTS), str(DAYS_RULE_TESTS)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=RULE_TESTS.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_unit_tests_would_catch_a_wrong_threshold(tmp_path: Path) -> None:
    """The same unit tests on rules with DeadlineNear at 1 h instead of 12 h must fail."""
    rules_dir = tmp_path / "monitoring"
    tests_dir = tmp_path / "tests" / "monitoring"
    rules_dir.mkdir(parents=True)
    tests_dir.mkdir(parents=True)
    text = RULES.read_text(encoding="utf-8")
    assert "< 12 * 3600" in text
    (rules_dir / RULES.name).write_text(text.replace("< 12 * 3600", "< 1 * 3600"))
    shutil.copy(RULE_TESTS, tests_dir)
    done = subprocess.run(
        [promtool(), "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tests_dir,
    )
    assert done.returncode != 0
    assert "alertname: DeadlineNear" in done.stdout + done.stderr


def test_every_alert_is_tested_firing_and_quiet() -> None:
    cases = [
        case
        for path in (RULE_TESTS, DAYS_RULE_TESTS)
        for case in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]
    ]
    fires, quiet = set(), set()
    for case in cases:
        for check in case["alert_rule_test"]:
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])
    assert set(rules()) == ALERTS
    assert fires == ALERTS, f"never seen firing: {ALERTS - fires}"
    assert quiet == ALERTS, f"never seen quiet: {ALERTS - quiet}"


def test_rules_read_only_series_the_agent_exports() -> None:
    exported = exported_series() | PROMETHEUS_SERIES
    for name, rule in rules().items():
        used = set(SERIES.findall(rule["expr"]))
        assert used, name
        assert used <= exported, f"{name} reads {used - exported}, which the agent does not export"


def test_each_alert_has_english_greek_and_the_readme_runbook() -> None:
    section = MONITORING_DOC.read_text(encoding="utf-8")
    for name, rule in rules().items():
        notes = rule["annotations"]
        assert notes["summary"] and not GREEK.search(notes["summary"]), name
        assert GREEK.search(notes["summary_el"]), name
        entry = re.search(rf"^- \*\*{name}\*\*.*?(?=^- \*\*|\Z)", section, re.M | re.S)
        assert entry is not None, f"docs/monitoring.md has no entry for {name}"
        flowed = " ".join(entry.group(0).split())
        assert f"Runbook: {notes['runbook']}" in flowed, (
            f"{name}: runbook differs from docs/monitoring.md"
        )
