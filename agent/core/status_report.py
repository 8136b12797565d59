"""The technician's view (DESIGN §8) as one JSON document, with a Nagios-style verdict.

Built by the daemon for `GET /v1/status`, and from a read-only database when the daemon is down.
Exit codes: 0 OK, 1 WARN, 2 CRITICAL, 3 UNKNOWN.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import offline_store as store
from agent import __version__
from agent.config import AgentConfig

OK, WARN, CRITICAL, UNKNOWN = 0, 1, 2, 3
LEVEL_NAMES = {OK: "OK", WARN: "WARN", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}


def store_status(
    conn: sqlite3.Connection,
    config: AgentConfig,
    now: datetime,
    *,
    journal: store.JournalCheck | None = None,
) -> dict[str, Any]:
    """`journal`: a check the caller already made (the daemon verifies incrementally)."""
    backlog = store.backlog_summary(conn, now)
    integrity = store.last_integrity_check(conn)
    if journal is None:
        journal = store.verify_journal(conn)
    gaps = {series: numbers for series, numbers in store.numbering_gaps(conn).items() if numbers}
    oldest = None
    if backlog.oldest_delayed is not None:
        first = backlog.oldest_delayed
        oldest = {
            "receipt_id": first.document_id,
            "issued_at": first.issued_at.isoformat(),
            "due_at": first.due_at.isoformat() if first.due_at else None,
            "age_s": round((now - first.issued_at).total_seconds()),
            "hours_left": round((first.due_at - now).total_seconds() / 3600, 2)
            if first.due_at
            else None,
        }
    return {
        "backlog": {
            "pending": backlog.by_state.get("pending", 0),
            "delayed": backlog.by_state.get("delayed", 0),
            "by_code": {str(code): count for code, count in backlog.delayed_by_code.items()},
            "oldest": oldest,
            "overdue": backlog.overdue,
        },
        "rejected": backlog.rejected,
        "mark_unknown": backlog.mark_unknown,
        "reserved": backlog.by_state.get("reserved", 0),
        "void": backlog.by_state.get("void", 0),
        "accepted": backlog.by_state.get("accepted", 0),
        "print_queue": store.print_queue_summary(conn),
        "database": {
            "path": str(config.database_path),
            "size_bytes": store.database_size_bytes(config.database_path),
            "integrity": integrity[1] if integrity else None,
            "integrity_checked_at": integrity[0].isoformat() if integrity else None,
            "journal_ok": journal.ok,
            "journal_entries": journal.entries,
            "numbering_gaps": gaps,
        },
    }


def verdict(report: dict[str, Any], config: AgentConfig) -> tuple[int, list[str]]:
    """The worst finding decides the exit code; each finding is one line for the technician."""
    findings: list[tuple[int, str]] = []
    daemon = report.get("daemon", {})
    if not daemon.get("running"):
        findings.append((CRITICAL, "daemon is not running: receipts cannot be issued"))
    stored = report.get("store")
    if stored is None:
        findings.append((UNKNOWN, "database could not be read"))
    else:
        oldest = stored["backlog"]["oldest"]
        if stored["backlog"]["overdue"]:
            findings.append(
                (
                    CRITICAL,
                    f"{stored['backlog']['overdue']} delayed receipt(s) are past their transmission deadline",
                )
            )
        if oldest and oldest.get("hours_left") is not None:
            hours = oldest["hours_left"]
            if hours <= config.sync.deadline_critical_hours:
                findings.append(
                    (
                        CRITICAL,
                        f"oldest delayed receipt {oldest['receipt_id']} is due in {hours:.1f} h (deadline {oldest['due_at']})",
                    )
                )
            elif hours <= config.sync.deadline_warning_hours:
                findings.append(
                    (WARN, f"oldest delayed receipt {oldest['receipt_id']} is due in {hours:.1f} h")
                )
        backlog_count = stored["backlog"]["delayed"] + stored["backlog"]["pending"]
        if backlog_count and not findings:
            findings.append((WARN, f"{backlog_count} receipt(s) waiting to reach the provider"))
        if stored["rejected"]:
            findings.append(
                (
                    CRITICAL,
                    f"{stored['rejected']} receipt(s) rejected by the provider need a person",
                )
            )
        db = stored["database"]
        if db["integrity"] not in (None, "ok") or not db["journal_ok"]:
            findings.append((CRITICAL, "database integrity or journal chain check failed"))
        if db["numbering_gaps"]:
            findings.append((CRITICAL, f"numbering gaps: {db['numbering_gaps']}"))
    provider = report.get("provider", {})
    if provider.get("credential_alarm"):
        findings.append(
            (CRITICAL, f"provider refused the credentials: {provider['credential_alarm']}")
        )
    if provider.get("breaker") == "open":
        findings.append(
            (WARN, f"provider unavailable, issuing offline: {provider.get('last_failure')}")
        )
    clock = report.get("clock", {})
    offset = clock.get("offset_s")
    if offset is not None and abs(offset) > config.clock.max_offset_s:
        findings.append((WARN, f"system clock differs from the provider by {offset:.0f} s"))
    printer = report.get("printer", {})
    if printer.get("queued", 0) or printer.get("failed", 0):
        findings.append(
            (
                WARN,
                f"printer: {printer.get('queued', 0)} job(s) queued, {printer.get('failed', 0)} failed",
            )
        )
    if not findings:
        return OK, ["all good"]
    level = max(level for level, _ in findings)
    return level, [
        f"{LEVEL_NAMES[lvl]}: {text}" for lvl, text in sorted(findings, key=lambda f: -f[0])
    ]


def offline_report(config: AgentConfig, now: datetime) -> dict[str, Any]:
    """When the daemon is down: read the database read-only and say so."""
    report: dict[str, Any] = {
        "version": __version__,
        "generated_at": now.isoformat(),
        "daemon": {
            "running": False,
            "note": "daemon not reachable; figures read from the database directly",
        },
    }
    path: Path = config.database_path
    if path.exists():
        conn = store.open_database(path, read_only=True)
        try:
            report["store"] = store_status(conn, config, now)
        finally:
            conn.close()
    return report
