"""`pos-agent status`: one screen for the field technician, and a Nagios-style exit code.

The daemon is asked over its Unix socket (`GET /v1/status`). When it does not answer, the
database is read read-only (`offline_report`) and the screen says in its first line
that the daemon is down. `--json` prints the report itself for scripts and monitoring.

Exit codes: 0 OK, 1 WARN, 2 CRITICAL, 3 UNKNOWN (config or database unreadable, socket closed to
us).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

import offline_store as store
from agent import __version__
from agent.clock import ATHENS, athens_now
from agent.commands.common import (
    DaemonUnreachable,
    add_config_argument,
    call_daemon,
    config_path,
    paint,
    use_colour,
    with_socket,
)
from agent.config import (
    AgentConfig,
    ApiConfig,
    ClockConfig,
    ConfigError,
    ConfigUnreadable,
    SyncConfig,
    TablesConfig,
    load_config,
)
from agent.core.day_findings import unheld_finding
from agent.core.status_report import (
    ClockSection,
    DaemonSection,
    DatabaseSection,
    DrawerSection,
    Level,
    OldestDelayed,
    OpenOrders,
    PrinterSection,
    ProviderSection,
    StatusReport,
    StorageSection,
    StoreSection,
    finding,
    level_of_finding,
    storage_section,
    store_status,
    verdict,
)

# -- the report --------------------------------------------------------------------------------


def offline_report(config: AgentConfig, now: datetime) -> StatusReport:
    """When the daemon is down: read the database read-only and say so (not yet judged)."""
    stored = None
    if config.database_path.exists():
        conn = store.open_database(config.database_path, read_only=True)
        try:
            stored = store_status(conn, config, now)
        finally:
            conn.close()
    return StatusReport(
        version=__version__,
        generated_at=now,
        daemon=DaemonSection(
            running=False, note="daemon not reachable; figures read from the database directly"
        ),
        store=stored,
        storage=storage_section(config.state_dir),
    )


def collect_report(config: AgentConfig, now: datetime | None = None) -> StatusReport:
    """The daemon's own report, or the database's figures with the daemon marked down (or its
    state unknown, when the socket is closed to us or the daemon answered without a report)."""
    socket_path = config.api.socket_path
    try:
        response = call_daemon(socket_path, "GET", "/v1/status")
    except DaemonUnreachable as exc:
        note = "daemon state unknown: the socket is closed to this user" if exc.permission else None
        return _report_without_daemon(config, exc.reason, now or athens_now(), unknown=note)
    try:
        if response.status_code == 200:
            report = StatusReport.model_validate_json(response.content)
            return report.model_copy(update={"source": "daemon"})
        reason = f"the daemon answered HTTP {response.status_code} on /v1/status"
    except ValidationError:
        reason = "the daemon's status answer is not a status report"
    # It is running (it answered) but cannot say how it is: not "down", unknown.
    return _report_without_daemon(
        config, reason, now or athens_now(), unknown="the daemon answers but gives no report"
    )


def _report_without_daemon(
    config: AgentConfig, reason: str, now: datetime, *, unknown: str | None
) -> StatusReport:
    """`unknown`: why the daemon's state cannot be told (None: it is down)."""
    store_error: str | None = None
    try:
        report = offline_report(config, now)
    except (store.DatabaseDamaged, store.SchemaTooNew) as exc:
        store_error = str(exc)
    except (sqlite3.Error, OSError) as exc:
        store_error = f"cannot read {config.database_path}: {exc}"
    if store_error is not None:
        report = StatusReport(
            version=__version__, generated_at=now, daemon=DaemonSection(running=False)
        )
    elif report.store is None:
        store_error = f"no database at {config.database_path}"
    daemon = report.daemon.model_copy(update={"reason": reason})
    if unknown is not None:
        daemon = daemon.model_copy(update={"running": None, "note": unknown})
    report = report.model_copy(
        update={
            "daemon": daemon,
            "store_error": store_error,
            "source": "database" if report.store is not None else "none",
        }
    )
    return report.judged(*verdict(report, config))


# -- the screen --------------------------------------------------------------------------------


def _clock_time(moment: datetime | None) -> str:
    return moment.astimezone(ATHENS).strftime("%Y-%m-%d %H:%M:%S") if moment else "never"


def duration(seconds: float) -> str:
    seconds = abs(int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    return f"{_clock_time(moment)} ({duration((now - moment).total_seconds())} ago)"


def _size(size: int | None) -> str:
    if size is None:
        return "?"
    if size < 1024:
        return f"{size:.0f} B"
    scaled = size / 1024
    for unit in ("KiB", "MiB"):
        if scaled < 1024:
            return f"{scaled:.1f} {unit}"
        scaled /= 1024
    return f"{scaled:.1f} GiB"


def render(
    report: StatusReport,
    sync: SyncConfig,
    clock: ClockConfig,
    *,
    colour: bool,
    tables: TablesConfig | None = None,
) -> str:
    """The screen: one section per part of the register, findings last. `sync`, `clock` and
    `tables` only colour the deadline, offset and open-order rows; the level and the findings
    are the report's own."""
    tables = tables or TablesConfig()
    now = report.generated_at
    level = report.exit_code
    title = paint(f"pos-agent status: {level.name}", level, colour, bold=True)
    stored = report.store
    lines = [
        title + f"   ({_clock_time(now)} Athens, exit {int(level)})",
        *_daemon_rows(report, colour),
        *_provider_rows(report.provider, now, colour),
        *_store_rows(stored, report, sync, colour),
        *(_table_rows(stored.open_orders, tables, colour) if stored is not None else []),
        *_printer_rows(report.printer, stored),
        *(_drawer_rows(stored.drawer, colour) if stored is not None else []),
        *(_day_rows(stored, tables, now, colour) if stored is not None else []),
        *_clock_rows(report.clock, clock, colour),
        *(_database_rows(stored.database, colour) if stored is not None else []),
        *(_storage_rows(report.storage, colour) if report.storage is not None else []),
        "",
        "Findings:",
    ]
    for text in report.findings:
        lines.append("  " + paint(text, level_of_finding(text), colour))
    return "\n".join(lines)


def _row(label: str, text: str) -> str:
    return f"{label:<12}{text}"


def _daemon_rows(report: StatusReport, colour: bool) -> list[str]:
    daemon = report.daemon
    if daemon.running:
        row = (
            f"up, version {report.version}, pid {daemon.pid or '?'}, "
            f"uptime {duration(daemon.uptime_s or 0)} (since {_clock_time(daemon.started_at)})"
        )
        return [_row("Daemon", row)]
    state = "UNKNOWN" if daemon.running is None else "DOWN"
    reason = f"{state}: {daemon.reason or 'not reachable'}"
    level = Level.CRITICAL if state == "DOWN" else Level.UNKNOWN
    rows = [_row("Daemon", paint(reason, level, colour, bold=True))]
    if report.source == "database":
        rows.append(_row("", "figures below are read from the database directly (read-only)"))
    return rows


def _provider_rows(provider: ProviderSection | None, now: datetime, colour: bool) -> list[str]:
    if provider is None:
        return [_row("Provider", "unknown (only the daemon knows)")]
    reach = (
        "reachable"
        if provider.breaker == "closed"
        else paint(
            f"OFFLINE, receipts issued offline: {provider.last_failure or '?'}",
            Level.WARN,
            colour,
        )
    )
    alarm = provider.credential_alarm
    credentials = (
        paint(f"REFUSED by the provider (401): {alarm}", Level.CRITICAL, colour)
        if alarm
        else "accepted (no 401 since start)"
    )
    return [
        _row("Provider", f"{provider.base_url}: {reach}"),
        _row(
            "",
            f"breaker {provider.breaker}"
            + (f" since {_ago(provider.breaker_since, now)}" if provider.breaker_since else "")
            + f"; last success {_ago(provider.last_success_at, now)}",
        ),
        _row("", f"last sync {_ago(provider.last_sync_at, now)}"),
        _row("Credentials", credentials),
    ]


def _store_rows(
    stored: StoreSection | None, report: StatusReport, sync: SyncConfig, colour: bool
) -> list[str]:
    if stored is None:
        error = report.store_error or "database not readable"
        return [_row("Backlog", paint(error, Level.UNKNOWN, colour))]
    backlog = stored.backlog
    rows = [
        _row(
            "Backlog",
            f"{backlog.delayed} delayed (code 1 provider: {backlog.by_code.get('1', 0)}, "
            f"code 2 AADE: {backlog.by_code.get('2', 0)}), {backlog.pending} pending, "
            f"{backlog.overdue} overdue",
        )
    ]
    if backlog.oldest is not None:
        rows.append(_oldest_row(backlog.oldest, sync, colour))
    rejected_text = (
        paint(
            f"{stored.rejected} need a person (pos-agent status --json; provider portal)",
            Level.CRITICAL,
            colour,
        )
        if stored.rejected
        else "0"
    )
    rows.append(_row("Rejected", rejected_text))
    if stored.mark_unknown:
        ids = ", ".join(str(i) for i in stored.mark_unknown_ids)
        text = f"{stored.mark_unknown} accepted without a known MARK (receipt {ids})"
        rows.append(_row("", paint(text, Level.WARN, colour)))
    return rows


def _table_rows(orders: OpenOrders | None, limits: TablesConfig, colour: bool) -> list[str]:
    """Food service: open order slips and the oldest one against the legal limit."""
    if orders is None or not orders.count:
        return []
    rows = [_row("Tables", f"{orders.count} open order(s) on {orders.tables} table(s)")]
    if orders.oldest_age_s is not None:
        hours = orders.oldest_age_s / 3600
        level = Level.OK
        if hours >= limits.open_order_limit_hours:
            level = Level.CRITICAL
        elif hours >= limits.open_order_limit_hours - limits.open_order_warning_hours:
            level = Level.WARN
        text = (
            f"order {orders.oldest_order_id} of table {orders.oldest_table}, "
            f"{duration(orders.oldest_age_s)} open (limit {limits.open_order_limit_hours:g} h)"
        )
        rows.append(_row("", paint(text, level, colour)))
    return rows


def _drawer_rows(drawer: DrawerSection | None, colour: bool) -> list[str]:
    if drawer is None or not (drawer.opened or drawer.failed or drawer.queued):
        return []
    text = f"{drawer.opened} opened, {drawer.failed} failed, {drawer.queued} queued"
    if drawer.failed:
        text = paint(f"{text} (last failure: {drawer.last_failure})", Level.WARN, colour)
    return [_row("Drawer", text)]


def _day_rows(stored: StoreSection, tables: TablesConfig, now: datetime, colour: bool) -> list[str]:
    """The daily closing (Z) and the last reconciliation with the provider's list; the open
    order slips' row as severe as the worst of their findings."""
    rows = []
    if stored.unclosed_since is not None:
        since = stored.unclosed_since.astimezone(ATHENS)
        rows.append(_row("Closing", f"receipts since {since:%Y-%m-%d %H:%M} in no closing (Z)"))
    result = stored.reconciliation
    if result is not None:
        checked = result.checked_at.astimezone(ATHENS)
        text = (
            f"{result.day:%Y-%m-%d} at {checked:%H:%M}: {result.matched} matched, "
            f"{result.resolved} MARK(s) found, {result.resent} resent, "
            f"{len(result.flagged)} for a person"
        )
        if result.error is not None:
            text = paint(f"{result.day:%Y-%m-%d} FAILED: {result.error}", Level.WARN, colour)
        elif result.flagged:
            text = paint(text, Level.WARN, colour)
        rows.append(_row("Reconciled", text))
        orders = result.orders
        if orders is not None:
            at = orders.checked_at or result.checked_at
            text = (
                f"at {at.astimezone(ATHENS):%H:%M} the provider held {orders.provider_open} "
                f"open: {orders.matched} matched, "
                f"{orders.resolved} MARK(s) found, {orders.resent} on their way, "
                f"{len(orders.unheld)} held by no table here, {len(orders.flagged)} missing there"
            )
            if orders.error is not None:
                text = f"FAILED: {orders.error}"
            level = Level.WARN if orders.error or orders.flagged or orders.unheld else Level.OK
            if any(unheld_finding(order, tables, now).critical for order in orders.unheld):
                level = Level.CRITICAL
            rows.append(_row("Orders 8.6", paint(text, level, colour)))
    return rows


def _oldest_row(oldest: OldestDelayed, sync: SyncConfig, colour: bool) -> str:
    left_text, level = _time_left(oldest.hours_left, sync)
    return _row(
        "Oldest",
        f"receipt {oldest.receipt_id}, {duration(oldest.age_s)} old; "
        f"deadline {_clock_time(oldest.due_at)}: " + paint(left_text, level, colour),
    )


def _time_left(hours_left: float | None, sync: SyncConfig) -> tuple[str, Level]:
    """How long the oldest delayed receipt has until its deadline, and how worrying that is."""
    if hours_left is None:
        return "no deadline recorded", Level.OK
    if hours_left <= 0:
        return f"PAST DEADLINE by {duration(-hours_left * 3600)}", Level.CRITICAL
    text = f"{duration(hours_left * 3600)} left"
    if hours_left <= sync.deadline_critical_hours:
        return text, Level.CRITICAL
    if hours_left <= sync.deadline_warning_hours:
        return text, Level.WARN
    return text, Level.OK


def _printer_rows(printer: PrinterSection | None, stored: StoreSection | None) -> list[str]:
    if printer is not None:
        if not printer.enabled:
            return [_row("Printer", "disabled in the config")]
        return [
            _row(
                "Printer",
                f"{printer.backend}, state {printer.state}; "
                f"{printer.queued} queued, {printer.failed} failed, {printer.printed} printed",
            )
        ]
    if stored is None:
        return []
    queue = stored.print_queue
    return [
        _row(
            "Printer",
            f"state unknown (daemon down); {queue.get('queued', 0) + queue.get('printing', 0)} "
            f"queued, {queue.get('failed', 0)} failed, {queue.get('printed', 0)} printed",
        )
    ]


def _clock_rows(clock: ClockSection | None, limits: ClockConfig, colour: bool) -> list[str]:
    if clock is None:
        return []
    if clock.offset_s is None:
        return [_row("Clock", "offset unknown (no answer from the provider yet)")]
    limit = limits.max_offset_s
    text = f"{clock.offset_s:+.1f} s vs the provider's Date header (limit ±{limit:g} s)"
    return [_row("Clock", paint(text, Level.WARN, colour) if abs(clock.offset_s) > limit else text)]


def _database_rows(db: DatabaseSection, colour: bool) -> list[str]:
    checked = f", checked {_clock_time(db.journal_checked_at)}" if db.journal_checked_at else ""
    behind = db.journal_last_seq - db.journal_entries
    verified = (
        f"{db.journal_entries} of {db.journal_last_seq}" if behind > 0 else db.journal_entries
    )
    journal = (
        f"journal ok ({verified} entries{checked})"
        if db.journal_ok
        else paint("JOURNAL CHAIN BROKEN", Level.CRITICAL, colour)
    )
    rows = [
        _row("Database", f"{db.path}, {_size(db.size_bytes)}"),
        _row(
            "",
            f"integrity {db.integrity or 'never checked'} "
            f"(at {_clock_time(db.integrity_checked_at)}); {journal}",
        ),
    ]
    if db.archived_documents:
        rows.append(_row("", f"{db.archived_documents} receipts archived (pos-agent archive list)"))
    return rows


def _storage_rows(storage: StorageSection, colour: bool) -> list[str]:
    space = (
        f"{_size(storage.free_bytes)} and {storage.free_inodes} inodes free"
        if storage.free_bytes is not None
        else "free space unknown"
    )
    rows = [
        _row("Storage", f"{storage.path}: {space}" + (", READ-ONLY" if storage.read_only else ""))
    ]
    if storage.failing is not None:
        text = f"WRITES FAILING since {_clock_time(storage.failing_since)}: {storage.failing}"
        rows.append(_row("", paint(text, Level.CRITICAL, colour)))
    elif storage.failures:
        rows.append(_row("", f"{storage.failures} refused write(s) since start; writing again"))
    return rows


# -- the command -------------------------------------------------------------------------------


def status_command(args: argparse.Namespace) -> int:
    path = config_path(args)
    try:
        config = load_config(path)
    except ConfigUnreadable as exc:
        return _status_without_config(args, exc)
    except ConfigError as exc:
        return _unknown(args, f"config unreadable: {exc}")
    config = with_socket(config, args.socket)
    return _show(args, collect_report(config), config.sync, config.clock, config.tables)


def _status_without_config(args: argparse.Namespace, unreadable: ConfigUnreadable) -> int:
    """A member of group `pos` may not read the config (0640 root:pos-agent) but may ask the
    daemon, on the default socket or `--socket`: its report needs no config. When the daemon
    does not answer either, nothing can be told: UNKNOWN, and what to do."""
    socket_path = args.socket or ApiConfig().socket_path
    try:
        response = call_daemon(socket_path, "GET", "/v1/status")
        report = StatusReport.model_validate_json(response.content)
    except DaemonUnreachable as exc:
        return _unknown(args, f"{exc.reason}; and {unreadable}")
    except ValidationError:
        return _unknown(
            args,
            f"the daemon answered HTTP {response.status_code} without a status report on "
            f"{socket_path}; and {unreadable}",
        )
    return _show(args, report.model_copy(update={"source": "daemon"}), SyncConfig(), ClockConfig())


def _show(
    args: argparse.Namespace,
    report: StatusReport,
    sync: SyncConfig,
    clock: ClockConfig,
    tables: TablesConfig | None = None,
) -> int:
    if args.json:
        json.dump(report.as_json(), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        print(render(report, sync, clock, colour=use_colour(sys.stdout), tables=tables))
    return int(report.exit_code)


def _unknown(args: argparse.Namespace, message: str) -> int:
    unknown = Level.UNKNOWN
    if args.json:
        body = {
            "level": unknown.name,
            "exit_code": int(unknown),
            "findings": [finding(unknown, message)],
        }
        json.dump(body, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        colour = use_colour(sys.stdout)
        print(
            paint("pos-agent status: UNKNOWN", unknown, colour, bold=True)
            + f"   (exit {int(unknown)})"
        )
        print(f"  {message}")
    return int(unknown)


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "status",
        help="the technician's one-screen report (exit 0 OK, 1 WARN, 2 CRITICAL, 3 UNKNOWN)",
    )
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--socket", type=Path, default=None, help="daemon socket (default: api.socket_path)"
    )
    parser.set_defaults(handler=status_command)
