"""The technician's view as typed sections, with a Nagios-style verdict.

One `StatusReport` is built by the daemon for `GET /v1/status`, or from a read-only database when
the daemon is down; the CLI screen, `status --json`, `/v1/status` and the metrics all read these
same objects, so a renamed field is a type error, not a silently missing line. On the wire it is
the JSON of the models; the CLI reads it back with `StatusReport.model_validate`.

Levels are the exit codes: 0 OK, 1 WARN, 2 CRITICAL, 3 UNKNOWN.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime
from enum import IntEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, computed_field

import offline_store as store
from agent.config import AgentConfig
from agent.core.day_findings import day_findings, last_reconciliation
from agent.core.day_report import Reconciliation
from agent.core.errors import PayloadAltered
from agent.core.held_returns import StrandedReturn, stranded_finding, stranded_returns
from agent.core.report import Report
from agent.core.rollback_guard import ROLLBACK_PROCEDURE, describe_rollback
from agent.core.unpaid_orders import oldest_unpaid, part_paid


class Level(IntEnum):
    OK = 0
    WARN = 1
    CRITICAL = 2
    UNKNOWN = 3


def finding(level: Level, text: str) -> str:
    """A finding as shown and sent: `WARN: printer: 1 job(s) queued, 0 failed`."""
    return f"{level.name}: {text}"


def level_of_finding(text: str) -> Level:
    for level in Level:
        if text.startswith(level.name + ":"):
            return level
    return Level.OK


class Section(BaseModel):
    model_config = ConfigDict(frozen=True)


class OldestDelayed(Section):
    receipt_id: int
    issued_at: datetime
    due_at: datetime | None
    age_s: int
    hours_left: float | None


class Backlog(Section):
    """Documents not yet at the provider: `pending` (fate unknown), `delayed` by code."""

    pending: int
    delayed: int
    by_code: dict[str, int]
    oldest: OldestDelayed | None
    overdue: int


class DatabaseSection(Section):
    path: str
    size_bytes: int | None
    integrity: str | None
    integrity_checked_at: datetime | None
    journal_ok: bool
    journal_entries: int
    numbering_gaps: dict[str, list[int]]
    # The chain is verified in background slices: up to `journal_entries`, at this time (None:
    # not yet checked). Documents moved to the monthly archive files (retention).
    journal_checked_at: datetime | None = None
    journal_last_seq: int = 0
    archived_documents: int = 0


class OpenOrders(Section):
    """Food service: order slips (8.6) not yet closed by a receipt. The law gives an order 24 h
    (`tables.open_order_limit_hours`); providers block issuing for merchants with older ones."""

    count: int
    tables: int
    oldest_order_id: int | None = None
    oldest_table: str | None = None
    oldest_issued_at: datetime | None = None
    oldest_age_s: int | None = None


class DrawerSection(Section):
    """Cash drawer kicks by state; a failed kick is a printer finding, never a failed sale."""

    opened: int
    failed: int
    queued: int
    last_failure: str | None = None
    last_failure_at: datetime | None = None


class StoreSection(Section):
    """What the database says, readable with or without the daemon."""

    backlog: Backlog
    rejected: int
    mark_unknown: int
    reserved: int
    void: int
    accepted: int
    print_queue: dict[str, int]
    database: DatabaseSection
    open_orders: OpenOrders | None = None
    drawer: DrawerSection | None = None
    # The database against its high-water mark (core/rollback_guard.py): what it lacks.
    rolled_back: str | None = None
    # Unsent documents whose payload no longer matches its journal record (never sent).
    altered_payloads: list[int] = []
    # The first receipts accepted without a known MARK (`mark_unknown` counts them all).
    mark_unknown_ids: list[int] = []
    # The day: when the first receipt in no closing (Z) was issued, the last reconciliation.
    unclosed_since: datetime | None = None
    reconciliation: Reconciliation | None = None
    # Returns held behind an original that can no longer give them a MARK (core/held_returns).
    stranded_returns: list[StrandedReturn] = []


class StorageSection(Section):
    """The state directory's filesystem, and what the daemon saw of its writes.

    `failures` and `failing` are the daemon's (None when read without it): `failing` is the
    last refused write ("full: database or disk is full") until a later write succeeds."""

    path: str
    free_bytes: int | None
    free_inodes: int | None
    read_only: bool
    failures: int | None = None
    failing: str | None = None
    failing_since: datetime | None = None
    # Why the daemon could not write its high-water mark (core/rollback_guard.py), if it could not.
    high_water_failure: str | None = None


class DaemonSection(Section):
    """`running` is None when the socket is closed to the caller: nobody can tell."""

    running: bool | None
    pid: int | None = None
    started_at: datetime | None = None
    uptime_s: int | None = None
    note: str | None = None
    reason: str | None = None


class ProviderSection(Section):
    base_url: str
    breaker: str
    # When the breaker entered its state (None from a daemon older than this field).
    breaker_since: datetime | None = None
    last_failure: str | None
    last_success_at: datetime | None
    credential_alarm: str | None
    last_sync_at: datetime | None


class ClockSection(Section):
    offset_s: float | None
    provider_date: datetime | None
    # The last wall-clock step the daemon saw in the past day (see core/clock_watch.py).
    step_s: float | None = None
    stepped_at: datetime | None = None


class PrinterSection(Section):
    enabled: bool
    backend: str
    state: str
    queued: int
    failed: int
    printed: int


class StatusReport(Section, Report):
    """Sections only the daemon knows (provider, clock, printer) are None when it is down."""

    version: str
    generated_at: datetime
    daemon: DaemonSection
    provider: ProviderSection | None = None
    clock: ClockSection | None = None
    printer: PrinterSection | None = None
    store: StoreSection | None = None
    store_error: str | None = None
    storage: StorageSection | None = None
    source: str | None = None
    exit_code: Level = Level.UNKNOWN
    findings: list[str] = []

    @computed_field  # type: ignore[prop-decorator]
    @property
    def level(self) -> str:
        """The exit code's name, sent beside it for people and scripts that read names."""
        return self.exit_code.name

    def judged(self, level: Level, findings: list[str]) -> StatusReport:
        return self.model_copy(update={"exit_code": level, "findings": findings})

    def as_json(self) -> dict[str, Any]:
        """The wire form: absent sections left out rather than sent as null."""
        absent = {
            name
            for name in (
                "provider",
                "clock",
                "printer",
                "store",
                "store_error",
                "storage",
                "source",
            )
            if getattr(self, name) is None
        }
        return self.model_dump(mode="json", exclude=absent)


# Below these the register is about to refuse receipts (a receipt takes ~2.4 KB live, so 64 MiB
# is about seven weeks of a busy till of 500 a day).
STORAGE_WARN_BYTES = 64 * 1024 * 1024
STORAGE_CRITICAL_BYTES = 16 * 1024 * 1024
STORAGE_CRITICAL_INODES = 1000
STORAGE_HINTS = {
    "full": "free space on that filesystem (old logs: journalctl --vacuum-size=50M); never delete "
    "anything in the state directory; receipts are refused until then",
    "read_only": "the filesystem went read-only, usually a failing SD card or eMMC: copy the "
    "database off, check dmesg, fsck or replace the card, then reboot",
    "busy": "another process holds the database lock: fuser -v {database}; stop it (never open "
    "the live database with another program)",
    "io_error": "the storage reports I/O errors: copy the database off, check dmesg, replace the "
    "SD card or eMMC",
}


def storage_section(
    state_dir: Path,
    *,
    failures: int | None = None,
    failing: str | None = None,
    failing_since: datetime | None = None,
    high_water_failure: str | None = None,
) -> StorageSection:
    """Free space and inodes for the daemon's user on the state directory's filesystem."""
    try:
        stat = os.statvfs(state_dir)
    except OSError:
        free_bytes = free_inodes = None
        read_only = False
    else:
        free_bytes, free_inodes = stat.f_bavail * stat.f_frsize, stat.f_favail
        read_only = bool(stat.f_flag & os.ST_RDONLY)
    return StorageSection(
        path=str(state_dir),
        free_bytes=free_bytes,
        free_inodes=free_inodes,
        read_only=read_only,
        failures=failures,
        failing=failing,
        failing_since=failing_since,
        high_water_failure=high_water_failure,
    )


def storage_findings(storage: StorageSection, database: Path) -> list[tuple[Level, str]]:
    """What `status` and `doctor` say of the storage, each with what to do."""
    findings: list[tuple[Level, str]] = []
    if storage.high_water_failure is not None:
        findings.append(
            (
                Level.CRITICAL,
                "storage: the high-water mark beside the database cannot be written "
                f"({storage.high_water_failure}): a rollback of the database would go unnoticed; "
                f"check the state directory {storage.path} (free space, permissions, dmesg)",
            )
        )
    if storage.failing is not None:
        fault = storage.failing.partition(":")[0]
        hint = STORAGE_HINTS.get(fault, "see journalctl -u pos-agent").format(database=database)
        since = storage.failing_since.isoformat() if storage.failing_since else "?"
        findings.append(
            (
                Level.CRITICAL,
                f"storage: writes are failing since {since} ({storage.failing}); {hint}",
            )
        )
    if storage.read_only:
        findings.append(
            (Level.CRITICAL, f"storage: {storage.path} is read-only; " + STORAGE_HINTS["read_only"])
        )
    free = storage.free_bytes
    if free is not None and free < STORAGE_WARN_BYTES:
        level = Level.CRITICAL if free < STORAGE_CRITICAL_BYTES else Level.WARN
        findings.append(
            (
                level,
                f"storage: {free // (1024 * 1024)} MiB free on {storage.path}; {STORAGE_HINTS['full']}",
            )
        )
    if storage.free_inodes is not None and storage.free_inodes < STORAGE_CRITICAL_INODES:
        findings.append(
            (
                Level.CRITICAL,
                f"storage: {storage.free_inodes} inodes free on {storage.path}; "
                "remove stray small files outside the state directory",
            )
        )
    return findings


def footer_findings(config: AgentConfig) -> list[tuple[Level, str]]:
    """Receipts printed without the provider footer break Α.1112/2025 (docs/provider.md §11
    item 10): every missing item is CRITICAL, with the key to fill."""
    problems = config.provider.footer.problems()
    if not problems:
        return []
    return [
        (
            Level.CRITICAL,
            "receipts print without the provider footer Α.1112/2025 requires: "
            + "; ".join(problems)
            + "; fill [provider.footer] in the config with the provider's details and restart "
            "the agent (systemctl restart pos-agent)",
        )
    ]


def backlog_section(summary: store.BacklogSummary, now: datetime) -> Backlog:
    """The backlog as status shows it and the metrics export it."""
    oldest = None
    if summary.oldest_delayed is not None:
        first = summary.oldest_delayed
        oldest = OldestDelayed(
            receipt_id=first.document_id,
            issued_at=first.issued_at,
            due_at=first.due_at,
            age_s=round((now - first.issued_at).total_seconds()),
            hours_left=round((first.due_at - now).total_seconds() / 3600, 2)
            if first.due_at
            else None,
        )
    return Backlog(
        pending=summary.by_state.get("pending", 0),
        delayed=summary.by_state.get("delayed", 0),
        by_code={str(code): count for code, count in summary.delayed_by_code.items()},
        oldest=oldest,
        overdue=summary.overdue,
    )


def store_status(conn: sqlite3.Connection, config: AgentConfig, now: datetime) -> StoreSection:
    """Maintained counters and index ranges only, so its cost does not grow with the history;
    the journal's result is the last background check's (`store.journal_slice`)."""
    summary = store.backlog_summary(conn, now)
    integrity = store.last_integrity_check(conn)
    journal = store.last_journal_check(conn)
    gaps = {series: numbers for series, numbers in store.numbering_gaps(conn).items() if numbers}
    return StoreSection(
        backlog=backlog_section(summary, now),
        rejected=summary.rejected,
        mark_unknown=summary.mark_unknown,
        reserved=summary.by_state.get("reserved", 0),
        void=summary.by_state.get("void", 0),
        accepted=summary.by_state.get("accepted", 0),
        print_queue=store.print_queue_summary(conn),
        database=DatabaseSection(
            path=str(config.database_path),
            size_bytes=store.database_size_bytes(config.database_path),
            integrity=integrity[1] if integrity else None,
            integrity_checked_at=integrity[0] if integrity else None,
            journal_ok=journal is None or journal.ok,
            journal_entries=journal.verified_seq if journal else 0,
            numbering_gaps=gaps,
            journal_checked_at=journal.checked_at if journal else None,
            journal_last_seq=store.journal_last_seq(conn),
            archived_documents=store.archived_count(conn),
        ),
        open_orders=open_orders_section(conn, now),
        drawer=drawer_section(conn),
        rolled_back=rolled_back(conn, config.state_dir),
        altered_payloads=store.altered_payloads(conn, archive_dir=config.archive_dir),
        mark_unknown_ids=store.mark_unknown_ids(conn),
        unclosed_since=store.first_unclosed(conn),
        reconciliation=last_reconciliation(conn),
        stranded_returns=stranded_returns(conn),
    )


def rolled_back(conn: sqlite3.Connection, state_dir: Path) -> str | None:
    """The database against the mark beside it: None when it is not behind."""
    try:
        mark = store.read_mark(state_dir)
    except store.HighWaterFileDamaged as exc:
        return f"the high-water mark cannot be read, so a rollback cannot be ruled out: {exc}"
    if mark is None:
        return None
    rollback = store.compare_with_mark(conn, mark)
    return describe_rollback(rollback) if rollback else None


def open_orders_section(conn: sqlite3.Connection, now: datetime) -> OpenOrders:
    """Open orders, and the oldest one that no part payment of its table covers (the legal
    24 h clock runs from it)."""
    orders = store.open_orders(conn)
    if not orders:
        return OpenOrders(count=0, tables=0)
    by_table: dict[str, list[store.TableOrder]] = {}
    for order in orders:
        by_table.setdefault(order.table_id, []).append(order)
    unpaid = [
        found
        for table, table_orders in by_table.items()
        if (found := oldest_unpaid(table_orders, part_paid(conn, table))) is not None
    ]
    if not unpaid:
        return OpenOrders(count=len(orders), tables=len(by_table))
    oldest = min(unpaid, key=lambda order: order.issued_at)
    return OpenOrders(
        count=len(orders),
        tables=len(by_table),
        oldest_order_id=oldest.document_id,
        oldest_table=oldest.table_id,
        oldest_issued_at=oldest.issued_at,
        oldest_age_s=max(0, round((now - oldest.issued_at).total_seconds())),
    )


def drawer_section(conn: sqlite3.Connection) -> DrawerSection:
    summary = store.drawer_summary(conn)
    return DrawerSection(
        opened=summary.by_state.get("opened", 0),
        failed=summary.by_state.get("failed", 0),
        queued=summary.by_state.get("queued", 0),
        last_failure=summary.last_failure,
        last_failure_at=summary.last_failure_at,
    )


def order_findings(orders: OpenOrders | None, config: AgentConfig) -> list[tuple[Level, str]]:
    """WARN `open_order_warning_hours` before the legal limit, CRITICAL at it."""
    if orders is None or orders.oldest_age_s is None:
        return []
    limits = config.tables
    hours = orders.oldest_age_s / 3600
    where = f"order {orders.oldest_order_id} of table {orders.oldest_table}"
    if hours >= limits.open_order_limit_hours:
        return [
            (
                Level.CRITICAL,
                f"{where} has been open {hours:.1f} h, past the legal limit of "
                f"{limits.open_order_limit_hours:g} h: close the table now "
                "(POST /v1/tables/{table}/close); the provider may refuse new documents",
            )
        ]
    if hours >= limits.open_order_limit_hours - limits.open_order_warning_hours:
        left = limits.open_order_limit_hours - hours
        return [(Level.WARN, f"{where} has been open {hours:.1f} h: close it within {left:.1f} h")]
    return []


def drawer_findings(drawer: DrawerSection | None) -> list[tuple[Level, str]]:
    if drawer is None or not drawer.failed:
        return []
    return [
        (
            Level.WARN,
            f"printer: {drawer.failed} cash drawer kick(s) failed (last: {drawer.last_failure}); "
            "check the printer and the drawer cable, open the drawer by its key meanwhile",
        )
    ]


def verdict(report: StatusReport, config: AgentConfig) -> tuple[Level, list[str]]:
    """The worst finding decides the exit code; each finding is one line for the technician."""
    findings: list[tuple[Level, str]] = []
    if report.daemon.running is None:
        findings.append((Level.UNKNOWN, report.daemon.reason or "daemon state unknown"))
    elif not report.daemon.running:
        findings.append((Level.CRITICAL, "daemon is not running: receipts cannot be issued"))
    if report.store is None:
        findings.append((Level.UNKNOWN, report.store_error or "database could not be read"))
    else:
        findings += _store_findings(report.store, config, report.generated_at)
    if report.storage is not None:
        findings += storage_findings(report.storage, config.database_path)
    findings += footer_findings(config)
    provider = report.provider
    if provider is not None and provider.credential_alarm:
        findings.append(
            (Level.CRITICAL, f"provider refused the credentials: {provider.credential_alarm}")
        )
    if provider is not None and provider.breaker == "open":
        findings.append(
            (Level.WARN, f"provider unavailable, issuing offline: {provider.last_failure}")
        )
    offset = report.clock.offset_s if report.clock is not None else None
    if offset is not None and abs(offset) > config.clock.max_offset_s:
        findings.append((Level.WARN, f"system clock differs from the provider by {offset:.0f} s"))
    if report.clock is not None and report.clock.step_s is not None:
        at = report.clock.stepped_at
        findings.append(
            (
                Level.WARN,
                f"the wall clock was stepped by {report.clock.step_s:+.0f} s"
                f"{f' at {at:%Y-%m-%d %H:%M:%S}' if at else ''} (an NTP correction or a manual "
                "change): receipts issued around it carry times out of order; check that "
                "`timedatectl` shows the clock synchronised",
            )
        )
    printer = report.printer
    if printer is not None and (printer.queued or printer.failed):
        findings.append(
            (
                Level.WARN,
                f"printer: {printer.queued} job(s) queued, {printer.failed} failed",
            )
        )
    if not findings:
        return Level.OK, ["all good"]
    level = max(level for level, _ in findings)
    return level, [finding(lvl, text) for lvl, text in sorted(findings, key=lambda f: -f[0])]


def _store_findings(
    stored: StoreSection, config: AgentConfig, now: datetime
) -> list[tuple[Level, str]]:
    findings: list[tuple[Level, str]] = []
    backlog = stored.backlog
    if backlog.overdue:
        findings.append(
            (
                Level.CRITICAL,
                f"{backlog.overdue} delayed receipt(s) are past their transmission deadline",
            )
        )
    oldest = backlog.oldest
    if oldest is not None and oldest.hours_left is not None:
        hours = oldest.hours_left
        if hours <= config.sync.deadline_critical_hours:
            due = oldest.due_at.isoformat() if oldest.due_at else None
            findings.append(
                (
                    Level.CRITICAL,
                    f"oldest delayed receipt {oldest.receipt_id} is due in {hours:.1f} h (deadline {due})",
                )
            )
        elif hours <= config.sync.deadline_warning_hours:
            findings.append(
                (Level.WARN, f"oldest delayed receipt {oldest.receipt_id} is due in {hours:.1f} h")
            )
    if stored.altered_payloads:
        ids = ", ".join(str(i) for i in stored.altered_payloads)
        findings.append((Level.CRITICAL, f"receipt(s) {ids} are not sent: {PayloadAltered.WHAT}"))
    if stored.rolled_back is not None:
        findings.append(
            (
                Level.CRITICAL,
                f"the database went back in time ({stored.rolled_back}): issuing in those series "
                f"is refused; {ROLLBACK_PROCEDURE}",
            )
        )
    waiting = backlog.delayed + backlog.pending
    if waiting and not findings:
        findings.append((Level.WARN, f"{waiting} receipt(s) waiting to reach the provider"))
    if stored.rejected:
        findings.append(
            (Level.CRITICAL, f"{stored.rejected} receipt(s) rejected by the provider need a person")
        )
    findings += [
        (Level.CRITICAL if held.why == "rejected" else Level.WARN, stranded_finding(held))
        for held in stored.stranded_returns
    ]
    for day in day_findings(stored, config, now):
        findings.append((Level.CRITICAL if day.critical else Level.WARN, day.text))
    db = stored.database
    if db.integrity not in (None, "ok") or not db.journal_ok:
        findings.append((Level.CRITICAL, "database integrity or journal chain check failed"))
    if db.numbering_gaps:
        findings.append((Level.CRITICAL, f"numbering gaps: {db.numbering_gaps}"))
    findings += order_findings(stored.open_orders, config)
    findings += drawer_findings(stored.drawer)
    return findings
