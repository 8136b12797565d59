"""`pos-agent status`: one screen for the field technician, and a Nagios-style exit code.

The daemon is asked over its Unix socket (`GET /v1/status`). When it does not answer, the
database is read read-only (`status_report.offline_report`) and the screen says in its first line
that the daemon is down. `--json` prints the report itself for scripts and monitoring.

Exit codes: 0 OK, 1 WARN, 2 CRITICAL, 3 UNKNOWN (config or database unreadable, socket closed to
us). The helpers here (config default, socket client, colour) are shared by the other CLI
commands (`doctor`, `sync`, `reprint`).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import httpx

import offline_store as store
from agent import __version__
from agent.clock import ATHENS, athens_now
from agent.config import AgentConfig, ConfigError, load_config
from agent.core.status_report import (
    CRITICAL,
    LEVEL_NAMES,
    OK,
    UNKNOWN,
    WARN,
    offline_report,
    verdict,
)

DEFAULT_CONFIG = Path("/etc/pos-agent/pos-agent.toml")
CONFIG_ENV = "POS_AGENT_CONFIG"
STATUS_TIMEOUT_S = 5.0


# -- shared by the CLI commands --------------------------------------------------------------------


def default_config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"config file (default: ${CONFIG_ENV} or {DEFAULT_CONFIG})",
    )


def config_path(args: argparse.Namespace) -> Path:
    return args.config or default_config_path()


def with_socket(config: AgentConfig, socket_path: Path | None) -> AgentConfig:
    """`--socket` replaces api.socket_path for this one command."""
    if socket_path is None:
        return config
    api = config.api.model_copy(update={"socket_path": socket_path})
    return config.model_copy(update={"api": api})


class DaemonUnreachable(Exception):
    """Nothing answers on the socket (or we may not use it); `reason` says which."""

    def __init__(self, reason: str, *, permission: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permission = permission


def daemon_client(socket_path: Path, timeout_s: float) -> httpx.Client:
    transport = httpx.HTTPTransport(uds=str(socket_path))
    return httpx.Client(
        transport=transport,
        base_url="http://pos-agent",
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 2.0)),
        trust_env=False,
    )


def call_daemon(
    socket_path: Path,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    timeout_s: float = STATUS_TIMEOUT_S,
) -> httpx.Response:
    """One request to the daemon; any failure to get an HTTP answer is `DaemonUnreachable`."""
    if not socket_path.exists():
        raise DaemonUnreachable(f"no socket at {socket_path}")
    headers = {"content-type": "application/json"} if body is not None else {}
    try:
        with daemon_client(socket_path, timeout_s) as client:
            return client.request(method, path, content=body, headers=headers)
    except httpx.TimeoutException as exc:
        raise DaemonUnreachable(
            f"the daemon did not answer on {socket_path} within {timeout_s:g} s ({type(exc).__name__})"
        ) from exc
    except httpx.TransportError as exc:
        cause = exc.__context__ or exc.__cause__
        if isinstance(cause, PermissionError) or "Permission denied" in str(exc):
            raise DaemonUnreachable(
                f"permission denied on {socket_path}: run as root or as a member of the "
                "socket's group (pos)",
                permission=True,
            ) from exc
        raise DaemonUnreachable(
            f"nothing answers on {socket_path} ({exc or type(exc).__name__})"
        ) from exc


def use_colour(stream: TextIO) -> bool:
    """ANSI colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    if "NO_COLOR" in os.environ:
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


_COLOURS = {OK: "32", WARN: "33", CRITICAL: "31", UNKNOWN: "35"}


def paint(text: str, level: int, colour: bool, *, bold: bool = False) -> str:
    if not colour:
        return text
    code = _COLOURS.get(level, "0")
    return f"\033[{'1;' if bold else ''}{code}m{text}\033[0m"


def level_of_finding(text: str) -> int:
    for level, name in LEVEL_NAMES.items():
        if text.startswith(name + ":"):
            return level
    return OK


# -- the report --------------------------------------------------------------------------------


def collect_report(config: AgentConfig, now: datetime | None = None) -> dict[str, Any]:
    """The daemon's own report, or the database's figures with the daemon marked down."""
    socket_path = config.api.socket_path
    problem: DaemonUnreachable | None = None
    try:
        response = call_daemon(socket_path, "GET", "/v1/status")
        if response.status_code == 200:
            report = response.json()
            report["source"] = "daemon"
            return report
        problem = DaemonUnreachable(
            f"the daemon answered HTTP {response.status_code} on /v1/status"
        )
    except DaemonUnreachable as exc:
        problem = exc
    except ValueError:
        problem = DaemonUnreachable("the daemon's status answer is not JSON")
    return _report_without_daemon(config, problem, now or athens_now())


def _report_without_daemon(
    config: AgentConfig, problem: DaemonUnreachable, now: datetime
) -> dict[str, Any]:
    database_error: str | None = None
    try:
        report = offline_report(config, now)
    except store.DatabaseDamaged as exc:
        database_error = str(exc)
    except (sqlite3.Error, OSError) as exc:
        database_error = f"cannot read {config.database_path}: {exc}"
    if database_error is not None:
        report = {
            "version": __version__,
            "generated_at": now.isoformat(),
            "daemon": {"running": False},
            "store_error": database_error,
        }
    elif "store" not in report:
        report["store_error"] = f"no database at {config.database_path}"
        database_error = report["store_error"]
    report["source"] = "database" if "store" in report else "none"
    report["daemon"]["reason"] = problem.reason
    if problem.permission:
        report["daemon"]["running"] = None
        report["daemon"]["note"] = "daemon state unknown: the socket is closed to this user"
    level, findings = verdict(report, config)
    if problem.permission:
        findings = [f for f in findings if "daemon is not running" not in f]
        findings.insert(0, f"UNKNOWN: {problem.reason}")
        level = max([UNKNOWN, *(level_of_finding(f) for f in findings)])
    if database_error is not None:
        findings = [f for f in findings if "database could not be read" not in f]
        findings.append(f"UNKNOWN: {database_error}")
        level = UNKNOWN
    report["level"] = LEVEL_NAMES[level]
    report["exit_code"] = level
    report["findings"] = findings
    return report


def report_exit_code(report: dict[str, Any]) -> int:
    code = report.get("exit_code")
    return code if code in LEVEL_NAMES else UNKNOWN


# -- the screen --------------------------------------------------------------------------------


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=ATHENS)


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


def _ago(value: str | None, now: datetime) -> str:
    moment = _when(value)
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


def render(report: dict[str, Any], config: AgentConfig, *, colour: bool) -> str:
    """The screen: one section per part of the register, findings last."""
    now = _when(report.get("generated_at")) or athens_now()
    level = report_exit_code(report)
    title = paint(f"pos-agent status: {LEVEL_NAMES[level]}", level, colour, bold=True)
    stored = report.get("store")
    lines = [
        title + f"   ({_clock_time(now)} Athens, exit {level})",
        *_daemon_rows(report, colour),
        *_provider_rows(report.get("provider"), now, colour),
        *_store_rows(stored, report, config, colour),
        *_printer_rows(report.get("printer"), stored),
        *_clock_rows(report.get("clock"), config, colour),
        *(_database_rows(stored["database"], colour) if stored is not None else []),
        "",
        "Findings:",
    ]
    for finding in report.get("findings", []):
        lines.append("  " + paint(finding, level_of_finding(finding), colour))
    return "\n".join(lines)


def _row(label: str, text: str) -> str:
    return f"{label:<12}{text}"


def _daemon_rows(report: dict[str, Any], colour: bool) -> list[str]:
    daemon = report.get("daemon", {})
    if daemon.get("running"):
        uptime = duration(daemon.get("uptime_s", 0))
        started = _clock_time(_when(daemon.get("started_at")))
        row = (
            f"up, version {report.get('version', '?')}, pid {daemon.get('pid', '?')}, "
            f"uptime {uptime} (since {started})"
        )
        return [_row("Daemon", row)]
    state = "UNKNOWN" if daemon.get("running") is None else "DOWN"
    reason = f"{state}: {daemon.get('reason', 'not reachable')}"
    rows = [
        _row("Daemon", paint(reason, CRITICAL if state == "DOWN" else UNKNOWN, colour, bold=True))
    ]
    if report.get("source") == "database":
        rows.append(_row("", "figures below are read from the database directly (read-only)"))
    return rows


def _provider_rows(provider: dict[str, Any] | None, now: datetime, colour: bool) -> list[str]:
    if not provider:
        return [_row("Provider", "unknown (only the daemon knows)")]
    breaker = provider.get("breaker", "?")
    reach = (
        "reachable"
        if breaker == "closed"
        else paint(
            f"OFFLINE, receipts issued offline: {provider.get('last_failure') or '?'}",
            WARN,
            colour,
        )
    )
    alarm = provider.get("credential_alarm")
    credentials = (
        paint(f"REFUSED by the provider (401): {alarm}", CRITICAL, colour)
        if alarm
        else "accepted (no 401 since start)"
    )
    return [
        _row("Provider", f"{provider.get('base_url', '?')}: {reach}"),
        _row("", f"breaker {breaker}; last success {_ago(provider.get('last_success_at'), now)}"),
        _row("", f"last sync {_ago(provider.get('last_sync_at'), now)}"),
        _row("Credentials", credentials),
    ]


def _store_rows(
    stored: dict[str, Any] | None, report: dict[str, Any], config: AgentConfig, colour: bool
) -> list[str]:
    if stored is None:
        error = report.get("store_error", "database not readable")
        return [_row("Backlog", paint(error, UNKNOWN, colour))]
    backlog = stored["backlog"]
    by_code = backlog.get("by_code", {})
    rows = [
        _row(
            "Backlog",
            f"{backlog['delayed']} delayed (code 1 provider: {by_code.get('1', 0)}, "
            f"code 2 AADE: {by_code.get('2', 0)}), {backlog['pending']} pending, "
            f"{backlog.get('overdue', 0)} overdue",
        )
    ]
    oldest = backlog.get("oldest")
    if oldest:
        rows.append(_oldest_row(oldest, config, colour))
    rejected = stored.get("rejected", 0)
    rejected_text = (
        paint(
            f"{rejected} need a person (pos-agent status --json; provider portal)", CRITICAL, colour
        )
        if rejected
        else "0"
    )
    rows.append(_row("Rejected", rejected_text))
    if stored.get("mark_unknown"):
        count = stored["mark_unknown"]
        rows.append(
            _row("", f"{count} accepted without a MARK: the duplicate answer had none (see portal)")
        )
    return rows


def _oldest_row(oldest: dict[str, Any], config: AgentConfig, colour: bool) -> str:
    left_text, level = _time_left(oldest.get("hours_left"), config)
    due = _clock_time(_when(oldest.get("due_at")))
    return _row(
        "Oldest",
        f"receipt {oldest['receipt_id']}, {duration(oldest.get('age_s', 0))} old; "
        f"deadline {due}: " + paint(left_text, level, colour),
    )


def _time_left(hours_left: float | None, config: AgentConfig) -> tuple[str, int]:
    """How long the oldest delayed receipt has until its deadline, and how worrying that is."""
    if hours_left is None:
        return "no deadline recorded", OK
    if hours_left <= 0:
        return f"PAST DEADLINE by {duration(-hours_left * 3600)}", CRITICAL
    text = f"{duration(hours_left * 3600)} left"
    if hours_left <= config.sync.deadline_critical_hours:
        return text, CRITICAL
    if hours_left <= config.sync.deadline_warning_hours:
        return text, WARN
    return text, OK


def _printer_rows(printer: dict[str, Any] | None, stored: dict[str, Any] | None) -> list[str]:
    if printer:
        if not printer.get("enabled", True):
            return [_row("Printer", "disabled in the config")]
        return [
            _row(
                "Printer",
                f"{printer.get('backend', '?')}, state {printer.get('state', '?')}; "
                f"{printer.get('queued', 0)} queued, {printer.get('failed', 0)} failed, "
                f"{printer.get('printed', 0)} printed",
            )
        ]
    if stored is None:
        return []
    queue = stored.get("print_queue", {})
    return [
        _row(
            "Printer",
            f"state unknown (daemon down); {queue.get('queued', 0) + queue.get('printing', 0)} "
            f"queued, {queue.get('failed', 0)} failed, {queue.get('printed', 0)} printed",
        )
    ]


def _clock_rows(clock: dict[str, Any] | None, config: AgentConfig, colour: bool) -> list[str]:
    if not clock:
        return []
    offset = clock.get("offset_s")
    if offset is None:
        return [_row("Clock", "offset unknown (no answer from the provider yet)")]
    limit = config.clock.max_offset_s
    text = f"{offset:+.1f} s vs the provider's Date header (limit ±{limit:g} s)"
    return [_row("Clock", paint(text, WARN, colour) if abs(offset) > limit else text)]


def _database_rows(db: dict[str, Any], colour: bool) -> list[str]:
    checked = _clock_time(_when(db.get("integrity_checked_at")))
    journal = (
        f"journal ok ({db.get('journal_entries', 0)} entries)"
        if db.get("journal_ok")
        else paint("JOURNAL CHAIN BROKEN", CRITICAL, colour)
    )
    return [
        _row("Database", f"{db['path']}, {_size(db.get('size_bytes'))}"),
        _row("", f"integrity {db.get('integrity') or 'never checked'} (at {checked}); {journal}"),
    ]


# -- the command -------------------------------------------------------------------------------


def status_command(args: argparse.Namespace) -> int:
    path = config_path(args)
    try:
        config = load_config(path)
    except ConfigError as exc:
        return _unknown(args, f"config unreadable: {exc}")
    config = with_socket(config, args.socket)
    report = collect_report(config)
    if args.json:
        json.dump(report, sys.stdout, ensure_ascii=False, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print(render(report, config, colour=use_colour(sys.stdout)))
    return report_exit_code(report)


def _unknown(args: argparse.Namespace, message: str) -> int:
    if args.json:
        body = {"level": "UNKNOWN", "exit_code": UNKNOWN, "findings": [f"UNKNOWN: {message}"]}
        json.dump(body, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        colour = use_colour(sys.stdout)
        print(
            paint("pos-agent status: UNKNOWN", UNKNOWN, colour, bold=True) + f"   (exit {UNKNOWN})"
        )
        print(f"  {message}")
    return UNKNOWN


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
