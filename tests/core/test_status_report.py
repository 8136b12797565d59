"""The typed status report: built from a real store, judged, and read back from its JSON."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import offline_store as store
from agent.core.status_report import (
    ClockSection,
    DaemonSection,
    Level,
    PrinterSection,
    StatusReport,
    level_of_finding,
    store_status,
    verdict,
)
from tests.fiscal.fixtures import shop_config
from tests.offline_store.factory import T0, issue, open_store


def report_for(tmp_path: Path, *, due_in: timedelta) -> StatusReport:
    """A running daemon's report over a store holding one receipt delayed with code 1."""
    config = shop_config(state_dir=str(tmp_path))
    conn = open_store(tmp_path)
    doc = issue(conn, "r-1")
    with store.transaction(conn):
        store.mark_delayed(
            conn, doc.id, code=1, due_at=T0 + due_in, next_attempt_at=None, error="down", now=T0
        )
    report = StatusReport(
        version="test",
        generated_at=T0,
        daemon=DaemonSection(running=True, pid=1, started_at=T0, uptime_s=0),
        printer=PrinterSection(
            enabled=True, backend="file", state="ok", queued=0, failed=0, printed=0
        ),
        store=store_status(conn, config, T0),
    )
    conn.close()
    return report.judged(*verdict(report, config))


def test_backlog_section_counts_the_delayed_receipt(tmp_path: Path) -> None:
    report = report_for(tmp_path, due_in=timedelta(hours=30))
    assert report.store is not None
    backlog = report.store.backlog
    assert (backlog.delayed, backlog.pending, backlog.by_code) == (1, 0, {"1": 1, "2": 0})
    assert backlog.oldest is not None
    assert (backlog.oldest.receipt_id, backlog.oldest.hours_left) == (1, 30.0)
    assert report.exit_code is Level.WARN
    assert report.findings == ["WARN: 1 receipt(s) waiting to reach the provider"]


def test_deadline_close_is_critical(tmp_path: Path) -> None:
    report = report_for(tmp_path, due_in=timedelta(hours=2))
    assert report.exit_code is Level.CRITICAL
    assert [level_of_finding(f) for f in report.findings] == [Level.CRITICAL]


def test_the_wire_form_reads_back_as_the_same_report(tmp_path: Path) -> None:
    report = report_for(tmp_path, due_in=timedelta(hours=30))
    wire = report.as_json()
    assert "provider" not in wire and "clock" not in wire  # absent sections are left out
    assert wire["exit_code"] == 1 and wire["level"] == "WARN"
    assert StatusReport.model_validate(wire) == report


def test_a_clock_step_is_a_warning_with_what_to_check(tmp_path: Path) -> None:
    quiet = report_for(tmp_path, due_in=timedelta(hours=30))
    stepped = quiet.model_copy(
        update={
            "clock": ClockSection(offset_s=0.0, provider_date=T0, step_s=-3600.0, stepped_at=T0)
        }
    )
    config = shop_config(state_dir=str(tmp_path))
    judged = stepped.judged(*verdict(stepped, config))
    assert judged.exit_code is Level.WARN
    [step] = [f for f in judged.findings if "wall clock" in f]
    assert "stepped by -3600 s" in step and "timedatectl" in step


def test_a_footer_lacking_any_provider_item_is_critical(tmp_path: Path) -> None:
    """Α.1112/2025: legal name, web address and licence on every receipt (greek-regulation §4
    item 10); the complete footer of the fixtures judges WARN above, each gap is CRITICAL."""
    quiet = report_for(tmp_path, due_in=timedelta(hours=30))
    complete = shop_config(state_dir=str(tmp_path)).provider.footer
    for missing in ("legal_name", "web_address", "licence"):
        footer = complete.model_copy(update={missing: ""}).model_dump()
        config = shop_config(
            state_dir=str(tmp_path),
            provider={
                "base_url": "https://x.example",
                "portal_url": "https://x.example/",
                "footer": footer,
            },
        )
        judged = quiet.judged(*verdict(quiet, config))
        assert judged.exit_code is Level.CRITICAL, missing
        [text] = [f for f in judged.findings if "provider footer" in f]
        assert text.startswith("CRITICAL:") and f"provider.footer.{missing}" in text


def test_a_receipt_accepted_without_a_mark_is_a_warning_naming_it(tmp_path: Path) -> None:
    config = shop_config(state_dir=str(tmp_path))
    conn = open_store(tmp_path)
    known, unknown = issue(conn, "r-1"), issue(conn, "r-2")
    with store.transaction(conn):
        store.mark_accepted(conn, known.id, mark=41, authentication_code=None, qr_url=None, now=T0)
        store.mark_accepted(
            conn, unknown.id, mark=None, authentication_code=None, qr_url=None, now=T0
        )
    report = StatusReport(
        version="test",
        generated_at=T0,
        daemon=DaemonSection(running=True, pid=1, started_at=T0, uptime_s=0),
        store=store_status(conn, config, T0),
    )
    conn.close()
    judged = report.judged(*verdict(report, config))
    assert judged.exit_code is Level.WARN
    [found] = judged.findings
    assert found.startswith(f"WARN: 1 receipt(s) accepted without a known MARK ({unknown.id})")
    assert "pos-agent status --json" in found
    assert judged.store is not None and judged.store.mark_unknown_ids == [unknown.id]
